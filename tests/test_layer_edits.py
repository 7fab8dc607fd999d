"""The builder's edits of a stack with blocks, as pure functions over the preset's plain data."""

from __future__ import annotations

import copy

import pytest

from tfbench import layer_edits as edits
from tfbench.layer_edits import EditRefused


def stack() -> list:
    """A stack with each kind of entry, written as the preset form writes it."""
    return [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3},
        {
            "type": "Residual",
            "merge": "add",
            "layers": [
                {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same"},
                {"type": "BatchNormalization"},
            ],
            "shortcut": [{"type": "Conv2D", "filters": 8, "kernel_size": 1}],
        },
        {"type": "Parallel", "branches": [[{"type": "Conv2D", "filters": 4, "kernel_size": 1}], []]},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 16}},
        {"type": "MobileNetV2", "weights": "none", "include_top": False, "trainable": False},
    ]


def test_paths_read_as_error_locations():
    """Steps and paths convert both ways, and a field's location finds its entry's row."""
    steps = (2, "branches", 1, 0)
    assert edits.path_of(steps) == "model.layers[2].branches[1][0]"
    assert edits.steps_of("model.layers[2].branches[1][0]") == steps
    assert edits.steps_of("train.epochs") is None
    nodes = edits.walk(stack())
    assert edits.node_for_location(nodes, "model.layers[1].layers[0].filters").steps == (1, "layers", 0)
    assert edits.node_for_location(nodes, "model.layers[3].layer.units").steps == (3, "layer")
    assert edits.node_for_location(nodes, "model.layers[1]").steps == (1,)
    assert edits.node_for_location(nodes, "data.source") is None


def test_walk_lists_blocks_before_their_layers_and_branches():
    """Depth-first rows with kinds and depths; a shortcut and each branch are rows of their own."""
    rows = [(n.path.removeprefix("model.layers"), n.kind, n.depth) for n in edits.walk(stack())]
    assert rows == [
        ("[0]", "layer", 0),
        ("[1]", "block", 0),
        ("[1].layers[0]", "layer", 1),
        ("[1].layers[1]", "layer", 1),
        ("[1].shortcut", "shortcut", 1),
        ("[1].shortcut[0]", "layer", 2),
        ("[2]", "block", 0),
        ("[2].branches[0]", "branch", 1),
        ("[2].branches[0][0]", "layer", 2),
        ("[2].branches[1]", "branch", 1),
        ("[3]", "wrapper", 0),
        ("[3].layer", "layer", 1),
        ("[4]", "backbone", 0),
    ]
    lasts = {n.path: n.lasts for n in edits.walk(stack())}
    assert lasts["model.layers[1].layers[1]"] == (False,)  # the shortcut comes after it
    assert lasts["model.layers[1].shortcut[0]"] == (True, True)


def test_insert_below_above_and_inside():
    """Below and above stay in the entry's own list; inside goes into a block or a branch."""
    layers = stack()
    before = copy.deepcopy(layers)
    dense = {"type": "Dense", "units": 4}
    new, at = edits.insert(layers, (1, "layers", 0), dense)
    assert at == (1, "layers", 1) and edits.get_at(new, at) == dense
    assert layers == before  # the stack given is never changed
    new, at = edits.insert(layers, (2, "branches", 1), dense)  # a branch row: inside it
    assert at == (2, "branches", 1, 0) and new[2]["branches"][1] == [dense]
    new, at = edits.insert(layers, (2,), dense, where="inside")  # a Parallel: its last branch
    assert at == (2, "branches", 1, 0)
    new, at = edits.insert(layers, (1,), dense, where="inside")  # a Residual: its layers
    assert at == (1, "layers", 2)
    new, at = edits.insert(layers, (3, "layer"), dense, where="above")  # a wrapper's layer: its wrapper
    assert at == (3,) and new[3] == dense and new[4]["type"] == "TimeDistributed"
    new, at = edits.insert([], None, dense)
    assert new == [dense] and at == (0,)
    with pytest.raises(EditRefused, match="not a block"):
        edits.insert(layers, (0,), dense, where="inside")
    with pytest.raises(EditRefused, match="wraps one layer"):
        edits.insert(layers, (3,), dense, where="inside")


