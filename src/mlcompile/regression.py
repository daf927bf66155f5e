"""A regression set validated in batches: rows streamed from JSON Lines, CSV or Parquet, both pipelines
run once per chunk (length-sorted, as serving runs), and every check an aggregate over the set with its
threshold, its worst rows and, for tensors, a histogram of the per-row differences.

Check ids are `regression-set::<check>`: the task's agreement checks (keywords: exact rate and mean
Jaccard; ner: entity F1; sentiment: label agreement), its tensor checks (every row within ATOL/RTOL;
for sentiment that bounds the probability shift) and `invariance` (a sample of rows, alone against
inside their chunk's batch). Memory stays flat: only aggregates and the worst rows are kept.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import json
import math
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Iterator

from .cases import params_key
from .compare import CheckResult, close
from .errors import ConfigError
from .tasks import INVARIANCE, SCORES, TaskFamily, Tolerance

REGRESSION_CASE = "regression-set"
FORMATS = (".jsonl", ".csv", ".parquet")
CHUNK_ROWS = 256  # rows read, sorted and predicted together
WORST_ROWS = 5
TEXT_SHOWN = 240  # characters of a worst row's text kept in the verdict
# Decades of per-row |diff| for the histograms: [0, 1e-9), [1e-9, 1e-8), ..., [1e-1, inf)
HISTOGRAM_EDGES = [10.0 ** e for e in range(-9, 0)]


@dataclass(frozen=True)
class Row:
    index: int
    id: str
    text: str
    params: dict = field(default_factory=dict)


def _parsed_params(value, where: str) -> dict:
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: 'params' is not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'params' must be an object of the task's parameters, not {type(value).__name__}")
    return value


def _records(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, record) for every row of the file, streamed."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        yield f"{path}:{number}", json.loads(line)
                    except ValueError as exc:
                        raise ConfigError(f"{path}:{number}: not a JSON object: {exc}") from None
    elif path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            for number, record in enumerate(csv.DictReader(handle), 2):
                yield f"{path}:{number}", record
    else:
        import pyarrow.parquet as pq

        number = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                number += 1
                yield f"{path} row {number}", record


def read_rows(path: Path, card_params: dict) -> Iterator[Row]:
    """The set's rows: a `text` column, optional `id` and `params` (a JSON object; the card's
    parameters fill what it leaves out)."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ConfigError(f"REGRESSION_SET={str(path)!r}: use JSON Lines, CSV or Parquet ({', '.join(FORMATS)})")
    if not path.is_file():
        raise ConfigError(f"REGRESSION_SET={str(path)!r}: file does not exist")
    for index, (where, record) in enumerate(_records(path)):
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ConfigError(f"{where}: every row needs a 'text' string (columns: text, optional id and params)")
        params = {**card_params, **_parsed_params(record.get("params"), where)}
        yield Row(index, str(record.get("id") or f"row-{index}"), record["text"], params)


