"""What every registry backend must do, as one suite parametrized over the backends: local (a
directory), mlflow (a real server on 127.0.0.1, started by the `mlflow_server` fixture) and neptune
(the neptune 1.x client's interface, through the in-memory double in tests/standins: hosted neptune
is gone and its debug mode keeps nothing between containers)."""

from __future__ import annotations

import time
import uuid

import pytest
from pydantic import SecretStr

from mlcompile.errors import RegistryError
from mlcompile.registry import Dataset, VersionDetails
from mlcompile.registry.local import LocalRegistry
from mlcompile.registry.mlflow import MlflowRegistry
from mlcompile.registry.neptune import NeptuneRegistry

from ..conftest import free_port
from ..standins.neptune_double import NeptuneDouble  # not via sys.path: tests/standins also holds torch_neuronx

pytestmark = pytest.mark.integration
PROJECT = "contract/test"


@pytest.fixture(params=["local", "mlflow", "neptune"])
def registry(request, tmp_path):
    if request.param == "local":
        return LocalRegistry(tmp_path / "registry")
    if request.param == "neptune":
        return NeptuneRegistry(SecretStr("valid-token"), client=NeptuneDouble("valid-token"))
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
    assert created and version.version_id == f"{model}-1" and version.lifecycle == "none"
    fetched = registry.get_version(PROJECT, f"{model}-1")
    assert fetched.card == CARD and fetched.metadata["compiler"] == "onnx" and fetched.fingerprint == "fp-1"
    assert set(fetched.files) == {"compiled/model.onnx", "validation/report.html"}
    dest = tmp_path / "download"
    registry.download(PROJECT, f"{model}-1", dest)
    assert (dest / "compiled" / "model.onnx").read_bytes() == (files / "compiled" / "model.onnx").read_bytes()
    assert (dest / "validation" / "report.html").read_text() == "<html>report</html>"


def test_a_version_keeps_its_description_parameters_metrics_and_datasets(registry, model, files):
    cases, regression = (Dataset("validation-cases", "0" * 32, "KEYWORDS-TRAINED-1 (stored cases) + generic.json", 6),
                         Dataset("regression-set", "f" * 32, "keywords-regression.jsonl", 200))
    details = VersionDetails("KEYWORDS-TRAINED-1 compiled by onnx; 28 of 28 checks passed",
                             {"backend": "onnx", "sequence_lengths": "16,256"},
                             {"checks_passed": 28.0, "smallest_margin": 0.00093, "regression.keyword_agreement": 1.0,
                              "compile_seconds": 9.5},
                             "what the model is", datasets=(cases, regression),
                             metric_datasets={"checks_passed": cases.name, "smallest_margin": cases.name,
                                              "regression.keyword_agreement": regression.name})
    registry.register(PROJECT, model, files, CARD, {}, "fp-1", details)
    kept = registry.get_version(PROJECT, f"{model}-1").details
    assert (kept.description, kept.params, kept.metrics) == (details.description, details.params, details.metrics)
    assert sorted(kept.datasets, key=lambda d: d.name) == [regression, cases]
    assert kept.metric_datasets == details.metric_datasets  # compile_seconds: measured on no dataset
    registry.register(PROJECT, model, files, CARD, {}, "fp-2")  # details are optional
    assert registry.get_version(PROJECT, f"{model}-2").details.params == {}


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


def test_set_lifecycle(registry, model, files):
    registry.register(PROJECT, model, files, CARD, {}, "fp-1")
    assert registry.set_lifecycle(PROJECT, f"{model}-1", "staging").lifecycle == "staging"
    assert registry.get_version(PROJECT, f"{model}-1").lifecycle == "staging"
    assert registry.set_lifecycle(PROJECT, f"{model}-1", "production").lifecycle == "production"
    with pytest.raises(RegistryError, match="lifecycle 'live' is not one of"):
        registry.set_lifecycle(PROJECT, f"{model}-1", "live")


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


def test_neptune_wrong_token_is_a_clear_error_and_the_token_never_shows():
    registry = NeptuneRegistry(SecretStr("wrong-token-123"), client=NeptuneDouble("valid-token"))
    with pytest.raises(RegistryError, match="neptune rejected NEPTUNE_API_TOKEN") as error:
        registry.get_version(PROJECT, "KEYWORDS-TRAINED-1")
    assert "wrong-token-123" not in str(error.value) + repr(registry) + str(registry.describe())
    with pytest.raises(RegistryError, match="needs NEPTUNE_API_TOKEN"):
        NeptuneRegistry(None, client=NeptuneDouble())


def test_neptune_archive_escaping_the_destination_is_refused(model, files, tmp_path):
    import io
    import zipfile

    double = NeptuneDouble("t")
    registry = NeptuneRegistry(SecretStr("t"), client=double)
    registry.register(PROJECT, model, files, CARD, {}, "fp-1")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("compiled/model.onnx", b"x")
        bundle.writestr("../../escaped.txt", b"owned")
    double.hostile_zip = buffer.getvalue()
    with pytest.raises(RegistryError, match="refusing archive member '../../escaped.txt'"):
        registry.download(PROJECT, f"{model}-1", tmp_path / "dest")
    assert not list(tmp_path.rglob("escaped.txt")) and not (tmp_path / "dest").exists()


