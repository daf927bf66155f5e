"""`make bench`: the uncompiled model run well (batched, fp32: the baseline of every ratio), the baselines a
user has without mlcompile (bf16 autocast, one text per call, a peer script) and every compiled candidate,
side by side in one run: the task pipeline on the project's corpus, the model alone on the same token ids,
latency on the cases one request each, and agreement with the uncompiled pipeline on the regression set (the
frontier). Interleaved passes after a warm-up, threads pinned, a line at least every 10 seconds. Results:
`outputs/bench/<project>.json` and `.html`."""

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

from . import peer, progress, stages, workloads
from .artifacts import write_json_atomic, write_text_atomic
from .batching import BucketedRunner
from .compiled import CompiledSpec
from .compilers import CPU_BACKENDS, PRECISIONS, backend_candidates, get_compiler
from .machine import bf16_supported
from .machine import cpu_description
from .settings import Settings
from .tasks import uncompiled_text_info
from .tasks.classification import UNCOMPILED_BATCH

UNCOMPILED = "uncompiled"  # the baseline of every ratio: the uncompiled pipeline batched, fp32
UNCOMPILED_BF16 = "uncompiled-bf16"
ONE_BY_ONE = "uncompiled-one-by-one"
PEER = "peer-script"
REFERENCE_IMPLEMENTATION = "reference-implementation"
MODEL_BATCH = 8  # the uncompiled model alone: length-sorted batches of this many, each padded to its longest


@dataclass
class Variant:
    name: str
    what: str
    overrides: dict = field(default_factory=dict)  # settings of its compile stage (compiled variants)
    skipped: str | None = None
    compiled: bool = True


def variants(settings: Settings, max_length: int, task) -> list[Variant]:
    found = [
        Variant(UNCOMPILED, "the uncompiled pipeline batched as a user serves it, fp32 (sentence-transformers: "
                "its own length-sorted batches; transformers pipelines: length-sorted batches of "
                f"{UNCOMPILED_BATCH}); the model alone in length-sorted batches of {MODEL_BATCH}, dynamic padding, "
                "torch.inference_mode. Every ratio is to this row", compiled=False),
        Variant(UNCOMPILED_BF16, "the same under torch.autocast('cpu', dtype=torch.bfloat16): one line a user adds",
                compiled=False,
                skipped=None if bf16_supported() else "this CPU has no native bf16 (AVX512-BF16 or AMX)"),
        Variant(ONE_BY_ONE, "the uncompiled pipeline fed one text per call (how a naive service runs it; "
                "pipeline only)", compiled=False),
        Variant(PEER, f"a script a user could write: legacy torch.onnx.export on eager attention, ONNX Runtime's "
                f"transformer optimizer, length-sorted batches of {peer.BATCH} with dynamic padding"
                + ("" if task.over_embed(None, None) is not None else " (the model alone: the task pipeline "
                   "is the transformers pipeline's)"), compiled=False),
    ]
    for precision in PRECISIONS:
        for backend in CPU_BACKENDS:
            if precision not in get_compiler(backend).precisions:
                continue
            for name in backend_candidates(backend, precision):
                found.append(Variant(name, f"mlcompile {name}", {"compiler": name}))
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


def reference_implementation(max_length: int) -> Variant:
    """Opt-in (`--only reference-implementation`): minutes on a corpus, and a strawman."""
    return Variant(REFERENCE_IMPLEMENTATION, f"TorchScript at batch 1, every text padded to {max_length} tokens "
                   "(the reference implementation's approach)",
                   {"compiler": "torchscript", "batch_size": 1, "sequence_lengths": [max_length]})


def _size_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "workdir" not in f.parts) / 1e6, 1)


class _Autocast:
    """A pipeline or model run under CPU bf16 autocast."""

    def __init__(self, inner):
        self.inner = inner

    def predict_many(self, texts, params):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner.predict_many(texts, params)

    def predict(self, text, params):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner.predict(text, params)

    def run_ids(self, ids):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner.run_ids(ids)


class _OneByOne:
    def __init__(self, inner):
        self.inner = inner

    def predict_many(self, texts, params):
        return [self.inner.predict(text, params) for text in texts]

    def predict(self, text, params):
        return self.inner.predict(text, params)


class _Loaded:
    """A variant ready to run: its task pipeline, and its model alone over token ids (or None)."""

    def __init__(self, pipeline, model):
        self.pipeline, self.model = pipeline, model


