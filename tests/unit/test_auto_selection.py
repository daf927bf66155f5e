"""COMPILER=auto's measurement of a backend over the cases, and its error when none matches: the
checks that failed, and the cases the compiled lengths cut where the uncompiled pipeline did not."""

from __future__ import annotations

import pytest

from mlcompile.selection import measure, no_match
from mlcompile.cases import Case
from mlcompile.tasks import Tolerance, get_task

pytestmark = pytest.mark.unit
CASES = [Case("short", "fine"), Case("long", "a long review " * 20)]


def prediction(label: str, kept: int, tokens: int, max_length: int) -> dict:
    high = {"POSITIVE": 0.9, "NEGATIVE": 0.1} if label == "POSITIVE" else {"POSITIVE": 0.2, "NEGATIVE": 0.8}
    return {"label": label, "probabilities": high,
            "text_info": {"tokens": tokens, "kept": kept, "truncated": tokens > max_length, "bucket": None}}


class FakePipeline:
    """Predicts `label` for every text; keeps at most `max_length` tokens of 60."""

    def __init__(self, label_of_long: str, max_length: int):
        self.label_of_long, self.max_length = label_of_long, max_length

    def predict(self, text: str, params: dict) -> dict:
        tokens = 3 if text == "fine" else 60
        label = "POSITIVE" if tokens == 3 else self.label_of_long
        return prediction(label, min(tokens, self.max_length), tokens, self.max_length)


def test_a_backend_whose_lengths_cut_a_case_is_measured_as_failing_with_the_cut_named():
    task = get_task("sentiment")
    reference = [FakePipeline("NEGATIVE", 256).predict(case.text, {}) for case in CASES]
    measured = measure(FakePipeline("POSITIVE", 32), CASES, reference, task, Tolerance(1e-3, 1e-3))
    assert measured.passed is False and measured.failed_checks == ["long::label", "long::probabilities"]
    [note] = measured.cut_differently
    assert note.startswith("case long: 60 tokens; the compiled pipeline kept the first 32")
    assert "the uncompiled pipeline all of them" in note

    message = no_match({"onnx": measured, "torchscript": measured})
    assert message.startswith("COMPILER=auto: no backend matches the uncompiled model on the validation cases:")
    assert "\n  onnx: 2 checks failed: long::label, long::probabilities" in message
    assert "1 cases were cut by the compiled lengths where the uncompiled pipeline was not" in message


def test_a_matching_backend_passes_and_names_no_cut():
    task = get_task("sentiment")
    reference = [FakePipeline("NEGATIVE", 256).predict(case.text, {}) for case in CASES]
    measured = measure(FakePipeline("NEGATIVE", 256), CASES, reference, task, Tolerance(1e-3, 1e-3))
    assert measured.passed is True and measured.failed_checks == [] and measured.cut_differently == []
    assert measured.seconds >= 0
