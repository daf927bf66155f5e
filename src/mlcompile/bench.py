"""`make bench`: every variant of the project's model side by side in one run, on two workloads:
the validation cases one request each (latency) and the project's corpus of real documents in one
batched call (throughput). Interleaved passes after a warm-up, threads pinned; task outputs compared
with the uncompiled pipeline's on every row. Results: `outputs/bench/<project>.json` and `.html`."""

from __future__ import annotations

import html
import importlib.util
import multiprocessing
import os
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import stages, workloads
from .artifacts import write_json_atomic, write_text_atomic
from .compiled import CompiledSpec
from .compilers import CPU_BACKENDS, PRECISIONS, bf16_supported, get_compiler, label
from .machine import cpu_description
from .settings import Settings

UNCOMPILED = "uncompiled"
REFERENCE_APPROACH = "reference-approach"
@dataclass
class Variant:
    name: str
    what: str
    overrides: dict = field(default_factory=dict)  # settings of its compile stage
    skipped: str | None = None


def variants(settings: Settings, max_length: int) -> list[Variant]:
    found = [Variant(UNCOMPILED, "the uncompiled pipeline on CPU (what a user runs without compiling)")]
    found.append(Variant(REFERENCE_APPROACH, f"TorchScript at batch 1, every text padded to {max_length} tokens "
                         "(the reference implementation's approach)",
                         {"compiler": "torchscript", "batch_size": 1, "sequence_lengths": [max_length]}))
    for precision in PRECISIONS:
        for backend in CPU_BACKENDS:
            if precision not in get_compiler(backend).precisions:
                continue
            name = label(backend, precision)
            found.append(Variant(name, f"mlcompile {backend} at {precision}", {"compiler": name}))
            if precision == "bf16" and not bf16_supported():
                found[-1].skipped = "this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 would only be slower"
            elif precision not in settings.precisions:
                found[-1].what += f" (PRECISIONS={','.join(settings.precisions)} keeps auto from choosing it)"
    if importlib.util.find_spec("optimum") is None:
        import transformers

        found.append(Variant("optimum-onnx", "optimum's ONNX export run by ONNX Runtime",
                             skipped="optimum-onnx is not installed: its newest release (0.1.0) requires "
                                     f"transformers<4.58 and this environment has {transformers.__version__}; "
                                     "measure it in an environment of its own"))
    return found


def _size_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "workdir" not in f.parts) / 1e6, 1)


def _load(settings: Settings, downloaded, compiled_path: Path | None):
    if compiled_path is None:
        return stages.load_reference(settings, downloaded).pipeline  # not the remembered predictions: timed
    return stages.load_compiled(compiled_path, settings)


def _quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-tensor "Loading weights" bar on every load