def describe(path: Path) -> dict:
    """What binds a verdict to the set: its name, content and size."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    rows = sum(1 for _ in _records(Path(path)))
    return {"file": Path(path).name, "sha256": digest.hexdigest(), "rows": rows}


def check_names(task: TaskFamily) -> list[str]:
    return [*task.agreement_checks, *task.tensor_checks, INVARIANCE]


def _shown(row: Row) -> str:
    return row.text if len(row.text) <= TEXT_SHOWN else row.text[:TEXT_SHOWN] + "…"


def _record(row: Row, **found) -> dict:
    """A worst row as the verdict keeps it."""
    return {"row": row.index, "id": row.id, "text": _shown(row), **found}


class _Worst:
    """The rows with the smallest scores seen so far (ties: the earlier row)."""

    def __init__(self, size: int = WORST_ROWS):
        self.size = size
        self.heap: list[tuple[float, int, dict]] = []  # (-score, -row, record): the top is the best kept

    def add(self, score: float, record: dict):
        heapq.heappush(self.heap, (-score, -record["row"], record))
        if len(self.heap) > self.size:
            heapq.heappop(self.heap)

    def rows(self) -> list[dict]:
        return [record for _, _, record in sorted(self.heap, key=lambda item: (-item[0], -item[1]))]


HISTOGRAM_LABELS = ["<1e-9"] + [f"1e{int(round(math.log10(edge)))}" for edge in HISTOGRAM_EDGES[:-1]] + ["≥1e-1"]
NEAREST = "; nearest its tolerance: "
NOT_COMPARABLE = " rows not comparable (their task outputs differ)"


@dataclass
class Aggregate:
    """One regression check's totals over the rows it saw, row by row or summed from its shards' results;
    `result` builds its CheckResult. Agreement checks: the task's counts against REGRESSION_MIN_AGREEMENT;
    tensor checks: every row within ATOL/RTOL, with a histogram of each row's max |diff|; invariance: sampled
    rows alone against inside a batch. Each with its worst rows."""

    check: str
    rows: int = 0
    failed: int = 0  # rows that failed (tensor checks, invariance)
    worst: _Worst = field(default_factory=_Worst)
    totals: dict[str, float] = field(default_factory=dict)  # agreement: the task's counts, summed
    not_comparable: int = 0  # tensor checks: rows whose task outputs differ (the agreement check reports them)
    largest: float = 0.0  # tensor checks: the largest |diff| of any row
    counts: list[int] = field(default_factory=lambda: [0] * len(HISTOGRAM_LABELS))  # rows per histogram bin
    # tensor checks: the row nearest its tolerance: (margin, the message's words for it, its result)
    nearest: tuple[float, str, CheckResult] | None = None

    def add_agreement(self, task: TaskFamily, row: Row, compiled: dict, uncompiled: dict):
        self.rows += 1
        counts = task.agreement_counts(compiled, uncompiled)
        self._count(counts)
        score = task.row_agreement(counts)
        if score < 1.0:
            self.worst.add(score, _record(row, agreement=score, compiled=task.task_output(compiled),
                                          uncompiled=task.task_output(uncompiled)))

    def add_tensor(self, row: Row, result: CheckResult | None):
        """A row's comparison; None: its scores are not comparable (its task output differs)."""
        if result is None:
            self.not_comparable += 1
            return
        self.rows += 1
        self.failed += not result.passed
        if result.margin is None and result.passed:  # nothing to compare (no entity, no keyword)
            return
        diff = float(result.details.get("max_abs_diff", result.observed or 0.0) or 0.0)
        self.largest = max(self.largest, diff)
        self.counts[bisect_right(HISTOGRAM_EDGES, diff)] += 1
        margin = result.margin if result.margin is not None else -math.inf  # NaN, shape: failed outright
        self.worst.add(margin, _record(row, margin=margin, observed=result.observed, message=result.message))
        if self.nearest is None or margin < self.nearest[0]:
            self.nearest = (margin, f"row {row.id}: {result.message}", result)

    def add_invariance(self, row: Row, results: dict[str, CheckResult]):
        """A sampled row's comparisons, inside its chunk's batch against alone."""
        self.rows += 1
        bad = [r for r in results.values() if not r.passed]
        self.failed += bool(bad)
        margins = [r.margin for r in results.values() if r.margin is not None]
        score = -math.inf if bad else min(margins, default=0.0)
        self.worst.add(score, _record(row, margin=score, message="; ".join(
            f"{r.check}: {r.message}" for r in (bad or results.values()))))

    def add_shard(self, part: CheckResult):
        """A shard's result of this check, as its verdict stores it."""
        found = part.details
        self.rows += found["rows"]
        self.failed += found.get("failed_rows", 0)
        self._count(found.get("totals", {}))
        self.not_comparable += found.get("not_comparable", 0)
        self.largest = max(self.largest, found.get("largest_difference", 0.0))
        if "histogram" in found:
            self.counts = [mine + theirs for mine, theirs in zip(self.counts, found["histogram"]["counts"])]
        for record in found.get("worst_rows", []):
            self.worst.add(record["agreement"] if "agreement" in record else record["margin"], record)
        if part.margin is not None and (self.nearest is None or part.margin < self.nearest[0]):
            said = part.message.split(NEAREST, 1)[-1]
            self.nearest = (part.margin, said.rsplit("; ", 1)[0] if said.endswith(NOT_COMPARABLE) else said, part)

    def _count(self, counts: dict[str, float]):
        for key, value in counts.items():
            self.totals[key] = self.totals.get(key, 0.0) + value

    def result(self, task: TaskFamily, tolerance: Tolerance, min_agreement: float) -> CheckResult:
        worst_rows = self.worst.rows()
        if self.check in task.agreement_checks:
            value, summary = task.agreement(self.totals, self.rows)[self.check]
            passed = value >= min_agreement
            message = (f"{summary} over {self.rows} rows: {value:.4g} "
                       f"{'>=' if passed else '<'} REGRESSION_MIN_AGREEMENT {min_agreement:g}")
            return CheckResult(REGRESSION_CASE, self.check, passed, message, details={
                "rows": self.rows, "value": value, "threshold": min_agreement, "totals": dict(self.totals),
                "worst_rows": worst_rows})
        passed = self.failed == 0
        if self.check == INVARIANCE:
            message = (f"{self.rows - self.failed} of {self.rows} sampled rows predict the same alone as inside a "
                       f"batch of the set (length-sorted, padded with their neighbours)")
            return CheckResult(REGRESSION_CASE, self.check, passed, message,
                               details={"rows": self.rows, "failed_rows": self.failed, "worst_rows": worst_rows})
        message = (f"{self.rows - self.failed} of {self.rows} rows within atol {tolerance.atol:g}, "
                   f"rtol {tolerance.rtol:g}; largest |diff| {self.largest:.3g}")
        _, said, nearest = self.nearest or (None, None, None)
        if nearest is not None:
            message += NEAREST + said
        if self.not_comparable:
            message += f"; {self.not_comparable}{NOT_COMPARABLE}"
        return CheckResult(REGRESSION_CASE, self.check, passed, message,
                           nearest.observed if nearest else None, nearest.allowed if nearest else None,
                           nearest.margin if nearest else None,
                           {"rows": self.rows, "failed_rows": self.failed, "not_comparable": self.not_comparable,
                            "largest_difference": self.largest, "worst_rows": worst_rows,
                            "histogram": {"bins": HISTOGRAM_LABELS, "counts": self.counts}})


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def in_shard(rows: Iterator[Row], shard: str | None) -> Iterator[Row]:
    """The rows of shard `I/N`: those with index % N == I - 1 (every row without a shard)."""
    if shard is None:
        return rows
    index, total = map(int, shard.split("/"))
    return (row for row in rows if row.index % total == index - 1)


