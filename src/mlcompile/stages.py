"""The four stages as library functions; the pytest fixtures and tests are thin over these."""

from __future__ import annotations

import json
import logging
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path

from . import __version__
from .artifacts import Artifact, Stage, fingerprint, read_json, write_json_atomic
from .batching import BucketedRunner, example_inputs
from .compilers import get_compiler
from .errors import ConfigError, RegistryError, UploadRefused
from .registry import MODEL_CARD, open_registry
from .report import Verdict, render_html
from .settings import Settings
from .tasks import Case, Tolerance, check_ids, get_task

log = logging.getLogger(__name__)
COMPILED_SPEC = "compiled.json"
TEST_FILES = {"inputs": "tests/inputs.json", "params": "tests/params.json", "predictions": "tests/predictions.json"}


def library_versions() -> dict:
    versions = {"python": platform.python_version(), "mlcompile": __version__}
    for dist in ("torch", "transformers", "sentence-transformers", "keybert", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def stage(settings: Settings, name: str) -> Stage:
    return Stage(Path(settings.outputs_dir), name)


# download ---------------------------------------------------------------
def download(settings: Settings, force: bool = False) -> Artifact:
    registry = open_registry(settings)
    project, version_id = settings.uncompiled_project, settings.uncompiled_with_id
    version = registry.get_version(project, version_id)
    task = version.card.get("task") if isinstance(version.card, dict) else None
    if task != settings.model_task:
        raise RegistryError(
            f"{version_id}: model card task {task!r} does not match MODEL_TASK={settings.model_task!r} "
            f"of project {settings.project!r}; check UNCOMPILED_WITH_ID"
        )
    inputs = {"registry": registry.describe(), "project": project, "version_id": version_id}
    fp = fingerprint({**inputs, "files": version.files, "card": version.card, "metadata": version.metadata})

    def build(tmp: Path) -> dict:
        got = registry.download(project, version_id, tmp)
        write_json_atomic(tmp / MODEL_CARD, got.card)
        write_json_atomic(tmp / "version.json", {"version_id": got.version_id, "metadata": got.metadata})
        return {"version_id": got.version_id, "files": len(got.files)}

    return stage(settings, "download").ensure(fp, build, inputs, force=force)


def model_card(downloaded: Artifact) -> dict:
    return read_json(downloaded.path / MODEL_CARD)


# compile ----------------------------------------------------------------
def compile_fingerprint_inputs(settings: Settings, downloaded: Artifact) -> dict:
    compiler = get_compiler(settings.compiler)
    return {
        "download": downloaded.fingerprint,
        "task": settings.model_task,
        "compiler": compiler.name,
        "compiler_settings": compiler.settings(),
        "sequence_lengths": settings.sequence_lengths,
        "batch_size": settings.batch_size,
        "versions": {**library_versions(), **compiler.versions()},
    }


def compile(settings: Settings, downloaded: Artifact, force: bool = False) -> Artifact:
    from transformers import AutoConfig, AutoTokenizer

    inputs = compile_fingerprint_inputs(settings, downloaded)
    compiler = get_compiler(settings.compiler)
    task = get_task(settings.model_task)

    def build(tmp: Path) -> dict:
        module = task.traceable(downloaded.path)
        source = str(task.tokenizer_dir(downloaded.path))
        # The artifact's tokenizer truncates where the largest bucket ends; the runner pads to the buckets.
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        tokenizer.model_max_length = settings.sequence_lengths[-1]
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        AutoConfig.from_pretrained(source, local_files_only=True).save_pretrained(str(tmp / "config"))
        buckets, seconds = [], {}
        for length in settings.sequence_lengths:
            target = tmp / f"bucket-{length}{compiler.suffix}"
            started = time.perf_counter()
            compiler.compile(module, example_inputs(tokenizer, settings.batch_size, length), target)
            seconds[str(length)] = round(time.perf_counter() - started, 3)
            buckets.append({"length": length, "file": target.name})
        shutil.copyfile(downloaded.path / MODEL_CARD, tmp / MODEL_CARD)
        spec = {
            "format": 1,
            "task": task.name,
            "backend": compiler.name,
            "requested_compiler": settings.compiler,
            "compiler_settings": compiler.settings(),
            "batch_size": settings.batch_size,
            "buckets": buckets,
            "tokenizer": "tokenizer",
            "config": "config",
            "source_version": read_json(downloaded.path / "version.json")["version_id"],
            "versions": inputs["versions"],
        }
        write_json_atomic(tmp / COMPILED_SPEC, spec)
        return {"backend": compiler.name, "bucket_compile_seconds": seconds}

    return stage(settings, "compile").ensure(fingerprint(inputs), build, inputs, force=force)


def load_compiled(path: Path):
    """The task pipeline over a compiled artifact directory, whatever its backend."""
    from transformers import AutoTokenizer

    spec = read_json(path / COMPILED_SPEC)
    compiler = get_compiler(spec["backend"])
    task = get_task(spec["task"])
    modules = {b["length"]: compiler.load(path / b["file"]) for b in spec["buckets"]}
    tokenizer = AutoTokenizer.from_pretrained(str(path / spec["tokenizer"]), local_files_only=True)
    runner = BucketedRunner(tokenizer, modules, spec["batch_size"], token_level=task.token_level)
    return task.compiled(runner, path, read_json(path / MODEL_CARD))


def load_reference(settings: Settings, downloaded: Artifact):
    return get_task(settings.model_task).reference(downloaded.path, model_card(downloaded))


# validate ---------------------------------------------------------------
def _read_cases_file(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"CASES_FILE={str(path)!r}: cannot read cases: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(c, dict) and "id" in c and "text" in c for c in data):
        raise ConfigError(f"CASES_FILE={str(path)!r}: expected a JSON list of objects with 'id' and 'text'")
    return data


def load_cases(settings: Settings, downloaded: Artifact) -> list[Case]:
    """The stored test inputs of the uncompiled version (with their expected predictions), then
    the project's cases file."""
    card_params = model_card(downloaded).get("inference_params", {})
    cases: list[Case] = []
    inputs_file = downloaded.path / TEST_FILES["inputs"]
    if inputs_file.is_file():
        params = read_json(downloaded.path / TEST_FILES["params"]) if (downloaded.path / TEST_FILES["params"]).is_file() else {}
        predictions_file = downloaded.path / TEST_FILES["predictions"]
        predictions = {p["id"]: p for p in read_json(predictions_file)} if predictions_file.is_file() else {}
        for item in read_json(inputs_file):
            expected = predictions.get(item["id"])
            cases.append(
                Case(f"registry-{item['id']}", item["text"], {**card_params, **params}, expected, "registry")
            )
    for item in _read_cases_file(Path(settings.cases_file)):
        cases.append(
            Case(item["id"], item["text"], {**card_params, **item.get("params", {})}, None,
                 str(settings.cases_file), item.get("note", ""))
        )
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise ConfigError(f"case id {case.id!r} appears twice (CASES_FILE={settings.cases_file})")
        seen.add(case.id)
    return cases


def expected_checks(settings: Settings, cases: list[Case]) -> list[str]:
    return check_ids(get_task(settings.model_task), cases)


def validate_fingerprint(settings: Settings, compiled: Artifact, cases: list[Case]) -> str:
    return fingerprint(
        {
            "compile": compiled.fingerprint,
            "cases": [case.__dict__ for case in cases],
            "atol": settings.atol,
            "rtol": settings.rtol,
            "mlcompile": __version__,
        }
    )


def tolerance(settings: Settings) -> Tolerance:
    return Tolerance(settings.atol, settings.rtol)


def publish_validation(settings: Settings, verdict: Verdict, pytest_report: Path | None) -> Artifact:
    """outputs/validate: verdict.json (keyed by the compile fingerprint), report.html."""

    def build(tmp: Path) -> dict:
        write_json_atomic(tmp / "verdict.json", verdict.as_dict())
        if pytest_report is not None and pytest_report.is_file():
            shutil.copyfile(pytest_report, tmp / "report.html")
        else:
            (tmp / "report.html").write_text(render_html(verdict, "Validation", {}))
        return verdict.summary()

    # A new validation run is new evidence: always publish it.
    return stage(settings, "validate").publish(
        verdict.validate_fingerprint, build, {"compile": verdict.compile_fingerprint}
    )


def published_verdict(settings: Settings) -> Verdict | None:
    """The verdict of an earlier validate run, if its artifact verifies."""
    target = stage(settings, "validate")
    if target.problem() is not None:
        return None
    return Verdict.from_dict(read_json(target.path / "verdict.json"))


# upload -----------------------------------------------------------------
def upload(settings: Settings, compiled: Artifact, verdict: Verdict | None) -> Artifact:
    """Register the compiled artifact, only if `verdict` shows every check of it passed."""
    if verdict is None:
        raise UploadRefused(
            "upload refused: no validation verdict for this compiled model; run the validate stage first "
            "(pytest -m validate, or make validate)"
        )
    if verdict.compile_fingerprint != compiled.fingerprint:
        raise UploadRefused(
            "upload refused: the validation verdict is for another compiled artifact (compile fingerprint "
            f"{verdict.compile_fingerprint[:12]}, current {compiled.fingerprint[:12]}); the model was recompiled "
            "since it was validated: run the validate stage again"
        )
    if not verdict.passed:
        raise UploadRefused("upload refused: validation did not pass:\n  " + "\n  ".join(verdict.problems()))

    registry = open_registry(settings)
    project, model = settings.compiled_project, settings.compiled_model
    spec = read_json(compiled.path / COMPILED_SPEC)
    lineage = {
        "uncompiled_project": settings.uncompiled_project,
        "uncompiled_version": spec["source_version"],
        "compile_fingerprint": compiled.fingerprint,
        "validate_fingerprint": verdict.validate_fingerprint,
        "compiler": spec["backend"],
        "compiler_settings": spec["compiler_settings"],
        "sequence_lengths": [b["length"] for b in spec["buckets"]],
        "batch_size": spec["batch_size"],
    }
    inputs = {"registry": registry.describe(), "project": project, "model": model, **lineage}

    def build(tmp: Path) -> dict:
        version = registry.find_version(project, model, compiled.fingerprint)
        created = False
        if version is None:
            version, created = _register(registry, settings, compiled, verdict, spec, lineage)
        if settings.compiled_stage != "none" and version.stage != settings.compiled_stage:
            version = registry.set_stage(project, version.version_id, settings.compiled_stage)
        record = {"version_id": version.version_id, "created": created, "stage": version.stage, **lineage}
        write_json_atomic(tmp / "registered.json", record)
        return record

    def still_registered(artifact: Artifact) -> bool:
        found = registry.find_version(project, model, compiled.fingerprint)
        return found is not None and found.version_id == artifact.info.get("version_id")

    return stage(settings, "upload").ensure(fingerprint(inputs), build, inputs, still_valid=still_registered)


def _register(registry, settings: Settings, compiled: Artifact, verdict: Verdict, spec: dict, lineage: dict):
    card = {
        **read_json(compiled.path / MODEL_CARD),
        "name": settings.compiled_model,
        "compiled": True,
        "lineage": lineage,
        "library_versions": spec["versions"],
        "validation": verdict.summary(),
        "validation_report": "validation/report.html",
    }
    with tempfile.TemporaryDirectory(dir=settings.outputs_dir, prefix=".upload-") as tmp:
        files = Path(tmp) / "files"
        shutil.copytree(compiled.path, files / "compiled")
        (files / "validation").mkdir()
        write_json_atomic(files / "validation" / "verdict.json", verdict.as_dict())
        (files / "validation" / "report.html").write_text(
            render_html(verdict, f"Validation of {settings.compiled_model}", lineage)
        )
        metadata_ = {k: v for k, v in lineage.items() if isinstance(v, str)}
        metadata_["validation_passed"] = "true"
        return registry.register(settings.compiled_project, settings.compiled_model, files, card, metadata_,
                                 compiled.fingerprint)

