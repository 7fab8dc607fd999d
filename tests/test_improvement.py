"""The one rule of "is this value better": Keras' MonitorCallback semantics, both spellings of a direction."""

import math

import pytest

from tfbench.engine.improvement import best_of, improves
from tfbench.study.study import best_so_far


@pytest.mark.parametrize(("low", "high"), [("min", "max"), ("minimize", "maximize")])
def test_lower_wins_when_minimizing_and_higher_when_maximizing_in_either_spelling(low, high):
    assert improves(0.4, 0.5, low) and not improves(0.6, 0.5, low) and not improves(0.5, 0.5, low)
    assert improves(0.6, 0.5, high) and not improves(0.4, 0.5, high) and not improves(0.5, 0.5, high)


def test_an_improvement_must_beat_the_best_by_more_than_min_delta():
    assert not improves(0.45, 0.5, "min", min_delta=0.1) and improves(0.35, 0.5, "min", min_delta=0.1)
    assert not improves(0.55, 0.5, "max", min_delta=0.1) and improves(0.65, 0.5, "max", min_delta=0.1)


def test_a_missing_or_non_finite_value_never_improves_and_any_finite_one_beats_no_best():
    for value in (None, math.nan, math.inf, -math.inf, "loss"):
        assert not improves(value, None, "min") and not improves(value, 1.0, "max")
    assert improves(1e9, None, "min") and improves("0.5", 1.0, "min")  # a number read as text counts


def test_an_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="unknown direction 'up'"):
        improves(1.0, 0.5, "up")


def test_best_of_skips_non_finite_values_and_keeps_the_first_of_equals():
    rows = [{"n": 0, "v": math.nan}, {"n": 1, "v": 0.3}, {"n": 2, "v": 0.1}, {"n": 3, "v": 0.1}, {"n": 4, "v": None}]
    assert best_of(rows, "minimize", key=lambda r: r["v"])["n"] == 2
    assert best_of(rows, "maximize", key=lambda r: r["v"])["n"] == 1
    assert best_of([math.nan, 2.0, 1.0], "min") == 1.0  # min() would answer nan here
    assert best_of([None, math.nan], "max") is None and best_of([], "max") is None


def test_a_study_s_best_so_far_follows_the_same_rule():
    rows = [{"number": i, "state": "finished", "value": v} for i, v in enumerate([0.5, 0.7, 0.6, 0.9])]
    assert best_so_far(rows, "maximize") == [(0, 0.5), (1, 0.7), (2, 0.7), (3, 0.9)]
    assert best_so_far(rows, "minimize") == [(0, 0.5), (1, 0.5), (2, 0.5), (3, 0.5)]
