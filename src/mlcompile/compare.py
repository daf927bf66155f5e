"""Checks between a compiled and a uncompiled prediction, with the observed difference and its
margin to the tolerance, so a report can show how close each case came to failing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class CheckResult:
    case: str
    check: str
    passed: bool
    message: str
    observed: float | None = None  # |compiled - uncompiled| at the element nearest its tolerance
    allowed: float | None = None  # atol + rtol * |uncompiled| there
    margin: float | None = None  # allowed - observed at that element; < 0 fails
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def check_id(self) -> str:
        return f"{self.case}::{self.check}"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CheckResult":
        return cls(**data)


def close(case: str, check: str, observed, uncompiled, atol: float, rtol: float) -> CheckResult:
    """Elementwise |observed - uncompiled| <= atol + rtol * |uncompiled| (numpy.allclose's rule)."""
    obs = np.asarray(observed, dtype=np.float64)
    ref = np.asarray(uncompiled, dtype=np.float64)
    if obs.shape != ref.shape:
        return CheckResult(case, check, False, f"shape {obs.shape} differs from uncompiled shape {ref.shape}")
    if obs.size == 0:
        return CheckResult(case, check, True, "nothing to compare (both empty)")
    if not np.isfinite(ref).all():
        return CheckResult(case, check, False, "uncompiled output has NaN or infinite values")
    if not np.isfinite(obs).all():
        return CheckResult(case, check, False, "compiled output has NaN or infinite values")
    diff = np.abs(obs - ref)
    allowed = atol + rtol * np.abs(ref)
    # The element that uses the largest share of its tolerance; it passes iff every element does.
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(allowed > 0, diff / allowed, np.where(diff > 0, np.inf, 0.0))
    worst = int(np.argmax(share))
    margin = float(allowed.flat[worst] - diff.flat[worst])
    message = (
        f"|diff| {diff.flat[worst]:.3g} vs allowed {allowed.flat[worst]:.3g} at element {worst} "
        f"(atol {atol:g}, rtol {rtol:g}; max |diff| {diff.max():.3g}); margin {margin:.3g}"
    )
    return CheckResult(
        case, check, margin >= 0, message, float(diff.flat[worst]), float(allowed.flat[worst]), margin,
        {"elements": int(obs.size), "worst_element": worst, "max_abs_diff": float(diff.max())},
    )


def same(case: str, check: str, observed, uncompiled, what: str) -> CheckResult:
    """Exact equality of task-level outputs (keywords, labels, spans)."""
    if observed == uncompiled:
        return CheckResult(case, check, True, f"same {what}: {_short(observed)}")
    return CheckResult(
        case, check, False, f"{what} differ: compiled {_short(observed)} vs uncompiled {_short(uncompiled)}",
        details={"compiled": observed, "uncompiled": uncompiled},
    )


def combine(case: str, check: str, parts: dict[str, CheckResult]) -> CheckResult:
    """One check made of several comparisons: it passes iff all do, and reports the failures, or
    else the comparison nearest its tolerance."""
    failed = {label: r for label, r in parts.items() if not r.passed}
    with_margin = {label: r for label, r in parts.items() if r.margin is not None}
    details = {"parts": {label: r.message for label, r in parts.items()}}
    if failed:
        message = "; ".join(f"{label}: {r.message}" for label, r in failed.items())
        numeric = [r for r in failed.values() if r.margin is not None]
        worst = min(numeric, key=lambda r: r.margin) if numeric else next(iter(failed.values()))
        return CheckResult(case, check, False, message, worst.observed, worst.allowed, worst.margin, details)
    if not with_margin:
        return CheckResult(case, check, True, f"{len(parts)} comparisons agree", details=details)
    label, nearest = min(with_margin.items(), key=lambda item: item[1].margin)
    return CheckResult(
        case, check, True, f"{len(parts)} comparisons agree; nearest its tolerance: {label}: {nearest.message}",
        nearest.observed, nearest.allowed, nearest.margin, details,
    )


def _short(value, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
