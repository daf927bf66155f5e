"""What a Hugging Face model directory is: its architecture, what it does (the task it can serve) and
whether mlcompile compiles it, read from its own files (config.json, modules.json); and the model card
derived from them for a version that has no mlcompile card."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RegistryError, UnsupportedModel
from ..tasks import SENTENCE_TRANSFORMER, SEQUENCE_CLASSIFIER, TASKS, TOKEN_CLASSIFIER, get_task, model_max_length
from ..tasks.sentence_embeddings import sentence_modules

# Encoder architectures (config model_type) compiled and validated on every CPU backend by the
# architecture matrix (tests/integration/test_architectures.py).
SUPPORTED_MODEL_TYPES = ("bert", "distilbert", "roberta", "xlm-roberta", "camembert", "deberta-v2", "electra",
                         "mpnet", "albert", "modernbert")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "spm.model")
# sentence-transformers modules after the Transformer that trace as part of the embedding function.
SENTENCE_MODULES = ("Pooling", "Normalize", "Dense", "LayerNorm", "Dropout")
HEADS = {"ForSequenceClassification": SEQUENCE_CLASSIFIER, "ForTokenClassification": TOKEN_CLASSIFIER}
# The task each kind of model serves unless a setting or the version's card says otherwise.
DEFAULT_TASK = {SENTENCE_TRANSFORMER: "sentence-embeddings", SEQUENCE_CLASSIFIER: "text-classification",
                TOKEN_CLASSIFIER: "token-classification"}


@dataclass(frozen=True)
class ModelFacts:
    """A model directory as its own files describe it."""

    root: Path
    kind: str  # SENTENCE_TRANSFORMER, SEQUENCE_CLASSIFIER or TOKEN_CLASSIFIER
    model_type: str
    architecture: str
    transformer_dir: Path  # where config.json and the tokenizer are (a sentence-transformer's Transformer module)
    labels: list[str] = field(default_factory=list)
    problem_type: str | None = None
    modules: list[str] = field(default_factory=list)  # a sentence-transformer's modules, in order

    def describe(self) -> str:
        modules = f" ({' -> '.join(self.modules)})" if self.modules else ""
        return f"{self.architecture} ({self.model_type}), a {self.kind}{modules}"


def _read_json(path: Path, what: str) -> dict | list:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{path}: the model's {what} cannot be read: {exc}") from None


def _sentence_modules(root: Path) -> tuple[Path, list[str]] | None:
    """The Transformer module's directory and the module names, for a sentence-transformers directory."""
    try:
        modules = sentence_modules(root)
    except ValueError as exc:
        raise RegistryError(f"{root / 'modules.json'}: the model's modules cannot be read: {exc}") from None
    if not modules:
        return None
    names = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if not names or names[0] != "Transformer":
        raise UnsupportedModel(f"{root}: a sentence-transformers model whose modules are {' -> '.join(names)}; "
                               f"mlcompile compiles a Transformer module followed by {', '.join(SENTENCE_MODULES)}")
    other = [name for name in names[1:] if name not in SENTENCE_MODULES]
    if other:
        raise UnsupportedModel(f"{root}: sentence-transformers module(s) {', '.join(other)} are not supported; "
                               f"after the Transformer mlcompile compiles {', '.join(SENTENCE_MODULES)}")
    return root / modules[0].get("path", ""), names


