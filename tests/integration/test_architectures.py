"""The architecture matrix: a tiny seeded random model of every supported encoder architecture
(tests/tiny_models.py, built offline from its config), of every kind of model (sequence classifier, token
classifier, sentence-transformer), compiled by every backend (ONNX Runtime, OpenVINO, TorchScript, and Neuron
through the stand-in torch_neuronx) and validated against the uncompiled model: every check passes. A
rotation keeps it fast: each architecture meets each kind of model once, on three of the four backends, and
each kind meets every backend."""

from __future__ import annotations

import time

import pytest

from mlcompile import stages
from mlcompile.compiled import CompiledSpec
from mlcompile.settings import load_settings
from mlcompile.verdict import Verdict

from ..conftest import REPO
from ..tiny_models import ARCHITECTURES, build

pytestmark = pytest.mark.integration
KINDS = ("text-classification", "token-classification", "sentence-embeddings")
BACKENDS = ("onnx", "openvino", "torchscript", "neuron")
CASES = REPO / "tests" / "data" / "architecture-cases.json"
# ONNX Runtime's optimizer fuses their attention in every layer (ALBERT's shared layers: once)
FUSED_ATTENTION = ("bert", "distilbert", "roberta", "xlm-roberta", "electra")
MATRIX = [(architecture, KINDS[k], BACKENDS[(k + a) % len(BACKENDS)])
          for a, architecture in enumerate(ARCHITECTURES) for k in range(len(KINDS))]


@pytest.fixture
def one_thread():
    """One torch thread, as the pipeline gives each of two workers on two cores (here no plugin sets it)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def validate(settings) -> tuple[Verdict, float]:
    """download, compile and validate with the stage functions; the verdict and the seconds."""
    started = time.perf_counter()
    downloaded = stages.download_model(settings)
    compiled = stages.compile_model(settings, downloaded)
    cases = stages.load_cases(settings, downloaded)
    rules = stages.rules_for(settings, stages.task_of(downloaded), cases)
    return stages.validate_model(settings, downloaded, compiled, cases, rules), time.perf_counter() - started


@pytest.mark.parametrize("architecture, kind, backend", MATRIX, ids=[f"{a}-{k}-{b}" for a, k, b in MATRIX])
def test_every_architecture_compiles_and_validates_on_every_backend(settings_env, monkeypatch, request, one_thread,
                                                                    architecture, kind, backend):
    if backend == "neuron":
        request.getfixturevalue("standin_neuronx")
    model = build(architecture, kind, settings_env / "trained" / "model")
    for key, value in {"PROJECT": "sentiment", "UNCOMPILED_PATH": model, "MODEL_TASK": "auto", "SEQUENCE_LENGTHS": "",
                       "BATCH_SIZE": "2", "COMPILER": backend, "CASES_FILE": CASES, "TORCH_THREADS": "1"}.items():
        monkeypatch.setenv(key, str(value))
    verdict, seconds = validate(load_settings())
    assert verdict.passed, verdict.problems()
    downloaded = stages.stage(load_settings(), "download").load()
    assert stages.task_of(downloaded).name == kind  # what the model does, from its architecture
    if backend == "onnx":  # the optimizer's fusions, and where attention ran unfused, why
        report = CompiledSpec.read(stages.stage(load_settings(), "compile").path).compiler_report
        assert report["fused"].get("SkipLayerNormalization")
        assert (report["attention_unfused"] is None) == (architecture in FUSED_ATTENTION), report
    print(f"{architecture} {kind} {backend}: {len(verdict.results)} checks passed in {seconds:.1f} s")
