"""An MLflow model version logged by MLflow's own flavors, in any experiment and with no mlcompile tags:
`mlflow.transformers.log_model` (a PyTorch model with its tokenizer: `model/`, `components/tokenizer/`,
the pipeline task in the MLmodel) or `mlflow.sentence_transformers.log_model` (the saved model in
`model.sentence_transformer/`). Its files are checksummed at download (the download manifest records
them), its MLmodel gives the task, and its input example becomes validation cases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from ..errors import RegistryError, UnsupportedModel
from ..registry import split_version_id
from ..registry.mlflow import MlflowRegistry, logged_model_id, redacted
from . import MODEL_DIR, Fetched

SUPPORTED_FLAVORS = ("transformers", "sentence_transformers")
# The transformers pipeline tasks mlcompile compiles, by the flavor's `task`.
FLAVOR_TASKS = {"text-classification": "text-classification", "sentiment-analysis": "text-classification",
                "token-classification": "token-classification", "ner": "token-classification"}
SENTENCE_TRANSFORMER_DATA = "model.sentence_transformer"


def flavor_source(registry: MlflowRegistry, project: str, version_id: str) -> "FlavorSource | None":
    """The version as MLflow's flavor logged it, or None when mlcompile registered the model."""
    model, number = split_version_id(version_id)
    return None if registry.is_mlcompile_model(model) else FlavorSource(registry, model, number)


def input_example_texts(path: Path) -> list[str]:
    """The texts of an input example: a list of texts (what a user logs), or a `text`/`inputs` column."""
    if not path.is_file():
        return []
    try:
        example = json.loads(path.read_text())
    except ValueError:
        return []
    if isinstance(example, dict):  # {"inputs": [...]}, or pandas' split orient {"columns": [...], "data": [...]}
        if "columns" in example and "data" in example:
            column = next((i for i, c in enumerate(example["columns"]) if c in ("text", "inputs", 0, "0")), 0)
            example = [row[column] if isinstance(row, list) else row for row in example["data"]]
        else:
            example = example.get("inputs", example.get("text", []))
    if isinstance(example, str):
        example = [example]
    return [item for item in example if isinstance(item, str)] if isinstance(example, list) else []


class FlavorSource:
    kind = "mlflow-flavor"

    def __init__(self, registry: MlflowRegistry, model: str, number: int):
        self.registry, self.model, self.number = registry, model, number
        self._version = None

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.number}"

    @property
    def version(self):
        if self._version is None:
            self._version = self.registry.model_version(self.model, self.number)
        return self._version

    def identity(self) -> dict:
        version = self.version  # a version's files never change; its record says which files they are
        return {"tracking_uri": redacted(self.registry.uri), "model_uri": self.uri, "source": version.source,
                "run_id": version.run_id, "created": version.creation_timestamp}

    def fetch(self, dest: Path) -> Fetched:
        logged = dest / ".mlflow-model"
        self.registry.download_model(self.model, self.number, logged)
        mlmodel_file = logged / "MLmodel"
        if not mlmodel_file.is_file():
            raise RegistryError(f"{self.uri} has no MLmodel: it is not an MLflow model (found: "
                                f"{', '.join(sorted(p.name for p in logged.iterdir())) or 'nothing'})")
        mlmodel = yaml.safe_load(mlmodel_file.read_text()) or {}
        flavors = mlmodel.get("flavors") or {}
        if "transformers" in flavors:
            task, facts = self._transformers(flavors["transformers"], logged, dest / MODEL_DIR)
        elif "sentence_transformers" in flavors:
            task, facts = None, self._sentence_transformers(flavors["sentence_transformers"], logged, dest / MODEL_DIR)
        else:
            loader = (flavors.get("python_function") or {}).get("loader_module")
            what = "a version mlcompile compiled" if loader == "mlcompile.pyfunc" else "a model"
            raise UnsupportedModel(
                f"{self.uri} is {what} logged with the flavor(s) {', '.join(flavors) or 'none'}; mlcompile compiles "
                f"models logged with mlflow.transformers (PyTorch) or mlflow.sentence_transformers, Hugging Face "
                f"directories (UNCOMPILED_PATH, mlcompile import) and versions mlcompile registered")
        texts = input_example_texts(logged / "input_example.json")
        shutil.rmtree(logged)
        model_id = logged_model_id(self.version) or mlmodel.get("model_id")
        extra = {"mlflow": {"model_uri": self.uri, "logged_model_id": model_id, "run_id": self.version.run_id or None,
                            **facts}}
        return Fetched(f"{self.model}-{self.number}", self.uri, metadata=dict(self.version.tags),
                       named_tasks=(("the MLflow transformers flavor's task", task),), input_example=tuple(texts),
                       extra_card=extra, logged_model_id=model_id)

    def _transformers(self, flavor: dict, logged: Path, dest: Path) -> tuple[str, dict]:
        """The flavor's model and tokenizer merged into one Hugging Face directory; its task."""
        flavor_task = flavor.get("task")
        if flavor_task not in FLAVOR_TASKS:
            raise UnsupportedModel(f"{self.uri} was logged with mlflow.transformers for the task {flavor_task!r}; "
                                   f"mlcompile compiles {', '.join(FLAVOR_TASKS)}")
        if flavor.get("framework", "pt") != "pt":
            raise UnsupportedModel(f"{self.uri} holds a {flavor['framework']!r} model; mlcompile compiles PyTorch "
                                   f"models (log the model with PyTorch weights)")
        binary = flavor.get("model_binary")
        if not binary:
            raise UnsupportedModel(f"{self.uri} was logged with save_pretrained=False: its weights are on the Hugging "
                                   f"Face Hub ({flavor.get('source_model_name')}), not in the registry, and mlcompile "
                                   f"reads models offline; log it with save_pretrained=True")
        missing = [name for name in [binary, *(f"components/{c}" for c in flavor.get("components", []))]
                   if not (logged / name).is_dir()]
        if "tokenizer" not in flavor.get("components", []):
            missing.append("components/tokenizer (the model was logged without its tokenizer)")
        if missing:
            raise RegistryError(f"{self.uri} is incomplete: no {', '.join(missing)} (MLmodel lists them)")
        shutil.copytree(logged / binary, dest)
        for path in (logged / "components" / "tokenizer").iterdir():
            shutil.copy(path, dest / path.name)
        return FLAVOR_TASKS[flavor_task], {"flavor": "transformers", "flavor_task": flavor_task,
                                           "pipeline": flavor.get("instance_type"),
                                           "transformers_version": flavor.get("transformers_version")}

    def _sentence_transformers(self, flavor: dict, logged: Path, dest: Path) -> dict:
        source = logged / SENTENCE_TRANSFORMER_DATA
        if not source.is_dir():
            raise RegistryError(f"{self.uri} is incomplete: no {SENTENCE_TRANSFORMER_DATA}/ (where "
                                f"mlflow.sentence_transformers saves the model)")
        shutil.copytree(source, dest)
        return {"flavor": "sentence_transformers",
                "sentence_transformers_version": flavor.get("sentence_transformers_version")}