def test_delete_duplicate_and_move_within_a_list():
    """Deleting selects a neighbour (or the emptied block); moves swap within one list only."""
    layers = stack()
    new, select = edits.delete(layers, (2, "branches", 0, 0))
    assert new[2]["branches"] == [[], []] and select == (2, "branches", 0)
    new, select = edits.delete(layers, (1, "shortcut"))
    assert "shortcut" not in new[1] and select == (1,)
    new, select = edits.delete(layers, (4,))
    assert len(new) == 4 and select == (3,)
    with pytest.raises(EditRefused, match="needs its layer"):
        edits.delete(layers, (3, "layer"))
    new, at = edits.duplicate(layers, (2, "branches", 0))
    assert len(new[2]["branches"]) == 3 and at == (2, "branches", 1)
    new, at = edits.move(layers, (1, "layers", 1), -1)
    assert [e["type"] for e in new[1]["layers"]] == ["BatchNormalization", "Conv2D"] and at == (1, "layers", 0)
    with pytest.raises(EditRefused):
        edits.move(layers, (1, "layers", 0), -1)


def test_move_into_and_out_of_blocks():
    """> moves a layer into the block above (or below); < moves it out to just below its block."""
    layers = stack()
    new, at = edits.move_in(layers, (0,))  # Conv2D above a Residual: to the start of its layers
    assert at == (0, "layers", 0) and new[0]["type"] == "Residual"
    assert [e["type"] for e in new[0]["layers"]] == ["Conv2D", "Conv2D", "BatchNormalization"]
    out, at = edits.move_out(new, at)  # out again: just below the block it left
    assert [e["type"] for e in out][:3] == ["Residual", "Conv2D", "Parallel"] and at == (1,)
    assert out[0]["layers"] == layers[1]["layers"]
    new, at = edits.move_out(layers, (2, "branches", 0, 0))
    assert new[2]["branches"][0] == [] and new[3]["type"] == "Conv2D" and at == (3,)
    new, at = edits.move_in(new, at)  # just below the Parallel: into its last branch
    assert at == (2, "branches", 1, 0) and new[3]["type"] == "TimeDistributed"
    new, at = edits.move_out(layers, (3, "layer"))  # out of a wrapper: unwrapped
    assert new[3] == {"type": "Dense", "units": 16} and at == (3,)
    with pytest.raises(EditRefused, match="no block"):
        edits.move_in([{"type": "Dense", "units": 1}, {"type": "Dense", "units": 2}], (1,))
    with pytest.raises(EditRefused, match="already"):
        edits.move_out(layers, (0,))


def test_add_branch_and_set_entry_keep_the_nesting():
    """A Parallel gets one more branch, a Residual a shortcut; editing a block keeps its layers."""
    layers = stack()
    new, at = edits.add_branch(layers, (2, "branches", 0, 0))
    assert new[2]["branches"][-1] == [] and at == (2, "branches", 2)
    no_shortcut = [{"type": "Residual", "layers": []}]
    new, at = edits.add_branch(no_shortcut, (0,))
    assert new[0]["shortcut"] == [] and at == (0, "shortcut")
    with pytest.raises(EditRefused):
        edits.add_branch(layers, (0,))
    new = edits.set_entry(layers, (1,), "Residual", {"merge": "concatenate"})
    assert new[1]["merge"] == "concatenate" and new[1]["layers"] == layers[1]["layers"]
    assert edits.plain_args(new[1]) == {"merge": "concatenate"}
    new = edits.set_entry(layers, (3, "layer"), "Dense", {"units": 64})
    assert new[3]["layer"] == {"type": "Dense", "units": 64}


def test_nearest_place_after_the_stack_changed():
    """A selection that no longer exists falls back to its closest neighbour or parent."""
    layers = stack()
    assert edits.nearest(layers, (1, "layers", 5)) == (1, "layers", 1)
    assert edits.nearest(layers, (9,)) == (4,)
    assert edits.nearest([], (0,)) is None
    assert edits.nearest(layers, None) == (0,)


def test_follow_finds_entries_after_an_edit_shifted_them():
    """Fold state kept by path follows its block when an entry above it is deleted."""
    layers = stack()
    new, _ = edits.delete(layers, (0,))
    moved = edits.follow(layers, new, ["model.layers[2]", "model.layers[0]", "model.layers[1].layers[0]"])
    assert moved == {"model.layers[2]": "model.layers[1]", "model.layers[1].layers[0]": "model.layers[0].layers[0]"}


def test_every_new_block_validates_as_added():
    """What "add block" puts in the stack is a valid Experiment for every block, wrapper and backbone."""
    from tfbench import backbones, blocks
    from tfbench.spec import experiment_from_dict

    for name in (*blocks.BLOCKS, *blocks.WRAPPERS, *backbones.BACKBONES):
        entry = edits.new_block(name)
        assert entry["type"] == name
        experiment_from_dict({"model": {"layers": [entry]}})
