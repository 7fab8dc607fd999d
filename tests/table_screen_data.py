"""A fixed table for the Data screen's tests: penguins.csv as the data functions describe it (no TensorFlow)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tfbench import data
from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.spec import experiment_from_dict

PENGUINS = Path(__file__).parent / "fixtures" / "tables" / "penguins.csv"
# A fixed absolute place, so the pictures show the same path from any checkout.
FIXED = Path(tempfile.gettempdir()) / "tfbench-table-screen" / "penguins.csv"


def experiment(source: str = f"csv:{PENGUINS}"):
    return experiment_from_dict(
        {
            "name": "penguins-snap",
            "data": {"source": source, "options": {"label": "species"}, "batch_size": 32},
            "model": {
                "layers": [
                    {"type": "Dense", "units": 16, "activation": "relu"},
                    {"type": "Dense", "units": 3, "activation": "softmax"},
                ]
            },
        }
    )


def table_app():
    """The workbench on penguins.csv, its description and preview fixed before the app starts."""
    FIXED.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PENGUINS, FIXED)
    exp = experiment(f"csv:{FIXED}")
    info = data.describe(exp.data, exp.train.seed)
    preview = data.preview(exp.data, 6, exp.train.seed)
    app = make_app(
        experiment=exp, runs_dir=Path("runs-not-used"), engine_calls=FixedEngineCalls(info=info, preview_data=preview)
    )
    app.blink = False
    return app


class TableCalls(FixedEngineCalls):
    """Fixed model summaries, but a data source really described and previewed (a table needs no TensorFlow)."""

    def describe(self, spec, seed: int | None = 42, io=None):
        return data.describe(spec, seed, io=io)

    def preview(self, spec, n: int = 6) -> dict:
        return data.preview(spec, n)


def real_table_app(exp):
    """The workbench on `exp`, its data read for real as it changes (no TensorFlow for a table)."""
    app = make_app(experiment=exp, runs_dir=Path("runs-not-used"), engine_calls=TableCalls())
    app.blink = False
    return app
