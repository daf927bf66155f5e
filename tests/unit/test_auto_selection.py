"""COMPILER=auto's measurement of a backend over the cases, and its error when none matches: the
checks that failed, and the cases the compiled lengths cut where the uncompiled pipeline did not; its pick:
the fastest that passed the cases and, at reduced precision, the regression set's checks (fastest first)."""

from __future__ import annotations

import pytest

from mlcompile.compiled import Measurement, Selection
from mlcompile.errors import ArtifactError
from mlcompile.selection import measure, no_match, pick, predict_cases
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
    task = get_task("text-classification")
    reference = [FakePipeline("NEGATIVE", 256).predict(case.text, {}) for case in CASES]
    measured = measure(FakePipeline("POSITIVE", 32), CASES, reference, task, Tolerance(1e-3, 1e-3))
    assert measured.passed is False and measured.failed_checks == ["long::label", "long::probabilities"]
    [note] = measured.cut_differently
    assert note.startswith("case long: 60 tokens; the compiled pipeline kept the first 32")
    assert "the uncompiled pipeline all of them" in note

    message = no_match({"onnx": measured, "torchscript": measured})
    assert message.startswith("COMPILER=auto: no candidate matches the uncompiled model on the validation cases:")
    assert "\n  onnx: 2 checks failed: long::label, long::probabilities" in message
    assert "1 cases were cut by the compiled lengths where the uncompiled pipeline was not" in message


def test_a_matching_backend_passes_and_names_no_cut():
    task = get_task("text-classification")
    reference = [FakePipeline("NEGATIVE", 256).predict(case.text, {}) for case in CASES]
    measured = measure(FakePipeline("NEGATIVE", 256), CASES, reference, task, Tolerance(1e-3, 1e-3))
    assert measured.passed is True and measured.failed_checks == [] and measured.cut_differently == []
    assert measured.seconds >= 0


class CallCounter:
    def __init__(self):
        self.calls = []

    def predict(self, text, params):
        return self.predict_many([text], params)[0]

    def predict_many(self, texts, params):
        self.calls.append((list(texts), params))
        return [{"text": text, "top_n": params.get("top_n")} for text in texts]


def test_a_batched_workload_is_timed_in_one_call_per_set_of_parameters():
    cases = [Case("a", "one", {"top_n": 3}), Case("b", "two", {"top_n": 5}), Case("c", "three", {"top_n": 3})]
    pipeline = CallCounter()
    predictions = predict_cases(pipeline, cases, "batched")
    assert pipeline.calls == [(["one", "three"], {"top_n": 3}), (["two"], {"top_n": 5})]
    assert [p["text"] for p in predictions] == ["one", "two", "three"]  # in the cases' order
    pipeline.calls.clear()
    predict_cases(pipeline, cases, "requests")
    assert len(pipeline.calls) == 3


def measured() -> dict[str, Measurement]:
    return {"onnx": Measurement(seconds=0.40, passed=True),
            "onnx-int8": Measurement(seconds=0.20, passed=True, precision="int8"),
            "onnx-int8-mixed": Measurement(seconds=0.30, passed=True, precision="int8"),
            "torchscript-bf16": Measurement(seconds=0.10, passed=False, precision="bf16", failed_checks=["a::label"])}


def test_a_reduced_precision_candidate_failing_the_regression_set_is_not_kept():
    asked = []
    found = measured()

    def failures(name: str) -> list[str]:
        asked.append(name)
        return ["regression-set::label_agreement: 0.98 < 1.0"] if name == "onnx-int8" else []

    assert pick(found, failures) == "onnx-int8-mixed"
    assert asked == ["onnx-int8", "onnx-int8-mixed"]  # fastest first; the case failure never asked
    assert not found["onnx-int8"].passed and found["onnx-int8"].failed_checks == [
        "regression-set::label_agreement: 0.98 < 1.0"]  # recorded, so the card says why


def test_fp32_is_kept_without_asking_when_every_reduced_candidate_fails():
    asked = []
    assert pick(measured(), lambda name: asked.append(name) or ["regression-set::x"]) == "onnx"
    assert asked == ["onnx-int8", "onnx-int8-mixed"]


def test_nothing_passing_is_an_error_naming_each_candidate():
    found = {"onnx-int8": Measurement(seconds=0.2, passed=True, precision="int8")}
    with pytest.raises(ArtifactError, match="onnx-int8: 1 checks failed: regression-set::keywords_exact_rate"):
        pick(found, lambda name: ["regression-set::keywords_exact_rate"])


def test_ratios_to_the_uncompiled_pipeline():
    selection = Selection(kept="onnx", candidates=measured(), workload="cases", uncompiled_seconds=0.8)
    assert selection.vs_uncompiled("onnx") == 2.0 and selection.vs_uncompiled("onnx-int8") == 4.0
    assert Selection(kept="onnx", candidates=measured(), workload="cases").vs_uncompiled("onnx") is None
