"""Outcomes of one pytest run, shared between processes (xdist workers) through files.

pytest-dependency cannot see results from other xdist workers, so each process writes the
outcome of every validate check it ran here, the errors that decide the exit code, and what the
upload did; the upload gate and the end-of-session summary read them back. One directory per
test run (xdist's testrun uid)."""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from .artifacts import read_json, write_json_atomic
from .compare import CheckResult
from .verdict import Outcome, Rules, Verdict

PLAN = "plan.json"
UPLOAD = "upload.json"
LOST = "lost"  # a worker died: what it was running never reports


@dataclass(frozen=True)
class ValidationPlan:
    """What every process's outcomes are checks of: this artifact under these rules."""

    compiled_content_id: str
    rules: Rules
    reused: bool  # replayed from a published verdict rather than run
    machine: dict | None = None  # where the checks run (a replay: where they ran)

    def as_dict(self) -> dict:
        return {"compiled_content_id": self.compiled_content_id, "rules": self.rules.as_dict(), "reused": self.reused,
                "machine": self.machine}

    @classmethod
    def from_dict(cls, data: dict) -> "ValidationPlan":
        return cls(data["compiled_content_id"], Rules.from_dict(data["rules"]), bool(data["reused"]),
                   data.get("machine"))

    def verdict(self) -> Verdict:
        """The verdict of these checks, before any outcome is recorded."""
        return Verdict(self.compiled_content_id, self.rules, machine=self.machine)


@dataclass(frozen=True)
class CheckOutcome:
    check_id: str
    outcome: Outcome
    result: CheckResult | None  # when the check ran
    message: str = ""  # why it did not pass

    @property
    def ran_here(self) -> bool:
        """Run in this session, not replayed from a published verdict."""
        return self.result is None or not self.result.details.get("reused")

    @classmethod
    def from_dict(cls, data: dict) -> "CheckOutcome":
        result = CheckResult.from_dict(data["result"]) if data["result"] else None
        return cls(data["check_id"], Outcome(data["outcome"]), result, data["message"])


class UploadOutcome(StrEnum):
    REGISTERED = "registered"
    EXISTING = "existing"  # registered before: nothing new
    REFUSED = "refused"  # by the gate
    FAILED = "failed"  # a registry error


@dataclass(frozen=True)
class UploadRecord:
    outcome: UploadOutcome
    message: str
    version_id: str | None = None


class CheckSpool:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _outcome_file(self, check_id: str) -> Path:
        return self.root / "checks" / (hashlib.sha1(check_id.encode()).hexdigest() + ".json")

    def write_plan(self, plan: ValidationPlan) -> None:
        write_json_atomic(self.root / PLAN, plan.as_dict())

    def plan(self) -> ValidationPlan | None:
        path = self.root / PLAN
        return ValidationPlan.from_dict(read_json(path)) if path.is_file() else None

    def record_error(self, exit_code: int) -> None:
        """A stage failed with one of mlcompile's errors (its exit code), in any process."""
        (self.root / "errors").mkdir(parents=True, exist_ok=True)
        (self.root / "errors" / str(exit_code)).touch()

    def error_code(self) -> int:
        """The highest recorded error exit code (artifact 12 > registry 11 > configuration 10 > 1), or 0."""
        folder = self.root / "errors"
        return max((int(p.name) for p in folder.iterdir()), default=0) if folder.is_dir() else 0

    def write_outcome(self, outcome: CheckOutcome) -> None:
        write_json_atomic(self._outcome_file(outcome.check_id), asdict(outcome))

    def outcomes(self) -> list[CheckOutcome]:
        folder = self.root / "checks"
        return [CheckOutcome.from_dict(read_json(p)) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []

    def record_lost(self, check_id: str, message: str) -> None:
        """A worker died running `check_id`: an error outcome, and every wait for checks ends now."""
        self.write_outcome(CheckOutcome(check_id, Outcome.ERROR, None, message))
        (self.root / LOST).touch()

    def lost(self) -> bool:
        return (self.root / LOST).is_file()

    def wait_for(self, check_ids: list[str], timeout: float, poll: float = 0.5) -> list[str]:
        """Wait until every check id has an outcome, a worker is lost (the verdict cannot pass: no reason to
        wait), or the timeout; return those still missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [c for c in check_ids if not self._outcome_file(c).is_file()]
            if not missing or self.lost() or time.monotonic() >= deadline:
                return missing
            time.sleep(poll)

    def verdict(self) -> Verdict | None:
        plan = self.plan()
        if plan is None:
            return None
        verdict = plan.verdict()
        for record in self.outcomes():
            verdict.record(record.check_id, record.result, record.outcome, record.message)
        return verdict

    def ran_checks(self) -> bool:
        """True when some check ran in this session (not replayed from a published verdict)."""
        return any(record.ran_here for record in self.outcomes())

    def write_upload(self, record: UploadRecord) -> None:
        write_json_atomic(self.root / UPLOAD, asdict(record))

    def upload(self) -> UploadRecord | None:
        path = self.root / UPLOAD
        if not path.is_file():
            return None
        record = read_json(path)
        return UploadRecord(UploadOutcome(record["outcome"]), record["message"], record["version_id"])

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
