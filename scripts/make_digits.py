"""Make tfbench/data/files/digits.npz, the bundled `builtin:digits` dataset.

The data are the 1,797 8x8 handwritten digits of the UCI "Optical Recognition of Handwritten
Digits" dataset (Alpaydin & Kaynak, 1998; CC BY 4.0) as copied in scikit-learn. scikit-learn is
only needed to run this script, never by tfbench itself:

    python -m venv /tmp/mkdigits && /tmp/mkdigits/bin/pip install scikit-learn
    /tmp/mkdigits/bin/python scripts/make_digits.py

The file holds `x` (uint8, 1797x8x8, values 0-16) and `y` (uint8, 1797, labels 0-9), compressed;
tfbench turns `x` into float32 (8, 8, 1) when it loads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parent.parent / "tfbench" / "data" / "files" / "digits.npz"


def main() -> None:
    digits = load_digits()
    x = digits.images.astype(np.uint8)  # values are whole numbers 0..16
    assert np.array_equal(x, digits.images), "digits are not whole numbers"
    y = digits.target.astype(np.uint8)
    assert x.shape == (1797, 8, 8) and y.shape == (1797,)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, x=x, y=y)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
