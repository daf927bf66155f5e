"""The pipeline plugin (fixtures/) and the upload gate, run by pytester on the real pipeline tests
with the model work faked (tests/pipeline_fakes/mlcompile_fakes.py): stage order, stage selection,
outcomes spooled across xdist workers, every upload refusal, exit codes and the run summary."""

from __future__ import annotations

import sys

import pytest
import transformers.utils.logging

import mlcompile.tasks.keywords
from mlcompile.tasks import ARTIFACT_CHECKS

from ..conftest import registered

pytestmark = pytest.mark.unit
pytest_plugins = ["pytester"]
PROJECT, MODEL = "mlcompile/keywords", "KEYWORDS-COMPILED"
CHECKS_PER_CASE = 4  # keywords: keywords, scores, embedding, invariance
# Imported before the runs: pytester restores sys.modules after each run, and a C extension under
# keybert cannot be loaded twice in one process.
PRELOADED = (transformers.utils.logging, mlcompile.tasks.keywords)


def ran(result) -> list[str]:
    """The stage of each test that ran, in order."""
    reports = [r for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call"]
    return [r.nodeid.split("/test_")[1].split(".py")[0] for r in reports]


def test_stages_run_in_pipeline_order_and_register(fake_pipeline, pytester):
    result = fake_pipeline()
    result.assert_outcomes(passed=3 + 2 + 2 * CHECKS_PER_CASE + len(ARTIFACT_CHECKS) + 1)
    stages_in_order = list(dict.fromkeys(ran(result)))
    assert stages_in_order == ["download", "compile", "validate", "upload"]  # not the files' alphabetical order
    assert registered(pytester) == [f"{MODEL}-1"]
    result.stdout.fnmatch_lines(["validate: 11 passed of 11 checks over 2 cases*",
                                 "upload: registered KEYWORDS-COMPILED-1 (lifecycle staging) in the local registry *"])
    assert (pytester.path / "outputs" / "validate" / "report.html").is_file()


@pytest.mark.parametrize("args, env, stages", [
    (["-m", "compile"], {}, ["compile"]),
    (["-m", "download or upload"], {}, ["download", "upload"]),
    ([], {"COMPILE_PIPELINE_EXECUTION_DOWNLOAD": "true"}, ["download"]),
    ([], {"COMPILE_PIPELINE_EXECUTION_COMPILE": "true", "COMPILE_PIPELINE_EXECUTION_TEST": "true"},
     ["compile", "validate"]),
])
def test_markers_and_switches_select_stages(fake_pipeline, args, env, stages):
    result = fake_pipeline(*args, **env)
    assert list(dict.fromkeys(ran(result))) == stages


def test_a_deselected_validate_stage_downloads_nothing_at_collection(fake_pipeline, pytester):
    result = fake_pipeline("-m", "compile", "--collect-only")
    assert result.ret == 0
    assert not (pytester.path / "outputs" / "download").exists()


def test_refused_without_any_verdict(fake_pipeline, pytester):
    result = fake_pipeline("-m", "upload")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*upload refused: no validation verdict for this compiled model*",
                                 "upload: refused: no validation verdict*"])
    assert registered(pytester) == []


def test_refused_when_a_check_failed_and_the_summary_says_so(fake_pipeline, pytester):
    assert fake_pipeline().ret == 0  # registered once
    result = fake_pipeline("--rebuild", "validate", FAKE_FAILING="alpha::scores", FAKE_COMPILE_SALT="2")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*alpha::scores: scripted*", "upload: refused: validation did not pass:*"])
    assert "already registered" not in result.stdout.str()  # an earlier run's record is not this run's
    assert registered(pytester) == [f"{MODEL}-1"]


def test_refused_when_recompiled_since_validation(fake_pipeline, pytester):
    assert fake_pipeline("-m", "validate").ret == 0
    assert fake_pipeline("-m", "compile", FAKE_COMPILE_SALT="other bytes").ret == 0
    result = fake_pipeline("-m", "upload", FAKE_COMPILE_SALT="other bytes")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*the model was recompiled since it was validated*"])
    assert registered(pytester) == []


def test_refused_when_validated_under_other_rules(fake_pipeline, pytester):
    assert fake_pipeline("-m", "validate", ATOL="0.5").ret == 0
    result = fake_pipeline("-m", "upload")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*made under other rules than the current settings call for:",
                                 "*ATOL: 0.5 in the verdict, 0.001 now"])
    assert registered(pytester) == []
    assert fake_pipeline("-m", "upload", ATOL="0.5").ret == 0  # the same rules: accepted
    assert registered(pytester) == [f"{MODEL}-1"]


def test_a_warm_rerun_reuses_the_verdict_and_registers_nothing_new(fake_pipeline, pytester):
    assert fake_pipeline().ret == 0
    again = fake_pipeline("-m", "upload")
    assert again.ret == 0
    again.stdout.fnmatch_lines(["upload: already registered, nothing new: KEYWORDS-COMPILED-1 *"])
    assert registered(pytester) == [f"{MODEL}-1"]


def test_a_registry_error_sets_exit_code_11_and_each_stage_fails_once(fake_pipeline, pytester):
    result = fake_pipeline(FAKE_DOWNLOAD_ERROR="KEYWORDS-TRAINED-1 not found (scripted)")
    assert result.ret == 11
    result.stdout.fnmatch_lines(["*download: KEYWORDS-TRAINED-1 not found (scripted)*"])
    calls = (pytester.path / "fake-calls.txt").read_text().splitlines()
    assert calls.count("download") == 1  # not retried by every test that needs it
    assert registered(pytester) == []


def test_a_backend_that_cannot_run_stops_before_any_stage_with_10(fake_pipeline, pytester, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_neuronx", None)
    result = fake_pipeline(COMPILER="neuron")
    assert result.ret == 10
    assert not (pytester.path / "outputs" / "download").exists()
