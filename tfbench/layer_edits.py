"""Edits of a layer stack whose entries may be blocks, as pure functions over plain data — without a UI.

A stack is the list `model.layers` holds, written as plain dicts the way a preset writes it: a
wrapper's inner entry under `layer`, a Residual's `layers` and optional `shortcut`, a Parallel's
`branches`. A place in the stack is a tuple of steps, `(4, "branches", 1, 0)`, which reads as the
error locations and summary rows write it: `model.layers[4].branches[1][0]`. Every edit returns a
new stack and the place of what it edited, so the builder can keep that selected; an edit that
cannot be made raises `EditRefused` saying why, and the stack given is left as it was.

A model with several inputs and outputs (`tfbench.io_model`) has a stack per input
(`model.inputs[1].layers`), the trunk (`model.layers`) and a stack per output
(`model.outputs[0].layers`): each is edited the same way, its steps read from its own root, and
`walk_model` gives the whole model's tree — each input with its stack, the merge, the trunk, each
head.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from tfbench import backbones, blocks
from tfbench.errors import UserError

ROOT = "model.layers"
MERGE = "model.merge"
_STACK_ROOT = re.compile(r"model\.(?:inputs|outputs)\[\d+\]\.layers|model\.layers")
Steps = tuple[int | str, ...]

NESTED_KEYS = ("layer", "layers", "shortcut", "branches")


class EditRefused(ValueError):
    """An edit that does not fit where it was asked for; the message says why."""


@dataclass(frozen=True)
class Node:
    """One row of the stack's tree: an entry, a Parallel's branch or a Residual's shortcut.

    Attributes:
        steps: where it is (`(4, "branches", 1)`).
        depth: 0 for an entry of the stack, 1 inside it, and so on.
        kind: `layer`, `wrapper`, `block`, `backbone`, `branch` or `shortcut`; in a model with
            several inputs and outputs also `input` and `output` (a named input or output, its
            stack under it) and `merge` (where the inputs meet).
        entry: the entry's plain dict (None for a branch, shortcut, input, output or merge).
        lasts: for each level from 1 to `depth`, whether this row (or its ancestor at that level)
            is the last child there — what the tree's `├`/`└`/`│` lines are drawn from.
        root: the stack the steps start from (`model.layers`, `model.inputs[1].layers`, …).
        name: an input's or output's name.
    """

    steps: Steps
    depth: int
    kind: str
    entry: dict | None
    lasts: tuple[bool, ...] = ()
    root: str = ROOT
    name: str = ""

    @property
    def path(self) -> str:
        if self.kind in ("input", "output"):
            return self.root.removesuffix(".layers")  # `model.inputs[1]`, as its summary row
        if self.kind == "merge":
            return MERGE
        return path_of(self.steps, self.root)

    @property
    def is_group(self) -> bool:
        return self.kind in ("branch", "shortcut")

    @property
    def is_part(self) -> bool:
        """An input, output or the merge: a row of a model with several, not an entry of a stack."""
        return self.kind in ("input", "output", "merge")


# -- places -----------------------------------------------------------------------------------


def path_of(steps: Steps, root: str = ROOT) -> str:
    """`(4, "branches", 1, 0)` → `model.layers[4].branches[1][0]` (from another stack's `root`)."""
    text = root
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text


_STEP = re.compile(r"\[(\d+)\]|\.([A-Za-z_]\w*)")


def steps_of(path: str, root: str = ROOT) -> Steps | None:
    """`model.layers[4].branches[1][0].filters` → `(4, "branches", 1, 0, "filters")`; None elsewhere."""
    if not path.startswith(root):
        return None
    rest, steps = path[len(root) :], []
    while rest:
        match = _STEP.match(rest)
        if match is None:
            break
        steps.append(int(match.group(1)) if match.group(1) is not None else match.group(2))
        rest = rest[match.end() :]
    return tuple(steps)


def get_at(layers: list | dict, steps: Steps) -> Any:
    """What sits at `steps` (an entry, a branch's list, a shortcut's list)."""
    node: Any = layers
    for step in steps:
        node = node[step]
    return node


def kind_of(entry: dict) -> str:
    """`wrapper`, `block`, `backbone` or `layer`: the grammar's kind of its type (`tfbench.blocks`)."""
    if isinstance(entry.get("layer"), dict):
        return "wrapper"
    return blocks.kind_of(entry.get("type"))


def plain_args(entry: dict) -> dict:
    """An entry's own arguments: all but `type` and the nested entries."""
    return {k: v for k, v in entry.items() if k != "type" and not _is_nested(k, v)}


def _is_nested(key: str, value: Any) -> bool:
    if key == "layer":
        return isinstance(value, dict)
    return key in NESTED_KEYS and isinstance(value, list)


# -- the tree ---------------------------------------------------------------------------------


def walk(layers: list, root: str = ROOT, depth: int = 0, lasts: tuple[bool, ...] = ()) -> list[Node]:
    """Every row of the tree, depth-first: a block's row before its layers and branches."""
    nodes: list[Node] = []
    for i, entry in enumerate(layers):
        inner = lasts + ((i == len(layers) - 1,) if depth else ())
        _walk_entry(nodes, entry, (i,), depth, inner, root)
    return nodes


def _walk_entry(
    nodes: list[Node], entry: dict, steps: Steps, depth: int, lasts: tuple[bool, ...], root: str = ROOT
) -> None:
    kind = kind_of(entry)
    nodes.append(Node(steps, depth, kind, entry, lasts, root))
    children = _children(entry, steps)
    for n, (child_steps, child_kind, value) in enumerate(children):
        child_lasts = lasts + (n == len(children) - 1,)
        if child_kind in ("branch", "shortcut"):
            nodes.append(Node(child_steps, depth + 1, child_kind, None, child_lasts, root))
            for j, item in enumerate(value):
                _walk_entry(nodes, item, child_steps + (j,), depth + 2, child_lasts + (j == len(value) - 1,), root)
        else:
            _walk_entry(nodes, value, child_steps, depth + 1, child_lasts, root)


# -- a model with several inputs and outputs ---------------------------------------------------


def several(model: dict) -> bool:
    """Whether a model's plain dict has named inputs or outputs (`tfbench.io_model`)."""
    return model.get("inputs") is not None or model.get("outputs") is not None


def walk_model(model: dict) -> list[Node]:
    """The whole model's rows: each input with its stack, the merge, the trunk, each output with
    its head — or, for a plain model, its stack's rows (`walk`)."""
    if not several(model):
        return walk(model.get("layers") or [])
    inputs, outputs = model.get("inputs") or [], model.get("outputs") or []
    nodes: list[Node] = []
    for i, part in enumerate(inputs):
        root = f"model.inputs[{i}].layers"
        nodes.append(Node((), 0, "input", None, (), root, str(part.get("name", ""))))
        nodes += walk(part.get("layers") or [], root, 1)
    if len(inputs) > 1:
        nodes.append(Node((), 0, "merge", None, (), MERGE, str(model.get("merge") or "concatenate")))
    nodes += walk(model.get("layers") or [])
    for j, part in enumerate(outputs):
        root = f"model.outputs[{j}].layers"
        nodes.append(Node((), 0, "output", None, (), root, str(part.get("name", ""))))
        nodes += walk(part.get("layers") or [], root, 1)
    return nodes


def stack_root(path: str) -> str | None:
    """The stack a path sits in: `model.inputs[1].layers[0].units` → `model.inputs[1].layers`."""
    match = _STACK_ROOT.match(path)
    return match.group(0) if match else None


def stack_at(model: dict, root: str) -> list:
    """The plain list of entries at a stack's root (`model.outputs[0].layers`) of a model's dict."""
    steps = steps_of(root, "model") or ()
    node: Any = model
    for step in steps:
        node = node[step]
    return node if isinstance(node, list) else []


def put_stack(model: dict, root: str, layers: list) -> None:
    """Set the stack at `root` of a model's plain dict (in place)."""
    steps = steps_of(root, "model") or ()
    node: Any = model
    for step in steps[:-1]:
        node = node[step]
    node[steps[-1]] = layers


def _children(entry: dict, steps: Steps) -> list[tuple[Steps, str, Any]]:
    children: list[tuple[Steps, str, Any]] = []
    if isinstance(entry.get("layer"), dict):
        children.append((steps + ("layer",), "entry", entry["layer"]))
    if isinstance(entry.get("layers"), list):
        children += [(steps + ("layers", j), "entry", item) for j, item in enumerate(entry["layers"])]
    if isinstance(entry.get("shortcut"), list):
        children.append((steps + ("shortcut",), "shortcut", entry["shortcut"]))
    if isinstance(entry.get("branches"), list):
        children += [
            (steps + ("branches", b), "branch", branch)
            for b, branch in enumerate(entry["branches"])
            if isinstance(branch, list)
        ]
    return children


def node_for_location(nodes: list[Node], location: str | None) -> Node | None:
    """The deepest row an error location falls in (`…branches[1][0].filters` → that Conv2D)."""
    best = None
    for node in nodes:
        path = node.path
        if location == path or (location or "").startswith((path + ".", path + "[")):
            if best is None or len(path) > len(best.path):
                best = node
    return best


def nearest(layers: list, steps: Steps | None) -> Steps | None:
    """`steps` if the stack still has it, else the closest place above or before it (after undo).

    `()` (an input's or output's own row) stays itself."""
    if steps == ():
        return steps
    if not layers:
        return None
    places = {node.steps for node in walk(layers)}
    current = tuple(steps or (0,))
    while current:
        if current in places:
            return current
        if isinstance(current[-1], int) and current[-1] > 0:
            current = current[:-1] + (current[-1] - 1,)
        else:
            current = current[:-1]
    return (len(layers) - 1,)


# -- new entries ------------------------------------------------------------------------------


def new_block(name: str) -> dict:
    """A block, wrapper or backbone that validates as it is, for the builder's "add block".

    A Residual's main path starts as an `Identity` (the grammar wants one layer there): add the
    real layers inside, then delete it.
    """
    if name == "Residual":
        return {"type": "Residual", "layers": [{"type": "Identity"}]}
    if name == "Parallel":
        return {"type": "Parallel", "branches": [[], []]}
    if name == "Bidirectional":
        return {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 32}}
    if name == "TimeDistributed":
        return {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 32}}
    # The Keras transfer-learning recipe: pretrained, headless, pooled, frozen, with the input
    # scaling its family expects inside the model when the model lacks it.
    entry = {"type": name, "weights": "imagenet", "include_top": False, "pooling": "avg", "trainable": False}
    if preprocess_offered(name):
        entry["preprocess"] = True
    return entry


