"""The validation verdict: what the checks of one compiled artifact showed, and the rules they ran
under (cases, checks, tolerances). A verdict counts only for the same artifact and the same rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from . import __version__
from .artifacts import fingerprint
from .compare import CheckResult
from .regression import REGRESSION_CASE
from .regression import check_names as regression_checks
from .cases import EVIDENCE_SOURCES, evidence
from .tasks import COVERAGE_CHECK, Case, TaskFamily, Tolerance, check_ids


class Outcome(StrEnum):
    """What became of a check: pytest's words, which verdict.json keeps (a str, so older files load)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # its test could not run it (a fixture failed, the worker died)
    SKIPPED = "skipped"
    NOT_RUN = "not run"  # never recorded: what a summary counts for a check the rules call for that has none

    @classmethod
    def of(cls, passed: bool) -> "Outcome":
        return cls.PASSED if passed else cls.FAILED


def case_digest(case: Case) -> str:
    """What a case asks: its text, its parameters and the prediction stored with the model."""
    return fingerprint({"text": case.text, "params": case.params, "expected": case.expected})


@dataclass(frozen=True)
class Rules:
    """What a validation checks and how strictly."""

    atol: float
    rtol: float
    cases: dict[str, str]  # case id -> case_digest
    checks: tuple[str, ...]  # every `<case>::<check>` the cases call for, the artifact's coverage included
    mlcompile: str = __version__  # the checks' own code
    precision: str = "fp32"  # the artifact's; its tolerances are the ones the project declares for it
    # the regression set (file, sha256, rows) with its agreement threshold and invariance sample; None: no set
    regression: dict | None = None
    # cases per kind of evidence (mlcompile.cases.evidence): stored predictions, stored inputs, input example,
    # cases file. No stored predictions: the `expected` check was not available, never passed
    evidence: dict | None = None

    @classmethod
    def build(cls, task: TaskFamily, cases: list[Case], tolerance: Tolerance, precision: str = "fp32",
              regression: dict | None = None) -> "Rules":
        checks = check_ids(task, cases)
        if regression is not None:
            checks += [f"{REGRESSION_CASE}::{name}" for name in regression_checks(task)]
        return cls(tolerance.atol, tolerance.rtol, {case.id: case_digest(case) for case in cases},
                   tuple(checks), precision=precision, regression=regression, evidence=evidence(cases))

    @property
    def tolerance(self) -> Tolerance:
        return Tolerance(self.atol, self.rtol)

    def fingerprint(self) -> str:
        return fingerprint(self.as_dict())

    def differences(self, current: "Rules") -> list[str]:
        """How these rules (a verdict's) differ from `current` (what the settings call for now)."""
        found = []
        if self.regression != current.regression:
            found.append(f"regression set: {_regression_label(self.regression)} in the verdict, "
                         f"{_regression_label(current.regression)} now")
        for name in ("precision", "atol", "rtol", "mlcompile"):
            then, now = getattr(self, name), getattr(current, name)
            if then != now:
                found.append(f"{name.upper() if name in ('atol', 'rtol') else name.replace('mlcompile', 'mlcompile version')}: "
                             f"{then} in the verdict, {now} now")
        lacking = [c for c in current.cases if c not in self.cases]
        extra = [c for c in self.cases if c not in current.cases]
        changed = [c for c in current.cases if c in self.cases and self.cases[c] != current.cases[c]]
        for label, ids in (("cases the verdict did not check", lacking), ("cases that changed since", changed),
                           ("cases checked that the current cases do not have", extra)):
            if ids:
                found.append(f"{label}: {_some(ids)}")
        if not (lacking or extra or changed) and self.checks != current.checks:
            found.append(f"checks differ: {_some(sorted(set(self.checks) ^ set(current.checks)))}")
        return found

    def as_dict(self) -> dict:
        return {**asdict(self), "checks": list(self.checks)}

    @classmethod
    def from_dict(cls, data: dict) -> "Rules":
        return cls(float(data["atol"]), float(data["rtol"]), dict(data["cases"]), tuple(data["checks"]),
                   data["mlcompile"], data.get("precision", "fp32"), data.get("regression"), data.get("evidence"))

    def evidence_lines(self) -> list[str]:
        """What the validation could compare against, in words (the report, the run summary)."""
        found = self.evidence or {}
        stored = found.get("stored_predictions", 0)
        lines = [f"stored predictions: {stored} case(s), each checked (`expected`)" if stored else
                 "stored predictions: not available (the version stored none): the `expected` check did not run"]
        for key, label in EVIDENCE_SOURCES.items():
            lines.append(f"{label}: {found.get(key, 0)} case(s)")
        if self.regression is not None:
            lines.append(f"regression set: {self.regression['rows']} rows of {self.regression['file']}")
        return lines


def _regression_label(regression: dict | None) -> str:
    if regression is None:
        return "none"
    return (f"{regression['file']} ({regression['rows']} rows, sha256 {regression['sha256'][:12]}, "
            f"min agreement {regression['min_agreement']:g}, invariance sample {regression['invariance_sample']})")


