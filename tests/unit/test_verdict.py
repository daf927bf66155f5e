"""Verdict and its rules, the upload gate, the spool shared between processes, and the HTML
validation report."""

from __future__ import annotations

import json
import time

import pytest

from mlcompile.compare import CheckResult, close
from mlcompile.gate import refusal
from mlcompile.batching import truncation_note
from mlcompile.report import render_html
from mlcompile.spool import CheckOutcome, CheckSpool, ValidationPlan
from mlcompile.verdict import Outcome, Rules, Verdict

pytestmark = pytest.mark.unit

EXPECTED = ["doc1::embedding", "doc1::keywords", "doc2::embedding"]
RULES = Rules(1e-3, 1e-3, {"doc1": "d1", "doc2": "d2"}, tuple(EXPECTED))


def result(check_id: str, margin: float | None, truncated: bool = False) -> CheckResult:
    case, check = check_id.split("::")
    return CheckResult(case, check, margin is None or margin >= 0, f"margin {margin}", 0.001, 0.002, margin,
                       {"compiled_text": {"tokens": 300, "bucket": 256, "truncated": truncated}})


def verdict(outcomes=("passed", "passed", "passed")) -> Verdict:
    """A verdict over EXPECTED with these outcomes; None leaves a check missing."""
    v = Verdict("cid", RULES)
    for check_id, outcome in zip(EXPECTED, outcomes):
        if outcome is not None:
            v.outcomes[check_id] = Outcome(outcome)
    return v


def test_passes_only_when_every_expected_check_passed():
    assert verdict().passed is True


@pytest.mark.parametrize("bad", [None, "failed", "error", "skipped"])
def test_any_missing_failed_or_errored_check_fails_the_verdict(bad):
    assert verdict(outcomes=["passed", bad, "passed"]).passed is False


def test_no_expected_checks_never_passes():
    empty = Verdict("cid", Rules(1e-3, 1e-3, {}, ()))
    assert empty.passed is False
    assert empty.problems() == ["no validation checks were defined (no cases?)"]


def test_problems_name_failing_checks_and_count_missing_ones():
    v = verdict(outcomes=["failed", "error", None])
    v.messages["doc1::embedding"] = "max |diff| 0.5"
    problems = v.problems()
    assert problems[0] == "doc1::embedding: failed: max |diff| 0.5"
    assert problems[1] == "doc1::keywords: error"
    assert problems[2].startswith("1 of 3 checks did not run (e.g. doc2::embedding)")
    assert verdict().problems() == []


def test_problems_are_limited():
    v = verdict(outcomes=["failed", "failed", "failed"])
    assert v.problems(limit=1)[-1] == "... and 2 more checks that did not pass"


def test_summary_counts_outcomes_and_finds_smallest_margin_and_truncation():
    v = verdict(outcomes=["passed", "failed", None])
    v.results["doc1::embedding"] = result("doc1::embedding", 0.5, truncated=True)
    v.results["doc1::keywords"] = result("doc1::keywords", -0.25)
    v.results["doc2::embedding"] = result("doc2::embedding", None)
    summary = v.summary()
    assert summary["outcomes"] == {"passed": 1, "failed": 1, "not run": 1}
    assert summary["checks"] == 3 and summary["cases"] == 2 and summary["passed"] is False
    assert summary["smallest_margin"] == {"check": "doc1::keywords", "margin": -0.25}
    assert summary["truncated_cases"] == ["doc1"]


def test_summary_without_results_has_no_margin():
    assert verdict().summary()["smallest_margin"] is None


def test_as_dict_from_dict_round_trip_through_json():
    v = verdict(outcomes=["passed", "failed", None])
    v.results["doc1::embedding"] = result("doc1::embedding", 0.5)
    v.messages["doc1::keywords"] = "differ"
    data = json.loads(json.dumps(v.as_dict()))
    assert data["summary"]["outcomes"]["failed"] == 1
    assert data["outcomes"]["doc1::keywords"] == "failed"  # verdict.json keeps the words
    assert data["results"]["doc1::embedding"]["margin"] == 0.5
    again = Verdict.from_dict(data)
    assert again == v and again.outcomes["doc1::keywords"] is Outcome.FAILED
    assert isinstance(again.results["doc1::embedding"], CheckResult)


