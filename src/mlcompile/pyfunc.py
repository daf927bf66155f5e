"""A registered compiled version as an MLflow `python_function` model.

The version's files get an `MLmodel` at their root whose data is the compiled artifact already there
(`compiled/`) and whose loader is this module, bundled with the model (`code/mlcompile`, MLflow's
`code_paths`), so `mlflow.pyfunc.load_model(<version files or models:/NAME@alias>)` and `mlflow models
predict|serve` run the task pipeline through mlcompile's own loader, and nothing is stored twice. The
model's requirements name only what its format needs at serving time (`serving_libraries`), pinned to
the versions validation ran with: an ONNX or TorchScript text or token classifier loads through
`mlcompile.serving` (tokenizers, numpy, and ONNX Runtime or torch: no transformers, and for ONNX no
torch); every other artifact through the full loader (`compiled.load` and its task). `load` gives the task pipeline of any of them, or of an artifact
directory.

Importing this module imports no torch, transformers or pydantic: the light path needs none of them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ArtifactError
from .registry import MODEL_CARD

DATA = "compiled"  # the compiled artifact's folder in a version's files
VALIDATION = "validation"  # the verdict and report in a version's files
LOADER = "mlcompile.pyfunc"
CODE = "code"  # where MLflow puts the bundled loader code (code/mlcompile) in a version's files
TEXT = "text"  # the input column
SPEC_FILE = "compiled.json"  # serving.artifact.SPEC_FILE, read here as plain JSON (compiled.py imports torch)

# What serving a compiled artifact imports, by how it loads; the one place the requirements come from.
# MLflow's pyfunc loader and scoring server: mlflow-skinny (fastapi, uvicorn) and pandas, pinned to the
# registering environment's versions (MLflow pins itself the same way).
HARNESS = ("mlflow-skinny", "pandas")
# mlcompile.serving (ONNX and TorchScript text and token classification): what it imports, and each backend's
# runtime (serving.artifact.BACKENDS).
SERVING = ("numpy", "tokenizers")
SERVED_BACKENDS = {"onnx": ("onnxruntime",), "torchscript": ("torch",)}
SERVED_TASKS = ("text-classification", "token-classification", "ner", "sentiment")  # + mlcompile 0.1's names
# The full loader (compiled.load, tasks/): the model libraries, and what mlcompile's modules on that
# import path import (pydantic for CompiledSpec and settings, filelock for artifacts, tqdm for progress).
FULL_LOADER = ("filelock", "numpy", "pydantic", "pydantic-settings", "python-dotenv", "tokenizers", "torch", "tqdm",
               "transformers")
RUNTIMES = {"onnx": ("onnxruntime",), "openvino": ("openvino",), "torchscript": (),
            "neuron": ("neuronx-cc", "torch-neuronx")}
# KeyBERT over the compiled embeddings: KeyBERT imports sentence-transformers (hence torch) on import, and
# its candidate words come from scikit-learn's CountVectorizer.
TASK_LIBRARIES = {"keywords": ("keybert", "scikit-learn", "sentence-transformers")}
# Where a requirement is served from, when not PyPI: AWS's Neuron packages are only on AWS's index.
# torch is pinned to its public version (`torch==2.13.0`): the serving host's pip configuration
# chooses the build (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu, or find-links), as
# `make install`'s TORCH_INDEX does for the venv; an index line here would stall every env build on a
# host that cannot reach it (8 s per package here).
INDEXES = {"torch-neuronx": "https://pip.repos.neuron.amazonaws.com"}


def served_light(task: str, backend: str, artifact: Path | None = None) -> bool:
    """Whether mlcompile.serving (no transformers) loads an artifact of this task and backend: an ONNX or
    TorchScript text or token classifier; given the artifact's directory, one the package accepts
    (its compiled.json and the tokenizers library's tokenizer.json)."""
    if not (task in SERVED_TASKS and backend in SERVED_BACKENDS):
        return False
    if artifact is None:
        return True
    from .serving import Spec
    from .serving.artifact import TOKENIZER_FILE

    try:  # ServingUnsupported is a ValueError
        spec = Spec.read(artifact)
        spec.check(artifact)
    except (OSError, KeyError, ValueError):
        return False
    return (Path(artifact) / spec.tokenizer / TOKENIZER_FILE).is_file()


def serving_libraries(task: str, backend: str, artifact: Path | None = None) -> list[str]:
    """The distributions a fresh environment needs to load and serve an artifact of `task` compiled by
    `backend` (MLflow's own among them), by name; `artifact`: the artifact's directory, when at hand."""
    if served_light(task, backend, artifact):
        return sorted({*HARNESS, *SERVING, *SERVED_BACKENDS[backend]})
    return sorted({*HARNESS, *FULL_LOADER, *RUNTIMES.get(backend, ()), *TASK_LIBRARIES.get(task, ())})


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _public(version: str) -> str:
    """`2.13.0+cpu` -> `2.13.0`: a local version label no public index serves (`==2.13.0` still
    matches a `+cpu` build where the host's pip finds one)."""
    return version.split("+")[0]


def requirements(spec, artifact: Path | None = None) -> list[str]:
    """The version's pip requirements: `serving_libraries` pinned to the versions validation ran with
    (`CompiledSpec.versions`); a library it does not record (MLflow's, a loader's support library, one
    an older compiled.json lacks) at the registering environment's version. Never mlcompile itself
    (the loader travels with the model), public versions only; an index line where a library is only
    on its vendor's index (Neuron)."""
    recorded = {_normalized(name): version for name, version in spec.versions.items() if version}
    lines, indexes = [], []
    for name in serving_libraries(spec.task, spec.backend, artifact):
        version = recorded.get(name)
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = None
        lines.append(f"{name}=={_public(version)}" if version else name)
        if name in INDEXES and INDEXES[name] not in indexes:
            indexes.append(INDEXES[name])
    return [f"--extra-index-url {index}" for index in indexes] + lines


def write_mlmodel(files: Path, spec, card: dict, example_texts: list[str]) -> None:
    """Make `files` (a version's files, the compiled artifact in `compiled/`) an MLflow pyfunc model:
    MLmodel, environment files (`requirements`), the loader's code (`code/mlcompile`), signature (a
    `text` column; the task's parameters with the card's defaults) and an input example."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import Model, infer_signature

    from .compilers import logger_at

    example = pd.DataFrame({TEXT: example_texts})
    params = card.get("inference_params") or None
    # logger_at: MLflow logs "Validating input example against model signature" at INFO
    with tempfile.TemporaryDirectory(prefix="mlcompile-mlmodel-") as tmp, logger_at("mlflow", logging.WARNING):
        code = Path(tmp) / "code" / "mlcompile"  # this package, as it is, without bytecode
        shutil.copytree(Path(__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        saved = Path(tmp) / "model"
        mlflow.pyfunc.save_model(
            saved, loader_module=LOADER, code_paths=[str(code)], signature=infer_signature(example, params=params),
            input_example=example, pip_requirements=requirements(spec, files / DATA),
            metadata={"task": spec.task, "backend": spec.backend, "precision": spec.precision,
                      "uncompiled_version": spec.uncompiled_version},
        )
        model = Model.load(saved / "MLmodel")
        model.flavors["python_function"]["data"] = DATA
        for path in saved.iterdir():
            if path.is_dir():
                shutil.copytree(path, files / path.name)
            elif path.name != "MLmodel":
                shutil.copy(path, files / path.name)
        model.save(files / "MLmodel")


class CompiledTaskModel:
    """What `mlflow.pyfunc.load_model` wraps: predicts with the task pipeline over the compiled artifact,
    the same predictions (task output, checked tensors, text info) the validate stage compares."""

    def __init__(self, pipeline, task, default_params: dict):
        self.pipeline = pipeline
        self._task = task  # the TaskFamily, or its name until asked for (the light path imports no tasks/)
        self.default_params = default_params

    @property
    def task(self):
        """The task family (`tasks.get_task`), imported when first asked for."""
        if isinstance(self._task, str):
            from .tasks import get_task

            self._task = get_task(self._task)
        return self._task

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


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read as JSON: {exc}") from exc


def _load_pyfunc(data_path: str) -> CompiledTaskModel:
    """MLflow's loader-module entry point; data_path is the version's `compiled/`. An ONNX or TorchScript text
    or token classifier loads through mlcompile.serving, every other artifact through compiled.load."""
    path = Path(data_path)
    spec = _read_json(path / SPEC_FILE)
    if not isinstance(spec, dict) or not {"task", "backend"} <= spec.keys():
        raise ArtifactError(f"{path / SPEC_FILE} cannot be read as a compiled artifact's spec (no task or backend)")
    verdict = path.parent / VALIDATION / "verdict.json"  # beside compiled/ in a registered version's files
    if verdict.is_file():  # reduced precision proven on another CPU: MACHINE_MISMATCH says warn or refuse
        from .machine import check_load

        check_load(_read_json(verdict).get("machine"), spec.get("precision", "fp32"), str(path.parent))
    params = _read_json(path / MODEL_CARD).get("inference_params", {})
    if served_light(spec["task"], spec["backend"]):
        from . import serving

        try:
            return CompiledTaskModel(serving.load(path), spec["task"], params)
        except serving.ServingUnsupported as exc:  # registered with the full loader's requirements then
            logging.getLogger(__name__).info("%s: %s; loading it with mlcompile's full loader", path, exc)
    from .compiled import load as load_pipeline
    from .tasks import get_task

    return CompiledTaskModel(load_pipeline(path), get_task(spec["task"]), params)


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

    if path.exists():
        return mlflow.pyfunc.load_model(str(uri_or_path)).get_raw_model()
    # A registry URI: MLflow downloads the version into a temporary folder it never removes (a model's worth
    # of /tmp per call). Every backend has read its files once loaded, so the copy goes when loading ends.
    with tempfile.TemporaryDirectory(prefix="mlcompile-load-") as tmp:
        return mlflow.pyfunc.load_model(str(uri_or_path), dst_path=tmp).get_raw_model()
