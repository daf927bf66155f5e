"""What every registry backend must do, as one suite parametrized over the backends: local (a
directory) and mlflow (a real server on 127.0.0.1, started by the `mlflow_server` fixture)."""

from __future__ import annotations

import time
import uuid

import pytest

from mlcompile.errors import RegistryError
from mlcompile.registry.local import LocalRegistry
from mlcompile.registry.mlflow import MlflowRegistry

from ..conftest import free_port

pytestmark = pytest.mark.integration
PROJECT = "contract/test"


@pytest.fixture(params=["local", "mlflow"])
def registry(request, tmp_path):
    if request.param == "local":
        return LocalRegistry(tmp_path / "registry")
    return MlflowRegistry(request.getfixturevalue("mlflow_server"), timeout=5, retries=0)


@pytest.fixture
def model() -> str:
    """A model key no other test uses (MLflow model names are global on a server)."""
    return f"T{uuid.uuid4().hex[:10].upper()}-COMPILED"


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "files"
    (root / "compiled").mkdir(parents=True)
    (root / "compiled" / "model.onnx").write_bytes(bytes(range(256)) * 40)
    (root / "validation").mkdir()
    (root / "validation" / "report.html").write_text("<html>report</html>")
    return root


CARD = {"task": "keywords", "lineage": {"uncompiled_version": "KEYWORDS-TRAINED-1"}, "lengths": [16, 256]}


def test_register_then_fetch_files_card_metadata(registry, model, files, tmp_path):
    version, created = registry.register(PROJECT, model, files, CARD, {"compiler": "onnx"}, "fp-1")
    assert created and version.version_id == f"{model}-1" and version.stage == "none"
    fetched = registry.get_version(PROJECT, f"{model}-1")
    assert fetched.card == CARD and fetched.metadata["compiler"] == "onnx" and fetched.fingerprint == "fp-1"
    assert set(fetched.files) == {"compiled/model.onnx", "validation/report.html"}
    dest = tmp_path / "download"
    registry.download(PROJECT, f"{model}-1", dest)
    assert (dest / "compiled" / "model.onnx").read_bytes() == (files / "compiled" / "model.onnx").read_bytes()
    assert (dest / "validation" / "report.html").read_text() == "<html>report</html>"


def test_same_fingerprint_registers_nothing_new_and_versions_count_up(registry, model, files):
    first, _ = registry.register(PROJECT, model, files, CARD, {}, "fp-1")
    again, created = registry.register(PROJECT, model, files, CARD, {}, "fp-1")
    assert not created and again.version_id == first.version_id
    second, created = registry.register(PROJECT, model, files, CARD, {}, "fp-2")
    assert created and second.version_id == f"{model}-2"
    assert [v.version_id for v in registry.list_versions(PROJECT, model)] == [f"{model}-1", f"{model}-2"]
    assert registry.find_version(PROJECT, model, "fp-2").version_id == f"{model}-2"
    assert registry.find_version(PROJECT, model, "fp-unknown") is None
    assert registry.find_version(PROJECT, f"{model}X", "fp-1") is None  # unknown model: nothing, no error


def test_set_stage(registry, model, files):
    registry.register(PROJECT, model, files, CARD, {}, "fp-1")
    assert registry.set_stage(PROJECT, f"{model}-1", "staging").stage == "staging"
    assert registry.get_version(PROJECT, f"{model}-1").stage == "staging"
    assert registry.set_stage(PROJECT, f"{model}-1", "production").stage == "production"
    with pytest.raises(RegistryError, match="stage 'live' is not one of"):
        registry.set_stage(PROJECT, f"{model}-1", "live")


def test_unknown_model_or_version_is_a_clear_error_within_seconds(registry, model, files):
    started = time.monotonic()
    with pytest.raises(RegistryError, match=f"{model}-1|{model}"):
        registry.get_version(PROJECT, f"{model}-1")
    registry.register(PROJECT, model, files, CARD, {}, "fp-1")
    with pytest.raises(RegistryError, match=rf"{model}-7 not found.*{model}-1"):
        registry.get_version(PROJECT, f"{model}-7")
    with pytest.raises(RegistryError, match="not a model version id"):
        registry.get_version(PROJECT, "no version")
    assert time.monotonic() - started < 30


def test_mlflow_server_down_fails_clearly_within_seconds():
    registry = MlflowRegistry(f"http://127.0.0.1:{free_port()}", timeout=2, retries=1)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="cannot be reached"):
        registry.get_version(PROJECT, "KEYWORDS-TRAINED-1")
    assert time.monotonic() - started < 20


def test_mlflow_credentials_never_shown(mlflow_server):
    registry = MlflowRegistry(mlflow_server.replace("http://", "http://alice:s3cret-token@"), timeout=2, retries=0)
    assert "s3cret" not in repr(registry) and "s3cret" not in str(registry.describe())
