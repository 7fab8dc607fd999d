"""Which layers learn from data (`adapt`), and where in a stack they can — without a UI or TensorFlow.

The preset's side of `tfbench.adapt`: the validator refuses a layer that could not adapt at its
place (`check_stack`), and `tfbench validate` notes the layers a run will adapt (`notes`).
"""

from __future__ import annotations

from typing import Any

from tfbench import blocks
from tfbench.errors import UserError

ADAPTABLE = ("Normalization", "Discretization", "TextVectorization", "StringLookup", "IntegerLookup")
"""The Keras layers with `adapt`: the catalog offers these."""
VOCABULARY_LAYERS = ("TextVectorization", "StringLookup", "IntegerLookup")
VOCABULARY_WIDTH = ("one_hot", "multi_hot", "count", "tf_idf")
"""Output modes of the lookups and TextVectorization whose width is the vocabulary's size."""


def adaptable_nodes(entries: list[Any]) -> list[blocks.Node]:
    """The entries of a stack (`model.layers`) that learn from data, wherever they sit (blocks and
    wrappers included)."""
    return [node for node, _ in blocks.walk(blocks.parse_stack(entries)) if node.type in ADAPTABLE]


def notes(entries: list[Any]) -> list[str]:
    """What `tfbench validate` says of such layers: which adapt on the training split when a run starts."""
    given = {"Normalization": ("mean", "variance"), "Discretization": ("bin_boundaries",)}
    out = []
    for node in adaptable_nodes(entries):
        if any(node.args.get(key) is not None for key in given.get(node.type, ("vocabulary",))):
            continue
        out.append(f"{node.path} {node.type} adapts on the training split before the first epoch")
    return out


def check_stack(nodes: list[blocks.Node]) -> None:
    """Refuse what cannot adapt at its place, before anything is built.

    A layer inside a wrapper is not a layer of the model graph (it cannot see the data as its
    place gives it), and a lookup whose width is its vocabulary's size has no shape until it has
    adapted, so the layers after it could not be built; both get the fix that keeps the meaning.

    Raises:
        UserError: at the layer, with what to write instead.
    """
    for node, _ in blocks.walk(nodes):
        if node.kind == "wrapper" and node.inner is not None and node.inner.type in ADAPTABLE:
            raise UserError(
                f"{node.inner.type} inside {node.type} cannot adapt on the training data",
                node.inner.path,
                f"put the {node.inner.type} before the {node.type} (it works on the last axis of every step alike)",
            )
        if node.type in VOCABULARY_LAYERS and node.args.get("output_mode") in VOCABULARY_WIDTH:
            sized = node.args.get("vocabulary") is not None or (
                node.args.get("max_tokens") and node.args.get("pad_to_max_tokens")
            )
            if not sized:
                raise UserError(
                    f"{node.type} with output_mode = {node.args['output_mode']!r} is as wide as the vocabulary it "
                    "learns, which is unknown until it adapts",
                    node.path,
                    "set max_tokens = N and pad_to_max_tokens = true, so the layers after it know its width",
                )
