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
from .compilers import candidates, get_compiler
from .coverage import Executable, executables
from .errors import ArtifactError, ConfigError, RegistryError, UploadRefused
from .gate import refusal
from .registry import MODEL_CARD, open_registry
from .report import render_html, truncation_note
from .settings import Settings
from .shapes import check_lengths
from .tasks import COVERAGE_CHECK, Case, Tolerance, get_task
from .validation import Validation
from .verdict import Rules, Verdict

log = logging.getLogger(__name__)
COMPILED_SPEC = "compiled.json"
MEASURED_PASSES = 2  # COMPILER=auto times each backend this often (best kept)
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
def compilers_for(settings: Settings) -> list:
    """The configured backends, checked usable here (a clear error before anything is built)."""
    names = candidates(settings.compiler)
    found = []
    for name in names:
        compiler = get_compiler(name, settings)
        try:
            compiler.check()
        except ConfigError:
            if settings.compiler != "auto" or name == "neuron":
                raise
            log.warning("COMPILER=auto: skipping %s, which cannot run here", name)
            continue
        found.append(compiler)
    if not found:
        raise ConfigError("COMPILER=auto: no usable backend here; install onnxruntime or use COMPILER=torchscript")
    return found


def compile_fingerprint_inputs(settings: Settings, downloaded: Artifact, compilers: list) -> dict:
    return {
        "download": downloaded.fingerprint,
        "task": settings.model_task,
        "compiler": settings.compiler,
        "backends": {c.name: {"settings": c.settings(), "versions": c.versions()} for c in compilers},
        "sequence_lengths": settings.sequence_lengths,
        "batch_size": settings.batch_size,
        "versions": library_versions(),
    }


def _compile_backend(compiler, module, tokenizer, settings: Settings, dest: Path, workdir: Path) -> list[dict]:
    """Compile one backend's files into dest: a dynamic-shape file, or per length bucket a file at
    BATCH_SIZE and one at batch 1 (a lone text then computes no filler rows)."""
    dest.mkdir(parents=True, exist_ok=True)
    if compiler.dynamic_shapes:
        shapes = [(settings.sequence_lengths[-1], settings.batch_size, f"model{compiler.suffix}")]
    else:
        shapes = [(length, batch, f"bucket-{length}{'' if batch > 1 else '-batch1'}{compiler.suffix}")
                  for length in settings.sequence_lengths for batch in sorted({settings.batch_size, 1}, reverse=True)]
    buckets: dict[int, dict] = {}
    for length, batch, name in shapes:
        example_length = min(length, 16) if compiler.dynamic_shapes else length
        started = time.perf_counter()
        compiler.compile(module, example_inputs(tokenizer, batch, example_length), dest / name,
                         workdir / Path(name).stem)
        seconds = round(time.perf_counter() - started, 3)
        bucket = buckets.setdefault(length, {"length": length, "compile_seconds": 0.0})
        bucket["file" if batch == settings.batch_size else "single_file"] = name
        bucket["compile_seconds"] = round(bucket["compile_seconds"] + seconds, 3)
    return list(buckets.values())


def load_modules(compiler, buckets: list[dict], root: Path) -> tuple[dict, dict]:
    """The compiled modules per length, at BATCH_SIZE and (where compiled) at batch 1."""
    modules = {b["length"]: compiler.load(root / b["file"]) for b in buckets}
    single = {b["length"]: compiler.load(root / b["single_file"]) for b in buckets if b.get("single_file")}
    return modules, single


def _measure(pipeline, cases: list[Case], reference: list[dict], task, tol: Tolerance) -> dict:
    """Seconds the task pipeline takes over the validation cases (best of MEASURED_PASSES, after a
    warm-up pass), and whether its predictions pass the task's checks against the uncompiled ones."""
    predictions = [pipeline.predict(case.text, case.params) for case in cases]  # warm-up
    seconds = float("inf")
    for _ in range(MEASURED_PASSES):
        started = time.perf_counter()
        for case in cases:
            pipeline.predict(case.text, case.params)
        seconds = min(seconds, time.perf_counter() - started)
    failed = [f"{case.id}::{check}" for case, observed, expected in zip(cases, predictions, reference)
              for check, result in task.compare(case.id, observed, expected, tol).items() if not result.passed]
    cut = [note for case, observed, expected in zip(cases, predictions, reference)
           if observed["text_info"]["kept"] != expected["text_info"]["kept"]
           and (note := truncation_note(case.id, observed["text_info"], expected["text_info"]))]
    return {"seconds": round(seconds, 4), "passed": not failed, "failed_checks": failed, "cut_differently": cut}


