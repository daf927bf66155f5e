"""Stage 2: the compiled model in outputs/compile, loadable and runnable."""

import pytest

from mlcompile import stages

pytestmark = pytest.mark.compile


@pytest.mark.dependency(name="compile")
def test_compile(settings, compiled):
    assert stages.stage(settings, "compile").problem(compiled.fingerprint) is None


@pytest.mark.dependency(depends=["compile"])
def test_compiled_model_runs(compiled_pipeline, cases):
    prediction = compiled_pipeline.predict(cases[0].text, cases[0].params)
    assert prediction["text_info"]["bucket"] is not None
