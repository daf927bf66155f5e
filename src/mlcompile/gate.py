"""The upload gate: may this compiled artifact be registered on the strength of this verdict?

A pure decision: the verdict must be for this exact artifact (its content id), made under the
rules the current settings call for (cases, checks, tolerances), and every check must have passed.
pytest-dependency cannot make it: it sees neither other xdist workers' results nor those of an
earlier invocation (`-m validate`, then `-m upload`), and knows nothing of artifacts or rules."""

from __future__ import annotations

from .verdict import Rules, Verdict

RERUN = "run the validate stage again (pytest -m validate, or make validate)"


def refusal(verdict: Verdict | None, compiled_content_id: str, rules: Rules) -> str | None:
    """Why the upload must not happen, or None when it may."""
    if verdict is None:
        return ("upload refused: no validation verdict for this compiled model; run the validate stage first "
                "(pytest -m validate, or make validate)")
    shard = (verdict.rules.regression or {}).get("shard")
    if shard is not None:
        return (f"upload refused: the verdict covers shard {shard} of the regression set only; upload without "
                "REGRESSION_SHARD, with every shard's verdict in outputs/validate-shards/, to merge them")
    if verdict.compiled_content_id != compiled_content_id:
        return (f"upload refused: the validation verdict is for another compiled artifact (content id "
                f"{verdict.compiled_content_id[:12]}, current {compiled_content_id[:12]}); the model was recompiled "
                f"since it was validated: {RERUN}")
    differences = verdict.rules.differences(rules)
    if differences:
        return ("upload refused: the validation verdict was made under other rules than the current settings "
                "call for:\n  " + "\n  ".join(differences) + f"\n  {RERUN} with the current settings")
    if not verdict.passed:
        return "upload refused: validation did not pass:\n  " + "\n  ".join(verdict.problems())
    return None