def _select_fastest(compilers: list, built: dict, tmp: Path, tokenizer, settings: Settings,
                    downloaded: Artifact) -> dict:
    """Time each built backend's task pipeline on the validation cases; pick the fastest that passes."""
    task = get_task(settings.model_task)
    cases = load_cases(settings, downloaded)
    card = model_card(downloaded)
    reference_pipeline = task.reference(downloaded.path, card)
    reference = [reference_pipeline.predict(case.text, case.params) for case in cases]
    measured = {}
    for compiler in compilers:
        modules, single = load_modules(compiler, built[compiler.name], tmp / "backends" / compiler.name)
        runner = BucketedRunner(tokenizer, modules, settings.batch_size, task.token_level,
                                dynamic=compiler.dynamic_shapes, single=single)
        measured[compiler.name] = _measure(task.compiled(runner, tmp, card), cases, reference, task,
                                           tolerance(settings))
    passing = [name for name, m in measured.items() if m["passed"]]
    if not passing:
        raise ArtifactError(_no_match(measured))
    return {"picked": min(passing, key=lambda name: measured[name]["seconds"]), "candidates": measured,
            "workload": f"the task pipeline on {len(cases)} validation cases, best of {MEASURED_PASSES} passes "
                        "after a warm-up"}


def _no_match(measured: dict) -> str:
    lines = [f"{name}: {len(m['failed_checks'])} checks failed: {', '.join(m['failed_checks'][:6])}"
             + (" ..." if len(m["failed_checks"]) > 6 else "") for name, m in measured.items()]
    cut = next((m["cut_differently"] for m in measured.values() if m["cut_differently"]), [])
    if cut:
        lines.append(f"{len(cut)} cases were cut by the compiled lengths where the uncompiled pipeline was not, "
                     f"which alone makes outputs differ; e.g. {cut[0]}")
    return "COMPILER=auto: no backend matches the uncompiled model on the validation cases:\n  " + "\n  ".join(lines)


def compile(settings: Settings, downloaded: Artifact, force: bool = False) -> Artifact:
    from transformers import AutoConfig, AutoTokenizer

    compilers = compilers_for(settings)
    task = get_task(settings.model_task)
    check_lengths(settings, task, downloaded.path)  # before compiling anything
    inputs = compile_fingerprint_inputs(settings, downloaded, compilers)

    def build(tmp: Path) -> dict:
        module = task.traceable(downloaded.path)
        source = str(task.tokenizer_dir(downloaded.path))
        # The artifact's tokenizer truncates where the largest bucket ends; the runner pads to the buckets.
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        tokenizer.model_max_length = settings.sequence_lengths[-1]
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        AutoConfig.from_pretrained(source, local_files_only=True).save_pretrained(str(tmp / "config"))
        built = {c.name: _compile_backend(c, module, tokenizer, settings, tmp / "backends" / c.name,
                                          tmp / "workdir" / c.name) for c in compilers}
        # auto on CPU: keep the fastest backend whose predictions pass the task's checks
        selection = None
        if len(compilers) > 1:
            selection = _select_fastest(compilers, built, tmp, tokenizer, settings, downloaded)
        compiler = next(c for c in compilers if c.name == (selection["picked"] if selection else compilers[0].name))
        for path in (tmp / "backends" / compiler.name).iterdir():
            path.rename(tmp / path.name)
        shutil.rmtree(tmp / "backends")
        shutil.copyfile(downloaded.path / MODEL_CARD, tmp / MODEL_CARD)
        spec = {
            "format": 2,
            "task": task.name,
            "backend": compiler.name,
            "requested_compiler": settings.compiler,
            "compiler_settings": compiler.settings(),
            "dynamic_shapes": compiler.dynamic_shapes,
            "batch_size": settings.batch_size,
            "buckets": built[compiler.name],
            "tokenizer": "tokenizer",
            "config": "config",
            "source_version": read_json(downloaded.path / "version.json")["version_id"],
            "versions": {**inputs["versions"], **inputs["backends"][compiler.name]["versions"]},
            "selection": selection,
        }
        write_json_atomic(tmp / COMPILED_SPEC, spec)
        return {"backend": compiler.name, "buckets": spec["buckets"], "selection": selection}

    return stage(settings, "compile").ensure(fingerprint(inputs), build, inputs, force=force)


def describe_backend(info: dict) -> str:
    """`onnx (auto: onnx 0.41 s, torchscript 0.63 s on 15 validation case texts, ...)`, from the
    compile manifest's info."""
    selection = info.get("selection")
    if not selection:
        return info["backend"]
    timings = ", ".join(
        f"{name} {m['seconds']} s" + ("" if m["passed"] else " (did not match the model)")
        for name, m in sorted(selection["candidates"].items(), key=lambda item: item[1]["seconds"])
    )
    return f"{info['backend']} (auto, fastest that matches the model: {timings}; {selection['workload']})"


