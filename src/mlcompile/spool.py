"""Outcomes of one pytest run, shared between processes (xdist workers) through files.

pytest-dependency cannot see results from other xdist workers, so each process writes the
outcome of every validate check it ran here, the errors that decide the exit code, and what the
upload did; the upload gate and the end-of-session summary read them back. One directory per
test run (xdist's testrun uid)."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from .artifacts import read_json, write_json_atomic
from .verdict import Rules, Verdict

PLAN = "plan.json"
UPLOAD = "upload.json"


class CheckSpool:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _outcome_file(self, check_id: str) -> Path:
        return self.root / "checks" / (hashlib.sha1(check_id.encode()).hexdigest() + ".json")

    def write_plan(self, plan: dict) -> None:
        write_json_atomic(self.root / PLAN, plan)

    def plan(self) -> dict | None:
        path = self.root / PLAN
        return read_json(path) if path.is_file() else None

    def record_error(self, exit_code: int) -> None:
        """A stage failed with one of mlcompile's errors (its exit code), in any process."""
        (self.root / "errors").mkdir(parents=True, exist_ok=True)
        (self.root / "errors" / str(exit_code)).touch()

    def error_code(self) -> int:
        """The highest recorded error exit code (registry 3 > configuration 2 > refused 1), or 0."""
        folder = self.root / "errors"
        return max((int(p.name) for p in folder.iterdir()), default=0) if folder.is_dir() else 0

    def write_outcome(self, check_id: str, outcome: str, result: dict | None, message: str = "") -> None:
        write_json_atomic(
            self._outcome_file(check_id),
            {"check_id": check_id, "outcome": outcome, "result": result, "message": message},
        )

    def outcomes(self) -> list[dict]:
        folder = self.root / "checks"
        return [read_json(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []

    def wait_for(self, check_ids: list[str], timeout: float, poll: float = 0.5) -> list[str]:
        """Wait until every check id has an outcome; return those still missing at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [c for c in check_ids if not self._outcome_file(c).is_file()]
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(poll)

    def verdict(self) -> Verdict | None:
        plan = self.plan()
        if plan is None:
            return None
        verdict = Verdict(plan["compiled_content_id"], Rules.from_dict(plan["rules"]))
        for record in self.outcomes():
            check_id = record["check_id"]
            verdict.outcomes[check_id] = record["outcome"]
            if record["result"]:
                verdict.results[check_id] = record["result"]
            if record["message"]:
                verdict.messages[check_id] = record["message"]
        return verdict

    def write_upload(self, outcome: str, message: str, version_id: str | None = None) -> None:
        """What this run's upload did: registered, existing (nothing new), refused or failed."""
        write_json_atomic(self.root / UPLOAD, {"outcome": outcome, "message": message, "version_id": version_id})

    def upload(self) -> dict | None:
        path = self.root / UPLOAD
        return read_json(path) if path.is_file() else None

    def live_results(self) -> bool:
        """True when some check ran for real (not replayed from a published verdict)."""
        return any(not (r["result"] or {}).get("details", {}).get("reused") for r in self.outcomes())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
