"""A compiled executable that validation never ran must not be registered: make one executable of a
real compiled artifact compute something else (a TorchScript shape's method, the ONNX model),
re-sealing its manifest so every hash verifies, and the coverage check of the validate stage must
name it.

In process, on real compiled artifacts; the same fault through the whole pytest pipeline (with
xdist) is test_pipeline_stages.py::test_perturbed_compiled_model_fails_validation_and_blocks_upload."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from mlcompile import stages
from mlcompile.settings import load_settings
from mlcompile.tasks import COVERAGE_CHECK

from ..conftest import REPO, clean_environ, fault_in_one_shape, reseal

pytestmark = pytest.mark.integration
LAST_LAYER = "layer.5.output.dense"


@pytest.fixture(scope="module")
def built(tmp_path_factory, seeded_registry):
    """backend -> (its registry, an outputs directory with download and compile stages), built once."""
    found = {}

    def build(backend: str):
        if backend not in found:
            root = tmp_path_factory.mktemp(backend)
            shutil.copytree(seeded_registry, root / "registry")
            with pytest.MonkeyPatch.context() as patch:
                use_settings(patch, root, backend, root / "registry")
                settings = load_settings()
                stages.compile_model(settings, stages.download_model(settings))
            found[backend] = root / "registry", root / "outputs"
        return found[backend]

    return build


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """In process, like the pipelines the other tests start: one torch thread per test worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def use_settings(patch, root, backend: str, registry) -> None:
    for key in list(os.environ):
        patch.delenv(key)
    for key, value in clean_environ(REGISTRY_PATH=registry, OUTPUTS_DIR=root / "outputs", COMPILER=backend,
                                    TORCH_THREADS=1).items():
        patch.setenv(key, value)
    patch.chdir(REPO)


def tamper(compiled, target: str) -> None:
    """One executable computes something else, and the artifact still verifies: a TorchScript
    shape's method scales its output; the ONNX model's last encoder layer bias is scaled by 1.5."""
    if ":" in target:
        fault_in_one_shape(compiled, target.split(":")[1])
        return
    import onnx
    from onnx import numpy_helper

    path = compiled / target
    model = onnx.load(str(path))
    init = next(i for i in model.graph.initializer if LAST_LAYER in i.name)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
    new = path.with_name(path.name + ".new")  # a new file: a hard-linked copy of the original stays intact
    onnx.save(model, str(new))
    os.replace(new, path)
    reseal(compiled)


@pytest.mark.parametrize("backend, target", [
    ("torchscript", "model.pt:bucket_256"),  # the full batch of the largest bucket: no case alone reaches it
    ("torchscript", "model.pt:bucket_16_batch1"),
    ("onnx", "model.onnx"),
])
def test_a_tampered_compiled_file_fails_coverage_by_name(built, tmp_path, monkeypatch, backend, target):
    registry, outputs = built(backend)  # the same registry: the stages' fingerprints name it
    shutil.copytree(outputs, tmp_path / "outputs", copy_function=os.link)
    use_settings(monkeypatch, tmp_path, backend, registry)
    settings = load_settings()
    tamper(tmp_path / "outputs" / "compile", target)
    downloaded = stages.download_model(settings)
    compiled = stages.compile_model(settings, downloaded)
    assert compiled.reused  # the re-sealed artifact verifies: only validation can catch it

    cases = stages.load_cases(settings, downloaded)
    rules = stages.rules_for(settings, stages.task_of(downloaded), cases)
    run = stages.plan_validation(settings, downloaded, compiled, cases, rules)
    coverage = run.result(COVERAGE_CHECK)
    assert not coverage.passed
    table = {e["executable"]: e for e in coverage.details["executables"]}
    assert [name for name, e in table.items() if not e["passed"]] == [target]
    assert table[target]["rows"] >= 1 and table[target]["cases"]
    # That this check alone stops an artifact whose case checks all pass, and nothing is registered, is
    # shown end to end under xdist: test_pipeline_stages.py::test_perturbed_..._under_xdist.