def test_neptune_failed_upload_leaves_no_version(model, files):
    double = NeptuneDouble("t")
    registry = NeptuneRegistry(SecretStr("t"), client=double)
    double.fail_upload = True
    with pytest.raises(Exception, match="connection reset"):
        registry.register(PROJECT, model, files, CARD, {}, "fp-1")
    assert registry.find_version(PROJECT, model, "fp-1") is None and registry.list_versions(PROJECT, model) == []
    assert double.versions[PROJECT][f"{model}-1"]["sys/stage"] == "archived"  # neptune made it; we retire it
    double.fail_upload = False
    version, created = registry.register(PROJECT, model, files, CARD, {}, "fp-1")
    assert created and [v.version_id for v in registry.list_versions(PROJECT, model)] == [version.version_id]


def test_neptune_writes_through_the_real_client_in_debug_mode(files):
    """The real neptune 1.x client, offline (debug mode keeps data only inside one container)."""
    import json

    import neptune

    from mlcompile.registry.neptune import write_version

    version = neptune.init_model_version(model="KEYWORDS-COMPILED", project="ws/proj", api_token="x", mode="debug")
    try:
        version_id = write_version(version, files, CARD, {"compiler": "onnx"}, "fp-1")
        assert version_id.endswith("-1")
        assert json.loads(version["model_card"].fetch()) == CARD
        assert set(json.loads(version["checksums"].fetch())) == {"compiled/model.onnx", "validation/report.html"}
        assert json.loads(version["metadata"].fetch()) == {"compiler": "onnx"} and version["fingerprint"].fetch() == "fp-1"
        version.change_stage("staging")
        assert version["sys/stage"].fetch() == "staging"
    finally:
        version.stop()


def test_mlflow_registers_a_logged_model_with_its_datasets_and_linked_metrics(mlflow_server, model, files):
    from mlflow import MlflowClient

    cases = Dataset("validation-cases", "0" * 32, "KEYWORDS-TRAINED-1 (stored cases) + generic.json", 6)
    details = VersionDetails("compiled", {"backend": "onnx"}, {"checks_passed": 28.0, "compile_seconds": 9.5},
                             datasets=(cases,), metric_datasets={"checks_passed": cases.name})
    registry = MlflowRegistry(mlflow_server, timeout=5, retries=0)
    registry.register(PROJECT, model, files, {**CARD, "compiled": True}, {}, "fp-1", details)

    client = MlflowClient(mlflow_server)
    version = client.get_model_version(model, "1")
    assert version.source.startswith("models:/m-")  # what MLflow's version page links as its model_id
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.model_type == "mlcompile-compiled" and logged.source_run_id == version.run_id
    assert logged.params == {"backend": "onnx"} and logged.status.to_int() == 2  # READY
    assert logged.tags["mlflow.note.content"] == "compiled"  # its page's description
    linked = {m.key: (m.value, m.dataset_name, m.dataset_digest) for m in logged.metrics}
    assert linked == {"checks_passed": (28.0, "validation-cases", "0" * 32), "compile_seconds": (9.5, None, None)}
    [given] = client.get_run(version.run_id).inputs.dataset_inputs
    assert (given.dataset.name, given.dataset.digest) == ("validation-cases", "0" * 32)
    assert [(tag.key, tag.value) for tag in given.tags] == [("mlflow.data.context", "validation")]


def test_mlflow_versions_registered_from_a_runs_files_still_download(mlflow_server, model, files, tmp_path):
    """The layout before LoggedModels: the version's source is the run's `files/` folder."""
    from mlflow import MlflowClient

    from mlcompile.artifacts import hash_tree
    from mlcompile.registry.mlflow import CHECKSUMS, FINGERPRINT_TAG, PROJECT_TAG

    client = MlflowClient(mlflow_server)
    run = client.create_run(client.create_experiment(f"old-layout-{model}"))
    client.log_artifacts(run.info.run_id, str(files), "files")
    client.log_dict(run.info.run_id, CARD, "model_card.json")
    client.log_dict(run.info.run_id, hash_tree(files), CHECKSUMS)
    client.create_registered_model(model, tags={PROJECT_TAG: PROJECT})
    client.create_model_version(model, f"runs:/{run.info.run_id}/files", run.info.run_id, tags={FINGERPRINT_TAG: "fp-0"})

    registry = MlflowRegistry(mlflow_server, timeout=5, retries=0)
    old = registry.get_version(PROJECT, f"{model}-1")
    assert old.card == CARD and old.fingerprint == "fp-0" and old.details.metric_datasets == {}
    registry.download(PROJECT, f"{model}-1", tmp_path / "old")
    assert (tmp_path / "old" / "validation" / "report.html").read_text() == "<html>report</html>"
    new, created = registry.register(PROJECT, model, files, CARD, {}, "fp-1")  # the next one: a logged model
    assert created and new.version_id == f"{model}-2"
    registry.download(PROJECT, f"{model}-2", tmp_path / "new")
    assert hash_tree(tmp_path / "new") == hash_tree(tmp_path / "old")
