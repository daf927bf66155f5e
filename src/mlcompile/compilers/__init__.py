"""Compiler backends: turn a traceable (input_ids, attention_mask) -> tensor module into
files for fixed shapes, and load them back as callables."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

import torch

from ..errors import ConfigError


class Compiler(Protocol):
    name: str
    suffix: str

    def settings(self) -> dict:
        """Everything that changes the compiled output (goes into the compile fingerprint)."""

    def versions(self) -> dict:
        """Library versions of the toolchain (recorded and fingerprinted)."""

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path) -> None:
        """Compile module for the shapes of `example` into the file `target`."""

    def load(self, target: Path) -> Callable[..., torch.Tensor]: ...


def resolve_compiler_name(requested: str) -> str:
    """`auto` picks the backend for this host. Only TorchScript exists so far."""
    return "torchscript" if requested == "auto" else requested


def get_compiler(name: str) -> Compiler:
    name = resolve_compiler_name(name)
    if name == "torchscript":
        from .torchscript import TorchScriptCompiler

        return TorchScriptCompiler()
    raise ConfigError(f"COMPILER={name!r}: unknown compiler; choose auto or torchscript")
