"""The make targets users of the reference implementation know, here (RUNNER=local) and through
compose (RUNNER=docker): the commands they run, read with `make -n`, and their refusals, run."""

from __future__ import annotations

import os

import pytest

from ..conftest import make

pytestmark = pytest.mark.unit


def last_command(*args: str) -> str:
    done = make(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("task, stage", [("download-model", "download"), ("compile-model", "compile"),
                                         ("validate-model", "validate"), ("upload-model", "upload")])
def test_a_task_runs_its_stage_here_or_its_service_in_compose(task, stage):
    assert last_command("projects.run/ner", "COMPONENT=compile", f"TASK={task}").endswith(
        f"PROJECT=ner HF_HUB_OFFLINE=1 /nonexistent-venv/bin/mlcompile run --stage {stage}")
    assert last_command("projects.run/ner", "COMPONENT=compile", f"TASK={task}", "RUNNER=docker") == (
        f"PROJECT=ner docker compose -f docker-compose.yaml run --rm compile-{task}")


def test_the_switches_select_stages_as_the_reference_flags_do():
    command = last_command("projects.run/keywords", "COMPONENT=compile", "DOWNLOAD=true", "TEST=true")
    assert ("COMPILE_PIPELINE_EXECUTION_DOWNLOAD=true COMPILE_PIPELINE_EXECUTION_COMPILE=false "
            "COMPILE_PIPELINE_EXECUTION_TEST=true COMPILE_PIPELINE_EXECUTION_UPLOAD=false") in command
    assert command.endswith("/nonexistent-venv/bin/mlcompile run")


@pytest.mark.parametrize("level", ["unit", "integration", "functional"])
def test_test_levels_run_their_marker_or_their_service(level):
    assert last_command(f"projects.{level}/keywords", "COMPONENT=compile").endswith(
        f"-m pytest tests -m {level} -p no:cacheprovider")
    assert last_command(f"projects.{level}/keywords", "COMPONENT=compile", "RUNNER=docker") == (
        f"PROJECT=keywords docker compose -f docker-compose.yaml run --rm compile-{level}")


@pytest.mark.parametrize("args, message", [
    (["projects.run/keywords", "COMPONENT=compile"], "nothing to run: set TASK="),
    (["projects.run/keywords", "COMPONENT=compile", "TASK=train-model"], "TASK=train-model: use download-model"),
    (["projects.unit/keywords", "COMPONENT=serve"], "COMPONENT=serve: only COMPONENT=compile exists"),
    (["projects.build/keywords", "COMPONENT=compile", "RUNNER=k8s"], "RUNNER=k8s: use local or docker"),
])
def test_a_run_that_would_do_nothing_or_something_else_says_so(args, message):
    done = make(*args, dry=False)
    assert done.returncode != 0 and message in done.stderr
    assert not os.path.exists("/nonexistent-venv")  # refused before installing anything