def _uncompiled_model(downloaded, task, tokenizer, max_length: int) -> BucketedRunner:
    """The uncompiled model alone, batched as a user would: length-sorted rows, each batch padded to its longest."""
    with torch.inference_mode(False):
        module = task.traceable(downloaded.path)
    return BucketedRunner(tokenizer, {max_length: module}, MODEL_BATCH, token_level=task.token_level, dynamic=True)


def _load(settings: Settings, downloaded, variant: str, path: Path | None, threads: int, model: bool = True
          ) -> _Loaded:
    """The variant's task pipeline, and unless `model` is False its model alone as well."""
    task = stages.task_of(downloaded)
    tokenizer = task.uncompiled_tokenizer(downloaded.path)
    max_length = task.max_length(downloaded.path)
    if variant in (UNCOMPILED, UNCOMPILED_BF16, ONE_BY_ONE):
        pipeline = stages.load_uncompiled(settings, downloaded).pipeline  # not the remembered predictions: timed
        model = _uncompiled_model(downloaded, task, tokenizer, max_length) if model and variant != ONE_BY_ONE else None
        if variant == UNCOMPILED_BF16:
            return _Loaded(_Autocast(pipeline), _Autocast(model) if model else None)
        return _Loaded(_OneByOne(pipeline) if variant == ONE_BY_ONE else pipeline, model)
    if variant == PEER:
        onnx_model = peer.PeerModel(path / peer.FILE, tokenizer.pad_token_id or 0, threads)

        def text_info(texts: list[str]) -> list[dict]:
            return [uncompiled_text_info(len(ids), max_length) for ids in tokenizer(texts, verbose=False)["input_ids"]]

        class _PeerRunner:
            def run_ids(self, ids):
                return onnx_model.run_ids(ids, task.token_level), None

        return _Loaded(task.over_embed(peer.embedder(onnx_model, tokenizer, max_length), text_info),
                       _PeerRunner() if model else None)
    pipeline = stages.load_compiled(path, settings)
    return _Loaded(pipeline, pipeline.runner if model else None)


def _quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-tensor "Loading weights" bar on every load


def _cold_load(settings: Settings, downloaded, variant, path, texts: list[str], threads: int, queue) -> None:
    """In a fresh process: seconds to load, then peak RSS after one pass over the corpus."""
    _quiet()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    loaded = _load(settings, downloaded, variant, path, threads, model=False)  # what serving loads
    seconds = time.perf_counter() - started
    if loaded.pipeline is not None:
        loaded.pipeline.predict_many(texts, {})
    queue.put((seconds, peak_rss_mb()))


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program. Not getrusage's ru_maxrss: Linux
    carries that over exec, so a spawned child reports at least its parent's memory at the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc here


def cold_load(settings, downloaded, variant, path, texts, threads) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_cold_load, args=(settings, downloaded, variant, path, texts, threads, queue))
    process.start()
    result = queue.get(timeout=900)
    process.join()
    return result


def _regression_texts(settings: Settings, corpus: list[str]) -> tuple[list[str], str]:
    if settings.regression_set is None:
        return corpus, "the bench corpus (no REGRESSION_SET)"
    from .regression import read_rows

    return [row.text for row in read_rows(settings.regression_set, {})], str(settings.regression_set)


def run(settings: Settings, only: list[str] | None = None, repeat: int = 3, corpus_size: int | None = None,
        out=print) -> dict:
    before, progress.sink = progress.sink, out  # the steps' lines beside the tables
    try:
        return _run(settings, only, repeat, corpus_size, out)
    finally:
        progress.sink = before


