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
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator

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


class _Worst:
    """The rows with the smallest scores seen so far (ties: the earlier row)."""

    def __init__(self, size: int = WORST_ROWS):
        self.size = size
        self.heap: list[tuple[float, int, dict]] = []  # (-score, -index, record): the top is the best kept

    def add(self, score: float, row: Row, record: dict):
        heapq.heappush(self.heap, (-score, -row.index, {"row": row.index, "id": row.id, "text": _shown(row), **record}))
        if len(self.heap) > self.size:
            heapq.heappop(self.heap)

    def rows(self) -> list[dict]:
        return [record for _, _, record in sorted(self.heap, key=lambda item: (-item[0], -item[1]))]


class _TensorCheck:
    """Every row within ATOL/RTOL: the worst rows by margin and a histogram of each row's max |diff|."""

    def __init__(self, check: str, tolerance: Tolerance):
        self.check, self.tolerance = check, tolerance
        self.rows = self.failed = self.not_comparable = 0
        self.worst = _Worst()
        self.counts = [0] * (len(HISTOGRAM_EDGES) + 1)
        self.largest = 0.0
        self.tightest: tuple[float, str, CheckResult] | None = None  # (margin, row id, result)

    def add(self, row: Row, result: CheckResult | None):
        if result is None:  # scores of a row whose outcome differs: the agreement check reports it
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
        self.worst.add(margin, row, {"margin": margin, "observed": result.observed, "message": result.message})
        if self.tightest is None or margin < self.tightest[0]:
            self.tightest = (margin, row.id, result)

    def result(self) -> CheckResult:
        passed = self.failed == 0
        tight = self.tightest[2] if self.tightest else None
        message = (f"{self.rows - self.failed} of {self.rows} rows within atol {self.tolerance.atol:g}, "
                   f"rtol {self.tolerance.rtol:g}; largest |diff| {self.largest:.3g}")
        if tight is not None:
            message += f"; nearest its tolerance: row {self.tightest[1]}: {tight.message}"
        if self.not_comparable:
            message += f"; {self.not_comparable} rows not comparable (their outcomes differ)"
        return CheckResult(REGRESSION_CASE, self.check, passed, message,
                           tight.observed if tight else None, tight.allowed if tight else None,
                           tight.margin if tight else None,
                           {"rows": self.rows, "failed_rows": self.failed, "not_comparable": self.not_comparable,
                            "largest_difference": self.largest, "worst_rows": self.worst.rows(),
                            "histogram": {"bins": HISTOGRAM_LABELS, "counts": self.counts}})


HISTOGRAM_LABELS = ["<1e-9"] + [f"1e{int(round(math.log10(edge)))}" for edge in HISTOGRAM_EDGES[:-1]] + ["≥1e-1"]


class _Agreement:
    """The task's agreement over the set (counts summed row by row) against REGRESSION_MIN_AGREEMENT."""

    def __init__(self, task: TaskFamily, threshold: float):
        self.task, self.threshold = task, threshold
        self.rows = 0
        self.totals: dict[str, float] = {}
        self.worst = _Worst()  # the same rows for every agreement check of the task

    def add(self, row: Row, compiled: dict, reference: dict):
        self.rows += 1
        counts = self.task.agreement_counts(compiled, reference)
        for key, value in counts.items():
            self.totals[key] = self.totals.get(key, 0.0) + value
        score = self.task.row_agreement(counts)
        if score < 1.0:
            record = {"agreement": score, "compiled": self.task.outcome(compiled),
                      "reference": self.task.outcome(reference)}
            self.worst.add(score, row, record)

    def results(self) -> dict[str, CheckResult]:
        return agreement_results(self.task, self.totals, self.rows, self.threshold,
                                 {check: self.worst.rows() for check in self.task.agreement_checks})


def agreement_results(task: TaskFamily, totals: dict, rows: int, threshold: float,
                      worst_rows: dict[str, list[dict]]) -> dict[str, CheckResult]:
    found = {}
    for check, (value, summary) in task.agreement(totals, rows).items():
        passed = value >= threshold
        message = (f"{summary} over {rows} rows: {value:.4g} "
                   f"{'>=' if passed else '<'} REGRESSION_MIN_AGREEMENT {threshold:g}")
        found[check] = CheckResult(REGRESSION_CASE, check, passed, message, details={
            "rows": rows, "value": value, "threshold": threshold, "totals": totals,
            "worst_rows": worst_rows[check]})
    return found


