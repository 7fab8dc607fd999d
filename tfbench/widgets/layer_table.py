"""The layer stack as a tree table: index, type, key arguments, output shape, parameter count.

A block's layers and branches sit under it, drawn with `├`/`└` lines; a block (or a backbone)
can be folded to its one row. `tree_rows` turns the stack, the summary rows and what is folded
into the rows to draw — a pure function, so the tree is tested without Keras or a terminal.
Summary rows are matched to entries by their `path` (`model.layers[4].branches[1][0]`). A model
with several inputs and outputs is drawn as one tree: each input with its stack under it, the
merge, the trunk, each output with its head (`layer_edits.walk_model`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from tfbench import blocks, layer_edits
from tfbench.layer_edits import Node

# The arguments worth a glance in the table, per layer family; others show in the form.
KEY_ARGS = (
    "units",
    "filters",
    "kernel_size",
    "pool_size",
    "strides",
    "padding",
    "rate",
    "activation",
    "scale",
    "target_shape",
    "output_dim",
    "input_dim",
    "axis",
    "return_sequences",
    "size",
    "merge",
    "merge_mode",
    "weights",
    "pooling",
    "num_heads",
    "key_dim",
)


SHORT_NAMES = {
    "units": "",
    "filters": "",
    "activation": "",
    "rate": "",
    "kernel_size": "k",
    "pool_size": "pool",
    "strides": "s",
    "padding": "",
    "scale": "×",
    "return_sequences": "seq",
    "merge": "",
    "merge_mode": "",
    "weights": "",
    "pooling": "",
    "num_heads": "heads",
    "key_dim": "kd",
}


def key_params(args: dict[str, Any]) -> str:
    """The few arguments that say what a layer does (`32, 3, relu`)."""
    from tfbench.widgets.form import format_value

    shown = []
    for name in KEY_ARGS:
        if name in args:
            value = format_value(args[name]).replace(", ", "x")
            short = SHORT_NAMES.get(name)
            shown.append(value if short == "" else f"{short or name}={value}")
    return " ".join(shown)


def format_shape(shape: Any) -> str:
    """`(None, 8, 8, 32)` → `8×8×32` (the batch dimension left out)."""
    if shape is None:
        return ""
    if isinstance(shape, str):
        return shape
    dims = list(shape)
    if dims and dims[0] is None:
        dims = dims[1:]
    return "×".join("?" if d is None else str(d) for d in dims) or "scalar"


FROZEN = "❄"
ARGUMENTS_AT_LEAST = 8  # the Arguments column's narrowest, when the tree's names need the room


def format_params(count: int) -> str:
    """`2,257,984` as `2.26M` (a backbone's count fits the column); smaller counts in full."""
    return f"{count / 1e6:.2f}M" if count >= 1_000_000 else f"{count:,}"


@dataclass(frozen=True)
class TreeRow:
    """One line of the tree table.

    Attributes:
        key: the entry's path (`model.layers[1].layers[0]`); `error:PATH` for the line under an
            entry an impossible stack fails at; `inner:PATH|N` for the Nth summary row with no
            entry of its own inside the entry at PATH (a backbone's layers).
        number: the entry's index in the stack, on its top-level rows.
        label: the tree lines, the fold mark and the type.
        args: the key arguments (or the error's message).
        shape, params: from the summary row with the same path ("…" while it is computed).
        frozen: the entry does not train (a frozen backbone).
        error: this entry is where the stack fails, or the line saying why.
    """

    key: str
    number: str
    label: str
    args: str = ""
    shape: str = ""
    params: str = ""
    frozen: bool = False
    error: bool = False


def _row_path(row: Any) -> str:
    path = getattr(row, "path", None)
    return f"{layer_edits.ROOT}[{row.index}]" if path is None else path  # rows from before paths


def summary_paths(summary_rows: Iterable[Any]) -> dict[str, Any]:
    """Summary rows by the path of the entry they describe (rows without a path left out)."""
    return {path: row for row in summary_rows if (path := _row_path(row))}


def as_entries(layers: Iterable[Any]) -> list[dict]:
    """Layer Components (or plain dicts) as the preset's plain dicts."""
    return [dict(layer) if isinstance(layer, dict) else {"type": layer.type, **layer.args} for layer in layers]


def model_entries(model: Any) -> dict:
    """A ModelSpec (or its plain dict) as the preset writes it: plain dicts in every stack."""
    if isinstance(model, dict):
        return model
    return model.model_dump(mode="python", exclude_none=True)


def default_folded(nodes: list[Node]) -> set[str]:
    """What starts folded: backbones, whose hundreds of layers would bury the stack."""
    return {node.path for node in nodes if node.kind == "backbone"}


def tree_rows(
    layers: Iterable[Any],
    summary_rows: Iterable[Any] = (),
    folded: Iterable[str] = (),
    error_location: str | None = None,
    error: str = "",
    pending: bool = False,
) -> list[TreeRow]:
    """The rows of the tree table, depth-first, hiding what folded blocks hold.

    Args:
        layers: the stack (Components or plain dicts), blocks holding nested entries; or a model
            with several inputs and outputs as its plain dict (`model_entries`).
        summary_rows: the summary's rows (`LayerRow`s), matched to entries by `path`.
        folded: the paths of folded blocks and backbones.
        error_location: where an impossible stack fails (`model.layers[2].branches[0][1].units`);
            its entry (or the folded block hiding it) is marked, the message on a line under it.
        error: that failure's message.
        pending: the summary is being computed ("…" where figures will be).
    """
    model = layers if isinstance(layers, dict) else {"layers": as_entries(layers)}
    nodes = layer_edits.walk_model(model)
    folded = set(folded)
    visible = [n for n in nodes if not _hidden(n.path, folded)]
    target = layer_edits.node_for_location(visible, error_location) if error_location else None
    summary_rows = list(summary_rows)
    by_path = summary_paths(summary_rows)
    extras = _inner_rows(nodes, summary_rows)
    rows: list[TreeRow] = []
    for n, node in enumerate(visible):
        ends_subtree = n + 1 == len(visible) or not _inside(visible[n + 1].path, node.path)
        if node.is_part:
            rows.append(_part_row(node, model, by_path.get(node.path), node.path in folded, node is target, pending))
        elif node.is_group:
            rows.append(_group_row(node, layer_edits.get_at(layer_edits.stack_at(model, node.root), node.steps)))
        else:
            rows.append(
                _node_row(
                    node,
                    by_path.get(node.path),
                    node.path in folded,
                    bool(extras.get(node.path)) or _has_children(node),
                    node is target,
                    pending,
                )
            )
        if node is target and error:
            rows.append(TreeRow(f"error:{node.path}", "↳", "can't build", error, error=True))
        for anchor in _closing(visible, n) if ends_subtree else ():
            if anchor not in folded:
                rows += [_inner_row(anchor, j, row) for j, row in enumerate(extras.get(anchor, []))]
    return rows


def _inside(path: str, ancestor: str) -> bool:
    return path.startswith((ancestor + ".", ancestor + "["))


def _hidden(path: str, folded: set[str]) -> bool:
    return any(_inside(path, f) for f in folded)


def _has_children(node: Node) -> bool:
    return node.kind in ("wrapper", "block", "backbone")


def _part_row(node: Node, model: dict, row: Any, folded: bool, failed: bool, pending: bool) -> TreeRow:
    """An input (its shape), the merge, or an output (its loss and weight) of a model with several."""
    shape, params = ("…", "…") if pending else ("", "")
    if row is not None:
        shape, params = format_shape(row.output_shape), format_params(row.params)
    if failed:
        shape, params = "error", ""
    if node.kind == "merge":
        return TreeRow(node.path, "", "merge", node.name, shape, params, error=failed)
    stack = layer_edits.stack_at(model, node.root)
    mark = ("▸ " if folded else "▾ ") if stack else ""
    args = "" if stack else "the input as is"
    if node.kind == "output":
        written = layer_edits.get_at(model, layer_edits.steps_of(node.path, "model") or ())
        args = _loss_text(written)
    word = "in" if node.kind == "input" else "out"  # short: the names matter in an 80-column tree
    return TreeRow(node.path, "", f"{mark}{word} {node.name}", args, shape, params, error=failed)


def _loss_text(output: dict) -> str:
    """An output's weight and loss, as the tree shows them (`×0.2 CategoricalCrossentropy`)."""
    loss = output.get("loss", "auto")
    name = loss.get("type", "?") if isinstance(loss, dict) else str(loss)
    weight = output.get("loss_weight", 1.0)
    return ("" if weight == 1.0 else f"×{weight:g} ") + name


def _closing(visible: list[Node], n: int) -> list[str]:
    """The paths whose subtrees end with row `n`, innermost first (where their inner rows go)."""
    here = visible[n]
    following = visible[n + 1].path if n + 1 < len(visible) else ""
    return [
        node.path
        for node in reversed(visible[: n + 1])
        if (node is here or _inside(here.path, node.path)) and not _inside(following, node.path)
    ]


def _inner_rows(nodes: list[Node], summary_rows: Iterable[Any]) -> dict[str, list]:
    """Summary rows with no entry of their own, by the entry they sit in.

    A row without a path belongs to the entry row before it one level up (a backbone's own
    layers, its preprocessing); a row whose path names no entry, to the deepest entry around it.
    """
    known = {node.path for node in nodes}
    extras: dict[str, list] = {}
    around: list[tuple[int, str]] = []  # the entries' rows seen, (depth, path), innermost last
    for row in summary_rows:
        path, depth = _row_path(row), int(getattr(row, "depth", 0))
        if path in known:
            while around and around[-1][0] >= depth:
                around.pop()
            around.append((depth, path))
            continue
        if path:
            owner = layer_edits.node_for_location(nodes, path)
            owner_path = owner.path if owner is not None else None
        else:
            owner_path = next((p for d, p in reversed(around) if d < depth), None)
        if owner_path is not None:
            extras.setdefault(owner_path, []).append(row)
    return extras


def _lines(node: Node) -> str:
    if not node.lasts:
        return ""
    return "".join("  " if last else "│ " for last in node.lasts[:-1]) + ("└ " if node.lasts[-1] else "├ ")


def _node_row(node: Node, row: Any, folded: bool, foldable: bool, failed: bool, pending: bool) -> TreeRow:
    mark = ("▸ " if folded else "▾ ") if foldable else ""
    number = str(node.steps[0]) if node.depth == 0 else ""
    entry = node.entry or {}
    args = layer_edits.plain_args(entry)
    if entry.get("type") in blocks.DEFAULT_MERGE:
        args.setdefault("merge", blocks.DEFAULT_MERGE[entry["type"]])
    args.pop("trainable", None)
    shape, params = ("…", "…") if pending else ("", "")
    if row is not None:
        shape, params = format_shape(row.output_shape), format_params(row.params)
    frozen = getattr(row, "trainable", True) is False if row is not None else entry.get("trainable") is False
    if failed:
        shape, params = "error", ""
    return TreeRow(
        node.path,
        number,
        _lines(node) + mark + str(entry.get("type", "?")),
        key_params(args),
        shape,
        params,
        frozen,
        failed,
    )


def _group_row(node: Node, items: list) -> TreeRow:
    name = f"branch {node.steps[-1]}" if node.kind == "branch" else "shortcut"
    return TreeRow(node.path, "", _lines(node) + name, "" if items else "identity (its input as is)")


def _inner_row(owner: str, j: int, row: Any) -> TreeRow:
    depth = max(int(getattr(row, "depth", 1)), 1)
    frozen = getattr(row, "trainable", True) is False
    return TreeRow(
        f"inner:{owner}|{j}",
        "",
        "  " * (depth - 1) + "· " + row.type,
        getattr(row, "name", ""),
        format_shape(row.output_shape),
        format_params(row.params),
        frozen,
    )


class LayerTable(DataTable):
    """The layers of the Experiment as a tree, with the Keras summary beside them when it is known.

    Left folds the block under the cursor, right unfolds it (the screen's `fold` action).
    """

    DEFAULT_CSS = """
    LayerTable { height: 1fr; }
    """

    BINDINGS = [
        Binding("left", "screen.fold(True)", "Fold", show=False),
        Binding("right", "screen.fold(False)", "Unfold", show=False),
    ]

    COLUMNS = ("#", "Layer", "Arguments", "Output", "Params")

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.widths = list(self.WIDTHS)
        self.label_width = self.WIDTHS[1]  # what the rows' labels would take

    WIDTHS = (2, 12, 12, 8, 7)

    def on_mount(self) -> None:
        for label, width in zip(self.COLUMNS, self.WIDTHS):
            self.add_column(label, width=width, key=label)

    def _fit_columns(self, rows: list[TreeRow] | None = None) -> None:
        """Widen Layer and Params to what the rows hold; Arguments gets what is left, so errors can be read."""
        if rows is not None:
            self.label_width = max(
                self.WIDTHS[1], *(len(r.label) for r in rows if not r.key.startswith("error:")), self.WIDTHS[1]
            )
            self.widths[4] = max(self.WIDTHS[4], *(len(r.params) + 2 * r.frozen for r in rows), self.WIDTHS[4])
        padding = 2 * self.cell_padding * len(self.widths) + 2
        room = self.size.width - padding - self.widths[0] - self.widths[3] - self.widths[4]
        # A deep tree's names matter more than its arguments: those shrink first, to a few letters.
        self.widths[1] = min(self.label_width, max(self.WIDTHS[1], room - ARGUMENTS_AT_LEAST))
        narrowest = ARGUMENTS_AT_LEAST if self.widths[1] > self.WIDTHS[1] else self.WIDTHS[2]
        self.widths[2] = max(narrowest, room - self.widths[1])
        for label, width in zip(self.COLUMNS, self.widths):
            column = self.columns.get(label)  # type: ignore[call-overload]  # a str finds its ColumnKey (equal hash)
            if column is not None and column.width != width:
                column.width = width

    def on_resize(self) -> None:
        self._fit_columns()
        self.refresh()

    def show(self, rows: list[TreeRow], cursor: str | None = None) -> None:
        """Fill the table with `rows` and put the cursor on the row keyed `cursor` (if shown).

        Args:
            rows: what `tree_rows` gives.
            cursor: the key (path) of the row to select.
        """
        row = self.cursor_row
        self.clear()
        self._fit_columns(rows)
        for tree_row in rows:
            self._add(tree_row)
        if cursor is not None:
            try:
                row = self.get_row_index(cursor)
            except Exception:  # noqa: BLE001 - not shown (folded away): keep the cursor's row
                pass
        if self.row_count:
            self.move_cursor(row=min(max(row, 0), self.row_count - 1), animate=False)

    def _add(self, row: TreeRow) -> None:
        if row.key.startswith("error:"):
            self.add_row(
                row.number, Text(row.label, style="red"), Text(row.args, style="red"), "", "", key=row.key, height=None
            )
            return
        style = "bold red" if row.error else "dim" if row.key.startswith("inner:") else ""
        params = f"{FROZEN} {row.params}" if row.frozen else row.params
        self.add_row(
            row.number,
            Text(row.label, style=style),
            row.args,
            Text(row.shape, style=style),
            Text(params, justify="right"),
            key=row.key,
        )

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor (see `TreeRow.key`)."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