def evaluate(task: TaskFamily, rows: Iterator[Row], compiled, uncompiled, tolerance: Tolerance,
             min_agreement: float, invariance_every: int) -> dict[str, CheckResult]:
    """Every regression check, from one batched pass of both pipelines over the set (or a shard of it)."""
    agreement = Aggregate("agreement")  # the task's agreement checks all sum the same counts
    tensors = [Aggregate(check) for check in task.tensor_checks]
    invariance = Aggregate(INVARIANCE)
    for chunk in _chunks(rows, CHUNK_ROWS):
        groups: dict[str, list[Row]] = {}
        for row in chunk:  # one call per parameter set, longest first as serving batches them
            groups.setdefault(params_key(row.params), []).append(row)
        for group in groups.values():
            group.sort(key=lambda row: len(row.text), reverse=True)
            texts, params = [row.text for row in group], group[0].params
            for row, ours, theirs in zip(group, compiled.predict_many(texts, params),
                                         uncompiled.predict_many(texts, params), strict=True):
                agreement.add_agreement(task, row, ours, theirs)
                same_task_output = task.task_output(ours) == task.task_output(theirs)
                for tensor in tensors:
                    comparable = tensor.check != SCORES or same_task_output
                    tensor.add_tensor(row, close(row.id, tensor.check, task.tensor(tensor.check, ours),
                                                 task.tensor(tensor.check, theirs), tolerance.atol, tolerance.rtol)
                                      if comparable else None)
                if invariance_every and row.index % invariance_every == 0:
                    alone = compiled.predict(row.text, params)
                    invariance.add_invariance(row, task.compare(row.id, ours, alone, tolerance))
    totals = [*(replace(agreement, check=check) for check in task.agreement_checks), *tensors, invariance]
    return {total.check: total.result(task, tolerance, min_agreement) for total in totals}


def merge(task: TaskFamily, check: str, parts: list[CheckResult], min_agreement: float,
          tolerance: Tolerance) -> CheckResult:
    """One regression check over the whole set from its shards' results: their counts and rows summed, the
    worst rows overall."""
    whole = Aggregate(check)
    for part in parts:
        whole.add_shard(part)
    return whole.result(task, tolerance, min_agreement)
