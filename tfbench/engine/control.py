"""Reaching a runner process: start it, pause/unpause/stop it, change its settings — without a UI.

The channel is a folder of small files in the run directory, chosen because it needs no socket
path (Unix sockets stop at 108 characters, and run directories nest deep), survives the controller
vanishing, and works the same from the TUI, from `tfbench pause RUN_DIR` and from tests:

- `runner.json`: the runner's pid, its process start time (so a recycled pid is not mistaken for
  it) and, once it is over, when and how it exited. `runner_alive` reads it.
- `control/<id>.json`: one command, written atomically by `send`. The runner's main thread polls
  the folder every 0.2 s, applies the command to its Run and deletes the file.
- `control/<id>.ack.json`: the runner's answer, written once the command has taken effect — when
  the acknowledging event (`paused`, `resumed`, `setting_changed`, `profile`, `run_ended`) carrying the
  command's id is in the event log — or at once with the error when the command was refused.

`send` never hangs: it checks the runner is alive before and while it waits, and gives up after
its timeout.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from tfbench.atomic import write_json, write_text
from tfbench.engine import events as ev
from tfbench.engine.log_scan import scan_events
from tfbench.engine.status import exit_code
from tfbench.errors import UserError
from tfbench.rundir import CONTROL_DIR, RUNNER_FILE, RUNNER_LOG, create_run_dir

if TYPE_CHECKING:  # pragma: no cover
    from tfbench.engine.run import Run
    from tfbench.spec import Experiment

POLL_SECONDS = 0.2
COMMANDS = ("pause", "unpause", "stop", "set", "profile")
_ACK_EVENT = {
    "pause": ev.PAUSED,
    "unpause": ev.RESUMED,
    "stop": ev.RUN_ENDED,
    "set": ev.SETTING_CHANGED,
    "profile": ev.PROFILE,
}

_children: list[subprocess.Popen] = []  # launched runners, reaped so they never linger as zombies


# -- liveness ----------------------------------------------------------------------------------


def _process_start(pid: int) -> float | None:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def read_runner(run_dir: str | Path) -> dict[str, Any]:
    """The run's `runner.json` ({} when there is none or it is unreadable)."""
    try:
        record = json.loads((Path(run_dir) / RUNNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    if not isinstance(record.get("pid"), int) or isinstance(record.get("pid"), bool):
        record.pop("pid", None)  # damaged: no process to look for
    return record


def runner_alive(run_dir: str | Path) -> bool:
    """Whether the runner process of this run directory is still running.

    A pid alone is not enough: after a crash the pid may belong to another process, so its start
    time must match the one recorded, and a zombie counts as dead.
    """
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)
    record = read_runner(run_dir)
    pid = record.get("pid")
    if not pid or record.get("exited"):
        return False
    started = _process_start(int(pid))
    if started is None:
        return False
    recorded = record.get("create_time")
    return recorded is None or abs(started - float(recorded)) < 1.0


def _run_ended(run_dir: Path) -> dict[str, Any] | None:
    try:
        ended = None
        for event in scan_events(run_dir):
            if event["event"] == ev.RUN_ENDED:
                ended = event
        return ended
    except OSError:
        pass
    return None


# -- the controller's side -----------------------------------------------------------------------


def send(run_dir: str | Path, command: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
    """Send a command to the runner of `run_dir` and wait until it has taken effect.

    Args:
        run_dir: the run directory.
        command: `pause`, `unpause` (alias `resume`), `stop`, `set` or `profile`.
        timeout: seconds to wait for the acknowledgement.
        **args: for `set`, the settings: `learning_rate=1e-4`, `epochs=20` (one command each); for
            `profile`, `steps=10` (acknowledged with the `profile` event once the trace is judged).

    Returns:
        The acknowledgement: `{"id", "command", "ok": True, "event": {...}}` (or `"note"` when
        there was nothing to do, such as pausing a paused run).

    Raises:
        UserError: the runner is not running (stale channel), the run has ended, the runner
            refused the command, or it did not answer in time.
    """
    run_dir = Path(run_dir)
    command = "unpause" if command == "resume" else command
    if command not in COMMANDS:
        raise UserError(f"unknown command {command!r}", str(run_dir), f"commands: {', '.join(COMMANDS)}")
    if command == "set" and not args:
        raise UserError("name a setting, e.g. learning_rate=1e-4", str(run_dir))
    if command == "set" and len(args) > 1:
        acks = [send(run_dir, "set", timeout, **{name: value}) for name, value in args.items()]
        return {**acks[-1], "acks": acks}
    if not (run_dir / ev.EVENTS_FILE).exists() and not (run_dir / RUNNER_FILE).exists():
        raise UserError("not a run directory (no events.jsonl)", str(run_dir))
    _check_reachable(run_dir)
    command_id = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    folder = run_dir / CONTROL_DIR
    write_json(folder / f"{command_id}.json", {"id": command_id, "command": command, "args": args})
    return _await_ack(run_dir, command, command_id, timeout)


def _await_ack(run_dir: Path, command: str, command_id: str, timeout: float) -> dict[str, Any]:
    """Wait for the runner's acknowledgement of one command; its error, a dead runner or no answer
    in time is a `UserError` (and the unanswered command is withdrawn)."""
    folder = run_dir / CONTROL_DIR
    ack_path = folder / f"{command_id}.ack.json"
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 0.5
    while True:
        if ack_path.exists():
            try:
                ack = json.loads(ack_path.read_text(encoding="utf-8"))
            except ValueError:
                ack = None
            if ack is not None:
                ack_path.unlink(missing_ok=True)
                if not ack.get("ok"):
                    raise UserError(ack.get("error", "the runner refused the command"), str(run_dir))
                return ack
        now = time.monotonic()
        if now >= next_check:
            next_check = now + 0.5
            if not runner_alive(run_dir) and not ack_path.exists():
                (folder / f"{command_id}.json").unlink(missing_ok=True)
                _check_reachable(run_dir)
                raise UserError("the runner is not running (stale channel): it exited before answering", str(run_dir))
        if now >= deadline:
            (folder / f"{command_id}.json").unlink(missing_ok=True)
            raise UserError(
                f"the runner did not acknowledge {command!r} within {timeout:g}s",
                str(run_dir),
                "it may be busy with a long batch; try again",
            )
        time.sleep(0.05)


def _check_reachable(run_dir: Path) -> None:
    if runner_alive(run_dir):
        return
    ended = _run_ended(run_dir)
    if ended is not None:
        raise UserError(f"the run has already ended ({ended.get('status')})", str(run_dir))
    record = read_runner(run_dir)
    why = "no runner was ever recorded" if not record else f"process {record.get('pid')} is gone"
    raise UserError(
        f"the runner is not running (stale channel): {why}",
        str(run_dir),
        "continue the run with `tfbench resume RUN_DIR`",
    )


def runner_command(*args: str) -> list[str]:
    """The command line of a runner process: this interpreter running `python -m tfbench`."""
    return [sys.executable, "-m", "tfbench", *args]


def launch(argv: list[str], run_dir: Path, detach: bool = True) -> subprocess.Popen:
    """Start a runner process for `run_dir` in its own session, its output in `runner.log`.

    Its own session means a closed terminal or SSH connection (SIGHUP) and a Ctrl+C meant for the
    launcher never reach it. Without `detach` it is stopped when the launching process exits.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(run_dir / RUNNER_LOG, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=os.getcwd(),
        )
    _children.append(proc)
    # Recorded at once, so runner_alive and send work before the runner has imported TensorFlow.
    write_json(
        run_dir / RUNNER_FILE, {"pid": proc.pid, "create_time": _process_start(proc.pid), "launched": time.time()}
    )
    if not detach:
        atexit.register(_stop_if_alive, run_dir)
    return proc


def _stop_if_alive(run_dir: Path) -> None:
    if runner_alive(run_dir):
        try:
            write_json(
                run_dir / CONTROL_DIR / f"{time.time_ns()}-atexit.json", {"id": "atexit", "command": "stop", "args": {}}
            )
        except OSError:
            pass


def start_runner(
    experiment: Experiment, runs_dir: str | Path, detach: bool = True, extra_args: tuple | list = ()
) -> Path:
    """Start `tfbench run` for an Experiment in a runner process and return its run directory.

    The run directory is made here, with the resolved Experiment in `experiment.toml`, which the
    runner is given as its preset; the runner fills in the rest.

    Args:
        experiment: the Experiment to train.
        runs_dir: where the run directory is created.
        detach: leave the runner running when this process exits (else it is asked to stop).
        extra_args: more `tfbench run` arguments.

    Returns:
        The run directory (it exists, with `runner.json`, when this returns).
    """
    from tfbench.rundir import EXPERIMENT_FILE

    run_dir = create_run_dir(runs_dir, experiment)
    preset = run_dir / EXPERIMENT_FILE
    argv = runner_command("run", str(preset.resolve()), "--run-dir", str(run_dir.resolve()), "--quiet", *extra_args)
    launch(argv, run_dir, detach=detach)
    return run_dir


def resume_runner(run_dir: str | Path, epochs: int | None = None, extra_args: tuple | list = ()) -> Path:
    """Continue a stopped, interrupted or failed run in its own directory, in a runner process.

    The runner is `tfbench resume`; what it would refuse (a runner still training the run, a finished
    run, a damaged backup, an edited `experiment.toml`) is refused here first, so the caller can say
    why instead of watching a runner fail.

    Args:
        run_dir: the run directory.
        epochs: a new planned total of epochs (None: the plan it has).
        extra_args: more `tfbench resume` arguments (`--allow-code`).

    Raises:
        UserError: the run cannot be resumed, and why.
    """
    from tfbench.rundir import EXPERIMENT_FILE, check_unlocked, resume_point
    from tfbench.spec import load_experiment

    run_dir = Path(run_dir)
    if runner_alive(run_dir):
        raise UserError("a runner is still training this run", str(run_dir), "pause or stop it first")
    check_unlocked(run_dir)
    experiment = load_experiment(run_dir / EXPERIMENT_FILE)
    resume_point(run_dir, experiment.train.epochs, epochs, experiment)  # refuses what resume would refuse
    more = ["--epochs", str(epochs)] if epochs else []
    launch(runner_command("resume", str(run_dir.resolve()), "--quiet", *more, *extra_args), run_dir, detach=True)
    return run_dir


# -- the runner's side ---------------------------------------------------------------------------


class ControlServer:
    """Serves the control folder of a Run from the runner's main thread.

    Args:
        run: the Run (started) whose directory holds the channel.
    """

    def __init__(self, run: Run):
        self.run = run
        self.run_dir = run.directory
        self.folder = self.run_dir / CONTROL_DIR
        self._pending: dict[str, str] = {}  # command id -> command awaiting its event
        self._lock = threading.Lock()
        if run.writer is None:
            raise RuntimeError("the control channel serves a started Run")
        run.writer.subscribe(self._on_event)

    def open(self) -> None:
        """Record this process in `runner.json` and create the control folder."""
        import psutil

        self.folder.mkdir(parents=True, exist_ok=True)
        me = psutil.Process()
        write_json(
            self.run_dir / RUNNER_FILE,
            {
                "pid": os.getpid(),
                "create_time": me.create_time(),
                "started": time.time(),
                "argv": sys.argv,
                "control": CONTROL_DIR,
            },
        )

    def close(self, exit_code: int) -> None:
        """Mark the runner as exited (so controllers get a clear answer at once)."""
        record = read_runner(self.run_dir)
        record.update(exited=time.time(), exit_code=exit_code)
        try:
            write_json(self.run_dir / RUNNER_FILE, record)
        except OSError:
            pass

    def poll(self) -> None:
        """Apply every command waiting in the folder, oldest first."""
        try:
            names = sorted(p.name for p in self.folder.iterdir())
        except OSError:
            return
        for name in names:
            if name.startswith(".") or not name.endswith(".json") or name.endswith(".ack.json"):
                continue
            path = self.folder / name
            try:
                request = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            path.unlink(missing_ok=True)
            self.handle(request)

    def handle(self, request: dict[str, Any]) -> None:
        """Apply one command; its acknowledgement follows its event (or comes now when refused)."""
        command_id = str(request.get("id"))
        command = request.get("command")
        args = request.get("args") or {}
        run = self.run
        if command not in COMMANDS:
            self._ack(command_id, ok=False, error=f"unknown command {command!r}")
            return
        if run.ended:
            self._ack(command_id, ok=False, error=f"the run has already ended ({run.status})")
            return
        with self._lock:
            self._pending[command_id] = str(command)
        try:
            if command == "pause":
                done = run.controls.pause(command_id)
                note = None if done else "already paused"
            elif command == "unpause":
                done = run.controls.unpause(command_id)
                note = None if done else "not paused"
            elif command == "stop":
                done = run.stop("stopped by request", command_id)
                note = None if done else "already stopping"
            elif command == "profile":
                done = run.controls.profile(args.get("steps", 10), command_id)
                note = None if done else "a profile is being captured already"
            else:
                ((name, value),) = args.items()
                run.controls.set(name, value, command_id)
                done, note = True, None
        except UserError as exc:
            with self._lock:
                self._pending.pop(command_id, None)
            self._ack(command_id, ok=False, error=str(exc))
            return
        except ValueError:
            with self._lock:
                self._pending.pop(command_id, None)
            self._ack(command_id, ok=False, error="set one setting, e.g. learning_rate=1e-4")
            return
        if not done:
            with self._lock:
                self._pending.pop(command_id, None)
            self._ack(command_id, ok=True, command=command, note=note)

    def _on_event(self, event: dict[str, Any]) -> None:
        command_id = event.get("command_id")
        with self._lock:
            command = self._pending.pop(command_id, None) if command_id else None
            leftovers = {}
            if event["event"] == ev.RUN_ENDED:
                leftovers, self._pending = self._pending, {}
        if command is not None and command_id:
            self._ack(command_id, ok=True, command=command, event=event)
        for other_id, other in leftovers.items():
            if other == "stop":
                self._ack(other_id, ok=True, command=other, event=event)
            else:
                self._ack(other_id, ok=False, error=f"the run ended ({event.get('status')}) before it could {other}")

    def _ack(self, command_id: str, **answer: Any) -> None:
        try:
            write_text(self.folder / f"{command_id}.ack.json", ev.encode({"id": command_id, **answer}) + "\n")
        except OSError:
            pass


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl+C, kill, a dropped SSH connection


def serve(run: Run, handle_signals: bool = True, on_signal: Callable[[str], None] | None = None) -> int:
    """Serve a started Run's control channel from this (main) thread until it ends.

    With `handle_signals`, Ctrl+C, SIGTERM or SIGHUP (a dropped SSH connection) stops the run
    gracefully (finish the batch, save, `run_ended` stopped); a second one ends the record at once
    and exits the process with 130.

    Args:
        run: a started Run.
        handle_signals: install the signal handlers (main thread only).
        on_signal: called with a one-line notice when a signal arrives (e.g. print to stderr).

    Returns:
        The exit code for the run's status (0, 1 or 130).
    """
    server = ControlServer(run)
    server.open()
    signals_seen: list[str] = []
    previous = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        handler = _signal_handler(run, server, signals_seen, on_signal)
        previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    stopping = False
    try:
        while not run.finished(POLL_SECONDS):
            if signals_seen and not stopping:
                stopping = True
                run.stop(f"interrupted ({signals_seen[0]})")
            server.poll()
        server.poll()  # answer what came in at the very end
        code = exit_code(run.status)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    server.close(code)
    return code


def _signal_handler(
    run: Run, server: ControlServer, signals_seen: list[str], on_signal: Callable[[str], None] | None
) -> Callable[[int, FrameType | None], None]:
    """The handler `serve` installs. It only records and prints: it runs between two bytecodes of
    the main thread, perhaps while that holds one of the Run's locks, so the stop itself happens in
    `serve`'s loop. The second signal exits at once; its abort runs in a helper thread with a
    deadline for that reason."""

    def notify(text: str) -> None:
        try:
            if on_signal:
                on_signal(text)
        except (OSError, ValueError):  # the terminal is gone (SIGHUP): the event log still says it
            pass

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        signals_seen.append(name)
        if len(signals_seen) == 1:
            notify(f"{name}: stopping after this batch and saving (again to stop at once)")
            return
        notify(f"{name} again: stopping at once")
        reason = f"interrupted twice ({name}); stopped at once, keeping what was saved"
        helper = threading.Thread(target=run.abort, args=(reason,), daemon=True)
        helper.start()
        helper.join(2.0)
        server.close(130)
        os._exit(130)

    return handler


def runner_gone(run_dir: str | Path, pid: int | None = None) -> bool:
    """Whether the run's runner is known to have ended, so its log will not grow again.

    `runner.json` decides when there is one (`runner_alive`); else the pid the log names (`pid`);
    with neither there is nothing to tell by, and the answer is False.
    """
    if (Path(run_dir) / RUNNER_FILE).exists():
        return not runner_alive(run_dir)
    try:
        pid = int(pid or 0)
    except (TypeError, ValueError):
        return False
    return pid > 0 and _process_start(pid) is None
