"""Compiler backends: turn a traceable `(input_ids, attention_mask) -> tensor` module into files,
and load them back as callables.

Static-shape backends (torchscript, neuron) compile one file per sequence-length bucket at a fixed
batch size; dynamic-shape backends (onnx) compile one file that takes any batch and length.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Protocol

import torch

from ..errors import ConfigError

BACKENDS = {
    "torchscript": "mlcompile.compilers.torchscript:TorchScriptCompiler",
    "onnx": "mlcompile.compilers.onnx:OnnxCompiler",
    "neuron": "mlcompile.compilers.neuron:NeuronCompiler",
}
CPU_BACKENDS = ("onnx", "torchscript")


class Compiler(Protocol):
    name: str
    suffix: str
    dynamic_shapes: bool  # one file serves any (batch, length)

    def check(self) -> None:
        """Raise ConfigError, saying how to fix it, when the backend cannot run here."""

    def settings(self) -> dict:
        """Everything that changes the compiled output (goes into the compile fingerprint)."""

    def versions(self) -> dict:
        """Library versions of the toolchain (recorded and fingerprinted)."""

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        """Compile module for the shapes of `example` (all shapes, if dynamic) into the file `target`;
        `workdir` keeps the toolchain's work files and logs."""

    def load(self, target: Path) -> Callable[..., torch.Tensor]: ...


def get_compiler(name: str, settings=None, recorded: dict | None = None) -> Compiler:
    """The backend `name` (not `auto`: see `candidates`), configured from settings; or, to load an
    artifact, from the compiler settings it `recorded` where those decide how it loads."""
    if name not in BACKENDS:
        raise ConfigError(f"COMPILER={name!r}: unknown compiler; choose auto, {', '.join(BACKENDS)}")
    module, cls_name = BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    if recorded is not None and hasattr(cls, "from_recorded"):
        return cls.from_recorded(recorded, settings)
    return cls.from_settings(settings)


def candidates(requested: str) -> tuple[list[str], str | None]:
    """The backends to compile for a request, and for `auto` on CPU why neuron is not among them:
    `auto` is neuron where it can run, else every CPU backend (the fastest that passes is kept)."""
    if requested != "auto":
        return [requested], None
    from .neuron import status

    neuron = status()
    return (["neuron"], None) if neuron.usable else (list(CPU_BACKENDS), neuron.reason)
