"""The four pipeline stages, each building (or reusing) its artifact in `outputs/<stage>` from the
modules that do the work; the pytest fixtures and the bench are thin over these."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from . import cases as case_files
from . import components, progress, regression, shards, sources
from .artifacts import Artifact, StageDir, fingerprint, read_json, write_json_atomic
from .cases import Case
from .compiled import CompiledSpec, compile_shapes, load_runner
from .compiled import load as load_compiled
from .compilers import get_compiler
from .errors import ConfigError, UploadRefused
from .gate import refusal
from .registration import lineage, register
from .registry import MODEL_CARD, open_registry
from .report import render_html
from .selection import fastest, neuron_skipped, usable_compilers
from .settings import Settings
from .lengths import compiled_lengths
from .sources import open_source
from .tasks import RememberedPipeline, TaskFamily, Tolerance, get_task
from .validation import Validation
from .verdict import Rules, Verdict
from .versions import library_versions

log = logging.getLogger(__name__)
VERDICT_FILE = "verdict.json"
REPORT_FILE = "report.html"
__all__ = ["download_model", "task_of", "compile_lengths", "compile_model", "plan_validation", "validate_model", "publish_validation",
           "published_verdict", "upload_model", "load_compiled", "load_runner", "load_uncompiled", "load_cases", "rules_for",
           "stage"]


def stage(settings: Settings, name: str) -> StageDir:
    return StageDir(Path(settings.outputs_dir), name)


# download ---------------------------------------------------------------
def download_model(settings: Settings, force: bool = False) -> Artifact:
    """outputs/download: the uncompiled model as a Hugging Face directory (`model/`), its model card (the
    version's, or derived from the model and recorded as derived), the stored test files or the input
    example (`tests/`) and what the version is (`version.json`)."""
    source = open_source(settings)
    overrides = {"model_task": settings.model_task, "aggregation_strategy": settings.aggregation_strategy}
    inputs = {"source": source.kind, **source.identity(), "settings": overrides}

    def build(tmp: Path) -> dict:
        fetched = source.fetch(tmp)
        card = sources.model_card(settings, fetched, tmp)
        write_json_atomic(tmp / MODEL_CARD, card)
        if fetched.input_example and not (tmp / case_files.TEST_FILES["inputs"]).is_file():
            write_json_atomic(tmp / case_files.INPUT_EXAMPLE, list(fetched.input_example))
        write_json_atomic(tmp / "version.json", {
            "version_id": fetched.version_id, "source_kind": source.kind, "source_uri": fetched.source_uri,
            "logged_model_id": fetched.logged_model_id, "metadata": fetched.metadata,
            "derived_card": card.get("derived", False)})
        return {"version_id": fetched.version_id, "source": fetched.source_uri, "task": card["task"],
                "derived_card": card.get("derived", False), "files": sum(1 for p in (tmp / sources.MODEL_DIR).rglob("*") if p.is_file())}

    return stage(settings, "download").ensure(fingerprint(inputs), build, inputs, force=force)


def model_card(downloaded: Artifact) -> dict:
    return read_json(downloaded.path / MODEL_CARD)


def task_of(downloaded: Artifact) -> TaskFamily:
    """The task the downloaded model is compiled for (settled at download, in its card)."""
    return get_task(model_card(downloaded)["task"])


def load_cases(settings: Settings, downloaded: Artifact) -> list[Case]:
    """The downloaded version's stored test inputs (else its input example), then the cases file."""
    params = model_card(downloaded).get("inference_params", {})
    return case_files.load_cases(downloaded.path, params, Path(settings.cases_file))


_uncompiled: dict[tuple[str, str], RememberedPipeline] = {}


def load_uncompiled(settings: Settings, downloaded: Artifact) -> RememberedPipeline:
    """The uncompiled pipeline on CPU, loaded once per process and downloaded version."""
    key = downloaded.fingerprint
    if key not in _uncompiled:
        _uncompiled.clear()  # one model held at a time
        _uncompiled[key] = RememberedPipeline(task_of(downloaded).uncompiled(downloaded.path, model_card(downloaded)))
    return _uncompiled[key]


# compile ----------------------------------------------------------------
def compile_lengths(settings: Settings, downloaded: Artifact) -> list[int]:
    """The sequence lengths to compile: SEQUENCE_LENGTHS checked against the downloaded model, or
    chosen from its maximum."""
    return compiled_lengths(settings, task_of(downloaded), downloaded.path)


def compile_model(settings: Settings, downloaded: Artifact, force: bool = False) -> Artifact:
    from transformers import AutoConfig

    compilers = usable_compilers(settings)
    task = task_of(downloaded)
    lengths = compile_lengths(settings, downloaded)  # checked before compiling anything
    inputs = {
        "download": downloaded.fingerprint,
        "task": task.name,
        "compiler": settings.compiler,
        "backends": {c.candidate: {"settings": c.settings(), "versions": c.versions()} for c in compilers},
        "precisions": settings.precisions,
        "workload": settings.workload,
        "tolerances": {p: settings.tolerance(p) for p in settings.precisions},  # auto's choice depends on them
        "sequence_lengths": lengths,
        "batch_size": settings.batch_size,
        "batch_tokens": settings.batch_tokens,
        "versions": library_versions(),
    }

    def build(tmp: Path) -> dict:
        version = read_json(downloaded.path / "version.json")
        module = task.traceable(downloaded.path)
        source = str(task.tokenizer_dir(downloaded.path))
        # The artifact's tokenizer truncates where the largest bucket ends; the runner pads to the buckets.
        tokenizer = task.uncompiled_tokenizer(downloaded.path)
        tokenizer.model_max_length = lengths[-1]
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        AutoConfig.from_pretrained(source, local_files_only=True).save_pretrained(str(tmp / "config"))
        backends = tmp / "backends"
        built = {}
        with progress.bar(len(compilers), "compile") as advance:
            for i, c in enumerate(compilers, 1):
                with progress.step(f"compile {c.candidate} [{i}/{len(compilers)}]"):
                    built[c.candidate] = compile_shapes(c, module, tokenizer, lengths, settings.batch_size,
                                                    backends / c.candidate, tmp / "workdir" / c.candidate)
                advance()
        selection = None
        if len(compilers) > 1:  # auto: keep the fastest candidate whose predictions pass the task's checks
            cases = load_cases(settings, downloaded)
            uncompiled_pipeline = load_uncompiled(settings, downloaded)
            uncompiled = [uncompiled_pipeline.predict(case.text, case.params) for case in cases]
            selection = fastest(compilers, built, backends, tokenizer, task, settings.batch_size, cases, uncompiled,
                                settings, tmp, model_card(downloaded), neuron_skipped(settings), uncompiled_pipeline,
                                uncompiled_module=module)
        compiler = next(c for c in compilers if c.candidate == (selection.kept if selection else compilers[0].candidate))
        for path in (backends / compiler.candidate).iterdir():
            path.rename(tmp / path.name)
        shutil.rmtree(backends)
        shutil.copyfile(downloaded.path / MODEL_CARD, tmp / MODEL_CARD)
        components.keep_modules(downloaded.path / sources.MODEL_DIR, tmp)
        spec = CompiledSpec(
            task=task.name, backend=compiler.name, precision=compiler.precision, requested_compiler=settings.compiler,
            compiler_settings=compiler.settings(), dynamic_shapes=compiler.dynamic_shapes,
            batch_size=settings.batch_size, buckets=built[compiler.candidate],
            batch_tokens=settings.batch_tokens if compiler.dynamic_shapes else None,
            uncompiled_version=version["version_id"], source={k: version.get(k) for k in ("source_uri", "logged_model_id")},
            versions={**inputs["versions"], **inputs["backends"][compiler.candidate]["versions"]}, selection=selection,
            compiler_report=compiler.report(tmp / "workdir" / compiler.candidate),
        )
        spec.write(tmp)
        return {"backend": compiler.name, "precision": compiler.precision, "lengths": spec.lengths}

    return stage(settings, "compile").ensure(fingerprint(inputs), build, inputs, force=force)


def cannot_run_here(compiled: Artifact) -> str | None:
    """Why the compiled artifact's executables cannot run on this host (a Neuron artifact where no
    NeuronCore is visible), or None when they can."""
    spec = CompiledSpec.read(compiled.path)
    try:
        get_compiler(spec.backend, recorded=spec.compiler_settings).check_runs()
    except ConfigError as exc:
        return str(exc)
    return None


# validate ---------------------------------------------------------------
def tolerance(settings: Settings, precision: str = "fp32") -> Tolerance:
    return Tolerance(*settings.tolerance(precision))


def rules_for(settings: Settings, task: TaskFamily, cases: list[Case], precision: str = "fp32") -> Rules:
    """The cases, checks and tolerances the current settings call for, for an artifact of `precision`."""
    described = None
    if settings.regression_set is not None:
        described = {**regression.describe(settings.regression_set), "min_agreement": settings.regression_min_agreement,
                     "invariance_sample": settings.regression_invariance_sample}
        if settings.regression_shard:
            described["shard"] = settings.regression_shard
    return Rules.build(task, cases, tolerance(settings, precision), precision, described)


def plan_validation(settings: Settings, downloaded: Artifact, compiled: Artifact, cases: list[Case], rules: Rules,
                    recorded: Verdict | None = None, compiled_loader=None, uncompiled_loader=None) -> Validation:
    """The validation of `compiled` against the downloaded model under `rules`, ready to run check by
    check (or to replay `recorded`); the pipelines load on first use (callers that hold them already pass
    their own loaders)."""
    task = task_of(downloaded)
    return Validation(
        task=task, cases=cases, rules=rules, compiled_content_id=compiled.content_id,
        load_compiled=compiled_loader or (lambda: load_compiled(compiled.path, settings)),
        load_uncompiled=uncompiled_loader or (lambda: load_uncompiled(settings, downloaded)),
        load_uncompiled_module=lambda: task.traceable(downloaded.path),
        executables=lambda: CompiledSpec.read(compiled.path).executables(list(compiled.manifest["files"])),
        recorded=recorded,
        regression_rows=lambda: regression.read_rows(settings.regression_set,
                                                     model_card(downloaded).get("inference_params", {})),
        components=lambda: components.check(compiled.path, CompiledSpec.read(compiled.path),
                                            downloaded.path / sources.MODEL_DIR, task.tokenizer_dir(downloaded.path),
                                            model_card(downloaded)),
        load_uncompiled_tokenizer=lambda: task.uncompiled_tokenizer(downloaded.path),
    )


def validate_model(settings: Settings, downloaded: Artifact, compiled: Artifact, cases: list[Case], rules: Rules) -> Verdict:
    """Every check of `compiled` under `rules`, in this process: its verdict (the pytest plugin runs each
    check as a test of its own, and its spool gathers them)."""
    validation = plan_validation(settings, downloaded, compiled, cases, rules)
    verdict = validation.plan().verdict()
    for check_id in rules.checks:
        verdict.record(check_id, validation.result(check_id))
    return verdict


def publish_validation(settings: Settings, verdict: Verdict, pytest_report: Path | None) -> Artifact:
    """outputs/validate: the verdict (keyed by artifact and rules) and the HTML report."""

    def build(tmp: Path) -> dict:
        write_json_atomic(tmp / VERDICT_FILE, verdict.as_dict())
        if pytest_report is not None and pytest_report.is_file():
            shutil.copyfile(pytest_report, tmp / REPORT_FILE)
        else:
            (tmp / REPORT_FILE).write_text(render_html(verdict, "Validation", {}))
        return verdict.summary()

    # A new validation run is new evidence: always publish it.
    return validate_stage(settings).publish(
        verdict.validate_fingerprint, build, {"compiled": verdict.compiled_content_id, "rules": verdict.rules.as_dict()}
    )


def validate_stage(settings: Settings) -> StageDir:
    """outputs/validate, or a shard's outputs/validate-shards/<I>-of-<N> (REGRESSION_SHARD)."""
    if settings.regression_shard:
        return shards.shard_stage(settings.outputs_dir, settings.regression_shard)
    return stage(settings, "validate")


def upload_verdict(settings: Settings, task: str) -> Verdict | None:
    """The verdict an upload without validate tests is gated on: the shards' verdicts merged when
    outputs/validate-shards/ holds any (UploadRefused naming a missing, duplicated, failed or foreign
    shard), else the published verdict."""
    found = [] if settings.regression_shard else shards.published_shards(settings.outputs_dir)
    if found:
        return shards.merged(task, found, tolerance(settings))
    return published_verdict(settings)


def published_verdict(settings: Settings) -> Verdict | None:
    """The verdict of an earlier validate run, if its artifact verifies and this mlcompile reads it."""
    target = validate_stage(settings)
    if target.problem() is not None:
        return None
    try:
        return Verdict.from_dict(read_json(target.path / VERDICT_FILE))
    except (KeyError, TypeError, ValueError):
        log.warning("%s was written by an older mlcompile; validate again", target.path / VERDICT_FILE)
        return None


# upload -----------------------------------------------------------------
def upload_model(settings: Settings, compiled: Artifact, verdict: Verdict | None, rules: Rules) -> Artifact:
    """Register the compiled artifact, only if `verdict` shows every check of it passed under
    `rules` (what the settings call for now)."""
    refused = refusal(verdict, compiled.content_id, rules)
    if refused:
        raise UploadRefused(refused)
    registry = open_registry(settings)
    project, model = settings.compiled_project, settings.compiled_model
    spec = CompiledSpec.read(compiled.path)
    recorded = lineage(settings, compiled, spec, verdict)
    inputs = {"registry": registry.describe(), "project": project, "model": model, **recorded}

    def build(tmp: Path) -> dict:
        version, created = register(registry, settings, compiled, spec, verdict)
        record = {"version_id": version.version_id, "created": created, "lifecycle": version.lifecycle, **recorded}
        write_json_atomic(tmp / "registered.json", record)
        return record

    def still_registered(artifact: Artifact) -> bool:
        found = registry.find_version(project, model, compiled.content_id)
        return found is not None and found.version_id == artifact.info.get("version_id")

    return stage(settings, "upload").ensure(fingerprint(inputs), build, inputs, still_valid=still_registered)
