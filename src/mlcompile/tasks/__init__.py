"""Task families, named by what a model does: text classification, token classification, sentence
embeddings, and keywords (an application over sentence embeddings). A task says how to load the
uncompiled pipeline from downloaded files, what to trace, how to run the compiled pipeline, and which
task-level checks apply to each case.

Every task compares the same way: its task output exactly (keywords, entity spans, label),
its tensors within tolerance, the compiled output's invariance to batching and padding, and, when
the registry stored one, the prediction recorded with the uncompiled version.
"""

from __future__ import annotations

import copy
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..batching import BucketedRunner
from ..cases import ARTIFACT_CASE, Case, params_key
from ..compare import CheckResult, close, combine, same
from ..errors import ConfigError

TASKS = {
    "text-classification": "mlcompile.tasks.text_classification:TextClassificationTask",
    "token-classification": "mlcompile.tasks.token_classification:TokenClassificationTask",
    "sentence-embeddings": "mlcompile.tasks.sentence_embeddings:SentenceEmbeddingsTask",
    "keywords": "mlcompile.tasks.keywords:KeywordsTask",
}
# Task names of versions registered by mlcompile 0.1 (named after its demo projects).
LEGACY_NAMES = {"ner": "token-classification", "sentiment": "text-classification"}
# What kind of model each task runs: a task can run on a model of its kind only.
SENTENCE_TRANSFORMER = "sentence-transformer"
SEQUENCE_CLASSIFIER = "sequence-classifier"
TOKEN_CLASSIFIER = "token-classifier"
INVARIANCE = "invariance"
SCORES = "scores"  # one per task-output item (keyword, entity): comparable only when the task outputs agree
EXPECTED = "expected"
# One check of the compiled artifact as a whole: every executable in it ran on case inputs and
# matched the uncompiled model (mlcompile.coverage).
COVERAGE_CHECK = f"{ARTIFACT_CASE}::coverage"
# The artifact's other parts (tokenizer, config, modules, card) against the uncompiled model's, and every
# case and regression text tokenized alike by both pipelines (mlcompile.components).
COMPONENTS_CHECK = f"{ARTIFACT_CASE}::components"
TOKENIZATION_CHECK = f"{ARTIFACT_CASE}::tokenization"
ARTIFACT_CHECKS = (COVERAGE_CHECK, COMPONENTS_CHECK, TOKENIZATION_CHECK)


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


class Pipeline:
    """A task pipeline: `predict_many` returns, per text, the task output, the tensors checked and
    `text_info` (tokens, bucket, truncated)."""

    def predict_many(self, texts: list[str], params: dict) -> list[dict[str, Any]]:
        raise NotImplementedError

    def predict(self, text: str, params: dict) -> dict[str, Any]:
        return self.predict_many([text], params)[0]


class CompiledPipeline(Pipeline):
    runner: BucketedRunner  # the compiled buckets, for probes below the task level


class TaskFamily:
    name: str
    model_kind: str  # SENTENCE_TRANSFORMER, SEQUENCE_CLASSIFIER or TOKEN_CLASSIFIER
    token_level: bool  # the compiled module returns per-token outputs
    task_output_check: str  # the task-level output, compared exactly
    tensor_checks: tuple[str, ...]  # compared within tolerance; "scores" are per task-output item
    default_params: dict = {}  # inference parameters a derived model card starts from

    # --- what each task defines
    def tokenizer_dir(self, model_dir: Path) -> Path:
        raise NotImplementedError

    def uncompiled_tokenizer(self, model_dir: Path):
        return load_tokenizer(self.tokenizer_dir(model_dir))

    def traceable(self, model_dir: Path) -> torch.nn.Module:
        """A module `(input_ids, attention_mask) -> tensor` to compile."""
        raise NotImplementedError

    def max_length(self, model_dir: Path) -> int:
        """Tokens the uncompiled pipeline keeps of a text (it truncates the rest)."""
        raise NotImplementedError

    def uncompiled(self, model_dir: Path, card: dict) -> Pipeline:
        """The uncompiled pipeline on CPU."""
        raise NotImplementedError

    def compiled(self, runner: BucketedRunner, model_dir: Path, card: dict) -> CompiledPipeline:
        """The same pipeline over compiled buckets; `model_dir` holds the artifact's own files."""
        raise NotImplementedError

    def task_output(self, prediction: dict) -> Any:
        raise NotImplementedError

    def over_embed(self, embed, text_info) -> Pipeline | None:
        """The task pipeline over a plain `texts -> embeddings` function (the bench's peer), where the
        task's model is an embedder; None otherwise."""
        return None

    def tensor(self, check: str, prediction: dict) -> Any:
        return prediction[check]

    # --- agreement over a regression set (mlcompile.regression); by default the share of rows whose
    # task output is the same, one check
    agreement_checks: tuple[str, ...]  # aggregate checks of the task output, each against a threshold
    agreement_meaning: str = "rows with the same task output"

    def agreement_counts(self, compiled: dict, uncompiled: dict) -> dict[str, float]:
        """One row's contribution to the set's agreement (summed over rows)."""
        return {"same": float(self.task_output(compiled) == self.task_output(uncompiled))}

    def row_agreement(self, counts: dict[str, float]) -> float:
        """One row's agreement in [0, 1] (1: the same task output), for the worst rows."""
        return counts["same"]

    def agreement(self, totals: dict[str, float], rows: int) -> dict[str, tuple[float, str]]:
        """Each agreement check: its value over the set in [0, 1] and what it measures."""
        return {self.agreement_checks[0]: (totals.get("same", 0.0) / rows if rows else 1.0, self.agreement_meaning)}

    # --- shared comparison
    def checks(self, case: Case) -> list[str]:
        return [self.task_output_check, *self.tensor_checks, INVARIANCE, *([EXPECTED] if case.expected else [])]

    def compare(self, case_id: str, observed: dict, uncompiled: dict, tol: Tolerance,
                tensors: tuple[str, ...] | None = None) -> dict[str, CheckResult]:
        """Outcome and tensor checks of one prediction against another, keyed by check name."""
        exact = same(case_id, self.task_output_check, self.task_output(observed), self.task_output(uncompiled), self.task_output_check)
        results = {self.task_output_check: exact}
        for check in self.tensor_checks if tensors is None else tensors:
            if check == SCORES and not exact.passed:
                results[check] = CheckResult(case_id, check, False, f"not comparable: {self.task_output_check} differ")
            else:
                results[check] = close(case_id, check, self.tensor(check, observed), self.tensor(check, uncompiled),
                                       tol.atol, tol.rtol)
        return results

    def evaluate(self, case: Case, compiled: dict, uncompiled: dict, tol: Tolerance,
                 variants: dict[str, tuple[Any, Any]]) -> dict[str, CheckResult]:
        """`variants`: label -> (alone, variant), each a compiled prediction (dict) or a raw
        compiled tensor, for the invariance check."""
        results = self.compare(case.id, compiled, uncompiled, tol)
        parts: dict[str, CheckResult] = {}
        for label, (alone, variant) in variants.items():
            if isinstance(alone, dict):
                for check, result in self.compare(case.id, variant, alone, tol).items():
                    parts[f"{label}: {check}"] = result
            else:
                parts[label] = close(case.id, INVARIANCE, variant, alone, tol.atol, tol.rtol)
        results[INVARIANCE] = combine(case.id, INVARIANCE, parts)
        if case.expected:
            # Tensors the stored prediction has (older records may lack some), and the task output's own.
            stored = tuple(c for c in self.tensor_checks if c in case.expected or c == SCORES)
            results[EXPECTED] = combine(case.id, EXPECTED, self.compare(case.id, compiled, case.expected, tol, stored))
        return results