def _run(settings: Settings, only: list[str] | None, repeat: int, corpus_size: int | None, out) -> dict:
    _quiet()
    threads = settings.torch_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    root = Path(settings.outputs_dir) / "bench"
    downloaded = stages.download_model(settings)
    task = stages.task_of(downloaded)
    cases = stages.load_cases(settings, downloaded)
    corpus = workloads.read_corpus(settings.project, fallback=settings.regression_set)[:corpus_size]
    agreement_texts, agreement_source = _regression_texts(settings, corpus)
    agreement_texts = agreement_texts[:corpus_size]
    max_length = task.max_length(downloaded.path)
    tokenizer = task.uncompiled_tokenizer(downloaded.path)
    corpus_ids = tokenizer(corpus, truncation=True, max_length=max_length)["input_ids"]
    planned = variants(settings, max_length, task)
    if only and REFERENCE_IMPLEMENTATION in only:
        planned.append(reference_implementation(max_length))
    planned = [v for v in planned if not only or v.name in only or v.name == UNCOMPILED]

    rows: dict[str, dict] = {}
    loaded: dict[str, _Loaded] = {}
    for variant in planned:
        rows[variant.name] = {"what": variant.what}
        if variant.skipped:
            rows[variant.name]["skipped"] = variant.skipped
            continue
        path = None
        if variant.compiled:
            configured = settings.model_copy(update={**variant.overrides, "outputs_dir": root / variant.name})
            path = stages.compile_model(configured, downloaded).path  # one download serves every variant
            spec = CompiledSpec.read(path)
            rows[variant.name].update(compile_seconds=round(sum(b.compile_seconds for b in spec.buckets), 1),
                                      artifact_mb=_size_mb(path), backend=spec.backend,
                                      report=spec.compiler_report.get("quantization"))
        elif variant.name == PEER:
            path = root / PEER
            with progress.step(f"export {PEER}"), torch.inference_mode(False):
                module = task.traceable(downloaded.path)
                config = next(m.config for m in module.modules() if hasattr(m, "set_attn_implementation"))
                peer.export(module, config, path)
            rows[PEER]["artifact_mb"] = _size_mb(path)
        with progress.step(f"load {variant.name} in a fresh process (load time, peak memory)"):
            load_seconds, peak_rss = cold_load(settings, downloaded, variant.name, path, corpus, threads)
        rows[variant.name].update(load_seconds=round(load_seconds, 2), peak_rss_mb=round(peak_rss))
        loaded[variant.name] = _load(settings, downloaded, variant.name, path, threads)

    def timed(call) -> tuple[float, object]:
        started = time.perf_counter()
        result = call()
        return time.perf_counter() - started, result

    def one_by_one(pipeline) -> tuple[list[float], list]:
        seconds, predictions = [], []
        for case in cases:
            spent, prediction = timed(lambda: pipeline.predict(case.text, case.params))
            seconds.append(spent)
            predictions.append(prediction)
        return seconds, predictions

    task_outputs: dict[str, tuple[list, list, list]] = {}
    for name, variant in loaded.items():  # warm-up, not measured; its outputs are compared
        with progress.step(f"warm up {name} (corpus, cases, {len(agreement_texts)} texts of the agreement set)"):
            task_outputs[name] = (
                [task.task_output(p) for p in variant.pipeline.predict_many(corpus, {})] if variant.pipeline else [],
                [task.task_output(p) for p in one_by_one(variant.pipeline)[1]] if variant.pipeline else [],
                ([task.task_output(p) for p in variant.pipeline.predict_many(agreement_texts, {})]
                 if variant.pipeline and name != ONE_BY_ONE else []),
            )
            if variant.model is not None:
                variant.model.run_ids(corpus_ids)
    best = {name: float("inf") for name in loaded}
    best_model = {name: float("inf") for name in loaded}
    latencies: dict[str, list[float]] = {name: [] for name in loaded}
    for n in range(repeat):  # interleaved: drift of the machine hits every variant alike
        for name, variant in loaded.items():
            with progress.step(f"pass {n + 1}/{repeat}: {name}"):
                if variant.pipeline is not None:
                    best[name] = min(best[name], timed(lambda: variant.pipeline.predict_many(corpus, {}))[0])
                    latencies[name] += one_by_one(variant.pipeline)[0]
                if variant.model is not None:
                    best_model[name] = min(best_model[name], timed(lambda: variant.model.run_ids(corpus_ids))[0])

    baseline = UNCOMPILED
    rows[baseline]["agreement"] = 1.0
    for name, variant in loaded.items():
        row = rows[name]
        if variant.model is not None:
            row.update(model_docs_per_second=round(len(corpus) / best_model[name], 2),
                       model_vs_uncompiled=round(best_model[baseline] / best_model[name], 2))
        if variant.pipeline is None:
            continue
        p50, p95 = _percentile(latencies[name], 50), _percentile(latencies[name], 95)
        row.update(
            docs_per_second=round(len(corpus) / best[name], 2),
            throughput_vs_uncompiled=round(best[baseline] / best[name], 2),
            p50_ms=round(p50 * 1e3, 1), p95_ms=round(p95 * 1e3, 1),
            p50_vs_uncompiled=round(_percentile(latencies[baseline], 50) / p50, 2),
            identical_corpus=f"{sum(a == b for a, b in zip(task_outputs[name][0], task_outputs[baseline][0]))}/{len(corpus)}",
            identical_cases=f"{sum(a == b for a, b in zip(task_outputs[name][1], task_outputs[baseline][1]))}/{len(cases)}",
        )
        if task_outputs[name][2]:
            same = sum(a == b for a, b in zip(task_outputs[name][2], task_outputs[baseline][2]))
            row["agreement"] = round(same / len(agreement_texts), 4)
            row["identical_agreement_set"] = f"{same}/{len(agreement_texts)}"
        if name != baseline:
            row["load_vs_uncompiled"] = round(row["load_seconds"] / rows[baseline]["load_seconds"], 2)
            row["rss_vs_uncompiled"] = round(row["peak_rss_mb"] / rows[baseline]["peak_rss_mb"], 2)
    result = {
        "project": settings.project, "cpu": cpu_description(), "threads": threads, "repeat": repeat,
        "workloads": {
            "pipeline": f"the task pipeline on {len(corpus)} documents of config/bench/{settings.project}.jsonl "
                        f"({workloads.SOURCE}) in one call; best of the measured passes",
            "model": "the model alone on the same documents' token ids (tokenizing excluded), batched as each "
                     "variant batches; best of the measured passes",
            "latency": f"the {len(cases)} validation cases, one request each; p50/p95 over every measured pass",
            "agreement": f"rows of {agreement_source} ({len(agreement_texts)}) whose task output equals the "
                         f"uncompiled pipeline's",
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


COLUMNS = [("variant", None, 22), ("docs/s", "docs_per_second", 7), ("x", "throughput_vs_uncompiled", 5),
           ("model x", "model_vs_uncompiled", 7), ("p50 ms", "p50_ms", 7), ("p95 ms", "p95_ms", 7),
           ("x p50", "p50_vs_uncompiled", 5), ("compile s", "compile_seconds", 9), ("load s", "load_seconds", 6),
           ("MB", "artifact_mb", 6), ("RSS MB", "peak_rss_mb", 6), ("same corpus", "identical_corpus", 11),
           ("same cases", "identical_cases", 10), ("same agreement set", "identical_agreement_set", 18)]


def frontier(result: dict) -> list[dict]:
    """Each variant's throughput against its agreement with the uncompiled pipeline, fastest first;
    `best`: no other variant is both faster and agrees more."""
    points = [{"variant": name, "x": row["throughput_vs_uncompiled"], "agreement": row["agreement"]}
              for name, row in result["rows"].items() if "agreement" in row and "throughput_vs_uncompiled" in row]
    for point in points:
        point["best"] = not any(o["x"] > point["x"] and o["agreement"] >= point["agreement"] for o in points)
    return sorted(points, key=lambda point: -point["x"])


def table(result: dict) -> list[str]:
    cpu = result["cpu"]
    lines = [f"{result['project']}: {cpu['model']} ({', '.join(cpu['flags']) or 'no vector flags found'}), "
             f"{result['threads']} threads; x = ratio to the uncompiled pipeline batched, fp32 (higher is better)",
             *(f"  {name}: {what}" for name, what in result["workloads"].items()),
             " ".join(f"{title:>{width}}" if key else f"{title:<{width}}" for title, key, width in COLUMNS)]
    for name, row in result["rows"].items():
        if "skipped" in row:
            lines.append(f"{name:<22} skipped: {row['skipped']}")
            continue
        lines.append(" ".join(f"{name:<{width}}" if key is None else f"{str(row.get(key, '-')):>{width}}"
                              for _, key, width in COLUMNS))
    lines.append("frontier: throughput (x) against agreement with the uncompiled pipeline; * where no variant is "
                 "both faster and agrees more")
    lines += [f"  {'*' if p['best'] else ' '} {p['variant']:<22} {p['x']:>5}x  {p['agreement']:.1%}" for p in frontier(result)]
    return lines


def _cell(name: str, row: dict, key: str | None) -> str:
    value = name if key is None else str(row.get(key, "-"))
    differs = key in ("identical_corpus", "identical_cases", "identical_agreement_set") and \
        value.split("/")[0] != value.split("/")[-1]
    return f"<td{' class=differs' if differs else ''}>{html.escape(value)}</td>"


def _bars(rows: dict, key: str, title: str) -> str:
    shown = {name: row[key] for name, row in rows.items() if key in row}
    width, bar_height, top = 600, 22, max([*shown.values(), 1.0])
    bars = []
    for i, (name, value) in enumerate(shown.items()):
        y, length = 24 + i * (bar_height + 6), value / top * (width - 240)
        bars.append(f'<text x="0" y="{y + 15}">{html.escape(name)}</text>'
                    f'<rect x="200" y="{y}" width="{length:.1f}" height="{bar_height}" '
                    f'fill="{"#2e7d32" if value >= 1 else "#c62828"}"/><text x="{205 + length:.1f}" y="{y + 15}">{value}x</text>')
    one, height = 200 + (width - 240) / top, 30 + len(shown) * (bar_height + 6)
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="13">{"".join(bars)}<line x1="{one:.1f}" x2="{one:.1f}" y1="18" '
            f'y2="{height}" stroke="#555" stroke-dasharray="4 3"/><text x="{one + 3:.1f}" y="14">1x</text></svg></figure>')


def _frontier_chart(points: list[dict]) -> str:
    """Throughput (x) against agreement: the variants worth choosing joined by a line; labels that would
    overlap are moved down, with a line back to their point."""
    if not points:
        return ""
    width, axis, left = 640, 380, 60  # axis: the plot's bottom edge
    low = min(min(p["agreement"] for p in points), 0.9)
    top = max(max(p["x"] for p in points), 1.0) * 1.1

    def xy(point):
        return (left + (point["agreement"] - low) / (1 - low + 1e-9) * (width - left - 180),
                axis - point["x"] / top * (axis - 20))

    best = sorted((p for p in points if p["best"]), key=lambda p: p["agreement"])
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in map(xy, best))
    marks, placed = [], []
    for point in sorted(points, key=lambda p: xy(p)[1]):
        x, y = xy(point)
        text = f"{point['variant']} {point['x']}x"
        label_y = y + 4
        while any(abs(label_y - other_y) < 14 and x < other_x + other_w and other_x < x + 40 + 7 * len(text)
                  for other_x, other_y, other_w in placed):
            label_y += 14
        placed.append((x, label_y, 40 + 7 * len(text)))
        moved = label_y > y + 4
        label_x = x + (40 if moved else 9)
        leader = (f'<line x1="{x + 4:.1f}" y1="{y + 2:.1f}" x2="{label_x - 2:.1f}" y2="{label_y - 4:.1f}" '
                  f'stroke="#777"/>' if moved else "")
        marks.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{"#2e7d32" if point["best"] else "#999"}"/>'
                     f'{leader}<text x="{label_x:.1f}" y="{label_y:.1f}">{html.escape(text)}</text>')
    one = axis - 1 / top * (axis - 20)
    height = max(axis + 40, int(max(y for _, y, _ in placed)) + 10)
    return (f'<figure><figcaption>Throughput against agreement with the uncompiled pipeline</figcaption>'
            f'<svg width="{width}" height="{height}" font-family="sans-serif" font-size="12">'
            f'<line x1="{left}" y1="{axis}" x2="{width - 20}" y2="{axis}" stroke="#333"/>'
            f'<line x1="{left}" y1="10" x2="{left}" y2="{axis}" stroke="#333"/>'
            f'<line x1="{left}" y1="{one:.1f}" x2="{width - 20}" y2="{one:.1f}" stroke="#555" stroke-dasharray="4 3"/>'
            f'<text x="{left - 28}" y="{one + 4:.1f}">1x</text>'
            f'<text x="{left}" y="{axis + 28}">agreement {low:.0%}</text>'
            f'<text x="{width - 180 - 14}" y="{axis + 28}">100%</text>'
            f'<polyline points="{line}" fill="none" stroke="#2e7d32"/>{"".join(marks)}</svg></figure>')


