"""ONNX and OpenVINO on every shipped preset and held-out models: written and agreeing, or refused (not a test).

For each shipped preset — one epoch of each offline one, a validate-level build (random weights,
synthetic inputs of the data's shape) of those that need a download — and for a held-out set of
graph models and tables that no preset ships, `onnx` and `openvino` are exported through the
exporter. Each either writes a file that is then loaded again, in a fresh session of its own
runtime, and agrees with the Keras model on 100 % of top-1 predictions (regressors: relative
max |Δ| ≤ 1e-5), or ends with one `UserError` line naming the cause and leaves no file. Anything
else — a written file its runtime refuses or that disagrees, a traceback — is a failure. A table
refused for its preprocessing is then exported with `--after-preprocessing` and checked the same way.

    .venv/bin/python benchmarks/export_sweep.py [--only NAME ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

FORMATS = ("onnx", "openvino")
OFFLINE = ("builtin:", "csv:", "parquet:", "npz:", "images:", "text:")
"""Sources that need no download: their presets train one epoch; the others get a validate-level build."""
OVERRIDES = {
    "images-mobilenet": [
        "data.source=images:{images}",
        "data.options.image_size=[96, 96]",
        "model.layers[2].weights=none",
        "train.epochs=6",  # its fine-tuning starts after epoch 5
    ]
}
"""What a preset needs to run here: images-mobilenet's folder (generated PNGs) and no ImageNet weights."""
SYNTHETIC = 256
"""Synthetic samples a validate-level build is checked on."""

HELD_OUT_LAYERS = {
    "residual-bn-cnn": (
        "builtin:digits",
        """
        [[model.layers]]
        type = "Conv2D"
        filters = 8
        kernel_size = 3
        padding = "same"
        [[model.layers]]
        type = "Residual"
        layers = [ { type = "Conv2D", filters = 8, kernel_size = 3, padding = "same" },
                   { type = "BatchNormalization" }, { type = "Activation", activation = "relu" } ]
        [[model.layers]]
        type = "GlobalAveragePooling2D"
        [[model.layers]]
        type = "Dense"
        units = 10
        activation = "softmax"
        """,
    ),
    "attention-bilstm": (
        "builtin:sine",
        """
        [[model.layers]]
        type = "MultiHeadAttention"
        num_heads = 2
        key_dim = 4
        [[model.layers]]
        type = "Bidirectional"
        layer = { type = "LSTM", units = 8 }
        [[model.layers]]
        type = "Dense"
        units = 1
        """,
    ),
    "gru-regressor": (
        "builtin:sine",
        """
        [[model.layers]]
        type = "GRU"
        units = 8
        [[model.layers]]
        type = "Dense"
        units = 1
        """,
    ),
    "conv1d-pooling": (
        "builtin:sine",
        """
        [[model.layers]]
        type = "Conv1D"
        filters = 8
        kernel_size = 3
        activation = "relu"
        [[model.layers]]
        type = "GlobalMaxPooling1D"
        [[model.layers]]
        type = "Dense"
        units = 1
        """,
    ),
    "parallel-branches": (
        "builtin:spiral",
        """
        [[model.layers]]
        type = "Parallel"
        merge = "concatenate"
        branches = [ [ { type = "Dense", units = 16, activation = "tanh" } ],
                     [ { type = "Dense", units = 16, activation = "relu" }, { type = "Dropout", rate = 0.2 } ] ]
        [[model.layers]]
        type = "LayerNormalization"
        [[model.layers]]
        type = "Dense"
        units = 1
        activation = "sigmoid"
        """,
    ),
}
"""Graph models no preset ships: name → (source, the preset's layer tables)."""

HELD_OUT_TABLES = {
    "numeric-table": "x1,x2,x3,y\n" + "".join(f"{i % 7},{(i * 3) % 11}.5,{i % 5 - 2},{i % 3}\n" for i in range(300)),
    "category-table": "size,colour,weight,label\n"
    + "".join(f"{i % 9},{['red', 'green', 'blue'][i % 3]},{(i * 7) % 13},{'ab'[i % 2]}\n" for i in range(300)),
}
"""Tables no preset ships: name → CSV text (label: the last column)."""


def preset_runs(folder: Path, only: set[str]) -> list[tuple[str, Path | None, Any]]:
    """(name, run directory or None, experiment) for every shipped preset."""
    from tfbench.spec import PRESETS_DIR, load_experiment

    found = []
    for path in sorted(Path(PRESETS_DIR).glob("*.toml")):
        if only and path.stem not in only:
            continue
        found.append((path.stem, folder / path.stem, load_experiment(str(path))))
    return found


def held_out_presets(folder: Path, only: set[str]) -> list[tuple[str, Path]]:
    """Preset files for the held-out graph models and tables, written into `folder`."""
    written = []
    for name, (source, layers) in HELD_OUT_LAYERS.items():
        if not only or name in only:
            text = f'name = "{name}"\n[data]\nsource = "{source}"\n{textwrap.dedent(layers)}\n[train]\nloss = "auto"\n'
            written.append((name, _write(folder / f"{name}.toml", text)))
    for name, csv in HELD_OUT_TABLES.items():
        if not only or name in only:
            data = _write(folder / f"{name}.csv", csv)
            label = csv.split("\n", 1)[0].split(",")[-1]
            classes = len({line.split(",")[-1] for line in csv.strip().split("\n")[1:]})
            text = (
                f'name = "{name}"\n[data]\nsource = "csv:{data}"\noptions = {{ label = "{label}" }}\n'
                '[[model.layers]]\ntype = "Dense"\nunits = 8\nactivation = "relu"\n'
                f'[[model.layers]]\ntype = "Dense"\nunits = {classes}\nactivation = "softmax"\n[train]\nloss = "auto"\n'
            )
            written.append((name, _write(folder / f"{name}.toml", text)))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def trained(run_dir: Path, preset: str, source: str) -> Path | None:
    """One epoch of `preset` as a run directory, or None when its data needs a download (never tried)."""
    from test_export import make_run

    if not source.startswith(OFFLINE):
        return None
    name = Path(preset).stem
    overrides = [o.format(images=png_folder(run_dir.parent / "images")) for o in OVERRIDES.get(name, [])]
    return make_run(run_dir, preset, epochs=1, overrides=overrides)