def test_record_takes_a_results_outcome_and_message_unless_its_test_says_otherwise():
    v = Verdict("cid", RULES)
    v.record("doc1::embedding", result("doc1::embedding", 0.5))
    v.record("doc1::keywords", result("doc1::keywords", -0.25))
    v.record("doc2::embedding", None, Outcome.ERROR, "fixture failed")
    assert v.outcomes == {"doc1::embedding": Outcome.PASSED, "doc1::keywords": Outcome.FAILED,
                          "doc2::embedding": Outcome.ERROR}
    assert v.messages == {"doc1::keywords": "margin -0.25", "doc2::embedding": "fixture failed"}
    assert set(v.results) == {"doc1::embedding", "doc1::keywords"}


def test_spool_round_trips_plan_and_outcomes(tmp_path):
    spool = CheckSpool(tmp_path / "spool")
    assert spool.plan() is None and spool.verdict() is None
    spool.write_plan(ValidationPlan("cid", RULES, reused=False))
    checked = close("doc1", "embedding", [1.0], [1.0], 1e-3, 1e-3)
    spool.write_outcome(CheckOutcome("doc1::embedding", Outcome.PASSED, checked))
    spool.write_outcome(CheckOutcome("doc1::keywords", Outcome.FAILED, None, "keywords differ"))
    got = spool.verdict()
    assert got.rules == RULES and got.compiled_content_id == "cid"
    assert got.outcomes == {"doc1::embedding": Outcome.PASSED, "doc1::keywords": Outcome.FAILED}
    assert got.results == {"doc1::embedding": checked}
    assert got.messages == {"doc1::keywords": "keywords differ"}
    assert got.passed is False


def test_spool_outcome_is_overwritten_by_a_later_write(tmp_path):
    spool = CheckSpool(tmp_path)
    spool.write_outcome(CheckOutcome("doc1::embedding", Outcome.FAILED, None, "first"))
    spool.write_outcome(CheckOutcome("doc1::embedding", Outcome.PASSED, None))
    assert [(o.outcome, o.message) for o in spool.outcomes()] == [(Outcome.PASSED, "")]


def test_wait_for_returns_missing_ids_after_timeout(tmp_path):
    spool = CheckSpool(tmp_path)
    spool.write_outcome(CheckOutcome("doc1::embedding", Outcome.PASSED, None))
    started = time.monotonic()
    missing = spool.wait_for(EXPECTED, timeout=0.05, poll=0.01)
    assert missing == ["doc1::keywords", "doc2::embedding"]
    assert 0.04 <= time.monotonic() - started < 2


def test_wait_for_returns_empty_when_all_present(tmp_path):
    spool = CheckSpool(tmp_path)
    for check_id in EXPECTED:
        spool.write_outcome(CheckOutcome(check_id, Outcome.PASSED, None))
    started = time.monotonic()
    assert spool.wait_for(EXPECTED, timeout=30, poll=0.01) == []
    assert time.monotonic() - started < 1


def test_render_html_escapes_case_text_and_shows_not_passed():
    nasty = "<script>alert(1)</script>"
    v = Verdict("cid", Rules(1e-3, 1e-3, {nasty: "d", "doc2": "d2"}, (f"{nasty}::keywords", "doc2::embedding")))
    v.record(f"{nasty}::keywords", CheckResult(nasty, "keywords", False, f"compiled {nasty}"))
    page = render_html(v, f"Report {nasty}", {"model": nasty})
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "NOT PASSED" in page
    assert '<tr class="not run"><td>not run</td><td>doc2</td><td>embedding</td>' in page