def _some(ids: list[str], limit: int = 8) -> str:
    shown = ", ".join(ids[:limit])
    return f"{shown} and {len(ids) - limit} more" if len(ids) > limit else shown


@dataclass
class Verdict:
    """What one validation of one compiled artifact (its content id) showed under `rules`.

    `outcomes` maps the check ids that ran to their outcome; `results` holds the results of checks
    that ran; `messages` why a check did not pass."""

    compiled_content_id: str
    rules: Rules
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    results: dict[str, CheckResult] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    machine: dict | None = None  # where the checks ran (mlcompile.machine.describe): CPU flags, runtimes

    def record(self, check_id: str, result: CheckResult | None, outcome: Outcome | None = None,
               message: str = "") -> None:
        """A check's result and outcome: whether it passed, unless its test says otherwise (an error, a
        skip); and why it did not pass: `message`, else the result's."""
        self.outcomes[check_id] = outcome = outcome or Outcome.of(result.passed)
        if result is not None:
            self.results[check_id] = result
        why = message or (result.message if result is not None else "")
        if outcome != Outcome.PASSED and why:
            self.messages[check_id] = why

    @property
    def validate_fingerprint(self) -> str:
        """This artifact under these rules: what a published verdict is keyed by."""
        return fingerprint({"compiled": self.compiled_content_id, "rules": self.rules.fingerprint()})

    @property
    def passed(self) -> bool:
        checks = self.rules.checks
        return bool(checks) and all(self.outcomes.get(c) == Outcome.PASSED for c in checks)

    def problems(self, limit: int = 10) -> list[str]:
        """Why this verdict does not allow an upload (empty when it does)."""
        checks = self.rules.checks
        if not checks:
            return ["no validation checks were defined (no cases?)"]
        missing = [c for c in checks if c not in self.outcomes]
        bad = [c for c in checks if c in self.outcomes and self.outcomes[c] != Outcome.PASSED]
        lines = [f"{c}: {self.outcomes[c]}: {self.messages.get(c, '')}".rstrip(": ") for c in bad[:limit]]
        if len(bad) > limit:
            lines.append(f"... and {len(bad) - limit} more checks that did not pass")
        if missing:
            lines.append(
                f"{len(missing)} of {len(checks)} checks did not run (e.g. {', '.join(missing[:3])}); "
                "run the whole validate stage"
            )
        return lines

    @property
    def coverage(self) -> list[dict]:
        """Per compiled executable: the cases that ran through it and how it compared."""
        result = self.results.get(COVERAGE_CHECK)
        return result.details.get("executables", []) if result else []

    def summary(self) -> dict:
        """The headline numbers, as verdict.json, the report and the run's summary show them (plain words)."""
        counts: dict[str, int] = {}
        for check in self.rules.checks:
            outcome = self.outcomes.get(check, Outcome.NOT_RUN).value
            counts[outcome] = counts.get(outcome, 0) + 1
        margins = [(r.margin, cid) for cid, r in self.results.items() if r.margin is not None]
        truncated = sorted(
            {r.case for r in self.results.values() if r.details.get("compiled_text", {}).get("truncated")}
        )
        worst = min(margins) if margins else None
        return {
            "passed": self.passed,
            "checks": len(self.rules.checks),
            "cases": len(self.rules.cases),
            "outcomes": counts,
            "smallest_margin": {"check": worst[1], "margin": worst[0]} if worst else None,
            "truncated_cases": truncated,
            "tolerance": {"atol": self.rules.atol, "rtol": self.rules.rtol, "precision": self.rules.precision},
            "coverage": [{k: e.get(k) for k in ("executable", "passed", "cases")} for e in self.coverage],
            "regression": self.regression_summary(),
            "evidence": self.rules.evidence,
            "machine": self.machine,
        }

    def regression_summary(self) -> dict | None:
        """The regression set and, per check, its outcome and headline number."""
        if self.rules.regression is None:
            return None
        checks = {}
        for check_id in self.rules.checks:
            case, check = check_id.split("::", 1)
            if case == REGRESSION_CASE:
                details = self.results[check_id].details if check_id in self.results else {}
                checks[check] = {"outcome": self.outcomes.get(check_id, Outcome.NOT_RUN).value,
                                 **{k: details[k] for k in ("value", "threshold", "largest_difference", "rows",
                                                           "failed_rows") if k in details}}
        return {"file": self.rules.regression["file"], "rows": self.rules.regression["rows"], "checks": checks}

    def as_dict(self) -> dict:
        return {
            "compiled_content_id": self.compiled_content_id,
            "validate_fingerprint": self.validate_fingerprint,
            "rules": self.rules.as_dict(),
            "outcomes": self.outcomes,
            "results": {check_id: result.as_dict() for check_id, result in self.results.items()},
            "messages": self.messages,
            "machine": self.machine,
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        return cls(data["compiled_content_id"], Rules.from_dict(data["rules"]),
                   {check_id: Outcome(outcome) for check_id, outcome in data["outcomes"].items()},
                   {check_id: CheckResult.from_dict(result) for check_id, result in data["results"].items()},
                   dict(data.get("messages", {})), data.get("machine"))
