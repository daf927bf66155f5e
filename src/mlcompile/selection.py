"""Which candidates to compile, and for COMPILER=auto which one to keep: every usable candidate
(backend at a precision) is compiled, its task pipeline timed on the validation cases, and the
fastest whose predictions pass the task's checks, under the tolerance of its precision, is kept."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from . import coverage, progress, regression
from .batching import truncation_note
from .cases import Case, params_key
from .compilers import CPU_BACKENDS, PRECISIONS, backend_candidates, backend_precisions, get_compiler
from .compiled import Bucket, Measurement, Selection, bucket_executables, runner
from .errors import ArtifactError, ConfigError
from .machine import bf16_supported
from .settings import Settings
from .tasks import COVERAGE_CHECK, INVARIANCE, RememberedPipeline, TaskFamily, Tolerance

log = logging.getLogger(__name__)
MEASURED_PASSES = 2  # each backend is timed this often; the best pass is kept


def candidates(requested: str, allowed: list[str] | tuple[str, ...] = PRECISIONS) -> tuple[list[str], str | None]:
    """The candidates to compile for a request, and for `auto` on CPU why neuron is not among them:
    `auto` is neuron where its candidates can run (auto times them), else every CPU backend; each at
    every precision the project allows (`PRECISIONS`) that the backend has and this host runs fast."""
    if requested != "auto":
        return [requested], None
    from .compilers.neuron import status

    neuron = status()
    backends, why = (["neuron"], None) if neuron.runs else (list(CPU_BACKENDS), neuron.reason)
    found = []
    for precision in [p for p in PRECISIONS if p in allowed]:
        for backend in backends:
            has = precision in backend_precisions(backend)
            if has and (precision != "bf16" or backend == "neuron" or bf16_supported()):
                found += backend_candidates(backend, precision)
    return found, why


def neuron_skipped(settings: Settings) -> str | None:
    """For COMPILER=auto on a host where Neuron cannot run: why (said with the chosen backend)."""
    return candidates(settings.compiler, settings.precisions)[1]


def usable_compilers(settings: Settings) -> list:
    """The configured candidates, checked usable here (a clear error before anything is built)."""
    found = []
    names, _ = candidates(settings.compiler, settings.precisions)
    for name in names:
        compiler = get_compiler(name, settings)
        try:
            compiler.check()
        except ConfigError:
            if settings.compiler != "auto" or name.startswith("neuron"):
                raise
            log.warning("COMPILER=auto: skipping %s, which cannot run here", name)
            continue
        found.append(compiler)
    if not found:
        raise ConfigError("COMPILER=auto: no usable backend here; install onnxruntime or use COMPILER=torchscript")
    return found


def predict_cases(pipeline, cases: list[Case], workload: str = "requests") -> list[dict]:
    """The pipeline's predictions of the cases as the project serves them: one request each, or
    batched (one call per set of parameters)."""
    if workload == "requests":
        return [pipeline.predict(case.text, case.params) for case in cases]
    groups: dict[str, list[int]] = {}
    for i, case in enumerate(cases):
        groups.setdefault(params_key(case.params), []).append(i)
    predictions: list = [None] * len(cases)
    for members in groups.values():
        found = pipeline.predict_many([cases[i].text for i in members], cases[members[0]].params)
        for i, prediction in zip(members, found):
            predictions[i] = prediction
    return predictions


def timed(pipeline, cases: list[Case], workload: str) -> float:
    """The best of MEASURED_PASSES over the cases served as `workload` (the caller warmed it up)."""
    seconds = float("inf")
    for _ in range(MEASURED_PASSES):
        started = time.perf_counter()
        predict_cases(pipeline, cases, workload)
        seconds = min(seconds, time.perf_counter() - started)
    return seconds


def measure(pipeline, cases: list[Case], uncompiled: list[dict], task: TaskFamily, tol: Tolerance,
            workload: str = "requests") -> Measurement:
    """Seconds the task pipeline takes over the cases served as `workload` (best of
    MEASURED_PASSES, after a warm-up pass), and whether its predictions pass the task's checks
    against the uncompiled ones."""
    predictions = predict_cases(pipeline, cases, workload)  # warm-up
    seconds = timed(pipeline, cases, workload)
    failed = [f"{case.id}::{check}" for case, observed, expected in zip(cases, predictions, uncompiled)
              for check, result in task.compare(case.id, observed, expected, tol).items() if not result.passed]
    cut = [note for case, observed, expected in zip(cases, predictions, uncompiled)
           if observed["text_info"]["kept"] != expected["text_info"]["kept"]
           and (note := truncation_note(case.id, observed["text_info"], expected["text_info"]))]
    return Measurement(seconds=round(seconds, 4), passed=not failed, failed_checks=failed, cut_differently=cut)


def fastest(compilers: list, built: dict[str, list[Bucket]], backends_dir: Path, tokenizer, task: TaskFamily,
            batch_size: int, cases: list[Case], uncompiled: list[dict], settings: Settings, model_dir: Path,
            card: dict, neuron_note: str | None = None, uncompiled_pipeline=None, uncompiled_module=None) -> Selection:
    """Time each built candidate's task pipeline on the cases; pick the fastest that passes under
    the tolerance of its precision and, at reduced precision, the artifact's coverage and the regression
    set's checks too (so that what auto keeps is what validation will pass: the fastest first, until one
    passes). `uncompiled_module`: the uncompiled module the coverage check compares each executable with."""
    measured, pipelines = {}, {}
    for compiler in compilers:
        root = backends_dir / compiler.candidate
        compiled = runner(compiler, built[compiler.candidate], root, tokenizer, batch_size, task.token_level,
                          settings.batch_tokens)
        tol = Tolerance(*settings.tolerance(compiler.precision))
        pipelines[compiler.candidate] = task.compiled(compiled, model_dir, card)  # loaded once: timed, then checked
        with progress.step(f"measure {compiler.candidate} on {len(cases)} cases"):
            found = measure(pipelines[compiler.candidate], cases, uncompiled, task, tol, settings.workload)
        measured[compiler.candidate] = found.model_copy(update={
            "precision": compiler.precision, "atol": tol.atol, "rtol": tol.rtol,
            "compile_seconds": round(sum(bucket.compile_seconds for bucket in built[compiler.candidate]), 1)})
    uncompiled = None
    if uncompiled_pipeline is not None:  # the ratios' baseline: the uncompiled pipeline itself, not its memory
        plain = getattr(uncompiled_pipeline, "pipeline", uncompiled_pipeline)
        with progress.step(f"measure the uncompiled pipeline on {len(cases)} cases"):
            predict_cases(plain, cases, settings.workload)
            uncompiled = round(timed(plain, cases, settings.workload), 4)
    remembered = RememberedPipeline(uncompiled_pipeline, batches=True) if uncompiled_pipeline is not None else None

    def reduced_precision_failures(name: str) -> list[str]:
        compiler = next(c for c in compilers if c.candidate == name)
        tol = Tolerance(*settings.tolerance(compiler.precision))
        failed = []
        if uncompiled_module is not None:  # every executable against the uncompiled module, as validation's coverage check
            covered = coverage.check_cases(pipelines[name].runner, uncompiled_module,
                                           bucket_executables(built[name], compiler.dynamic_shapes, batch_size),
                                           {case.id: case.text for case in cases}, tol)
            failed += [] if covered.passed else [f"{COVERAGE_CHECK}: {covered.message}"]
        return failed + regression_failures(name, pipelines[name], task, settings, tol, card, remembered)

    picked = pick(measured, reduced_precision_failures)
    return Selection(kept=picked, candidates=measured,
                     workload=f"the task pipeline on {len(cases)} validation cases, "
                              f"{'one request each' if settings.workload == 'requests' else 'in batched calls'}, "
                              f"best of {MEASURED_PASSES} passes after a warm-up", neuron_skipped=neuron_note,
                     uncompiled_seconds=uncompiled)


def pick(measured: dict[str, Measurement], reduced_precision_failures: Callable[[str], list[str]]) -> str:
    """The fastest candidate that passed the cases and, at reduced precision, the further checks (coverage,
    the regression set), asked of the fastest first until one passes; a candidate failing them is recorded
    as not passing."""
    for name in sorted((n for n, m in measured.items() if m.passed), key=lambda n: measured[n].seconds):
        failed = reduced_precision_failures(name) if measured[name].precision != "fp32" else []
        if not failed:
            return name
        measured[name] = measured[name].model_copy(update={"passed": False, "failed_checks": failed})
    raise ArtifactError(no_match(measured))


def regression_failures(name: str, compiled, task: TaskFamily, settings: Settings, tol: Tolerance, card: dict,
                        uncompiled_pipeline) -> list[str]:
    """The regression set's checks (agreement and tensors) candidate `name`'s pipeline fails; none without a set."""
    if settings.regression_set is None or uncompiled_pipeline is None:
        return []
    rows = regression.read_rows(settings.regression_set, card.get("inference_params", {}))
    with progress.step(f"check {name} on the regression set ({settings.regression_set})"):
        results = regression.evaluate(task, rows, compiled, uncompiled_pipeline, tol,
                                      settings.regression_min_agreement, invariance_every=0)
    return [f"{regression.REGRESSION_CASE}::{check}: {result.message}" for check, result in results.items()
            if check != INVARIANCE and not result.passed]


def no_match(measured: dict[str, Measurement]) -> str:
    lines = [f"{name}: {len(m.failed_checks)} checks failed: {', '.join(m.failed_checks[:6])}"
             + (" ..." if len(m.failed_checks) > 6 else "") for name, m in measured.items()]
    cut = next((m.cut_differently for m in measured.values() if m.cut_differently), [])
    if cut:
        lines.append(f"{len(cut)} cases were cut by the compiled lengths where the uncompiled pipeline was not, "
                     f"which alone makes outputs differ; e.g. {cut[0]}")
    return "COMPILER=auto: no candidate matches the uncompiled model on the validation cases:\n  " + "\n  ".join(lines)
