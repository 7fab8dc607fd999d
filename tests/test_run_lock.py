"""The run directory's training lock: a live holder is refused at once; a dead one's lock is waited for.

A killed runner shows as dead (gone, or a zombie) a moment before the OS has dropped its lock — for a
process with TensorFlow's many threads, long enough for a quick `resume` to be refused as if the run
were still training. Here a lock is held through a second open of the lock file in this process (the
OS treats each open as its own holder) while the file names a given pid.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tfbench.errors import UserError
from tfbench.rundir import LOCK_FILE, lock, unlock


def held_by(run_dir: Path, pid: int) -> int:
    """Hold the run's lock through a file descriptor of its own, the file naming `pid`."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(pid).encode(), 0)
    return fd


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_lock_whose_holder_has_died_is_taken_once_the_os_drops_it(tmp_path):
    held = held_by(tmp_path, dead_pid())
    threading.Timer(0.5, os.close, [held]).start()  # the dying runner's last thread goes
    start = time.monotonic()
    fd = lock(tmp_path)
    assert 0.4 < time.monotonic() - start < 5
    assert os.pread(fd, 32, 0).decode() == str(os.getpid())
    unlock(fd)


def test_a_lock_whose_holder_is_a_zombie_is_waited_for(tmp_path):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    import psutil

    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not yet reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    held = held_by(tmp_path, zombie.pid)
    threading.Timer(0.3, os.close, [held]).start()
    unlock(lock(tmp_path))
    zombie.wait()


def test_a_live_holder_is_refused_at_once_with_its_pid(tmp_path):
    held = held_by(tmp_path, os.getpid())
    start = time.monotonic()
    with pytest.raises(UserError, match=rf"another tfbench process \(pid {os.getpid()}\) is training this run"):
        lock(tmp_path)
    assert time.monotonic() - start < 1
    os.close(held)