class _Invariance:
    """Sampled rows predicted alone against their prediction inside the chunk's batch."""

    def __init__(self, task: TaskFamily, tolerance: Tolerance):
        self.task, self.tolerance = task, tolerance
        self.rows = self.failed = 0
        self.worst = _Worst()

    def add(self, row: Row, alone: dict, in_batch: dict):
        results = self.task.compare(row.id, in_batch, alone, self.tolerance)
        self.rows += 1
        bad = [r for r in results.values() if not r.passed]
        self.failed += bool(bad)
        margins = [r.margin for r in results.values() if r.margin is not None]
        score = -math.inf if bad else min(margins, default=0.0)
        self.worst.add(score, row, {"margin": score, "message": "; ".join(
            f"{r.check}: {r.message}" for r in (bad or results.values()))})

    def result(self) -> CheckResult:
        message = (f"{self.rows - self.failed} of {self.rows} sampled rows predict the same alone as inside a "
                   f"batch of the set (length-sorted, padded with their neighbours)")
        return CheckResult(REGRESSION_CASE, INVARIANCE, self.failed == 0, message,
                           details={"rows": self.rows, "failed_rows": self.failed, "worst_rows": self.worst.rows()})


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def in_shard(rows: Iterator[Row], shard: str | None) -> Iterator[Row]:
    """The rows of shard `I/N`: those with index % N == I - 1 (every row without a shard)."""
    if shard is None:
        return rows
    index, total = map(int, shard.split("/"))
    return (row for row in rows if row.index % total == index - 1)


def evaluate(task: TaskFamily, rows: Iterator[Row], compiled, reference, tolerance: Tolerance,
             min_agreement: float, invariance_every: int) -> dict[str, CheckResult]:
    """Every regression check, from one batched pass of both pipelines over the set (or a shard of it)."""
    agreement = _Agreement(task, min_agreement)
    tensors = {check: _TensorCheck(check, tolerance) for check in task.tensor_checks}
    invariance = _Invariance(task, tolerance)
    for chunk in _chunks(rows, CHUNK_ROWS):
        groups: dict[str, list[Row]] = {}
        for row in chunk:  # one call per parameter set, longest first as serving batches them
            groups.setdefault(json.dumps(row.params, sort_keys=True), []).append(row)
        for group in groups.values():
            group.sort(key=lambda row: len(row.text), reverse=True)
            texts, params = [row.text for row in group], group[0].params
            for row, ours, theirs in zip(group, compiled.predict_many(texts, params),
                                         reference.predict_many(texts, params), strict=True):
                agreement.add(row, ours, theirs)
                same_outcome = task.outcome(ours) == task.outcome(theirs)
                for check, tensor in tensors.items():
                    comparable = check != SCORES or same_outcome
                    tensor.add(row, close(row.id, check, task.tensor(check, ours), task.tensor(check, theirs),
                                          tolerance.atol, tolerance.rtol) if comparable else None)
                if invariance_every and row.index % invariance_every == 0:
                    invariance.add(row, compiled.predict(row.text, params), ours)
    return {**agreement.results(), **{check: tensor.result() for check, tensor in tensors.items()},
            INVARIANCE: invariance.result()}


def _merged_worst(parts: list[dict], key: str) -> list[dict]:
    rows = [row for part in parts for row in part["details"].get("worst_rows", [])]
    return sorted(rows, key=lambda row: (row.get(key, 0.0), row["row"]))[:WORST_ROWS]


def merge(task: TaskFamily, check: str, parts: list[dict], threshold: float, tolerance: Tolerance) -> CheckResult:
    """One regression check over the whole set from its shards' results (as verdicts store them): the
    agreement from the summed counts, tensors and invariance from summed rows, the worst rows overall."""
    details = [part["details"] for part in parts]
    rows = sum(d["rows"] for d in details)
    if check in task.agreement_checks:
        totals: dict[str, float] = {}
        for d in details:
            for key, value in d["totals"].items():
                totals[key] = totals.get(key, 0.0) + value
        worst = {name: _merged_worst(parts, "agreement") for name in task.agreement_checks}
        return agreement_results(task, totals, rows, threshold, worst)[check]
    failed = sum(d.get("failed_rows", 0) for d in details)
    if check == INVARIANCE:
        message = (f"{rows - failed} of {rows} sampled rows predict the same alone as inside a batch of the set "
                   f"(length-sorted, padded with their neighbours)")
        return CheckResult(REGRESSION_CASE, check, failed == 0, message, details={
            "rows": rows, "failed_rows": failed, "worst_rows": _merged_worst(parts, "margin")})
    tight = min((part for part in parts if part.get("margin") is not None), key=lambda part: part["margin"], default=None)
    largest = max((d["largest_difference"] for d in details), default=0.0)
    not_comparable = sum(d.get("not_comparable", 0) for d in details)
    counts = [sum(column) for column in zip(*(d["histogram"]["counts"] for d in details))]
    message = (f"{rows - failed} of {rows} rows within atol {tolerance.atol:g}, rtol {tolerance.rtol:g}; "
               f"largest |diff| {largest:.3g}")
    if tight is not None:
        message += "; nearest its tolerance: " + tight["message"].split("; nearest its tolerance: ", 1)[-1]
    if not_comparable:
        message += f"; {not_comparable} rows not comparable (their outcomes differ)"
    return CheckResult(REGRESSION_CASE, check, failed == 0, message, tight and tight["observed"],
                       tight and tight["allowed"], tight and tight["margin"],
                       {"rows": rows, "failed_rows": failed, "not_comparable": not_comparable,
                        "largest_difference": largest, "worst_rows": _merged_worst(parts, "margin"),
                        "histogram": {"bins": HISTOGRAM_LABELS, "counts": counts}})
