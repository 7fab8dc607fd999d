"""What `tfbench run` shows while it trains — without a UI, without TensorFlow.

An event subscriber: on a terminal a rich progress bar per epoch with the running loss and
metrics, and a summary line when each epoch ends; when the output is not a terminal (a log file,
CI, a pipe) one plain line per epoch, so logs stay readable and small.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from tfbench.engine import events as ev
from tfbench.figures import format_metric


def format_logs(logs: dict[str, Any]) -> str:
    """`loss 0.1234  accuracy 0.9500  val_loss …`: training metrics first, then validation ones."""
    train = sorted((k for k in logs if not k.startswith("val_")), key=lambda k: k != "loss")
    valid = sorted((k for k in logs if k.startswith("val_")), key=lambda k: k != "val_loss")
    keys = train + valid
    return "  ".join(f"{k} {format_metric(logs[k])}" for k in keys)


def epoch_line(event: dict[str, Any], epochs: int) -> str:
    """One line for an `epoch_ended` event."""
    width = len(str(epochs or event.get("epoch", 0)))
    text = f"epoch {event.get('epoch', 0):>{width}}/{epochs}  {format_logs(event.get('logs') or {})}"
    seconds = event.get("seconds")
    if seconds is not None:
        text += f"  {float(seconds):.1f}s"
    rate = event.get("samples_per_sec")
    if rate:
        text += f"  {float(rate):,.0f} samples/s"
    return text


def end_line(event: dict[str, Any]) -> str:
    """One line for `run_ended`: status, reason, best."""
    text = f"run {event.get('status')}"
    if event.get("reason"):
        text += f": {event['reason']}"
    best = event.get("best") or {}
    if best.get("monitor"):
        text += f" (best {best['monitor']} {format_metric(best.get('value'))} at epoch {best.get('epoch')})"
    return text


def output_stream() -> TextIO:
    """Where progress goes: stdout, or a sink when there is none.

    Started with stdout closed (`tfbench run … >&-`), Python has `sys.stdout = None`; a run must
    still train and save, with nothing to show.
    """
    stream = sys.stdout
    if stream is None or getattr(stream, "closed", False):
        return nowhere()
    return stream


def nowhere() -> TextIO:
    """A text stream that swallows what is written (no terminal)."""
    import io
    import os

    return io.TextIOWrapper(open(os.devnull, "wb"), encoding="utf-8")


class Progress:
    """Shows a run's events on a stream: rich progress on a terminal, plain lines otherwise.

    Args:
        stream: where to write (stdout by default; stderr when stdout carries JSON).
        tty: force terminal (True) or plain (False) output; None asks the stream.
    """

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None):
        self.stream = stream or output_stream()
        self.tty = self.stream.isatty() if tty is None else tty
        self.epochs = 0
        self.steps = 0
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task: Any = None
        self._console: Any = None
        if self.tty:
            from tfbench.console import output_console

            self._console = output_console(self.stream)

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            handler = getattr(self, f"_on_{event.get('event')}", None)
            if handler is not None:
                handler(event)

    def print(self, text: str, style: str | None = None) -> None:
        try:
            if self._console is not None:
                self._console.print(text, style=style, markup=False)
            else:
                self.stream.write(text + "\n")
                self.stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away or the stream was closed:
            self._console, self.stream, self.tty = None, nowhere(), False  # train on quietly

    def close(self) -> None:
        with self._lock:
            self._end_bar()

    # -- rich bar --------------------------------------------------------------------------------
    def _bar(self) -> Any:
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[logs]}"),
                console=self._console,
                auto_refresh=False,  # refreshed on batch events, which are already throttled
                transient=True,
            )
            self._progress.start()
        return self._progress

    def _end_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    # -- events ----------------------------------------------------------------------------------
    def _on_run_started(self, e: dict[str, Any]) -> None:
        self.epochs = int(e.get("epochs") or 0)
        self.steps = int(e.get("steps_per_epoch") or 0)
        model = e.get("model") or {}
        name = (e.get("experiment") or {}).get("name", "")
        verb = f"resuming from epoch {e.get('initial_epoch')}" if e.get("resumed") else "training"
        self.print(f"{name}: {verb}, {model.get('total_params', '?')} parameters → {e.get('run_dir')}")
        for line in model.get("adapted", []):  # layers that learnt from the training split
            self.print(f"  {line}")

    def _on_epoch_started(self, e: dict[str, Any]) -> None:
        self.epochs = int(e.get("epochs") or self.epochs)
        if self.tty:
            bar = self._bar()
            if self._task is not None:
                bar.remove_task(self._task)
            self._task = bar.add_task(f"epoch {e.get('epoch')}/{self.epochs}", total=self.steps or None, logs="")
            bar.refresh()

    def _on_batch(self, e: dict[str, Any]) -> None:
        if self.tty and self._task is not None:
            self._progress.update(self._task, completed=e.get("step", 0), logs=format_logs(e.get("logs") or {}))
            self._progress.refresh()

    def _on_epoch_ended(self, e: dict[str, Any]) -> None:
        line = epoch_line(e, self.epochs)
        if self.tty and self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
            if self._task is not None:
                self._progress.remove_task(self._task)
                self._task = None
            self._progress.refresh()
        else:
            self.print(line)

    def _on_preflight(self, e: dict[str, Any]) -> None:
        step = e.get("step_seconds")
        if step is None:
            return
        text = f"pre-flight: {float(step) * 1000:.1f} ms/step"
        if e.get("eta_seconds") is not None:
            text += f", about {float(e['eta_seconds']):.0f}s to go"
        if e.get("peak_memory_mb") is not None:
            text += f", peak GPU memory {float(e['peak_memory_mb']):.0f} MB"
        self._say(text)

    def _on_paused(self, e: dict[str, Any]) -> None:
        self._say(f"paused at epoch {e.get('epoch')}, batch {e.get('step')}")

    def _on_resumed(self, e: dict[str, Any]) -> None:
        self._say("resumed")

    def _on_setting_changed(self, e: dict[str, Any]) -> None:
        if e.get("name") == "epochs":
            self.epochs = int(e.get("new") or self.epochs)
        self._say(f"{e.get('name')}: {e.get('old')} → {e.get('new')}")

    def _on_log(self, e: dict[str, Any]) -> None:
        if e.get("level") in ("warning", "error"):
            message = str(e.get("message", "")).rstrip()
            if e.get("level") == "error" and "\n" in message:
                message = message.splitlines()[-1]
            self._say(f"{e.get('level')}: {message}")

    def _on_export(self, e: dict[str, Any]) -> None:
        self._say(f"exported {e.get('format')} → {e.get('path')}")

    def _on_run_ended(self, e: dict[str, Any]) -> None:
        self._end_bar()
        self.print(end_line(e))

    def _say(self, text: str) -> None:
        if self.tty and self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            self.print(text)


def follow_plainly(run_dir, stream: TextIO, poll: float = 0.2) -> str:
    """`tfbench watch` without a terminal: a run's events as plain lines, until it ends.

    It ends with the run's `run_ended`, or, when the runner is gone and the log has no end (a
    killed runner, a cut last line), with a line saying so, so a pipe or a log file is never held
    open forever.

    Args:
        run_dir: the run directory.
        stream: where the lines go.
        poll: seconds between looks at the log when nothing new came.

    Returns:
        The run's final status (`interrupted` when its runner went without ending it).
    """
    import time

    from tfbench.engine.control import runner_gone
    from tfbench.engine.log_scan import BULK_KINDS
    from tfbench.event_tail import EventTail

    progress = Progress(stream, tty=False)
    pid = None
    quiet_looks = 0  # looks in a row that found nothing new while the runner was gone
    with EventTail(run_dir, skip=BULK_KINDS) as tail:  # epoch lines only: batches go unparsed
        while True:
            events = tail.read()
            for event in events:
                pid = event.get("pid", pid) if event.get("event") == ev.RUN_STARTED else pid
                progress(event)
                if event.get("event") == ev.RUN_ENDED:
                    return str(event.get("status"))
            quiet_looks = 0 if events or not runner_gone(run_dir, pid) else quiet_looks + 1
            if quiet_looks >= 2:  # one more look first: the runner's last lines may be on their way
                progress.print(
                    f"run interrupted: its runner is gone and the log has no end; "
                    f"`tfbench resume {run_dir}` continues it"
                )
                return "interrupted"
            if not events:
                time.sleep(poll)
