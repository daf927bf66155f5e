"""Registering a validated compiled artifact: its lineage, its model card, the files a version
holds (the compiled artifact, the verdict, the HTML report) and its lifecycle stage."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .artifacts import Artifact, read_json, write_json_atomic
from .compiled import CompiledSpec
from .registry import MODEL_CARD, VersionInfo
from .report import render_html
from .settings import Settings
from .verdict import Verdict


def lineage(settings: Settings, compiled: Artifact, spec: CompiledSpec, verdict: Verdict) -> dict:
    """What the compiled version was made from and how: recorded on the version and its card."""
    return {
        "uncompiled_project": settings.uncompiled_project,
        "uncompiled_version": spec.source_version,
        "compiled_content_id": compiled.content_id,
        "validate_fingerprint": verdict.validate_fingerprint,
        "compiler": spec.backend,
        "precision": spec.precision,  # validated under that precision's tolerances (verdict rules)
        "compiler_settings": spec.compiler_settings,
        "compiler_selection": spec.selection.model_dump() if spec.selection else None,
        "sequence_lengths": spec.lengths,
        "batch_size": spec.batch_size,
    }


def register(registry, settings: Settings, compiled: Artifact, spec: CompiledSpec, verdict: Verdict
             ) -> tuple[VersionInfo, bool]:
    """This artifact's version in the registry (found by content id, else created now) at the
    configured lifecycle stage; and whether it was created now."""
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
        (files / "validation").mkdir()
        write_json_atomic(files / "validation" / "verdict.json", verdict.as_dict())
        (files / "validation" / "report.html").write_text(
            render_html(verdict, f"Validation of {settings.compiled_model}", recorded)
        )
        metadata = {k: v for k, v in recorded.items() if isinstance(v, str)}
        metadata["validation_passed"] = "true"
        return registry.register(settings.compiled_project, settings.compiled_model, files, card, metadata,
                                 compiled.content_id)
