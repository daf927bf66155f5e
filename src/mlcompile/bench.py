"""`make bench`: throughput of each compiled backend against the uncompiled CPU pipeline, measured
side by side in one run on the project's validation workload (every case, as validation runs it)."""

from __future__ import annotations

import time
from pathlib import Path

from . import stages
from .artifacts import write_json_atomic
from .compiled import CompiledSpec
from .compilers import CPU_BACKENDS
from .settings import Settings


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "workdir" not in f.parts) / 1e6


def run(settings: Settings, backends: list[str] | None = None, repeat: int = 3, out=print) -> dict:
    backends = backends or list(CPU_BACKENDS)
    root = Path(settings.outputs_dir) / "bench"
    downloaded = stages.download(settings)
    cases = stages.load_cases(settings, downloaded)
    pipelines = {"uncompiled": stages.load_reference(settings, downloaded)}
    rows: dict[str, dict] = {"uncompiled": {"backend": "eager CPU pipeline"}}
    for name in backends:
        variant = settings.model_copy(update={"compiler": name, "outputs_dir": root / name})
        compiled = stages.compile(variant, downloaded)  # one download serves every backend
        pipelines[name] = stages.load_compiled(compiled.path, variant)
        spec = CompiledSpec.read(compiled.path)
        rows[name] = {"backend": name, "compile_seconds": round(sum(b.compile_seconds for b in spec.buckets), 2),
                      "artifact_mb": round(_size_mb(compiled.path), 1), "shapes": spec.lengths}

    def workload(pipeline) -> float:
        started = time.perf_counter()
        for case in cases:
            pipeline.predict(case.text, case.params)
        return time.perf_counter() - started

    for pipeline in pipelines.values():  # warm-up, not measured
        workload(pipeline)
    best = {name: float("inf") for name in pipelines}
    for _ in range(repeat):  # interleaved, so drift of the machine hits every variant alike
        for name, pipeline in pipelines.items():
            best[name] = min(best[name], workload(pipeline))
    for name, seconds in best.items():
        rows[name].update({"seconds": round(seconds, 3), "cases_per_second": round(len(cases) / seconds, 2),
                           "speedup_vs_uncompiled": round(best["uncompiled"] / seconds, 2)})
    result = {"project": settings.project, "cases": len(cases), "repeat": repeat, "rows": rows}
    write_json_atomic(root / f"{settings.project}.json", result)
    out(f"{settings.project}: {len(cases)} validation cases, best of {repeat} interleaved passes after a warm-up")
    out(f"{'variant':<12} {'seconds':>8} {'cases/s':>8} {'vs uncompiled':>14} {'compile s':>10} {'artifact MB':>12}")
    for name, row in rows.items():
        out(f"{name:<12} {row['seconds']:>8.3f} {row['cases_per_second']:>8.2f} {row['speedup_vs_uncompiled']:>13.2f}x "
            f"{row.get('compile_seconds', ''):>10} {row.get('artifact_mb', ''):>12}")
    return result
