"""The layer stack as a table: index, type, key parameters, output shape and parameter count."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

# The arguments worth a glance in the table, per layer family; others show in the form.
KEY_ARGS = (
    "units", "filters", "kernel_size", "pool_size", "strides", "padding", "rate", "activation",
    "scale", "target_shape", "output_dim", "input_dim", "axis", "return_sequences", "size",
)


SHORT_NAMES = {"units": "", "filters": "", "activation": "", "rate": "", "kernel_size": "k",
               "pool_size": "pool", "strides": "s", "padding": "", "scale": "×", "return_sequences": "seq"}


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


class LayerTable(DataTable):
    """The layers of the Experiment, with the Keras summary beside them when it is known."""

    DEFAULT_CSS = """
    LayerTable { height: 1fr; }
    """

    COLUMNS = ("#", "Layer", "Arguments", "Output", "Params")

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)

    WIDTHS = (2, 12, 12, 8, 7)

    def on_mount(self) -> None:
        for label, width in zip(self.COLUMNS, self.WIDTHS):
            self.add_column(label, width=width, key=label)

    def _fit_arguments(self) -> int:
        """Give the Arguments column whatever width the others leave, so errors can be read."""
        others = sum(self.WIDTHS) - self.WIDTHS[2] + 2 * self.cell_padding * len(self.WIDTHS) + 2
        width = max(self.WIDTHS[2], self.size.width - others)
        column = self.columns.get("Arguments")  # type: ignore[call-overload]
        if column is not None and column.width != width:
            column.width = width
        return width

    def on_resize(self) -> None:
        self._fit_arguments()
        self.refresh()

    def show(self, layers: list, summary: Any = None, error_index: int | None = None,
             error: str = "", pending: bool = False) -> None:
        """Fill the table.

        Args:
            layers: the Experiment's layer Components.
            summary: a ModelSummary for these layers, or None while it is computed or failed.
            error_index: the layer an impossible stack fails at.
            error: that failure's message, shown on its row.
            pending: the summary is being computed.
        """
        row = self.cursor_row
        self.clear()
        self._fit_arguments()
        rows = list(getattr(summary, "layers", []) or []) if summary is not None else []
        for i, layer in enumerate(layers):
            shape, params = ("…", "…") if pending else ("", "")
            if i < len(rows):
                shape = format_shape(rows[i].output_shape)
                params = f"{rows[i].params:,}"
            style = ""
            if error_index == i:
                shape, params, style = "error", "", "bold red"
            self.add_row(
                str(i), Text(layer.type, style=style), key_params(layer.args), Text(shape, style=style),
                Text(params, justify="right"), key=str(i),
            )
            if error_index == i and error:
                self.add_row("↳", Text("can't build", style="red"), Text(error, style="red"), "", "",
                             key=f"error-{i}", height=None)
        if self.row_count:
            self.move_cursor(row=min(max(row, 0), self.row_count - 1), animate=False)

    @property
    def layer_index(self) -> int | None:
        """The layer under the cursor (an error row belongs to the layer above it)."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value or ""
        return int(key.split("-")[-1])

    def select_layer(self, index: int) -> None:
        """Move the cursor to layer `index`."""
        try:
            row = self.get_row_index(str(index))
        except Exception:
            return
        self.move_cursor(row=row, animate=False)
