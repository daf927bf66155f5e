"""The parts of a compiled artifact directory the serving path reads, as plain JSON: `compiled.json`
(what the compile stage wrote: task, backend, buckets, batching), the model config's labels and the
tokenizer's special tokens. No pydantic, no transformers: these are the few keys serving needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SPEC_FILE = "compiled.json"
TOKENIZER_FILE = "tokenizer.json"  # the `tokenizers` library's file, what a transformers fast tokenizer saves
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
CONFIG_FILE = "config.json"
TEXT_CLASSIFICATION = "text-classification"
TOKEN_CLASSIFICATION = "token-classification"
# Task names of versions registered by mlcompile 0.1 (named after its demo projects)
LEGACY_TASKS = {"ner": TOKEN_CLASSIFICATION, "sentiment": TEXT_CLASSIFICATION}
TASKS = (TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION)
TORCHSCRIPT = "torchscript"
BACKENDS = ("onnx", TORCHSCRIPT)  # ONNX Runtime sessions; TorchScript methods run by torch alone


class ServingUnsupported(ValueError):
    """The artifact cannot be served by this package (another task or backend, or no tokenizer.json);
    the message says why, so a caller can fall back to mlcompile's own pipeline."""


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Bucket:
    length: int
    file: str
    single_file: str | None = None
    method: str | None = None  # TorchScript: the shape's method of a file all shapes share
    single_method: str | None = None


@dataclass(frozen=True)
class Spec:
    """What serving needs of `compiled.json` (mlcompile.compiled.CompiledSpec)."""

    task: str
    backend: str
    dynamic_shapes: bool
    batch_size: int
    batch_tokens: int | None
    buckets: tuple[Bucket, ...]
    tokenizer: str = "tokenizer"
    config: str = "config"

    @classmethod
    def read(cls, root: Path) -> "Spec":
        raw = read_json(Path(root) / SPEC_FILE)
        task = LEGACY_TASKS.get(raw["task"], raw["task"])
        buckets = []
        for bucket in raw["buckets"]:
            buckets.append(Bucket(int(bucket["length"]), bucket["file"], bucket.get("single_file"),
                                  bucket.get("method"), bucket.get("single_method")))
        return cls(task=task, backend=raw["backend"], dynamic_shapes=bool(raw["dynamic_shapes"]),
                   batch_size=int(raw["batch_size"]), batch_tokens=raw.get("batch_tokens"),
                   buckets=tuple(sorted(buckets, key=lambda b: b.length)),
                   tokenizer=raw.get("tokenizer", "tokenizer"), config=raw.get("config", "config"))

    def check(self, root: Path) -> None:
        if self.task not in TASKS:
            raise ServingUnsupported(f"{root}: task {self.task!r}; serving runs {', '.join(TASKS)}")
        if self.backend not in BACKENDS:
            raise ServingUnsupported(f"{root}: backend {self.backend!r}; serving runs {', '.join(BACKENDS)}")


@dataclass(frozen=True)
class LabelConfig:
    """The model config's labels and problem type: what transformers' `PretrainedConfig` gives the
    classification pipelines (`id2label` with int keys, `num_labels`, `problem_type`)."""

    id2label: dict[int, str]
    problem_type: str | None = None
    function_to_apply: str | None = None

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def labels(self) -> list[str]:
        return [self.id2label[i] for i in range(len(self.id2label))]

    @classmethod
    def read(cls, config_dir: Path) -> "LabelConfig":
        raw = read_json(Path(config_dir) / CONFIG_FILE)
        id2label = raw.get("id2label")
        if id2label:
            found = {int(k): v for k, v in id2label.items()}
        else:  # transformers' default: num_labels (2) generic labels
            found = {i: f"LABEL_{i}" for i in range(int(raw.get("num_labels", 2)))}
        return cls(found, raw.get("problem_type"), raw.get("function_to_apply"))
