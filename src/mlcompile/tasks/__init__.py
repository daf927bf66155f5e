"""Task families. A task says how to load the uncompiled pipeline from downloaded files, what to
trace, how to run the compiled pipeline, and which task-level checks apply to each case."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..batching import BucketedRunner
from ..compare import CheckResult
from ..errors import ConfigError


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    params: dict = field(default_factory=dict)
    expected: dict | None = None  # prediction stored with the uncompiled version
    source: str = ""
    note: str = ""


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


class Pipeline(Protocol):
    def predict(self, text: str, params: dict) -> dict[str, Any]:
        """Task output, the tensors checked, and `text_info` (tokens, bucket, truncated)."""


class Task(Protocol):
    name: str
    token_level: bool  # compiled module returns per-token outputs

    def traceable(self, model_dir: Path) -> torch.nn.Module:
        """A module `(input_ids, attention_mask) -> tensor` to compile."""

    def reference(self, model_dir: Path, card: dict) -> Pipeline:
        """The uncompiled pipeline on CPU."""

    def compiled(self, runner: BucketedRunner, card: dict) -> Pipeline: ...

    def checks(self, case: Case) -> list[str]: ...

    def evaluate(self, case: Case, compiled: dict, reference: dict, tol: Tolerance) -> dict[str, CheckResult]: ...

    def demo(self, dest: Path) -> dict:
        """Write a demo uncompiled model (files under dest) and return its model card."""


def check_ids(task: Task, cases: list[Case]) -> list[str]:
    """Every `<case>::<check>` the cases call for: what a complete validation must run."""
    return [f"{case.id}::{check}" for case in cases for check in task.checks(case)]


def get_task(name: str) -> Task:
    if name == "keywords":
        from .keywords import KeywordsTask

        return KeywordsTask()
    raise ConfigError(f"MODEL_TASK={name!r}: unknown task family; known: keywords")
