"""The HTML validation report registered with a compiled model, and the words a run uses to
describe what it did to a case's text."""

from __future__ import annotations

import html

from .compare import CheckResult
from .regression import REGRESSION_CASE
from .verdict import Outcome, Verdict


def text_info_label(info: dict | None) -> str:
    if not info:
        return ""
    label = f"{info['tokens']} tokens"
    if info.get("bucket") is not None:
        label += f" in bucket {info['bucket']}"
    if info.get("truncated"):
        label += " TRUNCATED"
    return label


def result_cells(result: CheckResult) -> dict[str, str]:
    """Columns shown for a check in both HTML reports."""
    fmt = lambda v: "" if v is None else f"{v:.3g}"  # noqa: E731
    return {
        "case": result.case,
        "check": result.check,
        "observed": fmt(result.observed),
        "allowed": fmt(result.allowed),
        "margin": fmt(result.margin),
        "input": text_info_label(result.details.get("compiled_text")),
    }


def coverage_table(coverage: list[dict]) -> str:
    """Every compiled executable: the shapes it ran at, the cases whose rows it ran, how close it came."""
    cell = 'style="border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top"'
    rows = "".join(
        f'<tr class="{Outcome.of(e["passed"])}">'
        f'<td {cell}><b style="color: {"#176f2c" if e["passed"] else "#b00020"}">'
        f'{Outcome.PASSED if e["passed"] else Outcome.FAILED.upper()}</b></td>'
        + "".join(f"<td {cell}>{html.escape(str(v))}</td>" for v in (
            e["executable"], e["shape"], ", ".join("x".join(map(str, shape)) for shape in e["ran_shapes"]),
            ", ".join(e["cases"]), "" if e["margin"] is None else f"{e['margin']:.3g}", e["message"]))
        + "</tr>"
        for e in coverage
    )
    header = "".join(f"<th {cell}>{name}</th>" for name in (
        "outcome", "executable", "compiled shape", "ran at (batch x length)", "cases", "margin", "message"))
    return ("<p>Every compiled executable, run on rows from the cases (a full batch where it takes one) and "
            "compared row by row with the uncompiled model on the same tokens.</p>\n"
            f'<table style="border-collapse: collapse; font-size: 13px"><tr>{header}</tr>\n'
            + (rows or f'<tr><td {cell} colspan="7">coverage did not run</td></tr>') + "\n</table>")


def _histogram(details: dict) -> str:
    """Per-row |diff| in decades, as bars (a thousand rows read at a glance, not as a thousand rows)."""
    counts, bins = details["histogram"]["counts"], details["histogram"]["bins"]
    top = max(counts) or 1
    bars = "".join(
        f'<div style="display: inline-block; width: 52px; margin-right: 2px; text-align: center; font-size: 11px">'
        f'<div style="height: 60px; display: flex; align-items: flex-end"><div style="width: 100%; '
        f'height: {max(1, round(60 * n / top)) if n else 0}px; background: #4a7bd0"></div></div>{n}<br>'
        f'<span style="color: #666">{html.escape(label)}</span></div>'
        for n, label in zip(counts, bins))
    return f'<div title="rows per largest |diff|">{bars}</div>'


def regression_section(verdict: Verdict) -> str:
    """The regression set's checks: each aggregate against its threshold, the worst rows with their
    texts, and for tensors the histogram of per-row differences."""
    found = verdict.regression_summary()
    if found is None:
        return ""
    cell = 'style="border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top"'
    parts = [f"<p>{html.escape(found['file'])}: {found['rows']} rows, both pipelines in batches; each check an "
             "aggregate over the set.</p>"]
    for check, headline in found["checks"].items():
        check_id = f"{REGRESSION_CASE}::{check}"
        result = verdict.results.get(check_id)
        details = result.details if result else {}
        outcome = headline["outcome"]
        color = "#176f2c" if outcome == Outcome.PASSED else "#b00020"
        parts.append(f'<h4><span style="color: {color}">{html.escape(outcome)}</span> {html.escape(check)}</h4>'
                     f"<p>{html.escape(result.message if result else verdict.messages.get(check_id, ''))}</p>")
        if "histogram" in details:
            parts.append(_histogram(details))
        rows = details.get("worst_rows", [])
        if rows:
            columns = [k for k in ("id", "agreement", "margin", "compiled", "uncompiled", "message", "text") if k in rows[0]]
            body = "".join("<tr>" + "".join(f"<td {cell}>{html.escape(_short(row.get(k)))}</td>" for k in columns)
                           + "</tr>" for row in rows)
            head = "".join(f"<th {cell}>{'worst rows: ' if k == 'id' else ''}{k}</th>" for k in columns)
            parts.append(f'<table style="border-collapse: collapse; font-size: 12px"><tr>{head}</tr>{body}</table>')
    return "\n".join(parts)


def _short(value, limit: int = 300) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def machine_line(machine: dict | None) -> str:
    """Where the checks ran: the CPU, its numerics flags and the runtimes."""
    if not machine:
        return "not recorded"
    runtimes = ", ".join(f"{name} {version}" for name, version in machine.get("runtimes", {}).items())
    return (f"{machine.get('model', '?')} ({machine.get('machine', '?')}; flags: "
            f"{', '.join(machine.get('flags', [])) or 'none of AVX2, AVX-512, VNNI, BF16, AMX'}; "
            f"torch kernels {machine.get('torch_capability', '?')}){'; ' + runtimes if runtimes else ''}")


def evidence_list(rules, machine: dict | None = None) -> str:
    """What the validation compared against (stored predictions, cases, regression set), and where it ran."""
    lines = [*rules.evidence_lines(), f"validated on: {machine_line(machine)}"]
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def render_html(verdict: Verdict, title: str, lineage: dict) -> str:
    """A self-contained page: verdict, lineage and one row per check."""
    summary = verdict.summary()
    rows = []
    for check_id in verdict.rules.checks:
        outcome = verdict.outcomes.get(check_id, Outcome.NOT_RUN)
        result = verdict.results.get(check_id)
        cells = result_cells(result) if result else {"case": check_id.split("::")[0], "check": check_id.split("::")[-1]}
        message = result.message if result else verdict.messages.get(check_id, "")
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
Truncated inputs: {html.escape(', '.join(summary['truncated_cases']) or 'none')}.
Precision: {html.escape(verdict.rules.precision)}; tolerance: atol {verdict.rules.atol:g}, rtol {verdict.rules.rtol:g}.</p>
<table>{lineage_rows}</table>
<h2>Evidence</h2>
{evidence_list(verdict.rules, verdict.machine)}
<h2>Coverage of the compiled artifact</h2>
{coverage_table(verdict.coverage)}
{('<h2>Regression set</h2>' + regression_section(verdict)) if verdict.rules.regression else ''}
<h2>Checks</h2>
<table><tr><th>outcome</th><th>case</th><th>check</th><th>observed |diff|</th><th>allowed</th><th>margin</th>
<th>input</th><th>message</th></tr>
{''.join(rows)}
</table></body></html>
"""
