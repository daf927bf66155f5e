"""The user's own models, where they already are, compiled with settings only: versions logged with
MLflow's `transformers` and `sentence_transformers` flavors in a real MLflow server (no mlcompile tags,
card or checksums), and a Hugging Face directory on disk, imported into the local registry or compiled
from its path. Each compiles, validates against the uncompiled model on its input example and the
generic cases, registers, and its registered compiled version loads with `mlflow.pyfunc` and predicts what
the uncompiled model predicts."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pandas as pd
import pytest

from mlcompile import pyfunc
from mlcompile.artifacts import read_json
from mlcompile.registry.mlflow import MlflowRegistry
from mlcompile.tasks import get_task

from ..conftest import REPO
from ..mlflow_user_models import log_sentence_transformer, log_transformers_model
from ..tiny_models import build

pytestmark = pytest.mark.integration
EXAMPLE = ["I love this phone, it works great.", "Anna Keller moved from Berlin to Madrid."]
TEXTS = ["The service was slow but friendly.", "Carlos met Maria in Lisbon on Monday."]


def user_project(tmp_path: Path, name: str, lines: list[str]) -> dict:
    """The repository's config plus one project file, as a user writes it: settings, no code."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "projects" / f"{name}.env").write_text("\n".join(lines) + "\n")
    return {"MLCOMPILE_CONFIG_DIR": config, "PROJECT": name, "COMPILER": "onnx"}


def uncompiled(model_dir: Path, task: str):
    """The uncompiled model's own pipeline, for the predictions a compiled version must match."""
    return get_task(task).uncompiled(model_dir.parent, {})


@pytest.mark.parametrize("task, flavor", [("text-classification", "transformers"),
                                          ("token-classification", "transformers"),
                                          ("sentence-embeddings", "sentence_transformers")])
def test_a_version_logged_with_mlflows_own_flavor_compiles_validates_and_registers(
        mlflow_server, tmp_path, in_process, monkeypatch, task, flavor):
    name = f"USER-{task.split('-')[0].upper()}-{uuid.uuid4().hex[:6]}"
    model_dir = build("distilbert" if flavor == "transformers" else "bert", task, tmp_path / "trained" / "model")
    if flavor == "transformers":
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

        auto = AutoModelForTokenClassification if task == "token-classification" else AutoModelForSequenceClassification
        number = log_transformers_model(mlflow_server, name, auto.from_pretrained(model_dir),
                                        AutoTokenizer.from_pretrained(model_dir), task, EXAMPLE)
    else:
        from sentence_transformers import SentenceTransformer

        number = log_sentence_transformer(mlflow_server, name, SentenceTransformer(str(model_dir), device="cpu"),
                                          EXAMPLE)
    env = user_project(tmp_path, "mine", [f"UNCOMPILED_WITH_ID={name}-{number}", f"COMPILED_MODEL={name}-COMPILED"])
    run = in_process.cli(tmp_path, "run", REGISTRY="mlflow", MLFLOW_TRACKING_URI=mlflow_server, **env)
    assert run.returncode == 0, run.output
    assert f"upload: registered {name}-COMPILED-1 (lifecycle staging)" in run.output
    assert "stored predictions: not available (the version stored none)" in run.output

    card = read_json(tmp_path / "outputs" / "download" / "model_card.json")
    assert card["task"] == task and card["derived"] is True and card["mlflow"]["flavor"] == flavor
    assert card["source"] == f"models:/{name}/{number}"
    verdict = read_json(tmp_path / "outputs" / "validate" / "verdict.json")
    assert verdict["rules"]["evidence"] == {"stored_predictions": 0, "stored_inputs": 0, "input_example": 2,
                                            "cases_file": 15}
    assert not any(check.endswith("::expected") for check in verdict["rules"]["checks"])  # never shown as passed
    assert {"input-example-1", "input-example-2"} <= set(verdict["rules"]["cases"])

    registry = MlflowRegistry(mlflow_server)
    compiled = registry.get_version("mlcompile/mine", f"{name}-COMPILED-1")
    assert compiled.metadata["uncompiled_model_uri"] == f"models:/{name}/{number}"  # the lineage, linked
    assert compiled.metadata["uncompiled_logged_model_id"].startswith("m-")
    assert compiled.metadata["uncompiled_logged_model_id"] == card["mlflow"]["logged_model_id"]

    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    served = mlflow.pyfunc.load_model(f"models:/{name}-COMPILED@staging").predict(pd.DataFrame({"text": TEXTS}))
    family = get_task(task)
    expected = uncompiled(model_dir, task).predict_many(TEXTS, family.default_params)
    assert [family.task_output(p) for p in served] == [family.task_output(p) for p in expected]


# A byte-level BPE tokenizer marks no word boundaries: transformers groups "first" by a heuristic and says so
@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words")
def test_a_hugging_face_directory_is_imported_then_compiled_from_the_local_registry(tmp_path, in_process):
    model_dir = build("roberta", "token-classification", tmp_path / "trained" / "model")
    env = user_project(tmp_path, "mine", ["UNCOMPILED_MODEL=MY-NER", "UNCOMPILED_WITH_ID=MY-NER-1",
                                          "COMPILED_MODEL=MY-NER-COMPILED", "AGGREGATION_STRATEGY=first"])
    imported = in_process.cli(tmp_path, "import", str(model_dir), **env)
    assert imported.returncode == 0, imported.output
    assert "registered: MY-NER-1 (token-classification, RobertaForTokenClassification)" in imported.output
    again = in_process.cli(tmp_path, "import", str(model_dir), **env)
    assert "already registered (the same files): MY-NER-1" in again.output

    run = in_process.cli(tmp_path, "run", **env)
    assert run.returncode == 0, run.output
    card = read_json(tmp_path / "outputs" / "download" / "model_card.json")
    assert card["derived"] is True and card["source"] == model_dir.resolve().as_uri()
    assert card["inference_params"] == {"aggregation_strategy": "first"}  # the setting over the derived default
    assert card["max_length"] == 128  # 130 positions, RoBERTa's first two never a token's

    model = pyfunc.load(tmp_path / "registry" / "mlcompile" / "mine" / "MY-NER-COMPILED" / "MY-NER-COMPILED-1")
    family = get_task("token-classification")
    expected = uncompiled(model_dir, "token-classification").predict_many(TEXTS, card["inference_params"])
    assert [family.task_output(p) for p in model.predict(TEXTS)] == [family.task_output(p) for p in expected]


def test_a_directory_path_compiles_with_no_registry_version(tmp_path, in_process):
    model_dir = build("bert", "multi-label", tmp_path / "trained" / "model")
    env = user_project(tmp_path, "mine", [f"UNCOMPILED_PATH={model_dir}", "COMPILED_MODEL=MY-TOPICS-COMPILED",
                                          "COMPILER=torchscript"])
    run = in_process.cli(tmp_path, "run", **env)
    assert run.returncode == 0, run.output
    card = read_json(tmp_path / "outputs" / "download" / "model_card.json")
    assert card["task"] == "text-classification" and card["problem_type"] == "multi_label_classification"
    [prediction] = pyfunc.load(tmp_path / "outputs" / "compile").predict(["Stocks fell as the election neared."])
    assert isinstance(prediction["label"], list)  # the labels above 0.5, not one argmax
    assert all((p > 0.5) == (label in prediction["label"]) for label, p in prediction["probabilities"].items())
