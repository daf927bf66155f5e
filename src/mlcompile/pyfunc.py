"""A registered compiled version as an MLflow `python_function` model.

The version's files get an `MLmodel` at their root whose data is the compiled artifact already there
(`compiled/`) and whose loader is this module, so `mlflow.pyfunc.load_model(<version files or
models:/NAME@alias>)` and `mlflow models serve` run the task pipeline through mlcompile's own loader,
and nothing is stored twice. `load` gives the task pipeline of any of them, or of an artifact directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .artifacts import read_json
from .compiled import SPEC_FILE, CompiledSpec
from .compilers import logger_at
from .errors import ArtifactError
from .machine import check_load
from .registry import MODEL_CARD

DATA = "compiled"  # the compiled artifact's folder in a version's files
VALIDATION = "validation"  # the verdict and report in a version's files
LOADER = "mlcompile.pyfunc"
TEXT = "text"  # the input column


def requirements(spec: CompiledSpec) -> list[str]:
    """What a fresh environment needs to load the version: mlcompile and the libraries it was compiled
    and validated with (the backend's runtime among them), at those versions."""
    return [f"{name}=={version}" for name, version in sorted(spec.versions.items()) if name != "python"]


def write_mlmodel(files: Path, spec: CompiledSpec, card: dict, example_texts: list[str]) -> None:
    """Make `files` (a version's files, the compiled artifact in `compiled/`) an MLflow pyfunc model:
    MLmodel, environment files, signature (a `text` column; the task's parameters with the card's
    defaults) and an input example."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import Model, infer_signature

    example = pd.DataFrame({TEXT: example_texts})
    params = card.get("inference_params") or None
    # logger_at: MLflow logs "Validating input example against model signature" at INFO
    with tempfile.TemporaryDirectory(prefix="mlcompile-mlmodel-") as tmp, logger_at("mlflow", logging.WARNING):
        saved = Path(tmp) / "model"
        mlflow.pyfunc.save_model(
            saved, loader_module=LOADER, signature=infer_signature(example, params=params), input_example=example,
            pip_requirements=requirements(spec),
            metadata={"task": spec.task, "backend": spec.backend, "precision": spec.precision,
                      "uncompiled_version": spec.uncompiled_version},
        )
        model = Model.load(saved / "MLmodel")
        model.flavors["python_function"]["data"] = DATA
        for path in saved.iterdir():
            if path.name != "MLmodel":
                shutil.copy(path, files / path.name)
        model.save(files / "MLmodel")


class CompiledTaskModel:
    """What `mlflow.pyfunc.load_model` wraps: predicts with the task pipeline over the compiled artifact,
    the same predictions (task output, checked tensors, text info) the validate stage compares."""

    def __init__(self, pipeline, task, default_params: dict):
        self.pipeline = pipeline
        self.task = task
        self.default_params = default_params

    def predict(self, model_input, params: dict | None = None) -> list[dict[str, Any]]:
        given = {key: value.tolist() if hasattr(value, "tolist") else value for key, value in (params or {}).items()}
        return self.pipeline.predict_many(texts_of(model_input), {**self.default_params, **given})

    def get_raw_model(self):
        """`PyFuncModel.get_raw_model()`: this task model (its `pipeline`, the card's default parameters)."""
        return self


def texts_of(model_input) -> list[str]:
    """The texts of a pyfunc input: a DataFrame's `text` column, a list of texts, or one text. MLflow makes
    `{"text": [a, b]}` a one-row frame whose cell is the list: such a cell is its texts."""
    if isinstance(model_input, str):
        return [model_input]
    if hasattr(model_input, "columns"):
        if TEXT not in model_input.columns:
            raise ValueError(f"the input has columns {list(model_input.columns)}; it needs a {TEXT!r} column")
        model_input = model_input[TEXT]
    elif isinstance(model_input, dict):
        model_input = model_input.get(TEXT, [])
    texts = []
    for item in model_input:
        texts += texts_of(list(item)) if not isinstance(item, str) and hasattr(item, "__iter__") else [str(item)]
    return texts


def _load_pyfunc(data_path: str) -> CompiledTaskModel:
    """MLflow's loader-module entry point; data_path is the version's `compiled/`."""
    from .compiled import load as load_pipeline
    from .tasks import get_task

    path = Path(data_path)
    spec = CompiledSpec.read(path)
    verdict = path.parent / VALIDATION / "verdict.json"  # beside compiled/ in a registered version's files
    if verdict.is_file():  # reduced precision proven on another CPU: MACHINE_MISMATCH says warn or refuse
        check_load(read_json(verdict).get("machine"), spec.precision, str(path.parent))
    return CompiledTaskModel(load_pipeline(path), get_task(spec.task),
                             read_json(path / MODEL_CARD).get("inference_params", {}))


def load(uri_or_path: str | Path) -> CompiledTaskModel:
    """The task model of a compiled version (`.predict(texts, params)`, `.pipeline`): from an artifact
    directory (`outputs/compile`), a registered version's files or directory (local registry, or
    downloaded), or an MLflow model URI (`models:/KEYWORDS-COMPILED@staging`)."""
    path = Path(uri_or_path)
    if (path / SPEC_FILE).is_file():
        return _load_pyfunc(str(path))
    for candidate in (path, path / "files"):  # a local registry's version directory holds files/
        if (candidate / "MLmodel").is_file():
            uri_or_path = str(candidate)
            break
    else:
        if path.exists() or ("://" not in str(uri_or_path) and not str(uri_or_path).startswith("models:/")):
            raise ArtifactError(f"{uri_or_path}: neither a compiled artifact (no {SPEC_FILE}) nor an MLflow model "
                                f"(no MLmodel); give outputs/compile, a registered version's files or a models:/ URI")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per copied file otherwise
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(uri_or_path)).get_raw_model()
