"""Neuron inside the whole pipeline, through the stand-in torch_neuronx (tests/standins); COMPILER=neuron
on a host without it: tests/functional/test_exit_codes.py."""

from __future__ import annotations

import json

import pytest

from ..conftest import FEW_CASES

pytestmark = pytest.mark.integration


def test_neuron_backend_runs_the_pipeline_with_the_standin(workspace, in_process, standin_neuronx):
    done = in_process.pytest(workspace, COMPILER="neuron", CASES_FILE=FEW_CASES, BATCH_SIZE=2)
    assert done.returncode == 0, done.output
    assert "compile: backend neuron" in done.output and "upload: registered KEYWORDS-COMPILED-1" in done.output
    compiled = workspace / "outputs" / "compile"
    spec = json.loads((compiled / "compiled.json").read_text())
    assert spec["backend"] == "neuron" and spec["dynamic_shapes"] is False
    assert spec["compiler_settings"]["compiler_args"] == ["--auto-cast", "none", "--model-type", "transformer",
                                                          "--target", "inf2"]
    assert spec["versions"]["torch_neuronx"] == standin_neuronx.__version__
    assert [b["file"] for b in spec["buckets"]] == ["bucket-16.pt", "bucket-64.pt", "bucket-256.pt"]
    for length in (16, 64, 256):  # compiler work files and logs are kept with the artifact
        assert (compiled / "workdir" / "neuron" / f"bucket-{length}" / "log-neuron-cc.txt").is_file()
    manifest = json.loads((compiled / "manifest.json").read_text())
    assert manifest["inputs"]["backends"]["neuron"]["settings"]["compiler_args"][:2] == ["--auto-cast", "none"]


def test_neuron_compiles_where_no_device_is_visible_and_validation_says_it_needs_one(
        workspace, in_process, standin_neuronx, no_neuron_device):
    """neuronx-cc compiles on any x86 host (a CPU CI runner); running the compiled model needs a NeuronCore."""
    settings = {"COMPILER": "neuron", "CASES_FILE": FEW_CASES, "BATCH_SIZE": 2}
    compiled = in_process.pytest(workspace, "-m", "download or compile", "-rs", **settings)
    assert compiled.returncode == 0, compiled.output
    spec = json.loads((workspace / "outputs" / "compile" / "compiled.json").read_text())
    assert spec["backend"] == "neuron" and spec["compiler_settings"]["compiler_args"][-2:] == ["--target", "inf2"]
    traces = [call for call in standin_neuronx.CALLS if call["function"] == "trace"]
    assert traces and all(call["cpu_backend"] for call in traces)
    assert (workspace / "outputs" / "compile" / "bucket-16.pt").is_file()
    # the compile stage's load test cannot run the model here, and says so instead of failing
    assert "1 skipped" in compiled.output and "needs a NeuronCore to run" in compiled.output

    validated = in_process.pytest(workspace, "-m", "validate", **settings)
    assert validated.returncode == 10, validated.output
    assert "a Neuron artifact needs a NeuronCore to run, and no Neuron device is visible" in validated.output
    assert "validate and upload on an inf2/trn1 host" in validated.output
    assert not (workspace / "outputs" / "validate").exists()
