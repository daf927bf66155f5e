"""Compiler backends: turn a traceable `(input_ids, attention_mask) -> tensor` module into files,
and load them back as callables.

Static-shape backends (torchscript, neuron) compile one file per sequence-length bucket at a fixed
batch size; dynamic-shape backends (onnx) compile one file that takes any batch and length.
"""

from __future__ import annotations

import importlib
import importlib.util
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


def get_compiler(name: str, settings=None) -> Compiler:
    """The backend `name` (not `auto`: see `candidates`), configured from settings."""
    if name not in BACKENDS:
        raise ConfigError(f"COMPILER={name!r}: unknown compiler; choose auto, {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls).from_settings(settings)


def neuron_available() -> bool:
    return importlib.util.find_spec("torch_neuronx") is not None


def candidates(requested: str) -> list[str]:
    """The backends to compile for a request: `auto` is neuron on a Neuron host, else every CPU
    backend (the fastest that passes is kept, by measurement)."""
    if requested != "auto":
        return [requested]
    return ["neuron"] if neuron_available() else list(CPU_BACKENDS)
