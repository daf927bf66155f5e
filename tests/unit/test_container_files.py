"""No Docker engine runs here: the Dockerfile and compose file are checked statically."""

import re

import pytest
import yaml

from ..conftest import REPO

pytestmark = pytest.mark.unit
STAGE_SERVICES = {"download": "compile-download-model", "compile": "compile-compile-model",
                  "validate": "compile-validate-model", "upload": "compile-upload-model"}


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
    # AWS's torch and torch-neuronx stay: the venv sees them and installs only the rest, with the pins
    assert "make install NEURON=1 NEURON_AWS=0 VENV_ARGS=--system-site-packages" in neuron
    assert "constraints-neuron.txt" in neuron
    pins = (REPO / "constraints-neuron.txt").read_text()
    torch_pin = re.search(r"^torch==(\S+)", pins, flags=re.M).group(1)
    assert tag.group(1).startswith(torch_pin + "-neuronx")


def test_dockerfile_copies_only_paths_that_exist():
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert source == "." or (REPO / source).exists(), source


def test_compose_services_run_each_stage_and_each_test_level():
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    services = compose["services"]
    for stage, service in STAGE_SERVICES.items():
        assert services[service]["command"] == ["run", "--stage", stage]
        assert services[service]["build"]["target"] == "production"
    assert services["compile"]["command"] == ["run"]
    for level in ("unit", "integration", "functional"):
        assert services[f"compile-{level}"]["command"] == ["-m", level]
        assert services[f"compile-{level}"]["build"]["target"] == "development"


def test_compose_passes_no_secret_values():
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    for service in compose["services"].values():
        for key, value in service.get("environment", {}).items():
            if "TOKEN" in key or "SECRET" in key:
                assert value.startswith("${"), f"{key} must come from the caller's environment"