def preprocess_offered(name: str) -> bool:
    """Whether a backbone's expected input scaling can go inside the model (`preprocess = true`).

    Families whose models scale raw pixels themselves need none; the grammar refuses the ones no
    Keras layer can express (`tfbench.backbones.check`).
    """
    if not backbones.is_backbone(name) or backbones.family(name).preprocessing == "inside":
        return False
    try:
        backbones.check(name, {"preprocess": True}, ROOT)
    except UserError:
        return False
    return True


# -- edits ------------------------------------------------------------------------------------


def insert(layers: list, at: Steps | None, entry: dict, where: str = "below") -> tuple[list, Steps]:
    """Put `entry` below or above the entry at `at`, or `inside` the block or branch at `at`.

    A branch or shortcut row takes the entry inside it either way; a wrapper's inner layer counts
    as its wrapper. Returns the new stack and the new entry's place.
    """
    new = copy.deepcopy(layers)
    if at is None or not new:
        new.append(copy.deepcopy(entry))
        return new, (len(new) - 1,)
    target = get_at(new, at)
    if where == "inside" or isinstance(target, list):
        return new, _put_inside(new, at, copy.deepcopy(entry), first=where == "above")
    while at[-1] == "layer":
        at = at[:-1]
    container, index = get_at(new, at[:-1]), int(at[-1])
    place = index + (1 if where == "below" else 0)
    container.insert(place, copy.deepcopy(entry))
    return new, at[:-1] + (place,)


