"""TorchScript: `torch.jit.trace_module` at fixed shapes, one method per shape of one module, so all
shapes share one copy of the weights in one file (`torch.jit.save`). At bf16 the module is traced
under CPU autocast: the trace records the casts, so the saved file computes its matrix products in
bf16 (fast where the CPU has AVX512-BF16 or AMX) and returns fp32."""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from pathlib import Path

import torch

from . import FP32, Backend, quiet_tracing


def _shape(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return self.module(input_ids, attention_mask).float()


def _shapes_module(module: torch.nn.Module, names) -> torch.nn.Module:
    """`module` with one method per compiled shape, each returning fp32."""
    shapes = type("CompiledShapes", (torch.nn.Module,), dict.fromkeys(names, _shape))()
    shapes.module = module.eval()
    return shapes


class TorchScriptCompiler(Backend):
    name = "torchscript"
    suffix = ".pt"
    dynamic_shapes = False
    shares_weights = True  # every shape a method of one module in one file
    precisions = (FP32, "bf16")

    def __init__(self, precision: str = FP32):
        self.precision = precision

    @classmethod
    def from_settings(cls, settings=None, precision: str = FP32) -> "TorchScriptCompiler":
        return cls(precision)

    def check(self) -> None:
        pass

    def settings(self) -> dict:
        found = {"method": "torch.jit.trace_module, a method per shape", "precision": self.precision}
        if self.precision == "bf16":
            found["autocast"] = "cpu, bfloat16"
        return found

    def versions(self) -> dict:
        return {"torch": torch.__version__}

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        self.compile_shapes(module, {"forward": example}, target, workdir)

    def compile_shapes(self, module: torch.nn.Module, examples: dict[str, tuple[torch.Tensor, ...]], target: Path,
                       workdir: Path) -> None:
        """One file whose method `name` runs the shape of `examples[name]`."""
        # no cast cache: a weight cast while tracing one shape would be a stale constant in the next
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False) if self.precision == "bf16"
                    else nullcontext())
        with torch.inference_mode(False), torch.no_grad(), autocast, quiet_tracing(), warnings.catch_warnings():
            # torch 2.13 calls jit.trace deprecated; it is still the format torch.jit.load serves
            warnings.filterwarnings("ignore", message=r"`torch.jit.trace.*` is deprecated")
            traced = torch.jit.trace_module(_shapes_module(module, examples), examples, check_trace=False)
        torch.jit.save(traced, str(target))

    def load(self, target: Path):
        return torch.jit.load(str(target), map_location="cpu").eval()
