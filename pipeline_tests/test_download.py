"""Stage 1: the uncompiled model version, its model card and its test files in outputs/download."""

import pytest

# Tests reach the stage through its session fixture (built once, or the test fails), never
# through another test's result: under xdist those run on other workers.
pytestmark = pytest.mark.download


def test_download_is_the_requested_version(settings, downloaded):
    assert downloaded.info["version_id"] == settings.uncompiled_with_id


def test_model_card_matches_project(settings, model_card):
    assert model_card["task"] == settings.model_task


def test_cases_are_loaded(cases):
    assert cases, "no validation cases: the model version has no test inputs and CASES_FILE is empty"