def _cold_load(settings: Settings, downloaded, compiled_path, texts: list[str], threads: int, queue) -> None:
    """In a fresh process: seconds to load, then peak RSS after one pass over the corpus."""
    _quiet()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    pipeline = _load(settings, downloaded, compiled_path)
    loaded = time.perf_counter() - started
    pipeline.predict_many(texts, {})
    queue.put((loaded, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def cold_load(settings, downloaded, compiled_path, texts, threads) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_cold_load, args=(settings, downloaded, compiled_path, texts, threads, queue))
    process.start()
    result = queue.get(timeout=900)
    process.join()
    return result


def run(settings: Settings, only: list[str] | None = None, repeat: int = 3, corpus_size: int | None = None,
        out=print) -> dict:
    _quiet()
    threads = settings.torch_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    root = Path(settings.outputs_dir) / "bench"
    downloaded = stages.download(settings)
    task = stages.task_of(downloaded)
    cases = stages.load_cases(settings, downloaded)
    corpus = workloads.read_corpus(settings.project, fallback=settings.regression_set)[:corpus_size]
    max_length = task.max_length(downloaded.path)
    planned = [v for v in variants(settings, max_length) if not only or v.name in only or v.name == UNCOMPILED]

    rows: dict[str, dict] = {}
    pipelines = {}
    for variant in planned:
        rows[variant.name] = {"what": variant.what}
        if variant.skipped:
            rows[variant.name]["skipped"] = variant.skipped
            continue
        path = None
        if variant.name != UNCOMPILED:
            configured = settings.model_copy(update={**variant.overrides, "outputs_dir": root / variant.name})
            path = stages.compile(configured, downloaded).path  # one download serves every variant
            spec = CompiledSpec.read(path)
            rows[variant.name].update(compile_seconds=round(sum(b.compile_seconds for b in spec.buckets), 1),
                                      artifact_mb=_size_mb(path), backend=spec.backend,
                                      shapes=[[b.length, spec.batch_size] for b in spec.buckets])
        load_seconds, peak_rss = cold_load(settings, downloaded, path, corpus, threads)
        rows[variant.name].update(load_seconds=round(load_seconds, 2), peak_rss_mb=round(peak_rss))
        pipelines[variant.name] = _load(settings, downloaded, path)

    def batched(pipeline) -> tuple[float, list]:
        started = time.perf_counter()
        predictions = pipeline.predict_many(corpus, {})
        return time.perf_counter() - started, predictions

    def one_by_one(pipeline) -> tuple[list[float], list]:
        seconds, predictions = [], []
        for case in cases:
            started = time.perf_counter()
            predictions.append(pipeline.predict(case.text, case.params))
            seconds.append(time.perf_counter() - started)
        return seconds, predictions

    outcomes = {}
    for name, pipeline in pipelines.items():  # warm-up, not measured; its outputs are compared
        outcomes[name] = ([task.outcome(p) for p in batched(pipeline)[1]],
                          [task.outcome(p) for p in one_by_one(pipeline)[1]])
    best = {name: float("inf") for name in pipelines}
    latencies: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(repeat):  # interleaved: drift of the machine hits every variant alike
        for name, pipeline in pipelines.items():
            best[name] = min(best[name], batched(pipeline)[0])
            latencies[name] += one_by_one(pipeline)[0]

    baseline = UNCOMPILED
    for name in pipelines:
        p50, p95 = _percentile(latencies[name], 50), _percentile(latencies[name], 95)
        rows[name].update(
            docs_per_second=round(len(corpus) / best[name], 2),
            throughput_vs_uncompiled=round(best[baseline] / best[name], 2),
            p50_ms=round(p50 * 1e3, 1), p95_ms=round(p95 * 1e3, 1),
            p50_vs_uncompiled=round(_percentile(latencies[baseline], 50) / p50, 2),
            identical_corpus=f"{sum(a == b for a, b in zip(outcomes[name][0], outcomes[baseline][0]))}/{len(corpus)}",
            identical_cases=f"{sum(a == b for a, b in zip(outcomes[name][1], outcomes[baseline][1]))}/{len(cases)}",
        )
        if name != baseline:
            rows[name]["load_vs_uncompiled"] = round(rows[name]["load_seconds"] / rows[baseline]["load_seconds"], 2)
            rows[name]["rss_vs_uncompiled"] = round(rows[name]["peak_rss_mb"] / rows[baseline]["peak_rss_mb"], 2)
    result = {
        "project": settings.project, "cpu": cpu_description(), "threads": threads, "repeat": repeat,
        "workloads": {
            "batched": f"{len(corpus)} documents of config/bench/{settings.project}.jsonl ({workloads.SOURCE}) "
                       "in one batched call; best of the measured passes",
            "latency": f"the {len(cases)} validation cases, one request each; p50/p95 over every measured pass",
        },
        "rows": rows,
    }
    write_json_atomic(root / f"{settings.project}.json", result)
    page = root / f"{settings.project}.html"
    write_text_atomic(page, render_page(result))
    for line in table(result):
        out(line)
    out(f"results: {root / f'{settings.project}.json'}; page: {page}")
    return result


def _percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


COLUMNS = [("variant", None, 20), ("docs/s", "docs_per_second", 8), ("x", "throughput_vs_uncompiled", 6),
           ("p50 ms", "p50_ms", 8), ("p95 ms", "p95_ms", 8), ("x p50", "p50_vs_uncompiled", 6),
           ("compile s", "compile_seconds", 9), ("load s", "load_seconds", 7), ("MB", "artifact_mb", 7),
           ("RSS MB", "peak_rss_mb", 7), ("same corpus", "identical_corpus", 11), ("same cases", "identical_cases", 10)]


def table(result: dict) -> list[str]:
    cpu = result["cpu"]
    lines = [f"{result['project']}: {cpu['model']} ({', '.join(cpu['flags']) or 'no vector flags found'}), "
             f"{result['threads']} threads; x = ratio to the uncompiled pipeline (higher is better)",
             *(f"  {name}: {what}" for name, what in result["workloads"].items()),
             " ".join(f"{title:>{width}}" if key else f"{title:<{width}}" for title, key, width in COLUMNS)]
    for name, row in result["rows"].items():
        if "skipped" in row:
            lines.append(f"{name:<20} skipped: {row['skipped']}")
            continue
        lines.append(" ".join(f"{name:<{width}}" if key is None else f"{str(row.get(key, '')):>{width}}"
                              for _, key, width in COLUMNS))
    return lines


def _cell(name: str, row: dict, key: str | None) -> str:
    value = name if key is None else str(row.get(key, ""))
    differs = key in ("identical_corpus", "identical_cases") and value.split("/")[0] != value.split("/")[-1]
    return f"<td{' class=differs' if differs else ''}>{html.escape(value)}</td>"


def render_page(result: dict) -> str:
    """A self-contained page: the table, and bars of throughput and p50 latency against the
    uncompiled pipeline."""
    rows = {name: row for name, row in result["rows"].items() if "skipped" not in row}
    width, bar_height = 560, 22
    top = max([row["throughput_vs_uncompiled"] for row in rows.values()] + [row["p50_vs_uncompiled"] for row in
                                                                              rows.values()] + [1.0])

    def chart(key: str, title: str) -> str:
        bars = []
        for i, (name, row) in enumerate(rows.items()):
            y, length = 24 + i * (bar_height + 6), row[key] / top * (width - 220)
            colour = "#2e7d32" if row[key] >= 1 else "#c62828"
            bars.append(f'<text x="0" y="{y + 15}">{html.escape(name)}</text>'
                        f'<rect x="180" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{colour}"/>'
                        f'<text x="{185 + length:.1f}" y="{y + 15}">{row[key]}x</text>')
        one = 180 + (width - 220) / top
        height = 30 + len(rows) * (bar_height + 6)
        return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg width="{width}" height="{height}" '
                f'font-family="sans-serif" font-size="13">{"".join(bars)}<line x1="{one:.1f}" x2="{one:.1f}" y1="18" '
                f'y2="{height}" stroke="#555" stroke-dasharray="4 3"/><text x="{one + 3:.1f}" y="14">1x</text>'
                '</svg></figure>')

    head = "".join(f"<th>{html.escape(title)}</th>" for title, _, _ in COLUMNS)
    body = []
    for name, row in result["rows"].items():
        if "skipped" in row:
            body.append(f"<tr><td>{html.escape(name)}</td><td colspan='{len(COLUMNS) - 1}'>skipped: "
                        f"{html.escape(row['skipped'])}</td></tr>")
        else:
            body.append("<tr>" + "".join(_cell(name, row, key) for _, key, _ in COLUMNS) + "</tr>")
    what = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(r['what'])}</li>" for n, r in result["rows"].items())
    work = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(w)}</li>" for n, w in result["workloads"].items())
    cpu = result["cpu"]
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>mlcompile bench: {html.escape(result['project'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;margin:1em 2em 1em 0}}.differs{{background:#ffcdd2;font-weight:bold}}figcaption{{font-weight:bold;margin-bottom:4px}}</style></head>
<body><h1>mlcompile bench: {html.escape(result['project'])}</h1>
<p>{html.escape(cpu['model'])} ({html.escape(', '.join(cpu['flags']) or 'no vector flags found')}; torch capability
{html.escape(str(cpu['torch_capability']))}), {result['threads']} threads, {result['repeat']} interleaved passes after a
warm-up. Ratios are to the uncompiled pipeline of the same run (higher is better).</p>
{chart('throughput_vs_uncompiled', 'Batched throughput (x uncompiled)')}
{chart('p50_vs_uncompiled', 'Latency per request, p50 (x uncompiled, higher is faster)')}
<table><tr>{head}</tr>{''.join(body)}</table>
<p>"same corpus" and "same cases": rows whose task output (keywords, entities, label) equals the uncompiled
pipeline's; highlighted where any differs.</p><h2>Workloads</h2><ul>{work}</ul><h2>Variants</h2><ul>{what}</ul>
</body></html>
"""