def render_page(result: dict) -> str:
    """A self-contained page: bars of pipeline, model and latency ratios, the frontier, the table."""
    rows = {name: row for name, row in result["rows"].items() if "skipped" not in row}
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
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;margin:1em 2em 1em 0;vertical-align:top}}.differs{{background:#ffcdd2;font-weight:bold}}figcaption{{font-weight:bold;margin-bottom:4px}}</style></head>
<body><h1>mlcompile bench: {html.escape(result['project'])}</h1>
<p>{html.escape(cpu['model'])} ({html.escape(', '.join(cpu['flags']) or 'no vector flags found')}; torch capability
{html.escape(str(cpu['torch_capability']))}), {result['threads']} threads, {result['repeat']} interleaved passes after a
warm-up. Ratios are to the uncompiled pipeline batched, fp32, of the same run (higher is better).</p>
{_bars(rows, 'throughput_vs_uncompiled', 'Task pipeline, batched (x uncompiled)')}
{_bars(rows, 'model_vs_uncompiled', 'The model alone, batched (x uncompiled)')}
{_bars(rows, 'p50_vs_uncompiled', 'Latency per request, p50 (x uncompiled, higher is faster)')}
{_frontier_chart(frontier(result))}
<table><tr>{head}</tr>{''.join(body)}</table>
<p>"same corpus", "same cases", "same agreement set": rows whose task output (keywords, entities, label) equals the
uncompiled pipeline's; highlighted where any differs.</p><h2>Workloads</h2><ul>{work}</ul><h2>Variants</h2><ul>{what}</ul>
</body></html>
"""