def _put_inside(layers: list, at: Steps, entry: dict, first: bool = False) -> Steps:
    target = get_at(layers, at)
    if isinstance(target, list):  # a branch or a shortcut
        target.insert(0 if first else len(target), entry)
        return at + (0 if first else len(target) - 1,)
    kind = kind_of(target)
    if target.get("type") == "Parallel" or isinstance(target.get("branches"), list):
        branches = target.setdefault("branches", [])
        if not branches:
            branches.append([])
        b = 0 if first else len(branches) - 1
        branches[b].insert(0 if first else len(branches[b]), entry)
        return at + ("branches", b, 0 if first else len(branches[b]) - 1)
    if target.get("type") == "Residual" or isinstance(target.get("layers"), list):
        inner = target.setdefault("layers", [])
        inner.insert(0 if first else len(inner), entry)
        return at + ("layers", 0 if first else len(inner) - 1)
    if kind == "wrapper":
        if isinstance(target.get("layer"), dict):
            raise EditRefused(f"{target['type']} wraps one layer and has one; change that layer instead")
        target["layer"] = entry
        return at + ("layer",)
    raise EditRefused(
        f"{target.get('type')} is a layer, not a block: only a Residual, a Parallel branch "
        "or an empty wrapper holds layers"
    )


def delete(layers: list, at: Steps) -> tuple[list, Steps | None]:
    """Remove the entry, branch or shortcut at `at`. Returns the stack and what to select next."""
    new = copy.deepcopy(layers)
    last = at[-1]
    if last == "layer":
        raise EditRefused("a wrapper needs its layer: delete the wrapper, or move the layer out of it (<)")
    if last == "shortcut":
        del get_at(new, at[:-1])["shortcut"]
        return new, at[:-1]
    container = get_at(new, at[:-1])
    container.pop(int(last))
    if container:
        return new, at[:-1] + (min(int(last), len(container) - 1),)
    if len(at) == 1:
        return new, None
    # An emptied Residual or Parallel selects its block; an emptied branch or shortcut stays selected.
    return new, at[:-2] if at[-2] in ("layers", "branches") else at[:-1]


