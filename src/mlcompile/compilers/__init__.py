"""Compiler backends: turn a traceable `(input_ids, attention_mask) -> tensor` module into files,
and load them back as callables.

Static-shape backends (torchscript, neuron) compile one executable per sequence-length bucket at a fixed
batch size (torchscript: methods of one file; neuron: a file each); dynamic-shape backends (onnx,
openvino) compile one file that takes any batch and length.

A candidate is a backend at a precision, with a recipe where a precision has several ways to get there:
`onnx` (fp32), `onnx-int8` (every matrix product in int8), `onnx-int8-mixed` (the layers measured most
sensitive kept in fp32), `torchscript-bf16`, ... Reduced precision is never assumed good: `COMPILER=auto` keeps a candidate only when its predictions pass the
checks under the tolerance the project declares for that precision (`BF16_ATOL`, `INT8_ATOL`, ...).
"""

from __future__ import annotations

import importlib
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Protocol

import torch

from ..errors import ConfigError

BACKENDS = {
    "torchscript": "mlcompile.compilers.torchscript:TorchScriptCompiler",
    "onnx": "mlcompile.compilers.onnx:OnnxCompiler",
    "openvino": "mlcompile.compilers.openvino:OpenVinoCompiler",
    "neuron": "mlcompile.compilers.neuron:NeuronCompiler",
}
CPU_BACKENDS = ("onnx", "openvino", "torchscript")
FP32 = "fp32"
PRECISIONS = (FP32, "bf16", "int8")


class Compiler(Protocol):
    name: str
    suffix: str
    dynamic_shapes: bool  # one file serves any (batch, length)
    precisions: tuple[str, ...]  # what it can compile to; fp32 first
    precision: str
    recipe: str | None  # how it reaches its precision, where there are several (None: the precision's first)
    candidate: str  # the backend, with its precision unless fp32, and recipe (`onnx-int8-mixed`)

    def check(self) -> None:
        """Raise ConfigError, saying how to fix it, when the backend cannot compile here."""

    def check_runs(self) -> None:
        """Raise ConfigError, saying how to fix it, when what it compiles cannot run here."""

    def settings(self) -> dict:
        """Everything that changes the compiled output (goes into the compile fingerprint)."""

    def versions(self) -> dict:
        """Library versions of the toolchain (recorded and fingerprinted)."""

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        """Compile module for the shapes of `example` (all shapes, if dynamic) into the file `target`;
        `workdir` keeps the toolchain's work files and logs."""

    def load(self, target: Path) -> Callable[..., torch.Tensor]: ...


@contextmanager
def logger_at(name: str | None, level: int):
    """The logger `name` (None: the root logger) at `level` while the block runs."""
    log = logging.getLogger(name)
    before = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(before)


@contextmanager
def quiet_tracing():
    """What tracing a transformers model says on every compile and nobody can act on: tracer notes
    on its shape checks (validation runs every compiled shape instead), and transformers' and
    sentence-transformers' notes on deprecated attributes the tracer reads while walking the module."""
    with logger_at("sentence_transformers.base.model", logging.ERROR), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
        # DeBERTa-v2 builds its relative-position constants with torch.tensor(tensor) while traced
        warnings.filterwarnings("ignore", message="To copy construct from a tensor", module=r"transformers\.")
        yield


def candidate_name(backend: str, precision: str, recipe: str | None = None) -> str:
    return backend if precision == FP32 else f"{backend}-{precision}" + (f"-{recipe}" if recipe else "")


class Backend:
    """What every backend shares: its precision and the candidate name it makes."""

    name: str
    precisions: tuple[str, ...] = (FP32,)
    recipes: dict[str, tuple[str, ...]] = {}  # precision -> its further recipes (the first has no name)
    precision: str = FP32
    recipe: str | None = None

    @property
    def candidate(self) -> str:
        return candidate_name(self.name, self.precision, self.recipe)

    def check_runs(self) -> None:
        """CPU backends run where they compile (check() covers both)."""

    def report(self, workdir: Path) -> dict:
        """What the toolchain said of a compile into `workdir` worth keeping with the artifact (e.g. the
        ONNX optimizer's fusions); nothing by default."""
        return {}


def _backend_class(backend: str):
    module, cls_name = BACKENDS[backend].split(":")
    return getattr(importlib.import_module(module), cls_name)


def backend_candidates(backend: str, precision: str) -> list[str]:
    """The candidates of a backend at a precision: its plain recipe, then the named ones."""
    cls = _backend_class(backend)
    return [candidate_name(backend, precision)] + [candidate_name(backend, precision, r) for r in cls.recipes.get(precision, ())]


def backend_precisions(backend: str) -> tuple[str, ...]:
    return _backend_class(backend).precisions


def known_candidates() -> list[str]:
    return [name for backend in BACKENDS for precision in _backend_class(backend).precisions
            for name in backend_candidates(backend, precision)]


def parse_candidate(name: str) -> tuple[str, str, str | None]:
    """`onnx-int8-mixed` -> ("onnx", "int8", "mixed"); `onnx-int8` -> ("onnx", "int8", None);
    `onnx` -> ("onnx", "fp32", None)."""
    backend, _, rest = name.partition("-")
    precision, _, recipe = rest.partition("-")
    precision = precision or FP32
    if backend not in BACKENDS or name not in known_candidates():
        raise ConfigError(f"COMPILER={name!r}: unknown compiler; choose auto, {', '.join(known_candidates())}")
    return backend, precision, recipe or None


def get_compiler(name: str, settings=None, recorded: dict | None = None) -> Compiler:
    """The candidate `name` (a backend, or backend-precision; not `auto`: see `candidates`),
    configured from settings; or, to load an artifact, from the compiler settings it `recorded`
    where those decide how it loads."""
    backend, precision, recipe = parse_candidate(name)
    cls = _backend_class(backend)
    if recorded is not None:
        precision = recorded.get("precision", precision)
        if hasattr(cls, "from_recorded"):
            return cls.from_recorded(recorded, settings)
    compiler = cls.from_settings(settings, precision)
    compiler.recipe = recipe
    return compiler
