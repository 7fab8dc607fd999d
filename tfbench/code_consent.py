"""Opting in to a preset's own code, and the copies a run keeps of it — without a UI.

A preset with `[code]` runs Python files. tfbench never imports them behind its user's back: a
command refuses such a preset (one `error:` line naming the files and their SHA-256, exit 2) unless
the user allowed it — `--allow-code`, `TFBENCH_ALLOW_CODE=1` (or a comma-separated list of the
allowed SHA-256 digests, which is how the workbench hands its dialog's consent to a runner), or the
workbench's dialog. Reading a preset, listing runs or following one never imports anything.

A run keeps a copy of each module in `code/` with `code/manifest.json` (file, SHA-256, where it came
from). `resume`, `export` and `predict` import those copies, never the preset's files; `resume` and
`export` refuse a run whose original files changed since it started (naming them) unless told
`--allow-changed-code`, since what then continues is the run's copy, not the edited file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench import user_code
from tfbench.atomic import write_text
from tfbench.errors import UserError
from tfbench.rundir import CODE_DIR, EXPERIMENT_FILE
from tfbench.rundir import CODE_MANIFEST as MANIFEST_FILE

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tfbench.spec import Experiment
    from tfbench.user_code import ModuleFile

ALLOW_ENV = "TFBENCH_ALLOW_CODE"
ALLOW_HINT = "read it first; then pass --allow-code or set TFBENCH_ALLOW_CODE=1"


def allowed(flag: bool, files: list[ModuleFile]) -> bool:
    """Whether these module files may be imported: the flag, or `TFBENCH_ALLOW_CODE` (1, or their digests)."""
    if flag:
        return True
    value = os.environ.get(ALLOW_ENV, "").strip()
    if value.lower() in ("1", "true", "yes"):
        return True
    digests = {part.strip() for part in value.split(",") if part.strip()}
    return bool(files) and all(f.sha256 in digests for f in files)


def shown_path(path: Path) -> str:
    """A path as a message shows it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def describe(files: list[ModuleFile]) -> str:
    """`presets/code/transformer.py (sha256 3f2a9c0d1e2b…)`, for each file."""
    return ", ".join(f"{shown_path(f.path)} (sha256 {f.sha256[:16]}…)" for f in files)


def refusal(files: list[ModuleFile], where: str | None) -> UserError:
    """The one-line refusal of code the user has not allowed: which files, how to allow them."""
    return UserError(
        f"this preset runs its own Python code, imported only when you allow it: {describe(files)}; "
        "nothing was imported",
        where,
        ALLOW_HINT,
    )


def module_files(experiment: Experiment, where: str | None = None) -> list[ModuleFile]:
    """The Experiment's own module files as they are now, read and digested (nothing is executed).

    Raises:
        UserError: a missing or unreadable module, located at `code.modules[i]` in `where`.
    """
    if experiment.code is None:
        return []
    try:
        return user_code.read_modules(experiment.code.modules)
    except UserError as err:
        raise err.at(where or "") from None


def check_allowed(experiment: Experiment, flag: bool, where: str | None = None) -> list[ModuleFile]:
    """The Experiment's module files, when the user allowed them (nothing is imported).

    Raises:
        UserError: the refusal, or a module file that cannot be read.
    """
    files = module_files(experiment, where)
    if files and not allowed(flag, files):
        raise refusal(files, where)
    return files


def allow(experiment: Experiment, flag: bool, where: str | None = None) -> Experiment:
    """The Experiment with its own code imported and checked, when the user allowed it.

    Args:
        experiment: a loaded Experiment (its custom names unchecked while its code was not imported).
        flag: `--allow-code` was given (the environment is asked too).
        where: the preset file, for error locations.

    Returns:
        The same Experiment, now validated against its modules' classes (or as it was, without `[code]`).

    Raises:
        UserError: the refusal (not allowed), a module that cannot be read or imported (naming its
            file and line), or a class name the modules do not define.
    """
    if experiment.code is None:
        return experiment
    return activated(experiment, check_allowed(experiment, flag, where), where)


def activated(experiment: Experiment, files: list[ModuleFile], where: str | None = None) -> Experiment:
    """Import allowed `files` and check the Experiment against their classes.

    Raises:
        UserError: a module that fails to import, or a name its modules do not define.
    """
    from tfbench.native_log import import_tensorflow_quietly
    from tfbench.spec import experiment_from_dict

    import_tensorflow_quietly()  # the modules import Keras: TensorFlow's start-up lines go to the log
    user_code.activate(files)
    return experiment_from_dict(experiment.to_dict(), where)


def allow_workers(experiment: Experiment, flag: bool, where: str | None = None) -> None:
    """Import an allowed Experiment's code here and let the processes this one starts import the same
    files: `TFBENCH_ALLOW_CODE` names their digests (a study's workers check them before importing).

    Raises:
        UserError: the refusal, or a module that fails to import.
    """
    if experiment.code is None:
        return
    files = check_allowed(experiment, flag, where)
    activated(experiment, files, where)
    os.environ[ALLOW_ENV] = ",".join(f.sha256 for f in files)


