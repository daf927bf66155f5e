"""The pipeline plugin's spool across xdist workers, with the model work faked (tests/conftest.py's
fake_pipeline): checks run in two processes and the upload on one of them sees the other's failure."""

from __future__ import annotations

import time

import pytest

from ..conftest import registered

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]


def test_outcomes_of_two_xdist_workers_reach_the_gate(fake_pipeline, pytester):
    """Checks run on both workers; the upload (on one of them) sees the failure from the other."""
    failing = "beta::invariance"
    result = fake_pipeline("-n", "2", "-v", FAKE_FAILING=failing)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"upload: refused: validation did not pass: {failing}: failed: scripted"])
    assert registered(pytester) == []
    workers = {line.split("[")[1].split("]")[0] for line in result.stdout.lines if line.startswith("[gw")}
    assert workers == {"gw0", "gw1"}  # the checks really ran in two processes


def test_a_worker_killed_mid_validation_is_a_refusal_in_seconds_naming_the_lost_check(fake_pipeline, pytester):
    lost = "alpha::invariance"
    started = time.monotonic()
    result = fake_pipeline("-n", "2", FAKE_CRASH=lost)  # the upload waits up to --validation-wait (30 min)
    assert time.monotonic() - started < 60
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"upload: refused: validation did not pass: {lost}: error: lost: worker 'gw*' "
                                 f"crashed while running*"])
    assert registered(pytester) == []
