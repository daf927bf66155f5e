"""The make targets users of the reference implementation know, here (RUNNER=local) and through
compose (RUNNER=docker): the commands they run, read with `make -n`, and their refusals, run."""

from __future__ import annotations

import os

import pytest
import yaml

from ..conftest import REPO, make
from ..container_checks import PIPELINE_SERVICES, TEST_SERVICES

pytestmark = pytest.mark.unit
DEV_COMPOSE = "docker compose -f docker-compose.yaml -f docker-compose.dev.yaml"


def last_command(*args: str) -> str:
    done = make(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("task, stage", [("download-model", "download"), ("compile-model", "compile"),
                                         ("validate-model", "validate"), ("upload-model", "upload")])
def test_a_task_runs_its_stage_here_or_its_service_in_compose(task, stage):
    seed, run = make("projects.run/ner", "COMPONENT=compile", f"TASK={task}").stdout.splitlines()[-2:]
    assert seed == "PROJECT=ner HF_HUB_OFFLINE=1 /nonexistent-venv/bin/mlcompile seed --if-missing"
    assert run == f"PROJECT=ner HF_HUB_OFFLINE=1 /nonexistent-venv/bin/mlcompile run --stage {stage}"
    seed, run = make("projects.run/ner", "COMPONENT=compile", f"TASK={task}", "RUNNER=docker").stdout.splitlines()[-2:]
    assert seed == f"PROJECT=ner {DEV_COMPOSE} run --rm compile-seed"  # the demo model, when the registry lacks it
    assert run == f"PROJECT=ner {DEV_COMPOSE} run --rm compile-{task}"


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
        f"PROJECT=keywords {DEV_COMPOSE} run --rm compile-{level}")


@pytest.mark.parametrize("args, files", [
    ([], "-f docker-compose.yaml -f docker-compose.dev.yaml"),
    (["CI=true"], "-f docker-compose.yaml -f docker-compose.ci.yaml"),
    (["CI=true", "NEURON=1"], "-f docker-compose.yaml -f docker-compose.ci.yaml -f docker-compose.neuron.yaml "
                              "-f .neuron-devices.compose.yaml"),
])
def test_docker_runs_use_the_compose_file_of_the_environment(args, files):
    assert last_command("projects.run/ner", "COMPONENT=compile", "TASK=compile-model", "RUNNER=docker", *args) == (
        f"PROJECT=ner docker compose {files} run --rm compile-compile-model")


def test_neuron_containers_get_every_neuron_device_of_the_host(tmp_path):
    written = tmp_path / "devices.yaml"
    done = make(str(written), f"DEVICES_COMPOSE={written}", "NEURON_DEVICES=/dev/neuron0 /dev/neuron1 /dev/neuron2",
                dry=False)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(written.read_text())["services"]
    assert set(PIPELINE_SERVICES) | set(TEST_SERVICES) <= set(services)
    assert {tuple(service["devices"]) for service in services.values()} == {
        ("/dev/neuron0", "/dev/neuron1", "/dev/neuron2")}
    # the caller's COMPILER wins over the neuron file's default (neuron)
    neuron = yaml.safe_load((REPO / "docker-compose.neuron.yaml").read_text())["services"]
    assert neuron["compile"]["environment"]["COMPILER"] == "${COMPILER:-neuron}"
    assert neuron["compile-unit"]["image"] == "mlcompile:neuron"  # the tests run on the Neuron image too


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
