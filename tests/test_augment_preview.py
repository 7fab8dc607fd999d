"""The augmentation preview runs the model's own leading augmentation layers, seeded, with real Keras."""

from __future__ import annotations

import numpy as np
import pytest

from tfbench import augment_preview
from tfbench.augment_preview import Augmenter, leading_layers
from tfbench.engine_calls import EngineCalls
from tfbench.errors import UserError
from tfbench.spec import Component, experiment_from_dict

AUGMENTING = [
    {"type": "Rescaling", "scale": 0.5},
    {"type": "RandomFlip", "mode": "horizontal"},
    {"type": "RandomRotation", "factor": 0.1},
    {"type": "RandomZoom", "height_factor": 0.2},
    {"type": "Conv2D", "filters": 4, "kernel_size": 3},
    {"type": "Flatten"},
    {"type": "Dense", "units": 3, "activation": "softmax"},
]


def _layers(entries: list[dict]) -> list[Component]:
    return experiment_from_dict({"name": "a", "model": {"layers": entries}}).model.layers


def _sample() -> np.ndarray:
    """A bright off-centre square on 28×28×1, so flips, turns and zooms all move pixels."""
    x = np.zeros((28, 28, 1), np.float32)
    x[4:12, 3:15] = 1.0
    return x


def test_the_leading_run_ends_at_its_last_augmentation_layer():
    layers = _layers([*AUGMENTING[:2], {"type": "Rescaling", "scale": 2.0}, *AUGMENTING[4:]])
    assert [layer.type for layer in leading_layers(layers)] == ["Rescaling", "RandomFlip"]
    assert leading_layers(_layers(AUGMENTING[4:])) == []


def test_a_roll_is_the_same_pictures_every_time_and_the_next_roll_new_ones():
    augmenter = Augmenter(_layers(AUGMENTING), (28, 28, 1))
    first = augmenter.preview(_sample(), seed=42, roll=0)
    again = augmenter.preview(_sample(), seed=42, roll=0)
    other = augmenter.preview(_sample(), seed=42, roll=1)
    assert len(first.variants) == augment_preview.VARIANTS
    np.testing.assert_array_equal(np.stack(first.variants), np.stack(again.variants))
    assert not np.allclose(np.stack(first.variants), np.stack(other.variants))
    assert len({v.tobytes() for v in first.variants}) == augment_preview.VARIANTS  # eight different pictures
    assert first.layers[1:] == [
        "RandomFlip(mode=horizontal)",
        "RandomRotation(factor=0.1)",
        "RandomZoom(height_factor=0.2)",
    ]


def test_the_sample_is_shown_as_inference_sees_it_and_the_variants_share_its_range():
    preview = Augmenter(_layers(AUGMENTING), (28, 28, 1)).preview(_sample(), seed=0)
    np.testing.assert_allclose(preview.original, _sample() * 0.5)  # rescaled, not augmented
    assert preview.value_range == (0.0, 0.5)
    assert max(float(v.max()) for v in preview.variants) <= 0.5 + 1e-5


def test_traced_rerolls_show_what_eager_ones_show():
    augmenter = Augmenter(_layers(AUGMENTING), (28, 28, 1))
    eager = augmenter.preview(_sample(), seed=7, roll=3)
    assert augmenter.compile() > 0 and augmenter.compiled
    traced = augmenter.preview(_sample(), seed=7, roll=3)
    np.testing.assert_allclose(np.stack(traced.variants), np.stack(eager.variants), atol=1e-5)


def test_a_stack_without_augmentation_says_what_to_add():
    with pytest.raises(UserError, match="does not start with augmentation layers") as caught:
        Augmenter(_layers(AUGMENTING[4:]), (28, 28, 1))
    assert caught.value.location == "model.layers[0]"


def test_data_that_is_not_images_is_refused():
    with pytest.raises(UserError, match="needs images") as caught:
        Augmenter(_layers(AUGMENTING), (2,))
    assert caught.value.location == "data.source"


def test_engine_calls_preview_a_bundled_dataset_and_cycle_its_samples():
    exp = experiment_from_dict(
        {"name": "a", "data": {"source": "builtin:shapes"}, "model": {"layers": AUGMENTING}, "train": {"seed": 3}}
    )
    calls = EngineCalls()
    first, second = calls.augment(exp, 0, 0), calls.augment(exp, 1, 0)
    assert first.original.shape == (28, 28, 1) and first.seed == 3
    assert not np.allclose(first.original, second.original)
    assert calls.ready_rerolls(exp) > 0
    np.testing.assert_allclose(np.stack(calls.augment(exp, 0, 0).variants), np.stack(first.variants), atol=1e-5)
