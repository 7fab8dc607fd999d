"""While the TUI runs, fd 2 goes to the native log and the screen to a descriptor of its own.

Checked with real descriptors in child processes: pytest's own capture sits on fd 2 here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

KEPT = r"""
import os, subprocess, sys
from tfbench import native_log
from tfbench.native_log import captured_stderr, native_stderr_to, terminal_kept_from_native_log

log = sys.argv[1]
original = sys.stderr
with terminal_kept_from_native_log(log) as screen:
    assert sys.__stderr__ is screen and sys.stderr is screen
    subprocess.run([sys.executable, "-c", "import os; os.write(2, b'native from a child\\n')"], check=True)
    os.write(2, b"native in process\n")
    screen.write("frame on the saved handle\n")
    print("python stderr in the block", file=sys.stderr)
    import textual  # a UI in the process: fd 2 is no longer its screen, so capturing is safe
    with captured_stderr() as text:
        os.write(2, b"converter chatter\n")
    assert text == ["converter chatter\n"], text
    with native_stderr_to() as where:  # already the log: not re-opened (which would truncate it)
        assert str(where) == log
        os.write(2, b"tensorflow start-up\n")
assert sys.stderr is original and sys.__stderr__ is original
try:
    with terminal_kept_from_native_log(log + ".2"):  # the same log would be truncated
        raise RuntimeError("boom")
except RuntimeError:
    pass
assert sys.stderr is original and native_log._kept_log is None
os.write(2, b"fd 2 is back\n")
print("python stderr after", file=sys.stderr)
"""


def test_native_writes_go_to_the_log_and_the_saved_handle_to_the_terminal(tmp_path):
    log = tmp_path / "native.log"
    result = subprocess.run([sys.executable, "-c", KEPT, str(log)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "frame on the saved handle\npython stderr in the block\nfd 2 is back\npython stderr after\n"
    )
    logged = log.read_text()
    assert "native from a child\n" in logged and "native in process\n" in logged
    assert "tensorflow start-up\n" in logged
    assert "frame" not in logged and "converter chatter" not in logged


APP = r"""
import os, sys
from textual.app import App
from textual.widgets import Static
from tfbench.native_log import terminal_kept_from_native_log

class Tiny(App):
    def compose(self):
        yield Static("DRAWN-BY-TEXTUAL")
    def on_mount(self):
        self.run_worker(self.native, thread=True)
    def native(self):
        os.write(2, b"NATIVE-LINE\n")  # what TensorFlow's C++ does when a worker imports it
        self.call_from_thread(self.set_timer, 0.3, self.exit)

with terminal_kept_from_native_log(sys.argv[1]):
    Tiny().run()
os.write(2, b"AFTER-EXIT\n")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal")
def test_a_textual_app_draws_on_the_terminal_and_native_lines_do_not(tmp_path):
    import pty

    log = tmp_path / "native.log"
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "60", "LINES": "10"}
    proc = subprocess.Popen(
        [sys.executable, "-c", APP, str(log)], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
            seen += chunk
        except BlockingIOError:
            chunk = None
        except OSError:  # the child closed the terminal
            break
        if chunk is None:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.wait(timeout=10)
    os.close(master)
    text = seen.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "DRAWN-BY-TEXTUAL" in text  # the screen went through the saved descriptor
    assert "NATIVE-LINE" not in text
    assert "AFTER-EXIT" in text  # fd 2 is the terminal again
    assert "NATIVE-LINE" in log.read_text()