# Models whose position ids start after the padding index (RoBERTa's scheme): of
# max_position_embeddings, pad_token_id + 1 positions are never used by a token.
PADDING_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet")


def model_max_length(model_dir: Path) -> int:
    """The tokenizer's maximum length, capped by the positions the model can embed."""
    limits = []
    tokenizer_config = model_dir / "tokenizer_config.json"
    if tokenizer_config.is_file():
        limits.append(json.loads(tokenizer_config.read_text()).get("model_max_length"))
    config_file = model_dir / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
        positions = config.get("max_position_embeddings")
        if isinstance(positions, int) and config.get("model_type") in PADDING_OFFSET_POSITIONS:
            positions -= (config.get("pad_token_id") or 0) + 1
        limits.append(positions)
    limits = [v for v in limits if isinstance(v, int) and 0 < v < 1_000_000]  # transformers writes 1e30: no limit
    if not limits:
        raise ConfigError(f"{model_dir}: neither tokenizer_config.json nor config.json says the model's maximum length")
    return min(limits)


def load_tokenizer(path: Path):
    """A saved tokenizer (the uncompiled model's, or a compiled artifact's), from disk only."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def uncompiled_text_info(tokens: int, max_length: int) -> dict:
    """What the uncompiled pipeline does to a text of `tokens` tokens (the compiled pipeline's
    is batching.TextInfo)."""
    return {"tokens": tokens, "bucket": None, "kept": min(tokens, max_length), "truncated": tokens > max_length}


def check_ids(task: TaskFamily, cases: list[Case]) -> list[str]:
    """Every `<case>::<check>` the cases call for, and the artifact's coverage: what a complete
    validation must run."""
    return [f"{case.id}::{check}" for case in cases for check in task.checks(case)] + list(ARTIFACT_CHECKS)


def get_task(name: str) -> TaskFamily:
    name = LEGACY_NAMES.get(name, name)
    if name not in TASKS:
        raise ConfigError(f"MODEL_TASK={name!r}: unknown task family; known: {', '.join(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


class RememberedPipeline:
    """An uncompiled pipeline with the predictions it made: each text predicted once (a copy handed
    out, so callers cannot change what is kept), and with `batches`, each batch too. The process-wide
    one (stages.load_uncompiled) remembers texts only, so a regression set's batches do not stay in
    memory; COMPILER=auto remembers batches while it checks its candidates against them."""

    def __init__(self, pipeline, batches: bool = False):
        self.pipeline, self.batches = pipeline, batches
        self.made: dict[tuple, object] = {}

    def predict(self, text: str, params: dict) -> dict:
        key = (text, params_key(params))
        if key not in self.made:
            self.made[key] = self.pipeline.predict(text, params)
        return copy.deepcopy(self.made[key])

    def predict_many(self, texts: list[str], params: dict) -> list[dict]:
        if not self.batches:
            return self.pipeline.predict_many(texts, params)
        key = (tuple(texts), params_key(params))
        if key not in self.made:
            self.made[key] = self.pipeline.predict_many(texts, params)
        return self.made[key]