def inspect(root: Path) -> ModelFacts:
    """The facts of the model directory `root`; RegistryError when files it needs are missing,
    UnsupportedModel when it is of an architecture or kind mlcompile does not compile."""
    sentence = _sentence_modules(root)
    transformer_dir = sentence[0] if sentence else root
    config_file = transformer_dir / "config.json"
    if not config_file.is_file():
        found = ", ".join(sorted(p.name for p in root.iterdir())) if root.is_dir() else "nothing"
        raise RegistryError(f"{root}: no config.json: not a Hugging Face model directory (found: {found})")
    config = _read_json(config_file, "config.json")
    model_type = str(config.get("model_type", "?"))
    architectures = config.get("architectures") or []
    architecture = architectures[0] if architectures else f"{model_type} (no architectures in config.json)"
    missing = []
    if not any((transformer_dir / name).is_file() for name in WEIGHT_FILES):
        only_tf = (transformer_dir / "tf_model.h5").is_file()
        missing.append("PyTorch weights (" + " or ".join(WEIGHT_FILES[:2]) + ")"
                       + ("; it has TensorFlow weights only: save it with PyTorch" if only_tf else ""))
    if not any((transformer_dir / name).is_file() for name in TOKENIZER_FILES):
        missing.append(f"tokenizer files ({', '.join(TOKENIZER_FILES)})")
    if missing:
        raise RegistryError(f"{transformer_dir}: the model is incomplete: no {'; no '.join(missing)}")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModel(f"{transformer_dir}: architecture {architecture} (model_type {model_type!r}) is not "
                               f"supported; mlcompile compiles the encoders {', '.join(SUPPORTED_MODEL_TYPES)}")
    labels = [str(config.get("id2label", {}).get(str(i), i)) for i in range(len(config.get("id2label", {})))]
    common = dict(root=root, model_type=model_type, architecture=architecture, transformer_dir=transformer_dir)
    if sentence:
        return ModelFacts(kind=SENTENCE_TRANSFORMER, modules=sentence[1], **common)
    kind = next((k for suffix, k in HEADS.items() if architecture.endswith(suffix)), None)
    if kind is None:
        raise UnsupportedModel(
            f"{root}: {architecture} has no head mlcompile validates; supported: a sequence-classification or "
            f"token-classification head (...ForSequenceClassification, ...ForTokenClassification), or a "
            f"sentence-transformers model (modules.json with its pooling)")
    problem_type = config.get("problem_type")
    if kind == SEQUENCE_CLASSIFIER and (problem_type == "regression" or len(labels) < 2):
        raise UnsupportedModel(f"{root}: {architecture} has {len(labels)} output(s) (problem_type {problem_type!r}): "
                               f"a regression head; mlcompile validates classifiers with two or more labels")
    return ModelFacts(kind=kind, labels=labels, problem_type=problem_type, **common)


def resolve_task(facts: ModelFacts, requested: str, *named: tuple[str, str | None]) -> str:
    """The task to compile for: `requested` (MODEL_TASK) unless `auto`, else the first of `named`
    ((where, task) pairs such as the version's card or the MLflow flavor's task) that is set, else
    what the model's kind serves. UnsupportedModel when the model cannot serve it."""
    if requested != "auto":
        chosen, where = requested, "MODEL_TASK"
    else:
        chosen, where = next(((task, origin) for origin, task in named if task),
                             (DEFAULT_TASK[facts.kind], "the model's architecture"))
    task = get_task(chosen)
    if task.model_kind != facts.kind:
        serves = [name for name in TASKS if get_task(name).model_kind == facts.kind]
        raise UnsupportedModel(f"{where} asks for task {task.name!r}, which runs on a {task.model_kind}; the model "
                               f"is {facts.describe()}, which serves {', '.join(serves)} (set MODEL_TASK to one of "
                               f"those, or auto)")
    return task.name


def derived_card(facts: ModelFacts, task: str, source_uri: str, model_dir: str, extra: dict | None = None) -> dict:
    """A model card made from the model's own files, for a version registered without one."""
    family = get_task(task)
    card = {
        "task": task,
        "name": f"{facts.architecture} ({task})",
        "derived": True,
        "derived_from": "the model's config.json" + (" and modules.json" if facts.modules else ""),
        "source": source_uri,
        "architecture": facts.architecture,
        "model_type": facts.model_type,
        "max_length": model_max_length(facts.transformer_dir),
        "inference_params": dict(family.default_params),
        "model_dir": model_dir,
    }
    if facts.labels:
        card["labels"] = facts.labels
    if facts.problem_type:
        card["problem_type"] = facts.problem_type
    if facts.modules:
        card["modules"] = facts.modules
    return {**card, **(extra or {})}
