"""The `tfbench` command: a click group whose bare form opens the workbench.

No TensorFlow at import (a test checks it in a fresh interpreter), so `tfbench --help` answers at
once: every command imports what it needs inside its body. A user's mistake (`UserError`) is one
`error: LOCATION: MESSAGE` line on stderr and exit 2, never a traceback. Exit codes: 0 done, 1 the
run failed, 2 bad input or usage, 130 interrupted (after saving what the run had).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

import click

from tfbench import __version__
from tfbench.errors import UserError
from tfbench.study import MAX_TRIALS

if TYPE_CHECKING:  # pragma: no cover
    from tfbench.engine.runs import RunSummary
    from tfbench.study.study import StudyDir

HELP = """A terminal workbench for training TensorFlow/Keras models.

\b
Run bare to open the workbench on a preset (default: digits-cnn).
A PRESET is a TOML file or the name of a shipped preset.

\b
Examples:
  tfbench                                 open the workbench
  tfbench run digits-cnn                  train headless, progress on the terminal
  tfbench run my.toml --set train.epochs=5 --json
  tfbench run digits-cnn --detach         train in the background; prints the run dir
  tfbench pause runs/digits-cnn-20250101-120000
  tfbench set runs/digits-cnn-20250101-120000 learning_rate=1e-4
  tfbench resume runs/digits-cnn-20250101-120000
  tfbench validate my.toml --json         build the model without training
"""


class TfbenchGroup(click.Group):
    """A group that takes an optional PRESET before (instead of) a command, and turns user
    mistakes into one `error:` line with exit 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            ctx.meta["preset"] = args[0]
            args = args[1:]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as err:
            if ctx.meta.get(JSON_ERRORS):  # a script reading `--json` from stdout gets an answer too
                click.echo(json.dumps(error_object(err)))
            fail(err)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


_EXPERIMENT_PARTS = ("name", "description", "data", "model", "train", "export", "track")
JSON_ERRORS = "json_errors"
"""`ctx.meta` key a command sets with `--json`: its user errors are also an object on stdout."""


def in_preset(err: UserError, source: str | Path | None) -> UserError:
    """A build or data error located inside the preset file, as the loader locates its own."""
    location = err.location or ""
    if source is None or location.split(".")[0].split("[")[0] not in _EXPERIMENT_PARTS:
        return err
    return err.at(str(source))


def error_object(err: UserError) -> dict:
    """A user mistake as `--json` prints it on stdout, so a script reading stdout gets an answer."""
    return {"ok": False, "error": err.message, "location": err.location, "hint": err.hint}


def fail(err: UserError, code: int = 2):
    """Print a user mistake as one line and exit (2 by default)."""
    click.echo(f"error: {err}", err=True)
    sys.exit(code)


CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


def allow_code_option(command: CommandFunction) -> CommandFunction:
    """`--allow-code`: import the preset's own modules (`[code]`), which are refused without it."""
    return click.option(
        "--allow-code",
        is_flag=True,
        help="Import the preset's own Python modules ([code]); without it (or TFBENCH_ALLOW_CODE=1) such a "
        "preset is refused and nothing is imported.",
    )(command)


def allow_changed_code_option(command: CommandFunction) -> CommandFunction:
    """`--allow-changed-code`: go on with a run's copy of its modules although the originals changed."""
    return click.option(
        "--allow-changed-code",
        is_flag=True,
        help="Go on although the preset's modules changed since the run started (the run's own copy in code/ is used).",
    )(command)


@click.group(
    cls=TfbenchGroup, invoke_without_command=True, help=HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="tfbench")
@click.pass_context
def cli(ctx: click.Context) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from tfbench.app import make_app

    run_app(make_app(preset=ctx.meta.get("preset")))


def run_app(app) -> None:
    """Run the workbench with fd 2 sent to the native log: TensorFlow, imported in its workers,
    writes there from C++, and Textual draws on a descriptor of its own."""
    from tfbench.native_log import terminal_kept_from_native_log
    from tfbench.widgets import graphics

    graphics.detect()  # kitty/sixel pictures need the question asked before Textual takes the terminal
    with terminal_kept_from_native_log():
        app.run()


# -- training ------------------------------------------------------------------------------------


def _train(run, as_json: bool, quiet: bool, record_failures: bool, source: str | Path | None = None) -> int:
    """Prepare, start and serve a Run in this process; print its summary; return the exit code."""
    import gc

    from tfbench.engine.control import serve
    from tfbench.headless import Progress
    from tfbench.native_log import import_tensorflow_quietly
    from tfbench.rundir import record_failure

    import_tensorflow_quietly()  # before the run's first TensorFlow import: its C++ lines to the log
    progress = None
    if not quiet:
        progress = Progress(sys.stderr if as_json else sys.stdout)
        run.subscribe(progress)
    try:
        run.prepare()
    except UserError as err:
        err = in_preset(err, source)
        if record_failures and run.run_dir is not None:
            record_failure(run.run_dir, run.experiment, err)
        raise err from None
    gc.freeze()  # the start-up garbage is here to stay: keep full collections short
    run.start()
    code = serve(run, on_signal=lambda text: click.echo(text, err=True))
    try:
        if progress is not None:
            progress.close()
        if as_json:
            click.echo(json.dumps(run_summary(run), default=str))
    except OSError:  # the terminal went away (SIGHUP); the run directory has everything
        pass
    return code


def run_summary(run) -> dict:
    """The `--json` summary of a finished run."""
    from tfbench.engine.events import json_safe

    return json_safe(
        {
            "run_dir": str(run.run_dir),
            "status": run.status,
            "reason": run.reason,
            "epochs": run.completed_epochs,
            "final": run.final_logs(),
            "best": run.best,
            "params": {
                "total": run.summary.get("total_params"),
                "trainable": run.summary.get("trainable_params"),
            },
        }
    )


