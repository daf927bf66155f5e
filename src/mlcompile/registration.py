"""Registering a validated compiled artifact: its lineage, its model card, the files a version
holds (the compiled artifact as an MLflow pyfunc model, the verdict, the HTML report), what its page
shows (description, parameters, metrics) and its lifecycle."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import pyfunc
from .artifacts import Artifact, fingerprint, read_json, write_json_atomic
from .compiled import CompiledSpec
from .registry import MODEL_CARD, Dataset, VersionDetails, VersionInfo
from .regression import REGRESSION_CASE
from .report import render_html
from .settings import Settings
from .verdict import Outcome, Verdict

DIGEST_LENGTH = 32  # hex digits of a dataset's digest (MLflow keeps 36 characters)


def lineage(settings: Settings, compiled: Artifact, spec: CompiledSpec, verdict: Verdict) -> dict:
    """What the compiled version was made from and how: recorded on the version and its card."""
    return {
        "uncompiled_project": settings.uncompiled_project,
        "uncompiled_version": spec.uncompiled_version,
        "uncompiled_source_uri": spec.source.get("source_uri"),
        "uncompiled_logged_model_id": spec.source.get("logged_model_id"),
        "compiled_content_id": compiled.content_id,
        "validate_fingerprint": verdict.validate_fingerprint,
        "compiler": spec.backend,
        "precision": spec.precision,  # validated under that precision's tolerances (verdict rules)
        "compiler_settings": spec.compiler_settings,
        "compiler_selection": spec.selection.model_dump() if spec.selection else None,
        "compiler_report": spec.compiler_report,  # e.g. the int8 recipe's measured layer sensitivities
        "sequence_lengths": spec.lengths,
        "batch_size": spec.batch_size,
    }


def details(settings: Settings, spec: CompiledSpec, verdict: Verdict) -> VersionDetails:
    """What produced the version and how it was validated, for its page: a description, the compile
    settings as parameters and the validation (and COMPILER=auto's timings) as metrics."""
    summary = verdict.summary()
    passed = summary["outcomes"].get(Outcome.PASSED, 0)
    worst = summary["smallest_margin"]
    lifecycle = settings.compiled_lifecycle
    uri = f"models:/{settings.compiled_model}" + (f"@{lifecycle}" if lifecycle != "none" else "/VERSION")
    description = (
        f"{settings.compiled_model} compiled from {spec.uncompiled_version} "
        f"({spec.source.get('source_uri') or settings.uncompiled_project}) by "
        f"{spec.candidate} at sequence lengths {', '.join(map(str, spec.lengths))}, batch {spec.batch_size}. "
        f"Validated against the uncompiled model before registering: {passed} of {summary['checks']} checks passed "
        f"over {summary['cases']} cases (atol {verdict.rules.atol}, rtol {verdict.rules.rtol})"
        + (f", smallest margin {worst['margin']:.3g} ({worst['check']})" if worst else "")
        + f". Report: `files/validation/report.html`. Load: `mlflow.pyfunc.load_model(\"{uri}\")`."
    )
    params = {
        "backend": spec.backend, "precision": spec.precision, "requested_compiler": spec.requested_compiler,
        "dynamic_shapes": spec.dynamic_shapes, "batch_size": spec.batch_size,
        "sequence_lengths": ",".join(map(str, spec.lengths)), "uncompiled_version": spec.uncompiled_version,
        "atol": verdict.rules.atol, "rtol": verdict.rules.rtol,
        **{f"compiler.{key}": value for key, value in spec.compiler_settings.items()},
        **{f"version.{name}": version for name, version in spec.versions.items()},
    }
    metrics = {"checks": summary["checks"], "checks_passed": passed, "cases": summary["cases"],
               "compiled_executables": len(summary["coverage"]),
               "compile_seconds": sum(bucket.compile_seconds for bucket in spec.buckets)}
    if worst:
        metrics["smallest_margin"] = worst["margin"]
    cases, regression = validation_datasets(settings, spec, verdict)
    metric_datasets = {key: cases.name for key in ("checks", "checks_passed", "cases", "smallest_margin")}
    for result in verdict.results.values():  # per check kind, over the cases; the regression set's apart
        on = regression if result.case == REGRESSION_CASE else cases
        prefix = "regression." if on is regression else ""
        if result.observed is not None:
            key = f"{prefix}largest_difference.{result.check}"
            metrics[key] = max(metrics.get(key, 0.0), result.observed)
            metric_datasets[key] = on.name
        if result.margin is not None:
            key = f"{prefix}smallest_margin.{result.check}"
            metrics[key] = min(metrics.get(key, result.margin), result.margin)
            metric_datasets[key] = on.name
        if on is regression and "value" in result.details:  # an agreement share over the set's rows
            metrics[f"regression.{result.check}"] = result.details["value"]
            metric_datasets[f"regression.{result.check}"] = on.name
    if verdict.machine:
        params["validated.cpu"] = verdict.machine.get("model")
        params["validated.cpu_flags"] = ",".join(verdict.machine.get("flags", []))
    if spec.selection:
        params["auto.workload"] = spec.selection.workload
        metrics |= {f"auto_seconds.{name}": m.seconds for name, m in spec.selection.candidates.items()}
        metrics |= {f"auto_matched.{name}": float(m.passed) for name, m in spec.selection.candidates.items()}
        metrics |= {f"auto_compile_seconds.{name}": m.compile_seconds for name, m in spec.selection.candidates.items()}
        metrics |= {f"auto_vs_uncompiled.{name}": spec.selection.vs_uncompiled(name)
                    for name in spec.selection.candidates if spec.selection.vs_uncompiled(name)}
    model_description = (f"{spec.task} models compiled by mlcompile from {settings.uncompiled_project} "
                         f"{settings.uncompiled_model or settings.uncompiled_path}; a version is registered only "
                         f"after every validation check "
                         f"of its exact compiled artifact passed.")
    return VersionDetails(description, {k: str(v) for k, v in params.items()}, metrics, model_description,
                          datasets=tuple(d for d in (cases, regression) if d is not None),
                          metric_datasets={k: v for k, v in metric_datasets.items() if k in metrics})


def validation_datasets(settings: Settings, spec: CompiledSpec, verdict: Verdict) -> tuple[Dataset, Dataset | None]:
    """The cases and the regression set the verdict ran on, each bound to its content by a digest."""
    rules = verdict.rules
    cases = Dataset("validation-cases", fingerprint(rules.cases)[:DIGEST_LENGTH],
                    f"{spec.uncompiled_version} (stored cases) + {Path(settings.cases_file).name}", len(rules.cases))
    if rules.regression is None:
        return cases, None
    return cases, Dataset("regression-set", rules.regression["sha256"][:DIGEST_LENGTH], rules.regression["file"],
                          rules.regression["rows"])


def register(registry, settings: Settings, compiled: Artifact, spec: CompiledSpec, verdict: Verdict
             ) -> tuple[VersionInfo, bool]:
    """This artifact's version in the registry (found by content id, else created now) at the
    configured lifecycle; and whether it was created now."""
    project, model = settings.compiled_project, settings.compiled_model
    version = registry.find_version(project, model, compiled.content_id)
    created = version is None
    if created:
        version, created = _create(registry, settings, compiled, spec, verdict)
    if settings.compiled_lifecycle != "none" and version.lifecycle != settings.compiled_lifecycle:
        version = registry.set_lifecycle(project, version.version_id, settings.compiled_lifecycle)
    return version, created


def _create(registry, settings: Settings, compiled: Artifact, spec: CompiledSpec, verdict: Verdict):
    recorded = lineage(settings, compiled, spec, verdict)
    card = {
        **read_json(compiled.path / MODEL_CARD),
        "name": settings.compiled_model,
        "compiled": True,
        "lineage": recorded,
        "library_versions": spec.versions,
        "validation": verdict.summary(),
        "validation_report": "validation/report.html",
    }
    with tempfile.TemporaryDirectory(dir=settings.outputs_dir, prefix=".upload-") as tmp:
        files = Path(tmp) / "files"
        shutil.copytree(compiled.path, files / "compiled")
        (files / pyfunc.VALIDATION).mkdir()
        write_json_atomic(files / pyfunc.VALIDATION / "verdict.json", verdict.as_dict())
        (files / pyfunc.VALIDATION / "report.html").write_text(
            render_html(verdict, f"Validation of {settings.compiled_model}", recorded)
        )
        examples = [case["text"] for case in read_json(settings.cases_file)[:2]]
        pyfunc.write_mlmodel(files, spec, read_json(compiled.path / MODEL_CARD), examples)
        metadata = {k: v for k, v in recorded.items() if isinstance(v, str)}
        metadata["validation_passed"] = "true"
        if verdict.machine:  # where the numbers were proven: a reduced-precision load elsewhere says so
            metadata["validated_cpu"] = str(verdict.machine.get("model"))
            metadata["validated_cpu_flags"] = ",".join(verdict.machine.get("flags", []))
        return registry.register(settings.compiled_project, settings.compiled_model, files, card, metadata,
                                 compiled.content_id, details(settings, spec, verdict))
