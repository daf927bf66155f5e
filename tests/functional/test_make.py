"""The make targets users of the reference implementation know."""

from __future__ import annotations

import subprocess

import pytest

from ..conftest import REPO, pipeline_env

pytestmark = pytest.mark.functional


def make(workspace, *args):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=pipeline_env(workspace),
                          capture_output=True, text=True, timeout=600)


def test_projects_run_download_model_runs_the_download_stage_only(workspace):
    done = make(workspace, "projects.run/keywords", "COMPONENT=compile", "TASK=download-model")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (workspace / "outputs" / "download" / "manifest.json").is_file()
    assert not (workspace / "outputs" / "compile").exists()


@pytest.mark.parametrize("args, message", [
    (["COMPONENT=compile", "TASK=train-model"], "TASK=train-model: use download-model"),
    (["COMPONENT=train", "TASK=download-model"], "COMPONENT=train: only COMPONENT=compile exists"),
])
def test_projects_run_rejects_unknown_component_or_task(workspace, args, message):
    done = make(workspace, "projects.run/keywords", *args)
    assert done.returncode != 0
    assert message in done.stderr
