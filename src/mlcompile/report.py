"""The validation verdict and the HTML validation report registered with a compiled model."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from .compare import CheckResult

PASSED = "passed"


@dataclass
class Verdict:
    """What one validation of one compiled artifact showed.

    `expected` lists every check id the cases call for; `outcomes` maps check ids that ran to
    passed/failed/error/skipped; `results` holds the structured results of checks that ran."""

    compile_fingerprint: str
    validate_fingerprint: str
    expected: list[str]
    outcomes: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)  # why a check did not pass

    @property
    def passed(self) -> bool:
        return bool(self.expected) and all(self.outcomes.get(c) == PASSED for c in self.expected)

    def problems(self, limit: int = 10) -> list[str]:
        """Why this verdict does not allow an upload (empty when it does)."""
        if not self.expected:
            return ["no validation checks were defined (no cases?)"]
        missing = [c for c in self.expected if c not in self.outcomes]
        bad = [c for c in self.expected if c in self.outcomes and self.outcomes[c] != PASSED]
        lines = [f"{c}: {self.outcomes[c]}: {self.messages.get(c, '')}".rstrip(": ") for c in bad[:limit]]
        if len(bad) > limit:
            lines.append(f"... and {len(bad) - limit} more checks that did not pass")
        if missing:
            lines.append(
                f"{len(missing)} of {len(self.expected)} checks did not run (e.g. {', '.join(missing[:3])}); "
                "run the whole validate stage"
            )
        return lines

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for check in self.expected:
            outcome = self.outcomes.get(check, "not run")
            counts[outcome] = counts.get(outcome, 0) + 1
        margins = [(r["margin"], cid) for cid, r in self.results.items() if r.get("margin") is not None]
        truncated = sorted(
            {r["case"] for r in self.results.values() if r.get("details", {}).get("compiled_text", {}).get("truncated")}
        )
        worst = min(margins) if margins else None
        return {
            "passed": self.passed,
            "checks": len(self.expected),
            "cases": len({c.split("::")[0] for c in self.expected}),
            "outcomes": counts,
            "smallest_margin": {"check": worst[1], "margin": worst[0]} if worst else None,
            "truncated_cases": truncated,
        }

    def as_dict(self) -> dict:
        return {
            "compile_fingerprint": self.compile_fingerprint,
            "validate_fingerprint": self.validate_fingerprint,
            "expected": self.expected,
            "outcomes": self.outcomes,
            "results": self.results,
            "messages": self.messages,
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        return cls(
            data["compile_fingerprint"], data["validate_fingerprint"], list(data["expected"]),
            dict(data["outcomes"]), dict(data["results"]), dict(data.get("messages", {})),
        )


def text_info_label(info: dict | None) -> str:
    if not info:
        return ""
    label = f"{info['tokens']} tokens"
    if info.get("bucket") is not None:
        label += f" in bucket {info['bucket']}"
    if info.get("truncated"):
        label += " TRUNCATED"
    return label


def result_cells(result: CheckResult | dict) -> dict[str, str]:
    """Columns shown for a check in both HTML reports."""
    r = result.as_dict() if isinstance(result, CheckResult) else result
    fmt = lambda v: "" if v is None else f"{v:.3g}"  # noqa: E731
    return {
        "case": r["case"],
        "check": r["check"],
        "observed": fmt(r.get("observed")),
        "allowed": fmt(r.get("allowed")),
        "margin": fmt(r.get("margin")),
        "input": text_info_label(r.get("details", {}).get("compiled_text")),
    }


def render_html(verdict: Verdict, title: str, lineage: dict) -> str:
    """A self-contained page: verdict, lineage and one row per check."""
    summary = verdict.summary()
    rows = []
    for check_id in verdict.expected:
        outcome = verdict.outcomes.get(check_id, "not run")
        result = verdict.results.get(check_id)
        cells = result_cells(result) if result else {"case": check_id.split("::")[0], "check": check_id.split("::")[-1]}
        message = result["message"] if result else verdict.messages.get(check_id, "")
        cols = [cells.get(k, "") for k in ("case", "check", "observed", "allowed", "margin", "input")]
        rows.append(
            f'<tr class="{html.escape(outcome)}"><td>{html.escape(outcome)}</td>'
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in cols)
            + f"<td>{html.escape(message)}</td></tr>"
        )
    lineage_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in lineage.items()
    )
    status = "PASSED" if verdict.passed else "NOT PASSED"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; font-size: 13px; }}
tr.passed td:first-child {{ color: #176f2c; }} tr.failed td:first-child, tr.error td:first-child,
tr.not.run td:first-child {{ color: #b00020; font-weight: bold; }}
</style></head><body>
<h1>{html.escape(title)}: {status}</h1>
<p>{summary['checks']} checks over {summary['cases']} cases: {html.escape(str(summary['outcomes']))}.
Smallest margin to tolerance: {html.escape(str(summary['smallest_margin']))}.
Truncated inputs: {html.escape(', '.join(summary['truncated_cases']) or 'none')}.</p>
<table>{lineage_rows}</table>
<h2>Checks</h2>
<table><tr><th>outcome</th><th>case</th><th>check</th><th>observed |diff|</th><th>allowed</th><th>margin</th>
<th>input</th><th>message</th></tr>
{''.join(rows)}
</table></body></html>
"""