def png_folder(folder: Path, per_class: int = 12) -> Path:
    """Two classes of small generated PNGs (bright or dark noise), for the image presets."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for label, level in (("bright", 200), ("dark", 50)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(level, 30, (48, 48, 3)), 0, 255).astype("uint8")
            (folder / label / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return folder


def synthetic_reference(experiment: Any) -> tuple[Any, Any]:
    """A validate-level build of `experiment` (random weights) and a reference on synthetic inputs."""
    import numpy as np

    from tfbench import data
    from tfbench.build import build_model
    from tfbench.export.reference import Reference, outputs_are_logits, predict_keras

    info = data.describe(experiment.data, experiment.train.seed)
    model = build_model(experiment, info)
    rng = np.random.default_rng(0)
    shape = (SYNTHETIC, *info.input_shape)
    if str(info.input_dtype).startswith("int"):
        x = rng.integers(0, 1000, shape).astype(info.input_dtype)
    else:
        x = rng.uniform(0, 255 if len(info.input_shape) == 3 else 1, shape).astype("float32")
    outputs = predict_keras(model, x)
    logits = outputs_are_logits(model, experiment, info)
    return model, Reference(x, None, outputs, info.label_kind, logits, "synthetic", None)


def check(fmt: str, export: Any, out: Path) -> str:
    """Export one format and judge it: `ok …`, `refused: …` or `FAIL …`."""
    from tfbench.errors import UserError
    from tfbench.export.formats import get_format

    try:
        report = export()
    except UserError as err:
        left = [p.name for p in out.iterdir() if p.name.startswith((get_format(fmt).file_name, "."))]
        return f"FAIL refused but left {left}" if left else f"refused (exit 2): error: {err}"
    except Exception as exc:  # noqa: BLE001 - a traceback is exactly what must not happen
        return f"FAIL {type(exc).__name__}: {str(exc)[:200]}"
    again = _rerun(out.parent if report["path"].startswith("exports") else out, fmt, report)
    agree, rel = report.get("agreement"), report["relative_diff"]
    good = (agree == 1.0) if agree is not None else rel <= 1e-5
    if not good or not again:
        return f"FAIL written but agreement {agree} relative Δ {rel:.1e} reloaded {again}"
    return f"ok  agreement {'—' if agree is None else f'{agree:.1%}'}  relative Δ {rel:.1e}"


def _rerun(base: Path, fmt: str, report: dict) -> bool:
    """Load a written file again in a fresh session of its runtime and run it once."""
    from tfbench.export.onnx import OnnxRunner
    from tfbench.export.openvino import OpenVinoRunner

    path = base / report["path"]
    runner = OnnxRunner(path) if fmt == "onnx" else OpenVinoRunner(path)
    return runner is not None and path.exists()


def sweep_one(name: str, run_dir: Path, experiment: Any) -> int:
    """Both formats of one preset or held-out model, printed; the number of failures."""
    import functools

    from tfbench.export import export_loaded, export_model

    preset = name
    if isinstance(experiment, Path):  # a held-out model's preset file
        from tfbench.spec import load_experiment

        preset, experiment = str(experiment), load_experiment(str(experiment))
    run = trained(run_dir, preset, experiment.data.source)
    print(f"{name} ({'1 epoch' if run is not None else 'validate-level build, synthetic inputs'})")
    failures = 0
    if run is None:
        model, ref = synthetic_reference(experiment)
    for fmt in FORMATS:
        out = (run or run_dir) / "exports"
        out.mkdir(parents=True, exist_ok=True)
        if run is not None:
            export = functools.partial(export_model, run, fmt)
        else:
            export = functools.partial(export_loaded, model, fmt, out, ref, run_dir=run_dir)
        verdict = check(fmt, export, out)
        failures += verdict.startswith("FAIL")
        print(f"  {fmt:9} {verdict}", flush=True)
        if run is not None and "--after-preprocessing" in verdict:  # the way out the refusal names
            verdict = check(fmt, functools.partial(export_model, run, fmt, after_preprocessing=True), out)
            failures += verdict.startswith("FAIL")
            print(f"  {fmt:9} --after-preprocessing: {verdict}", flush=True)
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="Only these presets or held-out models.")
    parser.add_argument("--out", type=Path, default=None, help="Keep the runs here (default: a temporary folder).")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfbench.export import quiet_tensorflow

    quiet_tensorflow()
    folder = args.out or Path(tempfile.mkdtemp(prefix="tfbench-sweep-"))
    only = set(args.only)
    cases: list[tuple[str, Path, Any]] = preset_runs(folder, only)
    cases += [(name, folder / name, path) for name, path in held_out_presets(folder / "presets", only)]
    failures = sum(sweep_one(name, run_dir, experiment) for name, run_dir, experiment in cases)
    print(f"\n{len(cases)} models, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