def test_render_html_shows_passed_for_a_passing_verdict():
    v = verdict()
    v.results["doc1::embedding"] = result("doc1::embedding", 0.5, truncated=True)
    page = render_html(v, "Report", {})
    assert ": PASSED</h1>" in page and "NOT PASSED" not in page
    assert "300 tokens in bucket 256 TRUNCATED" in page and "Truncated inputs: doc1." in page
    assert "Precision: fp32; tolerance: atol 0.001, rtol 0.001." in page


# --- the rules a verdict was made under, and the upload gate -----------------------------------
def test_a_verdict_counts_only_under_the_same_rules():
    assert verdict().validate_fingerprint == verdict().validate_fingerprint
    looser = Verdict("cid", Rules(0.5, 1e-3, RULES.cases, RULES.checks))
    assert looser.validate_fingerprint != verdict().validate_fingerprint


def test_gate_allows_only_a_passed_verdict_of_this_artifact_under_these_rules():
    assert refusal(verdict(), "cid", RULES) is None
    assert "no validation verdict" in refusal(None, "cid", RULES)
    assert "recompiled since it was validated" in refusal(verdict(), "other", RULES)
    failed = refusal(verdict(outcomes=["passed", "failed", "passed"]), "cid", RULES)
    assert failed.startswith("upload refused: validation did not pass:\n  doc1::keywords: failed")


def test_gate_names_every_rule_that_differs():
    loose = Verdict("cid", Rules(0.5, 0.25, {"doc1": "d1", "one": "o"}, ("doc1::embedding", "one::embedding")))
    for check_id in loose.rules.checks:
        loose.outcomes[check_id] = Outcome.PASSED
    current = Rules(1e-3, 1e-3, {"doc1": "changed", "doc2": "d2"}, tuple(EXPECTED))
    message = refusal(loose, "cid", current)
    assert message.startswith("upload refused: the validation verdict was made under other rules")
    assert "ATOL: 0.5 in the verdict, 0.001 now" in message and "RTOL: 0.25 in the verdict, 0.001 now" in message
    assert "cases the verdict did not check: doc2" in message
    assert "cases that changed since: doc1" in message
    assert "cases checked that the current cases do not have: one" in message
    assert message.endswith("with the current settings")


def test_same_cases_with_other_checks_or_version_differ_too():
    other_checks = Rules(1e-3, 1e-3, RULES.cases, tuple(EXPECTED[:2]))
    assert other_checks.differences(RULES) == ["checks differ: doc2::embedding"]
    older = Rules(1e-3, 1e-3, RULES.cases, RULES.checks, mlcompile="0.0.1")
    assert older.differences(RULES) == [f"mlcompile version: 0.0.1 in the verdict, {RULES.mlcompile} now"]
    assert RULES.differences(Rules.from_dict(RULES.as_dict())) == []


# --- what a run says about truncation ----------------------------------------------------------
def test_truncation_note_says_which_pipeline_cut_where():
    compiled = {"tokens": 300, "bucket": 32, "kept": 32, "truncated": True}
    reference = {"tokens": 300, "bucket": None, "kept": 256, "truncated": True}
    note = truncation_note("long", compiled, reference)
    assert note.startswith("case long: 300 tokens; the compiled pipeline kept the first 32 (its largest compiled "
                           "length), the uncompiled pipeline the first 256 (the model's maximum)")
    assert "the two models saw different text" in note and "SEQUENCE_LENGTHS 256" in note
    both = truncation_note("long", {**compiled, "kept": 256, "bucket": 256}, reference)
    assert both.endswith("the uncompiled pipeline the first 256 (the model's maximum)")
    only_ours = truncation_note("mid", {"tokens": 40, "bucket": 32, "kept": 32, "truncated": True},
                                {"tokens": 40, "bucket": None, "kept": 40, "truncated": False})
    assert "the uncompiled pipeline all of them" in only_ours and "SEQUENCE_LENGTHS the model maximum" in only_ours
    assert truncation_note("short", {"tokens": 5, "bucket": 16, "kept": 5, "truncated": False},
                           {"tokens": 5, "bucket": None, "kept": 5, "truncated": False}) is None
