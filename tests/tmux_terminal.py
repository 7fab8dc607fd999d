"""A real terminal for tests: a tmux server of the test's own, one window running a command.

Keys go in with `send-keys` and the screen comes back with `capture-pane`, both through one
control-mode client, so looking at the screen after every key costs no new process.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psutil

TMUX = shutil.which("tmux")


class Terminal:
    """`command` running in a tmux window of `size` (columns, lines), in `cwd`, with `env`.

    The server has its own socket in `folder` and reads no configuration, so whatever tmux the
    machine runs is left alone. Use as a context manager: leaving it ends the server and the command.
    """

    def __init__(self, folder: Path, command: list[str], size: tuple[int, int], cwd: Path, env: dict[str, str]):
        assert TMUX is not None, "tmux is not installed"
        self.socket = str(folder / "tmux.sock")
        width, height = size
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-c", str(cwd), *command, env=env)
        try:
            self.control = subprocess.Popen(
                [TMUX, "-S", self.socket, "-f", "/dev/null", "-C", "attach", "-f", "no-output,ignore-size"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            self.answer()  # to the attach itself
            self.process = psutil.Process(int(self.command("display -p '#{pane_pid}'")[0]))
        except BaseException:
            subprocess.run([TMUX, "-S", self.socket, "kill-server"], capture_output=True, timeout=30)
            raise

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run one tmux command against this server in a process of its own; its output."""
        done = subprocess.run(
            [TMUX, "-S", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True, env=env, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def answer(self) -> list[str]:
        """The next reply of the control client (its lines between %begin and %end)."""
        lines: list[str] | None = None
        while True:
            line = self.control.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise EOFError("the tmux control client went away")
            line = line.rstrip("\n")
            if line.startswith("%begin"):
                lines = []
            elif line.startswith(("%end", "%error")) and lines is not None:
                assert line.startswith("%end"), f"tmux: {lines}"
                return lines
            elif lines is not None:
                lines.append(line)

    def command(self, line: str) -> list[str]:
        """Run a tmux command through the control client; its output lines."""
        self.control.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.control.stdin.flush()  # type: ignore[union-attr]
        return self.answer()

    def keys(self, *keys: str) -> None:
        """Type keys (tmux names: F1, C-o, Enter, …)."""
        self.command("send-keys " + " ".join(keys))

    def text(self) -> str:
        """What the window shows now."""
        return "\n".join(self.command("capture-pane -p"))

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        """Wait until the window shows `text`."""
        deadline = time.monotonic() + timeout
        while text not in self.text():
            assert time.monotonic() < deadline, f"{text!r} never shown:\n{self.text()}"
            time.sleep(0.02)

    def resident_mb(self) -> float:
        """The command's resident memory, in MB."""
        return self.process.memory_info().rss / 2**20

    def wait_quiet(self, still: float = 1.0, timeout: float = 300.0) -> None:
        """Wait until the command has used no CPU for `still` seconds (its background work is done)."""
        deadline = time.monotonic() + timeout
        used, since = -1.0, time.monotonic()
        while time.monotonic() - since < still:
            assert time.monotonic() < deadline, f"still busy after {timeout:.0f} s"
            time.sleep(0.1)
            times = self.process.cpu_times()
            if times.user + times.system != used:
                used, since = times.user + times.system, time.monotonic()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.control.stdin.close()  # type: ignore[union-attr]
        self.control.wait(timeout=10)
        subprocess.run([TMUX, "-S", self.socket, "kill-server"], capture_output=True, timeout=30)
        try:
            self.process.wait(timeout=10)  # the window's end hangs the command up
        except psutil.TimeoutExpired:
            self.process.kill()