def load_compiled(path: Path, settings: Settings | None = None):
    """The task pipeline over a compiled artifact directory, whatever its backend."""
    from transformers import AutoTokenizer

    spec = read_json(path / COMPILED_SPEC)
    compiler = get_compiler(spec["backend"], settings)
    task = get_task(spec["task"])
    modules, single = load_modules(compiler, spec["buckets"], path)
    tokenizer = AutoTokenizer.from_pretrained(str(path / spec["tokenizer"]), local_files_only=True)
    runner = BucketedRunner(tokenizer, modules, spec["batch_size"], token_level=task.token_level,
                            dynamic=spec.get("dynamic_shapes", False), single=single)
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
        params_file = downloaded.path / TEST_FILES["params"]
        params = read_json(params_file) if params_file.is_file() else {}
        predictions_file = downloaded.path / TEST_FILES["predictions"]
        predictions = {p["id"]: p for p in read_json(predictions_file)} if predictions_file.is_file() else {}
        for item in read_json(inputs_file):
            expected = predictions.get(item["id"])
            cases.append(
                Case(f"registry-{item['id']}", item["text"], {**card_params, **params}, expected, "registry")
            )
    for item in _read_cases_file(Path(settings.cases_file)):
        if item["id"] == COVERAGE_CHECK.split("::")[0]:
            raise ConfigError(f"CASES_FILE={str(settings.cases_file)!r}: case id {item['id']!r} is reserved for "
                              "the compiled artifact's coverage check; rename the case")
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


def tolerance(settings: Settings) -> Tolerance:
    return Tolerance(settings.atol, settings.rtol)


def validation_rules(settings: Settings, cases: list[Case]) -> Rules:
    """The cases, checks and tolerances the current settings call for."""
    return Rules.build(get_task(settings.model_task), cases, tolerance(settings))


def compiled_executables(compiled: Artifact) -> list[Executable]:
    """Every executable of the compiled artifact (each file at its compiled shape)."""
    spec = read_json(compiled.path / COMPILED_SPEC)
    return executables(spec, list(compiled.manifest["files"]), get_compiler(spec["backend"]).suffix)


def validation(settings: Settings, downloaded: Artifact, compiled: Artifact, cases: list[Case], rules: Rules,
               recorded: Verdict | None = None, compiled_loader=None, reference_loader=None) -> Validation:
    """The validation of `compiled` against the downloaded model under `rules`; the pipelines load
    on first use (callers that hold them already pass their own loaders)."""
    task = get_task(settings.model_task)
    return Validation(
        task=task, cases=cases, rules=rules, compiled_content_id=compiled.content_id,
        load_compiled=compiled_loader or (lambda: load_compiled(compiled.path, settings)),
        load_reference=reference_loader or (lambda: load_reference(settings, downloaded)),
        load_eager=lambda: task.traceable(downloaded.path),
        executables=lambda: compiled_executables(compiled),
        recorded=recorded,
    )


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
        verdict.validate_fingerprint, build, {"compiled": verdict.compiled_content_id, "rules": verdict.rules.as_dict()}
    )


def published_verdict(settings: Settings) -> Verdict | None:
    """The verdict of an earlier validate run, if its artifact verifies and this mlcompile reads it."""
    target = stage(settings, "validate")
    if target.problem() is not None:
        return None
    try:
        return Verdict.from_dict(read_json(target.path / "verdict.json"))
    except (KeyError, TypeError, ValueError):
        log.warning("%s was written by an older mlcompile; validate again", target.path / "verdict.json")
        return None


# upload -----------------------------------------------------------------
def upload(settings: Settings, compiled: Artifact, verdict: Verdict | None, rules: Rules) -> Artifact:
    """Register the compiled artifact, only if `verdict` shows every check of it passed under
    `rules` (what the current settings call for)."""
    refused = refusal(verdict, compiled.content_id, rules)
    if refused:
        raise UploadRefused(refused)

    registry = open_registry(settings)
    project, model = settings.compiled_project, settings.compiled_model
    spec = read_json(compiled.path / COMPILED_SPEC)
    lineage = {
        "uncompiled_project": settings.uncompiled_project,
        "uncompiled_version": spec["source_version"],
        "compiled_content_id": compiled.content_id,
        "validate_fingerprint": verdict.validate_fingerprint,
        "compiler": spec["backend"],
        "compiler_settings": spec["compiler_settings"],
        "compiler_selection": spec.get("selection"),
        "sequence_lengths": [b["length"] for b in spec["buckets"]],
        "batch_size": spec["batch_size"],
    }
    inputs = {"registry": registry.describe(), "project": project, "model": model, **lineage}

    def build(tmp: Path) -> dict:
        version = registry.find_version(project, model, compiled.content_id)
        created = False
        if version is None:
            version, created = _register(registry, settings, compiled, verdict, spec, lineage)
        if settings.compiled_stage != "none" and version.stage != settings.compiled_stage:
            version = registry.set_stage(project, version.version_id, settings.compiled_stage)
        record = {"version_id": version.version_id, "created": created, "stage": version.stage, **lineage}
        write_json_atomic(tmp / "registered.json", record)
        return record

    def still_registered(artifact: Artifact) -> bool:
        found = registry.find_version(project, model, compiled.content_id)
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
                                 compiled.content_id)

