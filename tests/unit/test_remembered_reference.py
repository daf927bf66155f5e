"""The uncompiled pipeline's predictions are made once per process: COMPILER=auto's reference
predictions of the cases serve the validate stage."""

import pytest

from mlcompile.tasks import RememberedPipeline

pytestmark = pytest.mark.unit


class Counting:
    def __init__(self):
        self.calls = 0

    def predict(self, text, params):
        self.calls += 1
        return {"text": text, "params": dict(params), "tensor": [1.0, 2.0]}


def test_each_case_is_predicted_once_and_callers_cannot_change_what_is_kept():
    pipeline = RememberedPipeline(Counting())
    first = pipeline.predict("a text", {"top_n": 3})
    first["tensor"].append(99.0)  # a caller's change stays with the caller
    again = pipeline.predict("a text", {"top_n": 3})
    assert pipeline.pipeline.calls == 1 and again["tensor"] == [1.0, 2.0]
    pipeline.predict("a text", {"top_n": 5})  # other parameters, another prediction
    assert pipeline.pipeline.calls == 2
