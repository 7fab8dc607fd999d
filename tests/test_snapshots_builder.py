"""Snapshot pictures of the builder's tree: a stack with a frozen backbone, a Residual, a Parallel
with two branches and a Bidirectional wrapper, drawn from a fixed nested summary (no Keras)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nested_stack import NestedEngineCalls, nested_experiment
from test_snapshots_workbench import steps

from tfbench.app import make_app


def blocks_app(engine_calls: NestedEngineCalls | None = None):
    """The workbench on the nested stack, with a steady cursor."""
    app = make_app(
        experiment=nested_experiment(), runs_dir=Path("runs-not-used"), engine_calls=engine_calls or NestedEngineCalls()
    )
    app.blink = False
    return app


def test_builder_blocks(snap_compare):
    """The tree: the backbone folded to one frozen row, blocks' layers and branches under them."""
    assert snap_compare(blocks_app(), terminal_size=(100, 32), run_before=steps())


def test_builder_blocks_80x24(snap_compare):
    """The same tree fits a classic 80×24 terminal."""
    assert snap_compare(blocks_app(), terminal_size=(80, 24), run_before=steps())


@pytest.mark.slow
def test_builder_blocks_unfolded_wrapper_layer(snap_compare):
    """The backbone unfolded to its layers, and the Bidirectional's LSTM selected with its form."""
    keys = ("down", "right", *["down"] * 16)
    assert snap_compare(blocks_app(), terminal_size=(80, 24), run_before=steps(*keys))


def test_builder_blocks_nested_error(snap_compare):
    """An impossible entry deep in a branch: marked in the tree, its message under it."""
    workbench = NestedEngineCalls(fail_at="model.layers[3].branches[1][0].pool_size")
    assert snap_compare(blocks_app(workbench), terminal_size=(100, 32), run_before=steps())


def test_block_picker_80x24(snap_compare):
    """b offers the blocks, wrappers and backbones, one line each."""
    assert snap_compare(blocks_app(), terminal_size=(80, 24), run_before=steps("b"))
