"""No Docker engine runs here: the Dockerfile, compose files and CI workflow are read, linted (hadolint,
actionlint with shellcheck, the compose schema) and cross-checked; each check is shown failing on a broken copy."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from ..conftest import MAKE_VARIABLES, REPO
from ..container_checks import compose_problems, make_target_problems, readme_make_targets

pytestmark = pytest.mark.unit
CHECKED_FILES = [".ci/run", "Dockerfile", ".hadolint.yaml", "Makefile", "README.md", "pytest.ini", "config", "pyproject.toml",
                 "constraints.txt", "constraints-neuron.txt",
                 ".github/workflows/compile.yaml", ".github/actionlint.yaml", "requirements", "docker-compose.yaml", "docker-compose.dev.yaml",
                 "docker-compose.ci.yaml", "docker-compose.neuron.yaml"]


def test_dockerfile_has_base_development_production_stages():
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", text, flags=re.M)
    assert [name for _, name in stages] == ["base", "development", "production", "neuron"]
    assert stages[0][0] == "python:${BASE_IMAGE_TAG}" and re.search(r"^ARG BASE_IMAGE_TAG=\S+", text, flags=re.M)
    assert stages[1][0] == "base" and stages[2][0] == "base"  # production: not the development image
    assert "make install" in text and "HF_HUB_OFFLINE=1" in text


def stage_text(name: str) -> str:
    text = (REPO / "Dockerfile").read_text()
    start = re.search(rf"^FROM .* AS {name}$", text, flags=re.M).end()
    following = re.search(r"^FROM ", text[start:], flags=re.M)
    return text[start: start + following.start()] if following else text[start:]


def test_dependencies_are_a_layer_before_the_code():
    base = stage_text("base")
    assert base.index("RUN make deps") < base.index("COPY src"), "a code change would reinstall torch"
    deps_copy = next(line for line in base.splitlines() if line.startswith("COPY") and "constraints" in line)
    assert "src" not in deps_copy and "pyproject.toml" not in deps_copy


def test_production_runs_the_pipeline_as_a_non_root_user_without_the_framework_tests():
    production = stage_text("production")
    user = re.search(r"^USER (\S+)", production, flags=re.M)
    assert user and user.group(1) not in ("root", "0")
    assert 'VOLUME ["/app/registry", "/app/outputs"]' in production and "COPY . ." not in production
    assert "COPY pipeline_tests" in production and "tests " not in production.replace("pipeline_tests", "")


def test_dockerignore_keeps_outputs_registries_venvs_and_caches_out():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".venv-*", "outputs", "outputs-*", "registry", "mlflow-data", "**/__pycache__"} <= ignored


def test_neuron_target_builds_on_aws_image_with_the_neuron_profile():
    text = (REPO / "Dockerfile").read_text()
    tag = re.search(r"^ARG NEURON_IMAGE_TAG=(\S+)", text, flags=re.M)
    assert tag and "sdk2.31.0" in tag.group(1)  # the SDK constraints-neuron.txt follows
    neuron = text[text.index("AS neuron"):]
    assert "public.ecr.aws/neuron/pytorch-inference-neuronx:${NEURON_IMAGE_TAG} AS neuron" in text
    # AWS's torch and torch-neuronx stay: the venv sees them, their versions replace the profile's pins
    assert "make install NEURON=1 SYSTEM_PACKAGES=1" in neuron
    assert "HEALTHCHECK NONE" in neuron  # the base image's probes TorchServe, which never runs here
    assert "constraints-neuron.txt" in neuron
    pins = (REPO / "constraints-neuron.txt").read_text()
    torch_pin = re.search(r"^torch==(\S+)", pins, flags=re.M).group(1)
    assert tag.group(1).startswith(torch_pin + "-neuronx")


def test_dockerfile_copies_only_paths_that_exist():
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert source == "." or (REPO / source).exists(), source


@pytest.fixture
def broken_copy(tmp_path):
    """A copy of the checked files with one text replaced (which must be there)."""
    def copy(path: str, old: str, new: str):
        for name in CHECKED_FILES:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, tmp_path / name)
        text = (tmp_path / path).read_text()
        assert old in text, f"{path} no longer has {old!r}: update this test"
        (tmp_path / path).write_text(text.replace(old, new, 1))
        return tmp_path
    return copy


def lint(repo) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in MAKE_VARIABLES}
    return subprocess.run(["make", "-s", "--no-print-directory", "-C", str(repo), f"VENV={sys.prefix}", "lint"],
                          capture_output=True, text=True, env=env, timeout=120)


def test_the_workflow_compiles_for_neuron_on_a_cpu_runner_and_validates_on_an_inf2_runner():
    jobs = yaml.safe_load((REPO / ".github/workflows/compile.yaml").read_text())["jobs"]
    compile_job, validate_job = jobs["neuron-compile"], jobs["neuron-validate"]
    assert compile_job["runs-on"] == "ubuntu-24.04" and validate_job["runs-on"] == ["self-hosted", "linux", "x64", "inf2"]
    # both only where an inf2 runner is registered; validation needs the compile job's bytes
    assert compile_job["if"] == validate_job["if"] == "vars.NEURON_RUNNER == 'true'"
    assert validate_job["needs"] == "neuron-compile" and compile_job["env"]["COMPILER"] == "neuron"
    compile_steps = " ".join(step.get("run", "") for step in compile_job["steps"])
    assert "make install NEURON=1" in compile_steps and "COMPILE=true" in compile_steps
    assert "TEST=true" not in compile_steps and "TASK=validate-model" not in compile_steps
    validate_steps = " ".join(step.get("run", "") for step in validate_job["steps"])
    assert "TASK=validate-model" in validate_steps and "TASK=upload-model" in validate_steps
    uploaded = next(step for step in compile_job["steps"] if "upload-artifact" in step.get("uses", ""))
    downloaded = next(step for step in validate_job["steps"] if "download-artifact" in step.get("uses", ""))
    assert uploaded["with"]["name"] == downloaded["with"]["name"] and "outputs/compile/" in uploaded["with"]["path"]


def test_a_dispatched_version_runs_only_the_compile_version_job_for_exactly_that_version():
    from pydantic import SecretStr

    from mlcompile.webhooks import GitHubDispatch, Job

    workflow = yaml.safe_load((REPO / ".github/workflows/compile.yaml").read_text())
    inputs = workflow[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads the key `on` as true
    assert {name: spec["type"] for name, spec in inputs.items()} == {"project": "string", "model": "string",
                                                                     "version": "string"}
    # what the webhook receiver dispatches is what the workflow takes
    request = GitHubDispatch("o/r", "main", SecretStr("t")).request(Job("ner", "NER-TRAINED", 3, "d"))
    assert request.full_url.endswith("/actions/workflows/compile.yaml/dispatches")
    assert set(json.loads(request.data)["inputs"]) == set(inputs)
    jobs = workflow["jobs"]
    job = jobs["compile-version"]
    assert job["if"] == "github.event_name == 'workflow_dispatch' && inputs.version != ''"
    assert jobs["test"]["if"] == "${{ !inputs.version }}"  # every other job needs test, so is skipped with it
    assert all(jobs[name].get("needs") for name in jobs if name not in ("test", "compile-version"))
    assert {key: job["env"][key] for key in ("PROJECT", "UNCOMPILED_MODEL", "UNCOMPILED_WITH_ID", "REGISTRY")} == {
        "PROJECT": "${{ inputs.project }}", "UNCOMPILED_MODEL": "${{ inputs.model }}",
        "UNCOMPILED_WITH_ID": "${{ inputs.model }}-${{ inputs.version }}", "REGISTRY": "mlflow"}
    runs = [step.get("run", "") for step in job["steps"]]
    assert ".venv/bin/mlcompile run" in runs and not any("seed" in run or "projects.run" in run for run in runs)
    assert "${{ inputs.version }}" in workflow["concurrency"]["group"]  # dispatches never cancel each other's


def test_hadolint_actionlint_and_the_compose_schema_pass():
    done = lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok -- validation done" in done.stdout  # the last of the three ran


@pytest.mark.parametrize("path, old, new, message", [
    ("Dockerfile", "apt-get install -y --no-install-recommends make gcc git", "apt-get install -y make gcc git",
     "DL3015"),
    (".github/workflows/compile.yaml", "name: pipeline-${{ matrix.project }}", "name: pipeline-${{ matrix.projet }}",
     'property "projet" is not defined'),
    (".github/workflows/compile.yaml", '"$PWD/container-outputs:/out"', "$PWD/container-outputs:/out", "SC2086"),
    (".ci/run", 'cd "$(dirname "$0")/.."', "cd $(dirname $0)/..", "SC2046"),
    ("docker-compose.yaml", "\nservices:", "\nservice:", "docker-compose.yaml::$"),
], ids=["hadolint", "actionlint", "shellcheck-in-workflow", "shellcheck-ci-script", "compose-schema"])
def test_each_linter_fails_on_a_broken_copy(broken_copy, path, old, new, message):
    done = lint(broken_copy(path, old, new))
    assert done.returncode != 0 and message in done.stdout + done.stderr, done.stdout + done.stderr


def test_compose_services_run_existing_commands_and_hand_over_through_one_volume():
    assert compose_problems(REPO) == []


@pytest.mark.parametrize("path, old, new, message", [
    ("docker-compose.yaml", 'command: ["run", "--stage", "validate"]', 'command: ["validate"]',
     "compile-validate-model runs .venv/bin/mlcompile validate: mlcompile: error: argument command: invalid choice"),
    ("docker-compose.yaml", '"--stage", "upload"]', '"--stage", "uplaod"]', "argument --stage: invalid choice"),
    ("Dockerfile", "FROM base AS production", "FROM base AS prod",
     "compile builds target 'production', not a Dockerfile stage"),
    ("docker-compose.yaml", "  compile-upload-model:\n", "  compile-upload:\n", "no service 'compile-upload-model'"),
    ("docker-compose.yaml", 'command: ["-m", "integration"]', 'command: ["-m", "integratoin"]',
     "-m integratoin: not a marker in pytest.ini"),
    ("docker-compose.yaml", '"--allowed-hosts"', '"--allowed-host"', "No such option '--allowed-host'"),
    ("docker-compose.yaml", "    - outputs:/app/outputs\n", "", "compile does not mount the shared outputs volume"),
    ("docker-compose.yaml", "    NEPTUNE_API_TOKEN:\n", "    NEPTUNE_API_TOKEN: abc123\n",
     "sets NEPTUNE_API_TOKEN to a literal value"),
    ("docker-compose.ci.yaml", "env_file: [config/prod.env]", "env_file: [config/dev.env]",
     "compile-unit does not read config/prod.env"),
    ("docker-compose.dev.yaml", "env_file: [config/dev.env]", "env_file: [config/local.env]",
     "reads config/local.env, which does not exist"),
])
def test_each_compose_check_fails_on_a_broken_copy(broken_copy, path, old, new, message):
    problems = compose_problems(broken_copy(path, old, new))
    assert any(message in problem for problem in problems), problems


def test_every_make_target_the_readme_names_exists():
    targets = readme_make_targets((REPO / "README.md").read_text())
    assert {"run", "test", "lint", "projects.unit/keywords", "projects.run/keywords"} <= targets
    assert make_target_problems(REPO, targets) == []


def test_a_readme_naming_a_missing_target_is_caught(broken_copy):
    copy = broken_copy("README.md", "make test ", "make tests ")
    targets = readme_make_targets((copy / "README.md").read_text())
    assert make_target_problems(copy, targets) == ["the README names `make tests`, which the Makefile does not have"]
