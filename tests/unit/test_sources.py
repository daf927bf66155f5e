"""Where an uncompiled model comes from: what a Hugging Face directory is and which task it serves, the
card derived for a version without one, and the MLflow flavors' layouts, with every bad input refused
with one error that names what was found and what is supported (tiny models built offline; the MLflow
registry faked by a directory laid out as MLflow downloads a version)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlcompile.errors import RegistryError, UnsupportedModel
from mlcompile.sources import Fetched, model_card
from mlcompile.sources.huggingface import derived_card, inspect, resolve_task
from mlcompile.sources.mlflow_flavors import FlavorSource, input_example_texts, logged_model_id
from mlcompile.tasks import model_max_length

from ..tiny_models import build

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {task: build("distilbert", task, root / task) for task in
            ("text-classification", "token-classification", "multi-label", "sentence-embeddings")}


def edited(model: Path, dest: Path, **config) -> Path:
    """A copy of `model` whose config.json has `config` merged in (None removes a key)."""
    shutil.copytree(model, dest)
    found = json.loads((dest / "config.json").read_text())
    found.update(config)
    (dest / "config.json").write_text(json.dumps({k: v for k, v in found.items() if v is not None}))
    return dest


def test_the_task_comes_from_the_architecture_unless_a_setting_or_the_version_says(models):
    assert resolve_task(inspect(models["text-classification"]), "auto") == "text-classification"
    assert resolve_task(inspect(models["multi-label"]), "auto") == "text-classification"
    assert resolve_task(inspect(models["token-classification"]), "auto") == "token-classification"
    facts = inspect(models["sentence-embeddings"])
    assert facts.kind == "sentence-transformer" and facts.modules == ["Transformer", "Pooling", "Normalize"]
    assert resolve_task(facts, "auto") == "sentence-embeddings"
    assert resolve_task(facts, "auto", ("the version's model card", "keywords")) == "keywords"
    assert resolve_task(facts, "keywords") == "keywords"  # an application over the embeddings


def test_a_task_the_model_cannot_serve_is_refused_naming_what_it_serves(models):
    with pytest.raises(UnsupportedModel) as caught:
        resolve_task(inspect(models["text-classification"]), "token-classification")
    assert caught.value.exit_code == 13
    assert ("MODEL_TASK asks for task 'token-classification', which runs on a token-classifier; the model is "
            "DistilBertForSequenceClassification (distilbert), a sequence-classifier, which serves "
            "text-classification") in str(caught.value)


def test_a_derived_card_says_what_the_model_is_and_that_it_was_derived(models):
    card = derived_card(inspect(models["multi-label"]), "text-classification", "file:///m", "model")
    assert card["derived"] is True and card["source"] == "file:///m" and card["max_length"] == 128
    assert card["labels"] == ["business", "politics", "science", "sports"]
    assert card["problem_type"] == "multi_label_classification"
    token = derived_card(inspect(models["token-classification"]), "token-classification", "x", "model")
    assert token["inference_params"] == {"aggregation_strategy": "simple"}


def test_settings_override_the_cards_aggregation_strategy(models, tmp_path):
    shutil.copytree(models["token-classification"], tmp_path / "model")
    settings = SimpleNamespace(model_task="auto", aggregation_strategy="max")
    card = model_card(settings, Fetched("v", "file:///m"), tmp_path)
    assert card["task"] == "token-classification" and card["inference_params"] == {"aggregation_strategy": "max"}


@pytest.mark.parametrize("config, message", [
    ({"model_type": "gpt2", "architectures": ["GPT2ForSequenceClassification"]},
     "architecture GPT2ForSequenceClassification (model_type 'gpt2') is not supported; mlcompile compiles the "
     "encoders bert, distilbert, roberta"),
    ({"architectures": ["DistilBertModel"]}, "DistilBertModel has no head mlcompile validates"),
    ({"architectures": ["DistilBertForSequenceClassification"], "id2label": {"0": "SCORE"}, "problem_type": "regression"},
     "has 1 output(s) (problem_type 'regression'): a regression head"),
])
def test_unsupported_architectures_and_heads_are_refused_by_name(models, tmp_path, config, message):
    with pytest.raises(UnsupportedModel, match=message.replace("(", r"\(").replace(")", r"\)")):
        inspect(edited(models["text-classification"], tmp_path / "m", **config))


def test_an_incomplete_directory_names_each_missing_part(models, tmp_path):
    model = edited(models["text-classification"], tmp_path / "m")
    (model / "model.safetensors").unlink()
    (model / "tokenizer.json").unlink()
    with pytest.raises(RegistryError) as caught:
        inspect(model)
    assert "the model is incomplete: no PyTorch weights (model.safetensors or pytorch_model.bin); no tokenizer files" \
        in str(caught.value) and caught.value.exit_code == 11
    (model / "config.json").unlink()
    with pytest.raises(RegistryError, match="no config.json: not a Hugging Face model directory"):
        inspect(model)


def test_the_longest_text_is_what_the_model_can_embed(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta", "max_position_embeddings": 514,
                                                      "pad_token_id": 1}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1000000000000000019884624838656}))
    assert model_max_length(tmp_path) == 512  # RoBERTa's positions start after the padding index
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 512}))
    assert model_max_length(tmp_path) == 512


# --- MLflow flavors: a version as `download_artifacts("models:/NAME/N")` lays it out ----------------
class FakeMlflow:
    """The two calls FlavorSource makes of the MLflow registry, over a prepared directory."""

    uri = "http://127.0.0.1:5000"

    def __init__(self, laid_out: Path, source: str = "models:/m-0123abcd", run_id: str = ""):
        self.laid_out = laid_out
        self.version = SimpleNamespace(source=source, run_id=run_id, creation_timestamp=1, tags={"team": "nlp"},
                                       model_id=None)

    def model_version(self, model, number):
        return self.version

    def download_model(self, model, number, dest):
        shutil.copytree(self.laid_out, dest)


def transformers_layout(model: Path, dest: Path, **flavor) -> Path:
    """model/ (config and weights), components/tokenizer/ and an MLmodel, as mlflow.transformers saves them."""
    (dest / "model").mkdir(parents=True)
    (dest / "components" / "tokenizer").mkdir(parents=True)
    for path in model.iterdir():
        target = "components/tokenizer" if path.name.startswith("tokenizer") else "model"
        shutil.copy(path, dest / target / path.name)
    described = {"task": "text-classification", "components": ["tokenizer"], "model_binary": "model",
                 "instance_type": "TextClassificationPipeline", **flavor}
    described = {k: v for k, v in described.items() if v is not None}
    (dest / "MLmodel").write_text(f"model_id: m-0123abcd\nflavors:\n  transformers: {json.dumps(described)}\n")
    (dest / "input_example.json").write_text('["I love it", "I hate it"]')
    return dest


def test_a_transformers_flavor_version_becomes_one_model_directory_with_its_input_example(models, tmp_path):
    laid_out = transformers_layout(models["text-classification"], tmp_path / "logged")
    fetched = FlavorSource(FakeMlflow(laid_out), "USER-SENTIMENT", 1).fetch(tmp_path / "download")
    model = tmp_path / "download" / "model"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in model.iterdir()}
    assert not (tmp_path / "download" / ".mlflow-model").exists()
    assert fetched.version_id == "USER-SENTIMENT-1" and fetched.source_uri == "models:/USER-SENTIMENT/1"
    assert fetched.named_tasks == (("the MLflow transformers flavor's task", "text-classification"),)
    assert fetched.input_example == ("I love it", "I hate it") and fetched.logged_model_id == "m-0123abcd"
    assert fetched.card is None and fetched.extra_card["mlflow"]["flavor"] == "transformers"


@pytest.mark.parametrize("flavor, error, message", [
    ({"task": "fill-mask"}, UnsupportedModel, "for the task 'fill-mask'; mlcompile compiles text-classification"),
    ({"framework": "tf"}, UnsupportedModel, "holds a 'tf' model; mlcompile compiles PyTorch models"),
    ({"model_binary": None, "source_model_name": "org/model"}, UnsupportedModel,
     "logged with save_pretrained=False: its weights are on the Hugging Face Hub \\(org/model\\)"),
    ({"components": []}, RegistryError, "is incomplete: no components/tokenizer"),
])
def test_a_flavor_version_mlcompile_cannot_compile_is_refused_by_name(models, tmp_path, flavor, error, message):
    laid_out = transformers_layout(models["text-classification"], tmp_path / "logged", **flavor)
    with pytest.raises(error, match=message):
        FlavorSource(FakeMlflow(laid_out), "USER-SENTIMENT", 1).fetch(tmp_path / "download")


def test_other_flavors_and_compiled_versions_are_refused_naming_the_supported_sources(tmp_path):
    (tmp_path / "logged").mkdir()
    (tmp_path / "logged" / "MLmodel").write_text("flavors:\n  sklearn: {}\n  python_function: {}\n")
    with pytest.raises(UnsupportedModel, match="is a model logged with the flavor\\(s\\) sklearn, python_function; "
                                               "mlcompile compiles models logged with mlflow.transformers"):
        FlavorSource(FakeMlflow(tmp_path / "logged"), "M", 1).fetch(tmp_path / "download")
    (tmp_path / "logged" / "MLmodel").write_text("flavors:\n  python_function: {loader_module: mlcompile.pyfunc}\n")
    with pytest.raises(UnsupportedModel, match="is a version mlcompile compiled"):
        FlavorSource(FakeMlflow(tmp_path / "logged"), "M", 1).fetch(tmp_path / "download2")


def test_input_examples_in_the_shapes_mlflow_saves_them(tmp_path):
    example = tmp_path / "input_example.json"
    for saved in ('["a", "b"]', '{"inputs": ["a", "b"]}', '{"columns": ["text"], "data": [["a"], ["b"]]}'):
        example.write_text(saved)
        assert input_example_texts(example) == ["a", "b"]
    example.write_text('{"columns": ["x"], "data": [[1]]}')
    assert input_example_texts(example) == []
    assert input_example_texts(tmp_path / "absent.json") == []


def test_the_logged_model_behind_a_version_comes_from_its_source():
    assert logged_model_id(SimpleNamespace(model_id=None, source="models:/m-abc")) == "m-abc"
    assert logged_model_id(SimpleNamespace(model_id=None, source="runs:/123/model")) is None
    assert logged_model_id(SimpleNamespace(model_id="m-x", source="")) == "m-x"
