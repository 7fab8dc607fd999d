"""An image folder with a damaged file or a single class is refused before training, naming the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import runner_env

from tfbench import data
from tfbench.data.images import damage
from tfbench.errors import UserError
from tfbench.spec import DataSpec


def _encode(kind: str, seed: int) -> bytes:
    import tensorflow as tf

    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8, 3)).astype(np.uint8)
    encode = tf.io.encode_png if kind == "png" else tf.io.encode_jpeg
    return encode(pixels).numpy()


def _folder(root: Path, classes=("cat", "dog"), per_class: int = 4, kind: str = "png") -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i}.{kind}").write_bytes(_encode(kind, 10 * c + i))
    return root


def _flip_a_pixel_byte(png: bytes) -> bytes:
    at = png.index(b"IDAT") + 10
    return png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1 :]


DAMAGES = {
    "empty": (lambda png: b"", "is empty"),
    "cut-short": (lambda png: png[: len(png) // 2], "is cut short"),
    "flipped-byte": (_flip_a_pixel_byte, "bad checksum in its IDAT chunk"),
    "not-an-image": (lambda png: b"hello, I am text\n", "is not a PNG, JPEG, GIF or BMP image"),
}


@pytest.mark.parametrize("how", sorted(DAMAGES))
def test_a_damaged_png_is_named_before_training(tmp_path, how):
    root = _folder(tmp_path / "imgs")
    victim = root / "dog" / "2.png"
    change, words = DAMAGES[how]
    victim.write_bytes(change(victim.read_bytes()))
    with pytest.raises(UserError) as info:
        data.describe(DataSpec(source=f"images:{root}"))
    assert info.value.message.startswith(f"{victim} ") and words in info.value.message
    assert info.value.location == f"data.source ({root})"
    assert "remove or replace" in info.value.hint


def test_several_damaged_files_are_counted(tmp_path):
    root = _folder(tmp_path / "imgs")
    for name in ("cat/1.png", "dog/0.png", "dog/3.png"):
        (root / name).write_bytes(b"")
    with pytest.raises(UserError, match=r"cat/1.png is empty \(and 2 more damaged files\)"):
        data.describe(DataSpec(source=f"images:{root}", options={"image_size": [8, 8]}))


def test_a_cut_short_jpeg_is_named(tmp_path):
    root = _folder(tmp_path / "imgs", kind="jpg")
    victim = root / "cat" / "0.jpg"
    victim.write_bytes(victim.read_bytes()[:-200])
    with pytest.raises(UserError, match="no JPEG end marker") as info:
        data.describe(DataSpec(source=f"images:{root}"))
    assert str(victim) in info.value.message


def test_whole_files_pass_the_check(tmp_path):
    for kind in ("png", "jpg"):
        for seed in range(20):
            path = tmp_path / f"{seed}.{kind}"
            path.write_bytes(_encode(kind, seed))
            assert damage(str(path)) is None, path


def test_a_one_class_folder_is_refused(tmp_path):
    root = _folder(tmp_path / "imgs", classes=("only",))
    with pytest.raises(UserError) as info:
        data.describe(DataSpec(source=f"images:{root}"))
    assert "one class folder ('only')" in info.value.message and "at least two" in info.value.message


@pytest.mark.slow
def test_a_run_on_a_damaged_folder_is_one_line_naming_the_file(tmp_path):
    """The real command: exit 2 before any epoch, the file named, no TensorFlow graph error."""
    root = _folder(tmp_path / "imgs")
    victim = root / "cat" / "3.png"
    victim.write_bytes(_flip_a_pixel_byte(victim.read_bytes()))
    preset = tmp_path / "p.toml"
    preset.write_text(
        f'name = "imgs"\n[data]\nsource = "images:{root}"\nbatch_size = 4\n'
        '[[model.layers]]\ntype = "Flatten"\n[[model.layers]]\ntype = "Dense"\nunits = 2\nactivation = "softmax"\n'
        "[train]\nepochs = 1\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "tfbench", "run", str(preset), "--runs-dir", str(tmp_path / "runs"), "--quiet"],
        cwd=tmp_path,
        env=runner_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {preset}: data.source ({root}): {victim} is damaged")
    assert "Traceback" not in result.stderr
