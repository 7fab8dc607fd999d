"""TensorFlow's native start-up lines stay off the terminal; Python output does not."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
from tfbench.native_log import import_tensorflow_quietly
import_tensorflow_quietly()
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
print("devices", len(tf.config.list_logical_devices("CPU")))
print("python stderr still works", file=sys.stderr)
"""


@pytest.mark.slow
def test_tensorflow_imports_without_native_lines_and_devices_stay_configurable(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), "HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + SCRIPT], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "devices 2"
    assert result.stderr.strip() == "python stderr still works"
    logged = "".join(p.read_text() for p in tmp_path.glob("tfbench-native-*.log"))
    assert "absl" in logged or "oneDNN" in logged or "cuda" in logged.lower()
