"""The compiled artifact's files: `compiled.json` (a typed `CompiledSpec`), one file per compiled
shape written by a backend, and loading it all back as the task's pipeline, whatever the backend."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, ValidationError

from .artifacts import read_json, write_json_atomic
from .batching import BucketedRunner, example_inputs
from .compilers import candidate_name, get_compiler
from .coverage import Executable
from .errors import ArtifactError
from .registry import MODEL_CARD
from .serving.artifact import SPEC_FILE
from .tasks import get_task, load_tokenizer

FORMAT = 3


class Bucket(BaseModel):
    """One compiled sequence length: its file at BATCH_SIZE (for dynamic shapes: the one model)
    and, for static backends, its file at batch 1. Where the shapes share one file (TorchScript),
    `method` and `single_method` name each shape's method in it."""

    length: int
    file: str
    single_file: str | None = None
    method: str | None = None
    single_method: str | None = None
    compile_seconds: float = 0.0


class Measurement(BaseModel):
    """COMPILER=auto's timing of one candidate's task pipeline on the validation cases, and whether
    it passed the checks under the tolerance of its precision."""

    seconds: float
    passed: bool
    compile_seconds: float = 0.0  # the candidate's compile (export, optimize, quantize)
    precision: str = "fp32"
    atol: float | None = None
    rtol: float | None = None
    failed_checks: list[str] = []
    cut_differently: list[str] = []  # cases the compiled lengths cut where the uncompiled pipeline did not


class Selection(BaseModel):
    kept: str = Field(validation_alias=AliasChoices("kept", "picked"))  # the candidate auto keeps
    candidates: dict[str, Measurement]
    workload: str
    neuron_skipped: str | None = None  # why COMPILER=auto did not compile for Neuron here
    uncompiled_seconds: float | None = None  # the uncompiled pipeline on the same workload: the ratios' baseline

    def vs_uncompiled(self, name: str) -> float | None:
        """How many times faster than the uncompiled pipeline candidate `name` ran."""
        seconds = self.candidates[name].seconds
        return round(self.uncompiled_seconds / seconds, 2) if self.uncompiled_seconds and seconds else None


class CompiledSpec(BaseModel):
    """What `compiled.json` says: enough to load and run the artifact, and where it came from."""

    format: int = FORMAT
    task: str
    backend: str
    precision: str = "fp32"
    requested_compiler: str
    compiler_settings: dict
    dynamic_shapes: bool
    batch_size: int
    batch_tokens: int | None = None  # dynamic shapes: tokens per batch (batching.BucketedRunner)
    buckets: list[Bucket]
    tokenizer: str = "tokenizer"
    config: str = "config"
    uncompiled_version: str = Field(validation_alias=AliasChoices("uncompiled_version", "source_version"))
    source: dict = {}  # where the uncompiled version is: source_uri, logged_model_id (MLflow 3)
    compiler_report: dict = {}  # what the toolchain said worth keeping, e.g. the ONNX optimizer's fusions
    versions: dict
    selection: Selection | None = None

    @classmethod
    def read(cls, root: Path) -> "CompiledSpec":
        try:
            return cls.model_validate(read_json(Path(root) / SPEC_FILE))
        except (OSError, ValueError, ValidationError) as exc:
            raise ArtifactError(f"{Path(root) / SPEC_FILE} cannot be read as a compiled artifact's spec "
                                f"(compile again): {exc}") from exc

    def write(self, root: Path) -> None:
        write_json_atomic(Path(root) / SPEC_FILE, self.model_dump())

    @property
    def lengths(self) -> list[int]:
        return [bucket.length for bucket in self.buckets]

    @property
    def candidate(self) -> str:
        """The backend with its precision unless fp32, and its recipe: `onnx`, `onnx-int8-mixed`."""
        return candidate_name(self.backend, self.precision, self.compiler_settings.get("recipe"))

    def describe_backend(self) -> str:
        """`onnx (auto, fastest that matches the model: onnx-int8 0.21 s (3.1x) [compiled in 9.2 s] (did not
        match the model: 2 checks failed, e.g. ...), onnx 0.41 s (1.6x) [compiled in 2.7 s], ...; ...)`."""
        unfused = self.compiler_report.get("attention_unfused")
        note = f"; {unfused}" if unfused else ""
        if not self.selection:
            return self.candidate + note
        def timing(name: str, m: Measurement) -> str:
            ratio = self.selection.vs_uncompiled(name)
            return (f"{name} {m.seconds} s" + (f" ({ratio}x)" if ratio else "") + f" [compiled in {m.compile_seconds} s]"
                    + ("" if m.passed else f" (did not match the model: {len(m.failed_checks)} checks failed, "
                                           f"e.g. {m.failed_checks[0] if m.failed_checks else '?'})"))

        timings = ", ".join(timing(name, m) for name, m in
                            sorted(self.selection.candidates.items(), key=lambda item: item[1].seconds))
        skipped = f"; neuron not used: {self.selection.neuron_skipped}" if self.selection.neuron_skipped else ""
        baseline = (f"; x: to the uncompiled pipeline's {self.selection.uncompiled_seconds} s"
                    if self.selection.uncompiled_seconds else "")
        return (f"{self.candidate} (auto, fastest that matches the model: {timings}; {self.selection.workload}{baseline}"
                f"{skipped}){note}")

    def executables(self, files: list[str]) -> list[Executable]:
        """Every executable the spec loads (each file at its shape), and any compiled file among
        `files` it does not load."""
        found = bucket_executables(self.buckets, self.dynamic_shapes, self.batch_size)
        loaded = {e.file.split(":")[0] for e in found}
        suffix = get_compiler(self.backend).suffix
        stray = sorted(f for f in files if "/" not in f and f.endswith(suffix) and f not in loaded)
        return found + [Executable(f, None, None) for f in stray]


