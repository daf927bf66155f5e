"""Coverage of a compiled artifact: every executable in it (each file at its compiled shape) runs
on rows cut from the validation cases, a full batch where it takes a batch, and every row must
match the uncompiled module on the same tokens.

The case checks run each case alone and beside two neighbours, which reaches only some
executables (a batch of eight long texts never happens there); this check reaches all of them,
so no compiled file is registered that validation never ran. Where the cases cannot fill a shape,
rows are repeated, shorter rows padded in, and longer ones cut to the length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .batching import BucketedRunner
from .compare import CheckResult, close
from .tasks import COVERAGE_CHECK, Tolerance

ARTIFACT, COVERAGE = COVERAGE_CHECK.split("::")
Row = tuple[str, list[int]]  # (case id, token ids with special tokens)


@dataclass(frozen=True)
class Executable:
    """One compiled file at the shape it was compiled for."""

    file: str
    length: int | None  # compiled sequence length (dynamic: the largest it takes); None: nothing loads it
    batch: int | None  # compiled batch size; None: any (dynamic shapes)

    @property
    def key(self) -> tuple[int | None, int | None]:
        return self.length, self.batch  # as BucketedRunner.executables names them

    def describe(self) -> str:
        if self.length is None:
            return "not loaded by compiled.json"
        if self.batch is None:
            return f"dynamic: any batch, length up to {self.length}"
        return f"batch {self.batch} x length {self.length}"


@dataclass(frozen=True)
class Probe:
    executable: Executable
    rows: list[Row]
    bucket: int | None  # the compiled length the rows are padded to (None: to the longest row)


def _cut(ids: list[int], length: int) -> list[int]:
    """The first tokens of a row, its closing special token kept."""
    return ids[: length - 1] + ids[-1:]


def _ranked(rows: list[Row], length: int, runner: BucketedRunner) -> list[Row]:
    """Rows for a static length: those the runner sends there (longest first), then shorter ones,
    then longer ones cut to the length."""
    natural = [r for r in rows if len(r[1]) <= length and runner.bucket_for(len(r[1])) == length]
    shorter = [r for r in rows if runner.bucket_for(len(r[1])) < length]
    longer = [(case, _cut(ids, length)) for case, ids in rows if len(ids) > length]
    return (sorted(natural, key=lambda r: -len(r[1])) + sorted(shorter, key=lambda r: -len(r[1]))
            + sorted(longer, key=lambda r: len(r[1])))


def _fill(ranked: list[Row], count: int) -> list[Row]:
    return [ranked[i % len(ranked)] for i in range(count)]


def plan(targets: list[Executable], rows: list[Row], runner: BucketedRunner) -> dict[Executable, list[Probe]]:
    """The probes that reach each executable: a full batch (or one row) at its shape; a dynamic
    model gets a full batch of the longest rows and one of the shortest row alone."""
    unique = list({tuple(ids): (case, ids) for case, ids in rows}.values())
    probes: dict[Executable, list[Probe]] = {}
    for target in targets:
        if target.length is None or not unique:
            probes[target] = []
        elif target.batch is None:
            longest = sorted(unique, key=lambda r: -len(r[1]))
            probes[target] = [Probe(target, _fill(longest, runner.batch_size), None), Probe(target, longest[-1:], None)]
        else:
            probes[target] = [Probe(target, _fill(_ranked(unique, target.length, runner), target.batch), target.length)]
    return probes


def _summary(parts: dict[str, CheckResult], noun: str) -> CheckResult:
    """One result over several comparisons: how many differ, and the worst (or nearest) one."""
    if not parts:
        return CheckResult(ARTIFACT, COVERAGE, False, f"no {noun} to compare")
    failed = {label: r for label, r in parts.items() if not r.passed}
    numeric = {label: r for label, r in (failed or parts).items() if r.margin is not None}
    label, worst = (min(numeric.items(), key=lambda item: item[1].margin) if numeric
                    else next(iter((failed or parts).items())))
    if failed:
        message = (f"{len(failed)} of {len(parts)} {noun}s differ from the uncompiled model "
                   f"({', '.join(list(failed)[:4])}{' ...' if len(failed) > 4 else ''}); worst {label}: {worst.message}")
    else:
        counted = f"{len(parts)} {noun}s match" if len(parts) > 1 else f"the {noun} matches"
        message = f"{counted} the uncompiled model; nearest its tolerance {label}: {worst.message}"
    return CheckResult(ARTIFACT, COVERAGE, not failed, message, worst.observed, worst.allowed, worst.margin)


def check(runner: BucketedRunner, uncompiled_module: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
          targets: list[Executable], rows: list[Row], tolerance: Tolerance) -> CheckResult:
    """Run every probe through the compiled runner and compare each row with `uncompiled_module` (the
    uncompiled module) on the same tokens, alone and unpadded."""
    uncompiled: dict[tuple[int, ...], torch.Tensor] = {}

    def expected(ids: list[int]) -> torch.Tensor:
        if tuple(ids) not in uncompiled:
            with torch.inference_mode():
                tensor = torch.tensor([ids], dtype=torch.long)
                uncompiled[tuple(ids)] = uncompiled_module(tensor, torch.ones_like(tensor))[0]
        return uncompiled[tuple(ids)]

    parts: dict[str, CheckResult] = {}
    table = []
    for target, probes in plan(targets, rows, runner).items():
        results: dict[str, CheckResult] = {}
        shapes, cases = [], []
        for n, probe in enumerate(probes):
            trace: list = []
            outputs, _ = runner.run_ids([ids for _, ids in probe.rows], bucket=probe.bucket, trace=trace)
            served = sorted({key for key, _, _ in trace}, key=str)
            shapes += [list(shape) for _, shape, _ in trace]
            cases += [case for case, _ in probe.rows]
            if served != [target.key]:
                results[f"probe {n + 1}"] = CheckResult(ARTIFACT, COVERAGE, False,
                                                        f"the probe ran on {served}, not on {target.key}")
                continue
            for row, ((case, ids), output) in enumerate(zip(probe.rows, outputs)):
                results[f"probe {n + 1} row {row + 1} ({case})"] = close(
                    ARTIFACT, COVERAGE, output, expected(ids), tolerance.atol, tolerance.rtol)
        if not probes:
            why = ("it is in the artifact, but compiled.json loads nothing from it, so nothing ever ran it"
                   if target.length is None else "no case rows to run")
            results["not exercised"] = CheckResult(ARTIFACT, COVERAGE, False, why)
        result = _summary(results, "row")
        parts[f"{target.file} ({target.describe()})"] = result
        table.append({
            "executable": target.file, "shape": target.describe(), "ran_shapes": shapes,
            "cases": sorted(set(cases)), "rows": len(cases), "passed": result.passed,
            "observed": result.observed, "allowed": result.allowed, "margin": result.margin,
            "message": result.message,
        })
    overall = _summary(parts, "compiled executable")
    overall.details["executables"] = table
    return overall


def check_cases(runner: BucketedRunner, uncompiled_module: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                targets: list[Executable], cases: dict[str, str], tolerance: Tolerance) -> CheckResult:
    """`check` on rows cut from the cases' texts (case id -> text), tokenized by the compiled runner."""
    ids, _ = runner.encode(list(cases.values()))
    return check(runner, uncompiled_module, targets, list(zip(cases, ids)), tolerance)