# -- the copies a run keeps ---------------------------------------------------------------------------


def read_manifest(run_dir: Path) -> list[dict[str, Any]]:
    """The modules a run copied (`file`, `sha256`, `source`), or [] when it copied none."""
    path = Path(run_dir) / MANIFEST_FILE
    try:
        rows = json.loads(path.read_text(encoding="utf-8")).get("modules", [])
    except FileNotFoundError:
        return []
    except (OSError, ValueError, AttributeError):
        raise UserError("the run's record of its code is damaged", str(path)) from None
    return [r for r in rows if isinstance(r, dict) and {"file", "sha256"} <= set(r)]


def keep_copies(run_dir: Path, experiment: Experiment) -> Experiment:
    """Copy the imported modules into `run_dir/code/` with their digests; the Experiment then names the copies.

    The bytes copied are the ones imported (never read again), so the copy is exactly what ran. A
    run whose Experiment already names its copies (a resumed run) is left as it is.
    """
    if experiment.code is None:
        return experiment
    code_dir = (Path(run_dir) / CODE_DIR).resolve()
    if read_manifest(run_dir) and all(Path(m).resolve().parent == code_dir for m in experiment.code.modules):
        return experiment
    rows, copies = [], []
    for path in experiment.code.modules:
        file = user_code.active_file(Path(path).stem)
        if file is None or file.path != Path(path).resolve():
            file = user_code.read_module(path, "code.modules")
        target = code_dir / file.file_name
        code_dir.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.data)
        rows.append({"file": file.file_name, "sha256": file.sha256, "source": str(file.path)})
        copies.append(str(target))
    write_text(Path(run_dir) / MANIFEST_FILE, json.dumps({"modules": rows}, indent=1) + "\n")
    from tfbench.spec import CodeSpec

    return experiment.model_copy(update={"code": CodeSpec(modules=copies)})


def changed_sources(run_dir: Path) -> list[str]:
    """The preset's module files that differ from what the run started with (a removed one has not changed)."""
    changed = []
    for row in read_manifest(run_dir):
        source = row.get("source")
        if source and Path(source).is_file() and user_code.digest(source) != row["sha256"]:
            changed.append(shown_path(Path(source)))
    return changed


def run_copies(run_dir: Path) -> list[ModuleFile]:
    """The run's own copies of its modules, read and checked against the digests it recorded.

    Raises:
        UserError: a copy that is missing or was edited since the run started.
    """
    files = []
    for row in read_manifest(run_dir):
        copy = Path(run_dir) / CODE_DIR / row["file"]
        file = user_code.read_module(copy, str(Path(run_dir) / MANIFEST_FILE))
        if file.sha256 != row["sha256"]:
            raise UserError(
                "the run's copy of its code was edited after the run started (its SHA-256 differs)",
                shown_path(copy),
                f"restore it (sha256 {row['sha256'][:16]}…), or start a new run",
            )
        files.append(file)
    return files


def allow_run(run_dir: Path, flag: bool, allow_changed: bool = False, check_sources: bool = True) -> Experiment:
    """A run's recorded Experiment, its code imported from the run's own copies when allowed.

    Args:
        run_dir: the run directory.
        flag: `--allow-code` was given.
        allow_changed: go on although the preset's files changed since the run started.
        check_sources: refuse changed originals (`resume`, `export`); False reads the copies alone.

    Raises:
        UserError: a changed original (naming it), a damaged copy, the refusal, an import error.
    """
    from tfbench.spec import CodeSpec, load_experiment

    where = str(Path(run_dir) / EXPERIMENT_FILE)
    experiment = load_experiment(where)
    if experiment.code is None:
        return experiment
    files = run_copies(run_dir)
    if not files:
        raise UserError("the run has [code] but no copy of it in code/", str(run_dir))
    changed = changed_sources(run_dir) if check_sources else []
    if changed and not allow_changed:
        raise UserError(
            f"{', '.join(changed)} changed since the run started; the run goes on with its own copy in "
            f"{shown_path(Path(run_dir) / CODE_DIR)}, not the edited file",
            str(run_dir),
            "pass --allow-changed-code to go on with the run's copy, or start a new run for the edited code",
        )
    if not allowed(flag, files):
        raise refusal(files, str(run_dir))
    copies = experiment.model_copy(update={"code": CodeSpec(modules=[str(f.path) for f in files])})
    return activated(copies, files, where)


def run_has_code(run_dir: Path) -> bool:
    """Whether a run's recorded Experiment has `[code]` (False when it cannot be read: the command
    reading the run says what is wrong with it)."""
    try:
        from tfbench.spec import parse_toml

        return "code" in parse_toml((Path(run_dir) / EXPERIMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, UserError):
        return False