def bucket_executables(buckets: list[Bucket], dynamic: bool, batch_size: int) -> list[Executable]:
    """Every executable the buckets load, each file (or method) at its shape."""
    found = []
    for bucket in buckets:
        if dynamic:
            found.append(Executable(bucket.file, bucket.length, None))
            continue
        found.append(Executable(executable_name(bucket.file, bucket.method), bucket.length, batch_size))
        if bucket.single_file:
            found.append(Executable(executable_name(bucket.single_file, bucket.single_method), bucket.length, 1))
    return found


def executable_name(file: str, method: str | None) -> str:
    """`bucket-16.pt`, or `model.pt:bucket_16` for a shape's method in a shared file."""
    return f"{file}:{method}" if method else file


def compile_shared(compiler, module, tokenizer, lengths: list[int], batch_size: int, dest: Path,
                   workdir: Path) -> list[Bucket]:
    """Every (length, batch) shape a method of one file: one copy of the weights."""
    name = f"model{compiler.suffix}"
    batches = sorted({batch_size, 1}, reverse=True)
    method = {(length, batch): f"bucket_{length}{'' if batch > 1 else '_batch1'}" for length in lengths
              for batch in batches}
    started = time.perf_counter()
    compiler.compile_shapes(module, {m: example_inputs(tokenizer, batch, length) for (length, batch), m in
                                     method.items()}, dest / name, workdir / "model")
    seconds = round((time.perf_counter() - started) / len(lengths), 3)  # one trace for all: shared out
    single = batch_size > 1
    return [Bucket(length=length, file=name, method=method[length, batch_size],
                   single_file=name if single else None, single_method=method[length, 1] if single else None,
                   compile_seconds=seconds) for length in lengths]


def compile_shapes(compiler, module, tokenizer, lengths: list[int], batch_size: int, dest: Path,
                   workdir: Path) -> list[Bucket]:
    """Compile `module` into dest: one dynamic-shape file, or per length a shape at `batch_size`
    and one at batch 1 (a lone text then computes no filler rows), each in a file of its own or,
    where the backend shares weights across shapes, as methods of one file."""
    dest.mkdir(parents=True, exist_ok=True)
    if getattr(compiler, "shares_weights", False):
        return compile_shared(compiler, module, tokenizer, lengths, batch_size, dest, workdir)
    if compiler.dynamic_shapes:
        shapes = [(lengths[-1], batch_size, f"model{compiler.suffix}")]
    else:
        shapes = [(length, batch, f"bucket-{length}{'' if batch > 1 else '-batch1'}{compiler.suffix}")
                  for length in lengths for batch in sorted({batch_size, 1}, reverse=True)]
    buckets: dict[int, dict] = {}
    for length, batch, name in shapes:
        example_length = min(length, 16) if compiler.dynamic_shapes else length
        started = time.perf_counter()
        calibration = {"tokenizer": tokenizer} if getattr(compiler, "calibrated", False) else {}
        compiler.compile(module, example_inputs(tokenizer, batch, example_length), dest / name,
                         workdir / Path(name).stem, **calibration)
        bucket = buckets.setdefault(length, {"length": length, "compile_seconds": 0.0})
        bucket["file" if batch == batch_size else "single_file"] = name
        bucket["compile_seconds"] = round(bucket["compile_seconds"] + time.perf_counter() - started, 3)
    return [Bucket(**bucket) for bucket in buckets.values()]


def runner(compiler, buckets: list[Bucket], root: Path, tokenizer, batch_size: int, token_level: bool,
           batch_tokens: int | None = None) -> BucketedRunner:
    """The compiled files under root, loaded (each file once) and routed by length (and batch)."""
    files: dict[str, object] = {}

    def executable(file: str, method: str | None):
        if file not in files:
            files[file] = compiler.load(root / file)
        return getattr(files[file], method) if method else files[file]

    modules = {b.length: executable(b.file, b.method) for b in buckets}
    single = {b.length: executable(b.single_file, b.single_method) for b in buckets if b.single_file}
    return BucketedRunner(tokenizer, modules, batch_size, token_level=token_level,
                          dynamic=compiler.dynamic_shapes, single=single, batch_tokens=batch_tokens,
                          backend=compiler.name)


def load_runner(path: Path, settings=None, spec: CompiledSpec | None = None) -> BucketedRunner:
    """The compiled model of an artifact directory on its own (no task pipeline around it)."""
    spec = spec or CompiledSpec.read(path)
    tokenizer = load_tokenizer(path / spec.tokenizer)
    compiler = get_compiler(spec.backend, settings, recorded=spec.compiler_settings)
    return runner(compiler, spec.buckets, path, tokenizer, spec.batch_size, get_task(spec.task).token_level,
                  spec.batch_tokens)


def load(path: Path, settings=None):
    """The task pipeline over a compiled artifact directory, whatever its backend."""
    spec = CompiledSpec.read(path)
    compiled = load_runner(path, settings, spec)
    task = get_task(spec.task)
    return task.compiled(compiled, path, read_json(path / MODEL_CARD))