def duplicate(layers: list, at: Steps) -> tuple[list, Steps]:
    """Put a copy of the entry (or branch) at `at` right after it."""
    if not isinstance(at[-1], int):
        raise EditRefused("only an entry of a list (a layer, a block, a branch) can be duplicated")
    new = copy.deepcopy(layers)
    container = get_at(new, at[:-1])
    container.insert(at[-1] + 1, copy.deepcopy(container[at[-1]]))
    return new, at[:-1] + (at[-1] + 1,)


def move(layers: list, at: Steps, step: int) -> tuple[list, Steps]:
    """Swap the entry (or branch) at `at` with its neighbour `step` (-1 up, +1 down) in its list."""
    if not isinstance(at[-1], int):
        raise EditRefused("a wrapper's layer or a shortcut has no neighbours to swap with")
    new = copy.deepcopy(layers)
    container = get_at(new, at[:-1])
    i, j = at[-1], at[-1] + step
    if not 0 <= j < len(container):
        raise EditRefused("already at the end of its list")
    container[i], container[j] = container[j], container[i]
    return new, at[:-1] + (j,)


def _holds_layers(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    kind = kind_of(entry)
    return kind == "block" or (kind == "wrapper" and not isinstance(entry.get("layer"), dict))


def move_in(layers: list, at: Steps) -> tuple[list, Steps]:
    """Move the entry at `at` into the block just above it (to its end) or else just below (to its start).

    A Residual takes it into its layers, a Parallel into its last (or first) branch, a wrapper
    without a layer as its layer.
    """
    if not isinstance(at[-1], int) or isinstance(get_at(layers, at), list):
        raise EditRefused("only a layer or a block can move into a block")
    new = copy.deepcopy(layers)
    container, i = get_at(new, at[:-1]), at[-1]
    if i > 0 and _holds_layers(container[i - 1]):
        entry = container.pop(i)
        return new, _put_inside(new, at[:-1] + (i - 1,), entry)
    if i + 1 < len(container) and _holds_layers(container[i + 1]):
        entry = container.pop(i)
        return new, _put_inside(new, at[:-1] + (i,), entry, first=True)
    raise EditRefused("no block right above or below to move into; add one with b")


def _owner_block(at: Steps) -> Steps:
    """The place of the block an entry at `at` sits in (its Residual, Parallel or wrapper)."""
    if at[-1] == "layer":
        return at[:-1]
    if len(at) >= 4 and at[-3] == "branches":
        return at[:-3]
    return at[:-2]


def move_out(layers: list, at: Steps) -> tuple[list, Steps]:
    """Move the entry at `at` out of its block, to just below that block.

    Moving a wrapper's layer out unwraps it: the layer takes the wrapper's place.
    """
    if len(at) == 1:
        raise EditRefused("already in the stack itself, not inside a block")
    if isinstance(get_at(layers, at), list):
        raise EditRefused("a branch or shortcut cannot leave its block; delete it instead")
    new = copy.deepcopy(layers)
    block = _owner_block(at)
    if at[-1] == "layer":
        get_at(new, block[:-1])[block[-1]] = get_at(new, at)
        return new, block
    if not isinstance(block[-1], int):
        raise EditRefused("the block around it sits in a wrapper; move the block out first")
    entry = get_at(new, at[:-1]).pop(at[-1])
    outer = get_at(new, block[:-1])
    outer.insert(block[-1] + 1, entry)
    return new, block[:-1] + (block[-1] + 1,)


def add_branch(layers: list, at: Steps) -> tuple[list, Steps]:
    """Give the Parallel at or around `at` one more (empty) branch, or a Residual a shortcut."""
    for end in range(len(at), 0, -1):
        here = at[:end]
        entry = get_at(layers, here)
        if not isinstance(entry, dict):
            continue
        if entry.get("type") == "Parallel":
            new = copy.deepcopy(layers)
            branches = get_at(new, here).setdefault("branches", [])
            branches.append([])
            return new, here + ("branches", len(branches) - 1)
        if entry.get("type") == "Residual" and not isinstance(entry.get("shortcut"), list):
            new = copy.deepcopy(layers)
            get_at(new, here)["shortcut"] = []
            return new, here + ("shortcut",)
    raise EditRefused("select a Parallel block (or a Residual without a shortcut) to add a branch")


def set_entry(layers: list, at: Steps, type_name: str, args: dict) -> list:
    """Replace the entry at `at` with `type_name` and `args`, keeping its nested entries."""
    new = copy.deepcopy(layers)
    old = get_at(new, at[:-1])[at[-1]]
    kept = {k: v for k, v in old.items() if _is_nested(k, v) and k not in args}
    get_at(new, at[:-1])[at[-1]] = {"type": type_name, **args, **kept}
    return new


def follow(before: list, after: list, paths: list[str], root: str = ROOT) -> dict[str, str]:
    """Where the entries at `paths` in `before` are in `after` (the stack at `root`), found by content.

    State the builder keeps by path (which blocks are folded) follows its entries this way when an
    edit shifts them; an entry no longer in `after` is left out.
    """
    nodes = [node for node in walk(after, root) if node.entry is not None]
    moved = {}
    for path in paths:
        steps = steps_of(path, root)
        try:
            entry = get_at(before, steps) if steps else None
        except (IndexError, KeyError, TypeError):
            continue
        if not isinstance(entry, dict) or steps is None:
            continue
        try:
            if get_at(after, steps) == entry:
                moved[path] = path
                continue
        except (IndexError, KeyError, TypeError):
            pass
        match = next((node.path for node in nodes if node.entry == entry), None)
        if match is not None:
            moved[path] = match
    return moved
