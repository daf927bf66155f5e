"""close() and same(): pass/fail and the reported observed/allowed/margin numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlcompile.compare import CheckResult, close, same

pytestmark = pytest.mark.unit


def test_close_passes_within_tolerance_with_hand_computed_numbers():
    # diff = [0, 0.15]; allowed = 0.1 + 0.05 * |ref| = [0.15, 0.2]; slack = [0.15, 0.05]
    result = close("case", "embedding", [1.0, 2.15], [1.0, 2.0], atol=0.1, rtol=0.05)
    assert result.passed
    assert result.observed == pytest.approx(0.15)
    assert result.allowed == pytest.approx(0.2)
    assert result.margin == pytest.approx(0.05)
    assert result.details == {"elements": 2, "worst_element": 1, "max_abs_diff": pytest.approx(0.15)}
    assert result.check_id == "case::embedding"


def test_close_fails_beyond_tolerance_with_negative_margin():
    # diff = [0, 0.25]; allowed = [0.15, 0.2]; slack = [0.15, -0.05]
    result = close("case", "embedding", [1.0, 2.25], [1.0, 2.0], atol=0.1, rtol=0.05)
    assert not result.passed
    assert result.observed == pytest.approx(0.25)
    assert result.allowed == pytest.approx(0.2)
    assert result.margin == pytest.approx(-0.05)
    assert "element 1" in result.message


def test_close_boundary_is_inclusive():
    result = close("c", "k", [0.5], [0.0], atol=0.5, rtol=0.0)
    assert result.passed and result.margin == 0.0


def test_close_uses_absolute_value_of_reference():
    result = close("c", "k", [-2.15], [-2.0], atol=0.1, rtol=0.05)
    assert result.passed and result.allowed == pytest.approx(0.2)


def test_close_fails_on_shape_mismatch():
    result = close("c", "k", np.zeros((2, 3)), np.zeros((3, 2)), atol=1, rtol=1)
    assert not result.passed
    assert "(2, 3)" in result.message and "(3, 2)" in result.message
    assert result.margin is None


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_close_fails_on_nan_or_infinite_output(bad):
    result = close("c", "k", [1.0, bad], [1.0, 1.0], atol=1e9, rtol=1e9)
    assert not result.passed and "NaN" in result.message


def test_close_fails_on_nan_reference():
    assert not close("c", "k", [1.0], [np.nan], atol=1e9, rtol=1e9).passed


def test_close_passes_for_two_empty_arrays():
    result = close("c", "k", [], [], atol=1e-3, rtol=1e-3)
    # Nothing was compared, so no margin that could pose as the closest call in a summary.
    assert result.passed and result.observed is None and result.margin is None


def test_same_passes_when_equal():
    result = same("c", "keywords", ["a", "b"], ["a", "b"], "keywords")
    assert result.passed and result.message == "same keywords: ['a', 'b']"


def test_same_fails_when_different_and_names_both_values():
    result = same("c", "keywords", ["a"], ["b"], "keywords")
    assert not result.passed
    assert result.message == "keywords differ: compiled ['a'] vs uncompiled ['b']"
    assert result.details == {"compiled": ["a"], "uncompiled": ["b"]}


def test_same_shortens_long_values():
    result = same("c", "k", "x" * 500, "y", "text")
    assert not result.passed and "..." in result.message and len(result.message) < 300


def test_check_result_round_trips_through_json():
    result = close("c", "k", [1.0, 2.15], [1.0, 2.0], atol=0.1, rtol=0.05)
    assert CheckResult.from_dict(json.loads(json.dumps(result.as_dict()))) == result


def test_close_reports_the_element_using_most_of_its_tolerance():
    result = close("c", "t", [100.05, 0.0005], [100.0, 0.0], atol=1e-3, rtol=1e-3)
    assert result.passed
    assert result.details["worst_element"] == 1
    assert result.observed == pytest.approx(0.0005)
    assert result.allowed == pytest.approx(0.001)
    assert result.margin == pytest.approx(0.0005)
    assert result.details["max_abs_diff"] == pytest.approx(0.05)


def test_close_with_zero_tolerance_accepts_only_exact_values():
    assert close("c", "t", [1.0, 2.0], [1.0, 2.0], atol=0, rtol=0).passed
    failed = close("c", "t", [1.0, 2.0000001], [1.0, 2.0], atol=0, rtol=0)
    assert not failed.passed and failed.details["worst_element"] == 1


def test_combine_reports_failures_first_then_the_nearest_pass():
    from mlcompile.compare import combine

    ok = close("c", "x", [1.0], [1.0], atol=0.1, rtol=0)
    near = close("c", "x", [1.09], [1.0], atol=0.1, rtol=0)
    bad = close("c", "x", [1.5], [1.0], atol=0.1, rtol=0)
    labels = same("c", "label", "POSITIVE", "POSITIVE", "label")

    passed = combine("c", "invariance", {"in batch": ok, "padded": near, "label": labels})
    assert passed.passed and passed.check_id == "c::invariance"
    assert passed.margin == pytest.approx(0.01) and "padded" in passed.message
    assert set(passed.details["parts"]) == {"in batch", "padded", "label"}

    failed = combine("c", "invariance", {"in batch": ok, "padded": bad, "label": same("c", "l", "A", "B", "label")})
    assert not failed.passed
    assert "padded:" in failed.message and "label:" in failed.message and "in batch" not in failed.message
    assert failed.margin == pytest.approx(-0.4)

    assert combine("c", "invariance", {"label": labels}).margin is None
