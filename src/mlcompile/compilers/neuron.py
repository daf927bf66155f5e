"""AWS Neuron (Inferentia2 / Trainium): `torch_neuronx.trace` at fixed shapes, saved and loaded
with `torch.jit.save/load`.

neuronx-cc casts fp32 matrix multiplications to bf16 unless told otherwise, so the default compiler
arguments are `--auto-cast none`: the validation compares against the fp32 CPU model. With dynamic
batching on, `torch_neuronx.dynamic_batch` lets the compiled model take any batch size (it splits
and pads along the batch dimension on the device side).
"""

from __future__ import annotations

import importlib
import shlex
from importlib import metadata
from pathlib import Path

import torch

from ..errors import ConfigError

DEFAULT_ARGS = "--auto-cast none"
MISSING = (
    "COMPILER=neuron needs torch-neuronx, which is not on PyPI and runs only on AWS Inferentia2 (inf2) and "
    "Trainium (trn1, trn2) hosts with the Neuron driver. Install it from AWS's Neuron package index: "
    "pip install --extra-index-url https://pip.repos.neuron.amazonaws.com torch-neuronx neuronx-cc "
    "(see https://awsdocs-neuron.readthedocs-hosted.com). On other hosts use COMPILER=auto, onnx or torchscript."
)


def _neuronx():
    try:
        return importlib.import_module("torch_neuronx")
    except ImportError as exc:
        raise ConfigError(f"{MISSING} (import failed: {exc})") from None


class NeuronCompiler:
    name = "neuron"
    suffix = ".pt"
    dynamic_shapes = False

    def __init__(self, compiler_args: str = DEFAULT_ARGS, dynamic_batch: bool = True, inline_weights: bool = True):
        self.compiler_args = shlex.split(compiler_args)
        self.dynamic_batch = dynamic_batch
        self.inline_weights = inline_weights

    @classmethod
    def from_settings(cls, settings=None) -> "NeuronCompiler":
        if settings is None:
            return cls()
        return cls(settings.neuron_compiler_args, settings.neuron_dynamic_batch, settings.neuron_inline_weights)

    def check(self) -> None:
        _neuronx()

    def settings(self) -> dict:
        return {"method": "torch_neuronx.trace", "compiler_args": self.compiler_args,
                "dynamic_batch": self.dynamic_batch, "inline_weights_to_neff": self.inline_weights}

    def versions(self) -> dict:
        versions = {"torch": torch.__version__, "torch_neuronx": getattr(_neuronx(), "__version__", None)}
        try:
            versions["neuronx-cc"] = metadata.version("neuronx-cc")
        except metadata.PackageNotFoundError:
            versions["neuronx-cc"] = None
        return versions

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        neuronx = _neuronx()
        workdir.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False), torch.no_grad():
            traced = neuronx.trace(
                module.eval(), example, compiler_workdir=str(workdir), compiler_args=list(self.compiler_args),
                inline_weights_to_neff=self.inline_weights,
            )
        if self.dynamic_batch:
            traced = neuronx.dynamic_batch(traced)
        torch.jit.save(traced, str(target))

    def load(self, target: Path):
        _neuronx()  # registers the Neuron operators torch.jit.load needs
        return torch.jit.load(str(target)).eval()