@cli.command()
@click.argument("preset")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a preset value, e.g. --set train.epochs=5 (repeatable).",
)
@click.option(
    "--runs-dir",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the run directory is created.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary at the end (progress goes to stderr).")
@click.option(
    "--detach", is_flag=True, help="Train in a background runner that outlives this terminal; print its run dir."
)
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    hidden=True,
    help="Use this (new) run directory; how runner processes are started.",
)
@allow_code_option
@click.pass_context
def run(ctx, preset, overrides, runs_dir, as_json, detach, quiet, run_dir, allow_code):
    """Train PRESET headless and leave a run directory.

    \b
    Ctrl+C (or SIGTERM) stops after the current batch and saves; a second Ctrl+C stops at once.
    Exit codes: 0 done, 1 the run failed, 2 bad input, 130 interrupted.

    \b
    Examples:
      tfbench run digits-cnn
      tfbench run spiral-mlp --set train.epochs=5 --set data.batch_size=64 --json
      tfbench run digits-cnn --detach
      tfbench run transformer-text --allow-code    # a preset with its own Python modules
    """
    from tfbench.code_consent import allow
    from tfbench.engine.run import Run
    from tfbench.spec import load_experiment, resolve_preset

    ctx.meta[JSON_ERRORS] = as_json
    experiment = allow(load_experiment(preset, list(overrides)), allow_code, str(resolve_preset(preset)))
    if detach:
        from tfbench.engine.control import read_runner, start_runner

        path = start_runner(experiment, runs_dir, detach=True, extra_args=["--allow-code"] if experiment.code else [])
        if as_json:
            click.echo(json.dumps({"run_dir": str(path), "pid": read_runner(path).get("pid")}))
        else:
            click.echo(str(path))
        return
    the_run = Run(experiment, runs_dir=runs_dir, run_dir=run_dir)
    source = resolve_preset(preset)
    ctx.exit(_train(the_run, as_json, quiet, record_failures=run_dir is not None, source=source))


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--epochs", type=click.IntRange(min=1), help="A new planned total of epochs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary at the end.")
@click.option("--detach", is_flag=True, help="Continue in a background runner; print the run dir.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@allow_code_option
@allow_changed_code_option
@click.pass_context
def resume(ctx, run_dir, epochs, as_json, detach, quiet, allow_code, allow_changed_code):
    """Continue an interrupted, stopped or crashed run to its planned epochs, in its own directory.

    \b
    Example:
      tfbench resume runs/digits-cnn-20250101-120000 --epochs 30
    """
    from tfbench.code_consent import allow_run
    from tfbench.engine.control import launch, read_runner, runner_alive, runner_command
    from tfbench.engine.run import Run
    from tfbench.rundir import EXPERIMENT_FILE, check_unlocked

    ctx.meta[JSON_ERRORS] = as_json
    path = Path(run_dir)
    if not (path / EXPERIMENT_FILE).is_file():
        raise UserError("not a run directory (no experiment.toml)", run_dir)
    if runner_alive(path) and read_runner(path).get("pid") != os.getpid():  # a detached resume is itself
        raise UserError("a runner is still training this run", run_dir, "pause or stop it first")
    check_unlocked(path)  # the runner takes the lock itself; two resumes at once: one is refused
    experiment = allow_run(path, allow_code, allow_changed_code)  # [code]: the run's own copies
    the_run = Run(experiment, run_dir=path, resume=True, epochs=epochs)  # checks there is work left
    if detach:
        flags = (["--allow-code"] if experiment.code else []) + (["--allow-changed-code"] if allow_changed_code else [])
        argv = runner_command(
            "resume", str(path.resolve()), "--quiet", *(["--epochs", str(epochs)] if epochs else []), *flags
        )
        launch(argv, path, detach=True)
        click.echo(str(path))
        return
    ctx.exit(_train(the_run, as_json, quiet, record_failures=False, source=path / EXPERIMENT_FILE))


@cli.command()
@click.argument("preset")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a preset value.")
@click.option("--json", "as_json", is_flag=True, help="Print the model's shapes and sizes as JSON.")
@allow_code_option
def validate(preset, overrides, as_json, allow_code):
    """Check PRESET and build its model without training.

    \b
    Example:
      tfbench validate my.toml --json
    """
    try:
        from tfbench import adaptable, data, models
        from tfbench.code_consent import allow, check_allowed
        from tfbench.io_model import data_names
        from tfbench.native_log import import_tensorflow_quietly
        from tfbench.spec import load_experiment, resolve_preset

        experiment = load_experiment(preset, list(overrides))
        check_allowed(experiment, allow_code, str(resolve_preset(preset)))  # refused before any import
        import_tensorflow_quietly()
        experiment = allow(experiment, allow_code, str(resolve_preset(preset)))
        try:
            info = data.describe(experiment.data, experiment.train.seed, io=data_names(experiment))
            summary = models.summarize(experiment, info).to_dict()
        except UserError as err:
            raise in_preset(err, resolve_preset(preset)) from None
    except UserError as err:
        if as_json:
            click.echo(json.dumps(error_object(err)))
        raise
    layers = [
        {
            "name": row.get("name"),
            "type": row.get("type"),
            "output_shape": row.get("output_shape"),
            "params": row.get("params"),
            "path": row.get("path", ""),
            "depth": row.get("depth", 0),
            "kind": row.get("kind", "layer"),
        }
        for row in summary.get("layers", [])
    ]
    result = {
        "ok": True,
        "name": experiment.name,
        "input_shape": summary.get("input_shape"),
        "output_shape": summary.get("output_shape"),
        "params": {"total": summary.get("total_params"), "trainable": summary.get("trainable_params")},
        "layers": layers,
        "notes": info.extra.get("notes", []) + adaptable.notes(experiment.model.layers),
    }
    if summary.get("inputs") or summary.get("outputs"):  # a model with several named inputs or outputs
        result.update(inputs=summary.get("inputs") or {}, outputs=summary.get("outputs") or {})
    if as_json:
        click.echo(json.dumps(result))
        return
    _print_validated(result, info.source)


def _print_validated(result: dict, source: str) -> None:
    """`tfbench validate`'s plain table: the model's inputs, each entry's shape and parameters, the totals."""
    layers = result["layers"]
    inputs = ", ".join(f"{name} {tuple(shape)}" for name, shape in (result.get("inputs") or {}).items())
    inputs = f"inputs {inputs}" if inputs else f"input {tuple(result['input_shape'] or ())}"
    click.echo(f"{result['name']}: ok — {inputs}, data {source}")
    for note in result["notes"]:
        click.echo(f"  note: {note}")
    shown = [r for r in layers if r["path"] or not r["depth"]]  # a backbone's own layers stay folded
    width = max([len(r["type"] or "") + _named_width(r) + 2 * r["depth"] for r in shown] + [5])
    for i, row in enumerate(shown):
        shape = tuple(row["output_shape"]) if row["output_shape"] is not None else "?"
        named = f" {row['name']}" if row["kind"] in ("input", "output") else ""  # several inputs, outputs
        label = "  " * row["depth"] + (row["type"] or "") + named
        click.echo(f"  {i:>2}  {label:<{width}}  {str(shape):<18} {row['params']:>10,}")
    click.echo(f"  params: {result['params']['total']:,} total, {result['params']['trainable']:,} trainable")


def _named_width(row: dict) -> int:
    """The room an input's or output's name takes beside its type in `validate`'s table."""
    return len(row["name"] or "") + 1 if row["kind"] in ("input", "output") else 0


@cli.command()
@click.argument("query", required=False)
@click.option("--preset", metavar="PRESET", help="Also list the classes of this preset's own modules ([code]).")
@allow_code_option
def layers(query, preset, allow_code):
    """List the Keras layers a model can stack (optionally those matching QUERY).

    \b
    With --preset, the layers, losses, metrics, callbacks and model classes of the preset's own
    modules follow under each module's file name, with their arguments:
      tfbench layers --preset transformer-text --allow-code
    """
    from tfbench import catalog

    own = _own_classes(preset, allow_code) if preset else []
    found = catalog.search("layers", query) if query else catalog.entries("layers")
    found = [e for e in found if not e.module]
    if not found and not own:
        raise UserError("no layer matches", query)
    by_category: dict[str, list] = {}
    for entry in found:
        by_category.setdefault(entry.category or "other", []).append(entry)
    width = max(len(e.name) for e in found)
    for category, entries in by_category.items():
        click.echo(f"{category}:")
        for entry in entries:
            click.echo(f"  {entry.name:<{width}}  {entry.help}")
    for line in _own_class_lines(own, query):
        click.echo(line)


def _own_classes(preset: str, allow_code: bool) -> list:
    """The classes of a preset's own modules, imported when allowed (refused otherwise)."""
    from tfbench import user_code
    from tfbench.code_consent import allow, check_allowed
    from tfbench.native_log import import_tensorflow_quietly
    from tfbench.spec import load_experiment, resolve_preset

    experiment, where = load_experiment(preset), str(resolve_preset(preset))
    if experiment.code is None:
        raise UserError("this preset has no [code] modules", where)
    check_allowed(experiment, allow_code, where)  # refused before anything is imported
    import_tensorflow_quietly()
    allow(experiment, allow_code, where)
    return user_code.classes([Path(m).stem for m in experiment.code.modules])


def _own_class_lines(classes: list, query: str | None) -> list[str]:
    """`transformer.py (your code):` then a line per class: name, kind, help, arguments."""
    from tfbench import catalog

    words = {"models": "model", "layers": "layer", "losses": "loss", "metrics": "metric", "callbacks": "callback"}
    lines: list[str] = []
    width = max((len(c.name) for c in classes), default=0)
    for file_name in dict.fromkeys(c.file_name for c in classes):
        rows = []
        for found in (c for c in classes if c.file_name == file_name):
            entry = catalog.get(found.kind, found.name) if found.kind != "models" else None
            text = entry.help if entry else (found.cls.__doc__ or "").strip().split("\n")[0]
            if query and query.lower() not in f"{found.name} {text}".lower():
                continue
            args = ", ".join(
                p.name + ("" if p.required else f"={p.default!r}")
                for p in (entry.params.values() if entry else [])
                if p.name not in ("name", "trainable", "dtype")  # every layer's own
            )
            rows.append(f"  {found.name:<{width}}  {words[found.kind]:<8}  {text}" + (f"  ({args})" if args else ""))
        if rows:
            lines += [f"{file_name} (the preset's own code):", *rows]
    return lines


@cli.command()
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the matching datasets as JSON.")
def datasets(query, as_json):
    """List builtin, Keras and TFDS datasets with their shapes (those matching every QUERY word).

    \b
    Examples:
      tfbench datasets mnist
      tfbench datasets image classification --json
    """
    import shutil

    from tfbench.data import catalog_listing
    from tfbench.data.listing import format_table

    text = " ".join(query)
    rows = catalog_listing(text)
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        raise UserError("no dataset matches", text, "try a shorter word, or `tfbench datasets` for all")
    for line in format_table(rows, shutil.get_terminal_size((100, 24)).columns):
        click.echo(line)


# -- controlling a runner ------------------------------------------------------------------------


def _send(run_dir: str, command: str, timeout: float, **args) -> dict:
    from tfbench.engine.control import send

    return send(Path(run_dir), command, timeout=timeout, **args)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the runner.")
def pause(run_dir, timeout):
    """Pause a running run between two batches."""
    ack = _send(run_dir, "pause", timeout)
    event = ack.get("event") or {}
    click.echo(ack.get("note") or f"paused at epoch {event.get('epoch')}, batch {event.get('step')}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the runner.")
def unpause(run_dir, timeout):
    """Let a paused run go on."""
    ack = _send(run_dir, "unpause", timeout)
    click.echo(ack.get("note") or "resumed")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the run to end.")
def stop(run_dir, timeout):
    """Stop a run after its current batch, saving a checkpoint (continue it with `tfbench resume`)."""
    ack = _send(run_dir, "stop", timeout)
    event = ack.get("event") or {}
    click.echo(ack.get("note") or f"run {event.get('status')} after {event.get('epochs_completed')} epochs")


@cli.command(name="set")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("settings", nargs=-1, required=True, metavar="NAME=VALUE...")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the runner.")
def set_(run_dir, settings, timeout):
    """Change a running run's learning_rate or planned epochs.

    \b
    Examples:
      tfbench set runs/digits-cnn-20250101-120000 learning_rate=1e-4
      tfbench set runs/digits-cnn-20250101-120000 epochs=40
    """
    from tfbench.spec import parse_override_value

    for item in settings:
        if "=" not in item:
            raise UserError("expected NAME=VALUE, e.g. learning_rate=1e-4", item)
        name, text = item.split("=", 1)
        value = parse_override_value(text.strip())
        check_setting(Path(run_dir), name.strip(), value)
        ack = _send(run_dir, "set", timeout, **{name.strip(): value})
        event = ack.get("event") or {}
        click.echo(f"{event.get('name', name)}: {event.get('old')} → {event.get('new')}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--steps", default=10, show_default=True, type=click.IntRange(1, 1000), help="Training steps to capture.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the capture and its verdict.")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
@click.pass_context
def profile(ctx, run_dir, steps, timeout, as_json):
    """Profile a running run's next steps and say what limits them (input, compute or host).

    \b
    The runner captures the steps with TensorFlow's profiler between two batches, reads the trace
    itself (no TensorBoard needed), and records the result in its log and its profile/ folder:
    the step split, the top ops, the tf.data stages and one verdict with the fix. On a run that
    has ended it prints the last profile the run recorded (train.profile captures one by itself).
      tfbench profile runs/digits-cnn-20250101-120000
      tfbench profile runs/digits-cnn-20250101-120000 --steps 20 --json
    """
    from tfbench.engine.control import runner_alive
    from tfbench.engine.profile_summary import describe

    ctx.meta[JSON_ERRORS] = as_json
    path = Path(run_dir)
    if runner_alive(path):
        ack = _send(run_dir, "profile", timeout, steps=steps)
        if ack.get("note"):
            raise UserError(ack["note"], run_dir, "wait for its verdict (`tfbench watch`), then ask again")
        event = ack.get("event") or {}
    else:
        event = last_profile(path)
    fields = {k: v for k, v in event.items() if k not in ("event", "v", "command_id")}
    if as_json:
        click.echo(json.dumps(fields, indent=2))
    else:
        click.echo("\n".join(describe(fields)))
    if fields.get("error"):
        sys.exit(1)


def last_profile(run_dir: Path) -> dict:
    """The last `profile` event of a run that is not running.

    Raises:
        UserError: not a run, or it recorded no profile.
    """
    from tfbench.engine import events as ev

    if not (run_dir / ev.EVENTS_FILE).exists():
        raise UserError("not a run directory (no events.jsonl)", str(run_dir), "list the runs with `tfbench runs`")
    found = [e for e in ev.read_events(run_dir) if e.get("event") == ev.PROFILE]
    if not found:
        raise UserError(
            "the run is not running and recorded no profile",
            str(run_dir),
            "profile a running run, or set train.profile = { epoch = 2, steps = 10 } in its preset",
        )
    return found[-1]


def check_setting(run_dir: Path, name: str, value) -> None:
    """A live change checked like the preset value it replaces, before any runner is asked.

    Raises:
        UserError: `learning_rate: must be > 0 (got -0.1)` — the range Keras documents for the
            run's optimizer's `learning_rate` (see `tfbench.catalog`).
    """
    if name != "learning_rate":
        return
    from tfbench import catalog
    from tfbench.rundir import load_run_experiment

    try:
        optimizer = load_run_experiment(run_dir).train.optimizer.type
    except UserError:
        return  # not a readable run: the runner (or its absence) answers
    entry = catalog.get("optimizers", optimizer)
    param = entry.params.get("learning_rate") if entry else None
    if param is not None:
        catalog.check_value(param, value, name)


def stdout_is_a_terminal() -> bool:
    """Whether stdout is a terminal (not a pipe, a file, or closed)."""
    return sys.stdout is not None and not getattr(sys.stdout, "closed", False) and sys.stdout.isatty()


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--no-bell", is_flag=True, help="No terminal bell when the run ends or diverges.")
def watch(run_dir, no_bell):
    """Live view of a running or finished run (its events.jsonl), or of a TensorBoard log (tb:LOGDIR).

    \b
    Pause, stop and edits reach a run that is still going; quitting leaves it running.
    Without a terminal (a pipe, a file) it prints one plain line per epoch and exits when the run
    ends (status 0; 1 when it failed or its runner went without ending it).
      tfbench watch runs/digits-cnn-20250101-120000
      tfbench watch tb:logs/fit        a TensorBoard log's scalars (needs tfbench[tensorboard])
    """
    from tfbench.engine.status import KEPT_MODEL
    from tfbench.rundir import EVENTS_FILE, EXPERIMENT_FILE

    if run_dir.startswith("tb:"):
        return watch_tensorboard(Path(run_dir[3:]), no_bell)
    path = Path(run_dir)
    if (path / "study.toml").exists():
        return watch_study(path)
    if not (path / EVENTS_FILE).exists():
        raise UserError("not a run directory (no events.jsonl)", str(path), "list the runs with `tfbench runs`")
    if not stdout_is_a_terminal():  # a pipe or a file: plain lines, then exit
        from tfbench.headless import follow_plainly, output_stream

        status = follow_plainly(path, output_stream())
        sys.exit(0 if status in KEPT_MODEL else 1)
    from tfbench.app import make_app
    from tfbench.spec import load_experiment

    try:
        experiment = load_experiment(path / EXPERIMENT_FILE)
    except UserError:
        experiment = None  # an older or hand-made run: the workbench opens on the default preset
    app = make_app(experiment=experiment, runs_dir=path.parent, watch=path)
    if no_bell:
        app.bell_enabled = False  # the train screen reads it
    run_app(app)


class RunsGroup(click.Group):
    """`tfbench runs [RUNS_DIR]` lists runs; `tfbench runs export RUN…` mirrors them. A RUNS_DIR
    that is not a subcommand's name is taken as the folder to list."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for i, arg in enumerate(args):
            if not arg.startswith("-"):
                if arg not in self.commands:
                    ctx.meta["runs_dir"] = arg
                    args = args[:i] + args[i + 1 :]
                break
        return super().parse_args(ctx, args)


def watch_tensorboard(logdir: Path, no_bell: bool) -> None:
    """`tfbench watch tb:LOGDIR`: a TensorBoard log's scalars in the live view (plain lines when piped).

    Raises:
        UserError: no TensorBoard log there, or the tensorboard package to read it is missing.
    """
    from tfbench.tracking.tensorboard_files import INSTALL_HINT
    from tfbench.tracking.tensorboard_tail import is_tensorboard_log
    from tfbench.tracking.tracker import installed

    if not is_tensorboard_log(logdir):
        raise UserError(
            "no TensorBoard event files here", f"tb:{logdir}", "name the folder `tensorboard --logdir` reads"
        )
    if not installed("tensorboard"):
        raise UserError("reading TensorBoard logs needs the tensorboard package", f"tb:{logdir}", INSTALL_HINT)
    if not stdout_is_a_terminal():
        from tfbench.headless import epoch_line
        from tfbench.tracking.tensorboard_files import read_scalars, scalars_as_history

        rows = scalars_as_history(read_scalars(logdir))
        for row in rows:
            logs = {k: v for k, v in row.items() if k not in ("epoch", "lr")}
            click.echo(epoch_line({"epoch": row["epoch"], "logs": logs}, len(rows)))
        return
    from tfbench.app import make_app

    app = make_app(runs_dir=logdir.parent, watch=logdir)
    if no_bell:
        app.bell_enabled = False
    run_app(app)


@cli.group(
    cls=RunsGroup,
    invoke_without_command=True,
    subcommand_metavar="[RUNS_DIR] | export RUN... | tag RUN TAG... | note RUN",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.option(
    "--filter",
    "query",
    metavar="QUERY",
    help="Only the runs that meet QUERY: status:completed val_accuracy>0.95 tag:baseline (see above).",
)
@click.pass_context
def runs(ctx, as_json, query):
    """The runs in a runs directory (default: runs): status, epochs, best metric, parameters, duration.

    \b
    Run names print whole: a narrow terminal leaves out columns instead (--json has them all);
    piped output is never cut. --filter takes the Runs screen's `/` query: terms ANDed, each
    FIELD:VALUE (equal, or contains for text), FIELD=VALUE, or FIELD>, >=, <, <= a number, where
    FIELD is status, name, preset, tag, note, epochs, params, time, best, a final metric or any
    Experiment path; a bare word is looked for in names, tags and notes.
    `tfbench runs tag RUN TAG...` and `tfbench runs note RUN TEXT` label runs;
    `tfbench runs export RUN... --mlflow URI | --tensorboard DIR` mirrors finished runs.
      tfbench runs
      tfbench runs runs/ --json
      tfbench runs --filter "status:completed val_accuracy>0.95 tag:baseline"
      tfbench runs studies/digits-mlp-20250101-120000
    """
    if ctx.invoked_subcommand is not None:
        return
    from tfbench.engine.runs import runs_table
    from tfbench.engine.runs_index import indexed_runs

    runs_dir = ctx.meta.get("runs_dir", "runs")

    if (Path(runs_dir) / "study.toml").exists():
        return list_study(Path(runs_dir), as_json)
    found = indexed_runs(runs_dir)
    if query:
        from tfbench.engine.runs_query import filter_runs

        found = filter_runs(found, query)
    if as_json:
        click.echo(json.dumps(runs_as_json(found), indent=2))
        return
    if not found:
        click.echo(f"no runs in {runs_dir}" + (f" meet the filter {query!r}" if query else ""))
        return
    from tfbench.console import output_console

    console = output_console(highlight=True)
    console.print(runs_table(found, title=str(runs_dir), width=console.width))
    for r in found:
        if r.reason and r.status in ("failed", "damaged"):
            console.print(f"{r.name}: {r.reason}", highlight=False)


@runs.command(name="export")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False), metavar="RUN...")
@click.option(
    "--mlflow",
    "mlflow_uri",
    metavar="URI",
    help="An MLflow tracking URI: sqlite:///mlflow.db, a folder, http://HOST:5000.",
)
@click.option("--experiment", "mlflow_experiment", metavar="NAME", help="The MLflow experiment (default: each run's).")
@click.option(
    "--tensorboard",
    "tensorboard_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="A TensorBoard log folder.",
)
def export_runs(run_dirs, mlflow_uri, mlflow_experiment, tensorboard_dir):
    """Mirror finished runs to MLflow or to TensorBoard's files, as `[track]` does while training.

    \b
    MLflow gets each run's parameters, per-epoch metrics, exports, report.json, history.csv and
    experiment.toml, as one MLflow run (a run MLflow holds already is left as it is). TensorBoard
    gets DIR/RUN_NAME/train and /validation with the epoch scalars, and the profiler traces.
    A RUN may also be a folder of runs.
      tfbench runs export runs/digits-cnn-20250101-120000 --mlflow sqlite:///mlflow.db
      tfbench runs export runs --tensorboard tb-logs && tensorboard --logdir tb-logs
    """
    from tfbench.tracking.tracker import MlflowMirror, TensorBoardMirror, mirror_finished

    uri = checked_tracking_options(mlflow_uri, tensorboard_dir)
    for run_dir in runs_named(run_dirs):
        mirrors = []
        if tensorboard_dir:
            mirrors.append(TensorBoardMirror(run_dir, Path(tensorboard_dir) / run_dir.name))
        if uri:
            mirrors.append(MlflowMirror(run_dir, uri, mlflow_experiment or experiment_name(run_dir), only_new=True))
        for line in mirror_finished(run_dir, mirrors):
            click.echo(f"{run_dir.name}: {line}")


def checked_tracking_options(mlflow_uri: str | None, tensorboard_dir: str | None) -> str | None:
    """`runs export`'s destinations checked: one at least, its package installed; the URI absolute.

    Raises:
        UserError: naming the option.
    """
    from tfbench.tracking.mlflow_runs import INSTALL_HINT as MLFLOW_HINT
    from tfbench.tracking.tensorboard_files import INSTALL_HINT as TENSORBOARD_HINT
    from tfbench.tracking.tracker import installed
    from tfbench.tracking.uris import check_tracking_uri, uri_absolute

    if not mlflow_uri and not tensorboard_dir:
        raise UserError("say where to: --mlflow URI, --tensorboard DIR, or both", "runs export")
    if tensorboard_dir and not installed("tensorboard"):
        raise UserError("TensorBoard files are written with the tensorboard package", "--tensorboard", TENSORBOARD_HINT)
    if not mlflow_uri:
        return None
    if not installed("mlflow"):
        raise UserError("mirroring to MLflow needs the mlflow package", "--mlflow", MLFLOW_HINT)
    try:
        return uri_absolute(check_tracking_uri(mlflow_uri), Path.cwd())
    except ValueError as exc:
        raise UserError(str(exc), "--mlflow") from None


def runs_named(paths: tuple[str, ...]) -> list[Path]:
    """Run directories from the arguments: a run itself, or every run in a folder of runs.

    Raises:
        UserError: a path that is neither.
    """
    from tfbench.rundir import EVENTS_FILE

    found = []
    for text in paths:
        path = Path(text)
        if (path / EVENTS_FILE).exists():
            found.append(path)
            continue
        inside = sorted(p.parent for p in path.glob(f"*/{EVENTS_FILE}")) if path.is_dir() else []
        if not inside:
            raise UserError("neither a run directory nor a folder of runs", text, "list the runs with `tfbench runs`")
        found += inside
    return found


def experiment_name(run_dir: Path) -> str:
    """The name of the Experiment a run ran (its folder's name when experiment.toml is unreadable)."""
    from tfbench.rundir import load_run_experiment

    try:
        return load_run_experiment(run_dir).name
    except UserError:
        return run_dir.name


# -- export, code and predict ----------------------------------------------------------------------


class ExportChoice(click.ParamType):
    """A name from an export registry (`tfbench.export.formats`), which `--help` lists when asked.

    The exporter checks the name (with close matches), so a mistake reads like every other one.
    """

    name = "choice"

    def __init__(self, registry: str) -> None:
        self.registry = registry  # FORMATS | QUANTIZATIONS, read when help or completion asks

    def entries(self) -> dict:
        from tfbench.export import formats

        return getattr(formats, self.registry)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "|".join(self.entries())

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(name) for name in self.entries() if name.startswith(incomplete)]


class ExportCommand(click.Command):
    """`tfbench export`, whose help ends with the registry's formats and quantisations, described."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from tfbench.export.formats import FORMATS, QUANTIZATIONS

        with formatter.section("Formats"):
            formatter.write_dl([(f.name, f"{f.description} ({f.file_name})") for f in FORMATS.values()])
        with formatter.section("Quantisations"):
            formatter.write_dl([(q.name, q.description) for q in QUANTIZATIONS.values()])
        super().format_epilog(ctx, formatter)


@cli.command(name="export", cls=ExportCommand)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=ExportChoice("FORMATS"),
    help="Export format (repeatable).",
)
@click.option(
    "--quantize",
    default="none",
    show_default=True,
    type=ExportChoice("QUANTIZATIONS"),
    help="Quantisation, for the formats that take it (see below).",
)
@click.option("--all", "every", is_flag=True, help="Every format × quantisation that fits, in one matrix.")
@click.option(
    "--after-preprocessing",
    is_flag=True,
    help="A table's model without its FeatureSpace, taking the encoded features (no string lookups).",
)
@click.option("--int8-io", is_flag=True, help="With TFLite int8: make the input and output int8 too.")
@click.option("--select-tf-ops", is_flag=True, help="Let TFLite fall back to TensorFlow kernels for ops it lacks.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Where exports go (default: RUN_DIR/exports).")
@click.option("--json", "as_json", is_flag=True, help="Print the verification reports as JSON.")
@allow_code_option
@allow_changed_code_option
def export_command(
    run_dir,
    formats,
    quantize,
    every,
    after_preprocessing,
    int8_io,
    select_tf_ops,
    out_dir,
    as_json,
    allow_code,
    allow_changed_code,
):
    """Export a finished run's model, then verify it against the Keras model.

    \b
    Each export is loaded by its own runtime (Keras, TensorFlow, LiteRT, ONNX Runtime, OpenVINO)
    and checked on at least 256 samples: max |Δ| relative to the outputs' scale, top-1 agreement
    and accuracy (or MAE), size against the float .keras, latency (the median of at least 50
    single-thread runs and its spread). A file its runtime refuses is not kept. The reports are
    merged into OUT/report.json.

    \b
    Examples:
      tfbench export runs/digits-cnn-20250101-120000 --format tflite --quantize int8
      tfbench export runs/digits-cnn-20250101-120000 --format onnx --format openvino
      tfbench export runs/digits-mlp-20250101-120000 --format keras --quantize int4
      tfbench export runs/penguins-20250101-120000 --format onnx --after-preprocessing
      tfbench export runs/digits-cnn-20250101-120000 --all
    """
    from tfbench.code_consent import allow_run, run_has_code

    if run_has_code(Path(run_dir)):  # [code]: the run's own copies, when allowed
        allow_run(Path(run_dir), allow_code, allow_changed_code)
    if every:
        _export_matrix(Path(run_dir), formats, quantize, after_preprocessing, out_dir, as_json)
        return
    if not formats:
        raise UserError("name a format, or --all for every one", "--format")
    from tfbench.export import export_run

    failures: list[UserError] = []
    reports = export_run(
        Path(run_dir),
        list(formats),
        quantize,
        int8_io,
        Path(out_dir) if out_dir else None,
        select_tf_ops,
        on_error=lambda fmt, err: failures.append(err),
        after_preprocessing=after_preprocessing,
    )
    _print_export_reports(reports, as_json)
    if failures:  # the formats that did export are kept; the first failure sets the exit code
        for err in failures[1:]:
            click.echo(f"error: {err}", err=True)
        raise failures[0]


def _print_export_reports(reports: list[dict], as_json: bool) -> None:
    """The verification reports as JSON, or as a table and the paths written."""
    if as_json:
        click.echo(json.dumps(reports, indent=2, default=str))
    elif reports:
        from tfbench.console import output_console
        from tfbench.export.report import report_table

        console = output_console()
        console.print(report_table(reports))
        for report in reports:
            console.print(f"wrote {report['path']}")


def _export_matrix(
    run_dir: Path,
    formats: tuple[str, ...],
    quantize: str,
    after_preprocessing: bool,
    out_dir: str | None,
    as_json: bool,
) -> None:
    """`export --all`: every format × quantisation, one matrix printed (or its rows as JSON)."""
    if formats or quantize != "none":
        raise UserError("--all exports every format and quantisation", "--all", "leave out --format and --quantize")
    from tfbench.console import output_console
    from tfbench.export.matrix import export_all
    from tfbench.export.report import matrix_table

    console = output_console(sys.stderr)
    with console.status("exporting…") as status:
        rows = export_all(
            run_dir,
            Path(out_dir) if out_dir else None,
            after_preprocessing,
            lambda key: status.update(f"exporting {key}…"),
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    output_console().print(matrix_table(rows))
    if not any(row["ok"] for row in rows):
        raise UserError("no format exported", "--all", "see the reasons above")


@cli.command()
@click.argument("preset")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a preset value.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the script to this file instead.")
@click.option("--loop", is_flag=True, help="Train with an explicit tf.GradientTape loop instead of model.fit.")
@allow_code_option
def code(preset, overrides, output, loop, allow_code):
    """Print PRESET as a standalone plain-Keras script (data, model, compile, fit, save).

    \b
    Examples:
      tfbench code digits-cnn > train.py && python train.py --epochs 5
      tfbench code my.toml --output train.py
      tfbench code digits-mlp --loop > loop.py   # the same training as a tf.GradientTape loop
    """
    from tfbench.code_consent import allow
    from tfbench.codegen import generate_script
    from tfbench.spec import load_experiment, resolve_preset

    experiment = allow(load_experiment(preset, list(overrides)), allow_code, str(resolve_preset(preset)))
    try:
        script = generate_script(experiment, loop=loop)
    except UserError as err:
        raise in_preset(err, resolve_preset(preset)) from None
    if output is None:
        click.echo(script, nl=False)
        return
    from tfbench.atomic import write_text

    try:
        write_text(output, script)
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror or exc}", output) from None
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--split",
    default="validation",
    show_default=True,
    metavar="validation|test|train",
    help="The split of the run's data to score.",
)
@click.option(
    "-k",
    "--top",
    "k",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many confident mistakes (or worst residuals) to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@click.option(
    "--input",
    "input_path",
    type=click.Path(),
    default=None,
    help="New raw data to score: a CSV/Parquet file with the training columns, image or text files or a folder.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --input: write one row per input here (.csv, or JSON lines for .jsonl).",
)
@click.option(
    "--with",
    "with_export",
    metavar="EXPORT",
    default=None,
    help="With --input: score with this verified export in its own runtime (onnx, tflite-int8, …).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Where the model looks on one image (--input FILE, or sample --index of --split): top classes, "
    "a Grad-CAM heat map and per-layer activations. With --output FILE.png, save the heat map over the image.",
)
@click.option("--index", default=0, show_default=True, type=click.IntRange(min=0), help="With --explain: the sample.")
@click.option("--class", "class_name", default=None, help="With --explain: the class to explain (default: predicted).")
@allow_code_option
def predict(run_dir, split, k, as_json, input_path, output, with_export, explain, index, class_name, allow_code):
    """Score a finished run's model: accuracy, confusion matrix and its most confident mistakes
    (classifiers), or MAE, RMSE and the worst residuals (regressors). With --input, score new
    data instead: one prediction per row or file, and the accuracy (or MAE) where labels are given.

    \b
    Example:
      tfbench predict runs/digits-cnn-20250101-120000 --split validation -k 10
      tfbench predict runs/penguins-20250101-120000 --input new.csv --output predictions.csv
      tfbench predict runs/penguins-20250101-120000 --input new.csv --with onnx
      tfbench predict runs/shapes-cnn-20250101-120000 --input circle.png --explain
    """
    from tfbench.code_consent import allow_run, run_has_code

    if run_has_code(Path(run_dir)):  # [code]: the run's own copies, when allowed
        allow_run(Path(run_dir), allow_code, check_sources=False)
    if explain or index or class_name is not None:
        _predict_explain(Path(run_dir), input_path, split, index, class_name, as_json, output, explain, with_export)
        return
    if input_path is not None:
        _predict_inputs(Path(run_dir), Path(input_path), output, as_json, with_export)
        return
    if with_export is not None:
        raise UserError("--with needs --input (the new data to score)", "--with")
    if output is not None:
        raise UserError("--output needs --input (the new data to score)", "--output")
    from tfbench.evaluation import evaluate_run, renderables

    result = evaluate_run(Path(run_dir), split=split, k=k)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from tfbench.console import output_console

    console = output_console()
    for part in renderables(result):
        console.print(part)


def _predict_explain(
    run_dir: Path,
    input_path: str | None,
    split: str,
    index: int,
    class_name: str | None,
    as_json: bool,
    output: str | None,
    explain: bool,
    with_export: str | None,
) -> None:
    """`predict --explain`: one image's top classes, Grad-CAM and activations, printed or as JSON."""
    if not explain:
        raise UserError("this picks the image to explain: add --explain", "--index" if index else "--class")
    if with_export is not None:
        raise UserError("--explain looks inside the Keras model; leave out --with", "--with")
    from tfbench.explain import explain_run, save_overlay

    explanation = explain_run(run_dir, input_path, split=split, index=index, class_name=class_name)
    if output is not None:
        save_overlay(explanation, Path(output))
    if as_json:
        click.echo(json.dumps(explanation.to_dict()))
        return
    from tfbench.console import output_console
    from tfbench.explain_view import explanation_renderable
    from tfbench.pictures import palette_for

    console = output_console()
    palette = palette_for(console.color_system, console.no_color)
    console.print(explanation_renderable(explanation, min(console.width, 120), palette))
    if output is not None:
        click.echo(f"wrote {output}")


def _predict_inputs(
    run_dir: Path, input_path: Path, output: str | None, as_json: bool, with_export: str | None = None
) -> None:
    """`predict --input`: score new data, write or print one row per input, then the metric."""
    from tfbench.prediction import score_inputs
    from tfbench.prediction_writers import json_chunks, summary_line, text_lines, write_batches

    # rows are read, scored and written a batch at a time
    scoring = score_inputs(run_dir, input_path, with_export)
    if as_json:
        for piece in json_chunks(scoring):
            click.echo(piece, nl=False)
        click.echo()
        return
    if output is not None:
        write_batches(scoring.batches, Path(output))
        click.echo(f"wrote {output}")
    else:
        for line in text_lines(scoring.batches):
            click.echo(line)
    click.echo(summary_line(scoring.result()))


# -- hyperparameter studies ------------------------------------------------------------------------

TUNE_HELP = """Search PRESET's [tune] space: every trial is an ordinary run in the study directory.

\b
The preset's [tune] section says what to search (keys are --set paths):
  [tune]
  objective = "val_accuracy"     # any logged metric; direction from its name, or direction = "max"
  trials = 20
  sampler = "tpe"                # tpe | random | grid
  pruner = "median"              # none | median | hyperband (per-epoch reports)
  [tune.space]
  "train.optimizer.learning_rate" = { float = [1e-4, 1e-2], log = true }
  "model.layers[2].units"         = { int = [16, 128], step = 16 }
  "train.optimizer.type"          = { choice = ["Adam", "RMSprop"] }

\b
The study directory (default studies/<name>-<time>/) holds study.toml, the study's journal,
one run directory per trial and best.toml, the best trial's preset: `tfbench run best.toml`.
Warm worker processes run several trials each. Ctrl+C stops starting trials and lets the
running ones save; `--resume DIR` continues a stopped or killed study to its planned count.
Several processes (or machines) share one study with --storage and --study: each runs its
share, none runs a trial twice; joining checks the stored study's objective, direction and
space. A full disk stops the study (free space, then --resume). Exit codes: 0 done, 1 no trial
finished or the disk filled, 2 bad input, 130 interrupted.

\b
Examples:
  tfbench tune digits-mlp --trials 20 --parallel 2
  tfbench tune my.toml --gpus 0,1 --parallel 2
  tfbench tune --resume studies/digits-mlp-20250101-120000
  tfbench tune my.toml --storage shared/study.journal --study lr-search   # on each machine
  tfbench tune my.toml --storage postgresql://user@db/optuna --study lr-search --json
"""


@cli.command(help=TUNE_HELP)
@click.argument("preset", required=False)
@click.option("--trials", type=click.IntRange(min=1, max=MAX_TRIALS), help="Planned trials (default: [tune] trials).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a preset value for every trial, e.g. --set train.epochs=5.",
)
@click.option(
    "--parallel", default=1, show_default=True, type=click.IntRange(min=1), help="Trials at once (worker processes)."
)
@click.option("--gpus", metavar="0,1,...", help="GPU ids; each worker gets one as CUDA_VISIBLE_DEVICES.")
@click.option(
    "--study-dir", type=click.Path(file_okay=False), help="The study directory (default: studies/<name>-<time>)."
)
@click.option(
    "--storage", metavar="URL|FILE", help="An Optuna storage URL or a journal file shared by several processes."
)
@click.option(
    "--study", "study_name", metavar="NAME", help="The study's name in the storage (default: the directory's name)."
)
@click.option(
    "--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue (or join) the study in this directory."
)
@click.option(
    "--trials-per-worker",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Trials before a worker is replaced.",
)
@click.option(
    "--worker-memory",
    default=4096,
    show_default=True,
    type=click.IntRange(min=64),
    help="MiB of resident memory after which a worker is replaced.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the study as JSON at the end (trial lines go to stderr).")
@allow_code_option
@click.pass_context
def tune(
    ctx,
    allow_code,
    preset,
    trials,
    overrides,
    parallel,
    gpus,
    study_dir,
    storage,
    study_name,
    resume_dir,
    trials_per_worker,
    worker_memory,
    as_json,
):
    from tfbench.code_consent import allow, allow_workers
    from tfbench.study.workers import gpu_ids

    gpu_list = gpu_ids(gpus)
    out = sys.stderr if as_json else sys.stdout
    if preset is not None:  # [code]: refused, or imported, before the study and its space are made
        from tfbench.spec import load_experiment, resolve_preset

        allow(load_experiment(preset, list(overrides)), allow_code, str(resolve_preset(preset)))
    study = None
    try:
        study = _open_study(preset, trials, overrides, study_dir, storage, study_name, resume_dir)
        allow_workers(study.experiment, allow_code, str(study.path))  # and in the trial workers
        click.echo(
            f"study {study.name} in {study.path}: {study.settings.trials} trials of {study.experiment.name}, "
            f"{study.settings.objective} ({study.settings.direction})",
            file=out,
        )
        for note in study.settings.notes:
            click.echo(f"note: {note}", file=out)
        result = _drive_study(study, parallel, gpu_list, trials_per_worker, worker_memory, out)
    except BrokenPipeError:  # the output went (`| head`): not the study's failure
        raise
    except OSError as exc:
        _study_not_written(exc, study)
    _print_study(study, as_json, out)
    if result == "interrupted":
        ctx.exit(130)
    ctx.exit(0 if study.best_trial() is not None else 1)  # every trial failed: a failed run's code


def _drive_study(
    study: StudyDir, parallel: int, gpus: list[str], trials_per_worker: int, worker_memory: int, out: TextIO
) -> str:
    """Run the study's trials in a pool of workers until the plan is done or Ctrl+C; write `best.toml`."""
    import signal
    import threading

    from tfbench.study.owners import record_driver, record_driver_end
    from tfbench.study.workers import Pool, WorkersDying, run_study

    stopping = threading.Event()

    def interrupted(*_):
        if not stopping.is_set():
            click.echo(
                f"stopping: running trials save and are given back; continue with `tfbench tune --resume {study.path}`",
                err=True,
            )
        stopping.set()

    before = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    record_driver(study.path)
    result = "failed"
    try:
        pool = Pool(study, parallel, gpus, trials_per_worker, worker_memory)
        result = run_study(study, pool, _trial_printer(study, out, study.rows()), stopping)
        study.write_best()
    except WorkersDying as exc:
        fail(UserError(f"{exc}; continue with `tfbench tune --resume {study.path}`"), code=1)
    finally:
        record_driver_end(study.path, result)
        for sig, handler in before.items():  # a caller in this process (the workbench, a test) keeps its own
            signal.signal(sig, handler)
    return result


def _study_not_written(exc: OSError, study: StudyDir | None) -> NoReturn:
    """A study that could not be written (a full disk, most often): one line and exit 1."""
    from tfbench.diskspace import disk_full
    from tfbench.study.study import STUDY_FILE

    if study is not None and (study.path / STUDY_FILE).exists():
        then = f"then `tfbench tune --resume {study.path}` continues the study"
    else:
        then = "then start the study again (nothing of it was kept)"
    what = exc.filename or (study.path if study is not None else "the study")
    if disk_full(exc):
        click.echo(f"error: the disk is full ({what} could not be written); free some space, {then}", err=True)
    else:
        click.echo(f"error: could not write {what}: {exc.strerror or exc}; {then}", err=True)
    sys.exit(1)


def _open_study(preset, trials, overrides, study_dir, storage, study_name, resume_dir):
    """The study `tfbench tune` works on: the one in `--resume`'s directory, or a new one from PRESET."""
    from tfbench.study.study import StudyDir

    if resume_dir is not None:
        if preset is not None or storage is not None or study_name is not None or overrides:
            raise UserError(
                "--resume takes the study from its directory", "--resume", "drop PRESET, --set, --storage and --study"
            )
        study = StudyDir.load(resume_dir, trials)
        study.join()
        if trials is not None:
            study.write_study_file()
        return study
    if preset is None:
        raise UserError(
            "name a PRESET with a [tune] section, or --resume STUDY_DIR", "tfbench tune", "see `tfbench tune --help`"
        )
    from tfbench.spec import load_experiment, resolve_preset

    experiment = load_experiment(preset, list(overrides))
    try:
        return StudyDir.create(None, Path(study_dir) if study_dir else None, experiment, trials, storage, study_name)
    except UserError as err:  # a [tune] mistake is located in the preset; a storage or directory one is not
        if (err.location or "").startswith("tune"):
            raise err.at(str(resolve_preset(preset))) from None
        raise


def _trial_printer(study, out, shown: list[dict] | None = None):
    """The callback `run_study` calls per ended trial: one line each, counting on from the trials in
    `shown`, with the best so far."""
    from tfbench.engine.improvement import best_of, improves
    from tfbench.study.study import trial_line

    names = study.settings.short_names()
    direction = study.settings.direction
    ended = [r for r in shown or [] if r["state"] in ("finished", "pruned")]
    finished = [r for r in ended if r["state"] == "finished" and r["value"] is not None]
    state: dict[str, Any] = {
        "done": len(ended),
        "best": best_of(finished, direction, key=lambda r: r["value"]),
    }

    def show(row: dict) -> None:
        if row["state"] in ("finished", "pruned"):
            state["done"] += 1
        best = state["best"]
        if row["state"] == "finished" and improves(row["value"], best["value"] if best else None, direction):
            state["best"] = row
        click.echo(
            trial_line(row, state["done"], study.settings.trials, study.settings.objective, names, state["best"]),
            file=out,
        )

    return show


def _print_study(study, as_json: bool, out) -> None:
    """The final table of trials (best first), or the whole study as JSON on stdout."""
    from tfbench.study.study import results_table, sorted_rows

    best = study.best_trial()
    if as_json:
        click.echo(
            json.dumps(
                (
                    {
                        "study_dir": str(study.path),
                        "study": study.name,
                        "storage": study.storage,
                        "objective": study.settings.objective,
                        "direction": study.settings.direction,
                        "planned": study.settings.trials,
                        "finished": len(study.finished()),
                        "best": {"number": best.number, "value": best.value, "params": best.params} if best else None,
                        "best_preset": str(study.path / "best.toml") if best else None,
                        "trials": sorted_rows(study.rows(), study.settings.direction),
                    }
                ),
                default=str,
            )
        )
        return
    from tfbench.console import output_console

    console = output_console(out)
    console.print(results_table(study))
    if best is not None:
        console.print(
            f"best: trial #{best.number} {study.settings.objective} {best.value:.4f}; "
            f"run it with `tfbench run {study.path / 'best.toml'}`"
        )


def list_study(study_dir: Path, as_json: bool) -> None:
    """`tfbench runs STUDY_DIR`: the study's trials, best first."""
    from tfbench.study.study import StudyDir

    _print_study(StudyDir.load(study_dir), as_json, sys.stdout)


def watch_study(study_dir: Path, interval: float = 1.0) -> None:
    """`tfbench watch STUDY_DIR`: the Study screen in a terminal; else a line per trial as it ends
    until the study is complete, or nobody works on it any more (stopped or killed), then the table."""
    from tfbench.study.study import StudyDir

    if sys.stdout.isatty() and sys.stdin.isatty():
        from tfbench.app import make_study_app

        StudyDir.load(study_dir)  # a broken directory is one error line, not an empty screen
        return run_app(make_study_app(study_dir))

    study = StudyDir.load(study_dir)
    click.echo(
        f"study {study.name}: {len(study.finished())}/{study.settings.trials} trials done "
        f"({study.settings.objective}, {study.settings.direction}); Ctrl+C stops watching, not the study"
    )
    idle = None
    try:
        idle = _watch_until_idle(study, _trial_printer(study, sys.stdout), interval)
    except KeyboardInterrupt:
        pass
    _print_study(study, False, sys.stdout)
    if idle is not None:
        click.echo(idle[0])
        sys.exit(idle[1])


def _watch_until_idle(
    study: StudyDir, show: Callable[[dict], None], interval: float, grace: float = 3.0
) -> tuple[str, int] | None:
    """Show each trial as it ends; None once the plan is complete, else (why nobody works on the
    study any more, the exit code: 0 when it was stopped, 1 when its driver went without ending it)."""
    import time

    from tfbench.study.owners import TrialOwners, driver_running, read_driver

    owners = TrialOwners()
    seen: set[int] = set()
    idle_since = None
    while True:
        rows = study.rows()
        for row in rows:
            if row["number"] not in seen and row["state"] in ("finished", "pruned", "failed"):
                seen.add(row["number"])
                show(row)
        if study.work_left() == 0 and not any(r["state"] in ("running", "waiting") for r in rows):
            return None
        driver = read_driver(study.path)
        if driver_running(driver) or owners.working(study.trials()):
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= grace:
            done = f"{len(study.finished())}/{study.settings.trials} trials ended"
            resume = f"continue it with `tfbench tune --resume {study.path}`"
            if driver.get("result") == "interrupted":
                return f"the study was stopped ({done}); {resume}", 0
            if driver and "ended" not in driver:
                return (
                    f"nobody is running this study: its `tfbench tune` ({driver.get('pid')}) "
                    f"ended without finishing it ({done}); {resume}",
                    1,
                )
            return f"nobody is running this study ({done}); {resume}", 1
        time.sleep(interval)


def runs_as_json(found: list[RunSummary]) -> list[dict[str, Any]]:
    """`tfbench runs --json`: every figure of each run, its final metrics, tags and note."""
    return [
        {
            "name": r.name,
            "path": str(r.path),
            "started": r.started,
            "status": r.status,
            "reason": r.reason,
            "epochs_completed": r.epochs_completed,
            "epochs": r.epochs,
            "best_monitor": r.best_monitor,
            "best_value": r.best_value,
            "best_epoch": r.best_epoch,
            "params": r.params,
            "seconds": r.duration,
            "final": r.final,
            "tags": r.tags,
            "note": r.note,
        }
        for r in found
    ]


# -- a run's tags and note ----------------------------------------------------------------------------


@runs.command(name="tag")
@click.argument("run_dir", type=click.Path(file_okay=False), metavar="RUN")
@click.argument("tags", nargs=-1, metavar="TAG...")
@click.option("--remove", "-r", "remove", is_flag=True, help="Take the TAGs off instead.")
def tag_runs(run_dir, tags, remove):
    """Tag a run (kept in its notes.json); without TAGs, print its tags.

    \b
    A tag is one word (letters, digits, _ . + / -); the Runs screen's `t` and
    `tfbench runs --filter tag:NAME` find tagged runs.
      tfbench runs tag runs/digits-cnn-20250101-120000 baseline small-lr
      tfbench runs tag runs/digits-cnn-20250101-120000 small-lr --remove
    """
    from tfbench.run_notes import read_notes, tag_run

    path = checked_run_dir(run_dir)
    if tags:
        notes = tag_run(path, remove=tags) if remove else tag_run(path, add=tags)
    else:
        notes = read_notes(path)
    click.echo(" ".join(notes.tags))


@runs.command(name="note")
@click.argument("run_dir", type=click.Path(file_okay=False), metavar="RUN")
@click.argument("text", nargs=-1)
@click.option("--clear", is_flag=True, help="Remove the note.")
def note_run(run_dir, text, clear):
    """Write a note on a run (kept in its notes.json); without TEXT, print its note.

    \b
    The words are joined by spaces; the note shows on the Runs screen (`n` edits it there)
    and `--filter note:WORD` finds it.
      tfbench runs note runs/digits-cnn-20250101-120000 lr too high: loss spikes at epoch 3
      tfbench runs note runs/digits-cnn-20250101-120000 --clear
    """
    from tfbench.run_notes import read_notes, set_note

    path = checked_run_dir(run_dir)
    if text or clear:
        notes = set_note(path, "" if clear else " ".join(text))
    else:
        notes = read_notes(path)
    if notes.note:
        click.echo(notes.note)


def checked_run_dir(text: str) -> Path:
    """A run directory named on the command line.

    Raises:
        UserError: the path holds no run.
    """
    from tfbench.rundir import EVENTS_FILE, EXPERIMENT_FILE

    path = Path(text)
    if not (path / EVENTS_FILE).exists() and not (path / EXPERIMENT_FILE).exists():
        raise UserError("not a run directory (no events.jsonl)", text, "list the runs with `tfbench runs`")
    return path


def main() -> None:
    """The console entry point."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    cli(prog_name="tfbench")


if __name__ == "__main__":
    main()
