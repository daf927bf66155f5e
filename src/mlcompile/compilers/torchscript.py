"""TorchScript: `torch.jit.trace` at fixed shapes, saved with `torch.jit.save`."""

from __future__ import annotations

from pathlib import Path

import torch


class TorchScriptCompiler:
    name = "torchscript"
    suffix = ".pt"
    dynamic_shapes = False

    @classmethod
    def from_settings(cls, settings=None) -> "TorchScriptCompiler":
        return cls()

    def check(self) -> None:
        pass

    def settings(self) -> dict:
        return {"method": "torch.jit.trace"}

    def versions(self) -> dict:
        return {"torch": torch.__version__}

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(module.eval(), example, check_trace=False)
        torch.jit.save(traced, str(target))

    def load(self, target: Path):
        return torch.jit.load(str(target), map_location="cpu").eval()
