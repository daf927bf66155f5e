"""Stage 2: the compiled model in outputs/compile, loadable and runnable."""

import pytest

from mlcompile import stages

# Tests reach the stage through its session fixture (built once, or the test fails), never
# through another test's result: under xdist those run on other workers.
pytestmark = pytest.mark.compile


def test_compile(settings, compiled):
    assert stages.stage(settings, "compile").problem(compiled.fingerprint) is None


def test_compiled_model_runs(compiled_pipeline, cases):
    prediction = compiled_pipeline.predict(cases[0].text, cases[0].params)
    assert prediction["text_info"]["bucket"] is not None
