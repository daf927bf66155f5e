"""The two install profiles: fully pinned constraints and the make commands that use them."""

import re

import pytest

from ..conftest import REPO, make

pytestmark = pytest.mark.unit
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")
MUST_PIN = {"torch", "transformers", "sentence-transformers", "keybert", "onnxruntime", "mlflow", "pytest"}


def pins(name):
    found = {}
    for line in (REPO / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = PIN.match(line)
            assert match, f"{name}: {line!r} is not pinned to one version (run `make lock`)"
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


@pytest.mark.parametrize("name", ["constraints.txt", "constraints-neuron.txt"])
def test_profile_pins_every_package_once(name):
    found = pins(name)
    assert MUST_PIN <= found.keys()
    lines = [line for line in (REPO / name).read_text().splitlines() if PIN.match(line.split("#")[0].strip())]
    assert len(lines) == len(found), "a package pinned twice"


def test_profiles_differ_in_the_torch_line_only_where_they_must():
    cpu, neuron = pins("constraints.txt"), pins("constraints-neuron.txt")
    assert cpu["torch"].startswith("2.13.") and "+" not in cpu["torch"]  # the CPU wheel or PyTorch's CPU index
    assert neuron["torch"].startswith("2.9.")  # the last torch of the XLA-based torch-neuronx
    aws = pins("requirements/neuron-aws.txt")
    assert aws["torch-neuronx"].startswith(neuron["torch"] + ".")  # torch-neuronx versions lead with their torch
    for package, version in aws.items():
        assert neuron[package] == version and package not in cpu


def make_dry_run(*args):
    done = make("install", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_install_picks_the_profile():
    assert "-c constraints.txt" in make_dry_run() and "neuron" not in make_dry_run()
    neuron = make_dry_run("NEURON=1")
    assert "-c constraints-neuron.txt" in neuron
    assert "--extra-index-url https://pip.repos.neuron.amazonaws.com torch-neuronx neuronx-cc" in neuron
    assert "torch-neuronx" not in make_dry_run("NEURON=1", "NEURON_AWS=0")
