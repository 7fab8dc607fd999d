"""Fixed pictures for the augmentation preview and the Explain view: numpy only, no TensorFlow.

A triangle drawn on 28×28 (as `builtin:shapes` draws one), eight geometric variants of it, and an
explanation whose heat map sits on the shape, so the screens can be pictured from data that never
changes.
"""

from __future__ import annotations

import numpy as np

from tfbench.augment_preview import AugmentPreview
from tfbench.explain import Explanation, LayerMaps, overlay

SIDE = 28


def triangle(cy: float = 14.0, cx: float = 14.0, half: float = 8.0) -> np.ndarray:
    """An upright filled triangle (28×28×1, values 0–1)."""
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) + 0.5
    depth = (rows - cy + half) / (2 * half)
    mask = (depth >= 0) & (depth <= 1) & (np.abs(cols - cx) <= depth * half)
    return (mask * 0.9)[..., None].astype(np.float32)


def augmentation() -> AugmentPreview:
    """The triangle and eight variants: flipped, shifted and dimmed ones."""
    base = triangle()
    variants = [
        base[::-1],
        np.roll(base, 3, axis=1),
        np.roll(base, -3, axis=0),
        base * 0.6,
        np.rot90(base).copy(),
        np.roll(base, (2, -2), axis=(0, 1)),
        triangle(half=6.0),
        np.clip(base * 1.3, 0, 1),
    ]
    return AugmentPreview(
        original=base,
        variants=variants,
        layers=["RandomFlip(mode=vertical)", "RandomTranslation(height_factor=0.1, width_factor=0.1)"],
        seed=42,
        roll=0,
        value_range=(0.0, 1.0),
        seconds=0.01,
    )


def explanation() -> Explanation:
    """A triangle explained: the heat map peaks on it, two layers of feature maps."""
    image = triangle(cy=15.0, cx=12.0)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    heat = np.exp(-(((rows - 17) ** 2) + (cols - 12) ** 2) / 30.0).astype(np.float32)
    cam = heat[::3, ::3]
    maps_26 = [np.roll(image[1:27, 1:27, 0], k, axis=1) for k in range(6)]
    maps_11 = [heat[::2, ::2][:11, :11] * (1 - k / 8) for k in range(6)]
    return Explanation(
        image=image,
        heat=heat,
        cam=cam,
        overlay=overlay(image, heat),
        peak=(17, 12),
        target=2,
        target_name="triangle",
        top=[("triangle", 0.912), ("square", 0.071), ("circle", 0.017)],
        layer="conv2d_1",
        method="grad-cam",
        activations=[
            LayerMaps("conv2d", (26, 26, 16), list(range(6)), maps_26),
            LayerMaps("conv2d_1", (11, 11, 32), list(range(6)), maps_11),
        ],
        label="triangle",
        source="validation sample 4",
        seconds=0.05,
    )
