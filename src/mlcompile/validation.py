"""Validation of one compiled artifact against the uncompiled pipeline, case by case.

Predictions are computed once per case (compiled and uncompiled) and every check of that case is
derived from them; the artifact's coverage check runs every compiled executable (mlcompile.coverage).
When an earlier validate run of the same artifact under the same rules passed and is published,
its recorded results are replayed instead (a warm re-run reuses the stage)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from functools import cached_property
from typing import Callable, Iterator

from . import components, coverage, regression
from .compare import CheckResult
from .machine import describe
from .tasks import COMPONENTS_CHECK, COVERAGE_CHECK, TOKENIZATION_CHECK, Case, TaskFamily
from .spool import ValidationPlan
from .verdict import Rules, Verdict


class Validation:
    def __init__(
        self,
        task: TaskFamily,
        cases: list[Case],
        rules: Rules,
        compiled_content_id: str,
        load_compiled: Callable[[], object],
        load_uncompiled: Callable[[], object],
        load_uncompiled_module: Callable[[], Callable],
        executables: Callable[[], list[coverage.Executable]],
        recorded: Verdict | None = None,
        regression_rows: Callable[[], Iterator[regression.Row]] | None = None,
        components: Callable[[], CheckResult] | None = None,
        load_uncompiled_tokenizer: Callable[[], object] | None = None,
    ):
        self.task = task
        self.cases = {case.id: case for case in cases}
        self.rules = rules
        self.tolerance = rules.tolerance
        self.compiled_content_id = compiled_content_id
        self._load_compiled = load_compiled
        self._load_uncompiled = load_uncompiled
        self._load_uncompiled_module = load_uncompiled_module  # the uncompiled module the artifact was compiled from
        self._executables = executables
        self._regression_rows = regression_rows
        self._components = components  # the artifact's non-executable parts against the uncompiled model's
        self._load_uncompiled_tokenizer = load_uncompiled_tokenizer
        self._results: dict[str, dict[str, CheckResult]] = {}
        self._noted: set[str] = set()
        fresh = Verdict(compiled_content_id, rules)
        reusable = (
            recorded is not None
            and recorded.passed
            and recorded.validate_fingerprint == fresh.validate_fingerprint
        )
        self.recorded = recorded if reusable else None

    def first_note(self, case_id: str) -> bool:
        """True the first time it is asked for a case: one truncation warning per case, not per check."""
        first = case_id not in self._noted
        self._noted.add(case_id)
        return first

    @property
    def reused(self) -> bool:
        return self.recorded is not None

    @cached_property
    def compiled(self):
        return self._load_compiled()

    @cached_property
    def uncompiled(self):
        return self._load_uncompiled()

    def result(self, check_id: str) -> CheckResult:
        case_id, check = check_id.rsplit("::", 1)
        if self.recorded is not None:
            result = self.recorded.results[check_id]
            return replace(result, details={**result.details, "reused": True})
        if check_id == COVERAGE_CHECK:
            return self._coverage()
        if check_id == COMPONENTS_CHECK:
            return self._components_result
        if check_id == TOKENIZATION_CHECK:
            return self._tokenization
        if case_id == regression.REGRESSION_CASE:
            return self._regression[check]
        if case_id not in self._results:
            self._results[case_id] = self._evaluate(self.cases[case_id])
        return self._results[case_id][check]

    @cached_property
    def _regression(self) -> dict[str, CheckResult]:
        """Every regression check, from one batched pass over the set."""
        described = self.rules.regression
        sample = described["invariance_sample"]
        every = math.ceil(described["rows"] / sample) if sample else 0
        rows = regression.in_shard(self._regression_rows(), described.get("shard"))
        return regression.evaluate(self.task, rows, self.compiled, self.uncompiled, self.tolerance,
                                   described["min_agreement"], every)

    @cached_property
    def _components_result(self) -> CheckResult:
        if self._components is None:
            return CheckResult(*COMPONENTS_CHECK.split("::"), False, "not available: no components to compare with")
        return self._components()

    @cached_property
    def _tokenization(self) -> CheckResult:
        """Every case text and regression row, tokenized by both pipelines' tokenizers."""
        if self._load_uncompiled_tokenizer is None:
            return CheckResult(*TOKENIZATION_CHECK.split("::"), False, "not available: no uncompiled tokenizer")
        texts = [(case.id, case.text) for case in self.cases.values()]
        if self.rules.regression is not None and self._regression_rows is not None:
            rows = regression.in_shard(self._regression_rows(), self.rules.regression.get("shard"))
            texts = itertools.chain(texts, ((f"{regression.REGRESSION_CASE}:{row.id}", row.text) for row in rows))
        return components.tokenization(self.compiled.runner.tokenizer, self._load_uncompiled_tokenizer(), texts)

    def _coverage(self) -> CheckResult:
        texts = {case_id: case.text for case_id, case in self.cases.items()}
        return coverage.check_cases(self.compiled.runner, self._load_uncompiled_module(), self._executables(), texts,
                                    self.tolerance)

    def _evaluate(self, case: Case) -> dict[str, CheckResult]:
        compiled = self.compiled.predict(case.text, case.params)
        uncompiled = self.uncompiled.predict(case.text, case.params)
        results = self.task.evaluate(case, compiled, uncompiled, self.tolerance, self._variants(case, compiled))
        for result in results.values():
            result.details["compiled_text"] = compiled["text_info"]
            result.details["uncompiled_text"] = uncompiled["text_info"]
        return results

    def _fillers(self, case: Case) -> list[str]:
        """Two other case texts of different lengths (the shortest and the median): neighbours
        with other padding, cheap enough to run for every case."""
        others = sorted({c.text for c in self.cases.values() if c.text.strip() and c.text != case.text}, key=len)
        return list(dict.fromkeys([others[0], others[len(others) // 2]])) if others else []

    def _variants(self, case: Case, alone: dict) -> dict[str, tuple]:
        """The compiled output of the case in other company, for the invariance check: inside a
        batch of texts of other lengths (batch position and neighbours' padding), and padded to
        the largest bucket (its own padding)."""
        variants = {}
        fillers = self._fillers(case)
        if fillers:
            position = (len(fillers) + 1) // 2
            batch = fillers[:position] + [case.text] + fillers[position:]
            in_batch = self.compiled.predict_many(batch, case.params)[position]
            variants[f"in a batch of {len(batch)} texts (position {position + 1})"] = (alone, in_batch)
        runner = self.compiled.runner
        (info,) = runner.describe([case.text])
        if info.bucket < runner.max_length:
            (own,), _ = runner.run([case.text])
            (padded,), _ = runner.run([case.text], bucket=runner.max_length)
            variants[f"bucket {runner.max_length} instead of {info.bucket}"] = (own.numpy(), padded.numpy())
        return variants

    def plan(self) -> ValidationPlan:
        """What the spool needs to assemble this run's verdict from the outcomes of every process."""
        machine = self.recorded.machine if self.recorded is not None else describe()
        return ValidationPlan(self.compiled_content_id, self.rules, self.reused, machine)
