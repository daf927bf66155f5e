"""Stage 1: the uncompiled model version, its model card and its test files in outputs/download."""

import pytest

# Tests reach the stage through its session fixture (built once, or the test fails), never
# through another test's result: under xdist those run on other workers.
pytestmark = pytest.mark.download


def test_download_is_the_requested_version(settings, downloaded):
    if settings.uncompiled_path is None:
        assert downloaded.info["version_id"] == settings.uncompiled_with_id
    else:
        assert downloaded.info["source"] == settings.uncompiled_path.resolve().as_uri()


def test_model_card_names_the_task_the_settings_ask_for(settings, model_card):
    assert settings.model_task in ("auto", model_card["task"])


def test_cases_are_loaded(cases):
    assert cases, "no validation cases: the model version has no test inputs and CASES_FILE is empty"
