"""OpenVINO: the model exported to ONNX (as the onnx backend exports it), converted to OpenVINO's IR
(`model.xml` and its weights `model.bin`, fp32: no fp16 weight compression) with dynamic batch and sequence
axes, and compiled for the CPU at load time.

`openvino-bf16` is the same file run with the CPU plugin's inference precision set to bf16 (matrix products
in bf16 where the CPU has AVX512-BF16 or AMX; OpenVINO keeps its precision-sensitive operations in fp32).
In one `make bench` run on all-MiniLM-L6-v2 (AMD EPYC with AVX512-BF16, 2 threads; the model alone, against
the uncompiled model batched): fp32 1.21x (onnx 1.08x), bf16 2.28x (torch bf16 autocast 1.53x)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from .. import progress
from ..errors import ConfigError
from . import FP32, Backend
from .onnx import INPUTS, export

PRECISION_HINT = {FP32: "f32", "bf16": "bf16"}  # the CPU plugin's INFERENCE_PRECISION_HINT


class OpenVinoCompiler(Backend):
    name = "openvino"
    suffix = ".xml"
    dynamic_shapes = True
    precisions = (FP32, "bf16")

    def __init__(self, threads: int | None = None, opset: int = 17, precision: str = FP32):
        self.threads = threads  # inference threads: a run-time choice, not fingerprinted
        self.opset = opset
        self.precision = precision

    @classmethod
    def from_settings(cls, settings=None, precision: str = FP32) -> "OpenVinoCompiler":
        return cls(threads=getattr(settings, "torch_threads", None), precision=precision)

    def check(self) -> None:
        try:
            metadata.version("openvino")
        except metadata.PackageNotFoundError:
            raise ConfigError("COMPILER=openvino needs the Python package 'openvino': pip install openvino") from None

    def settings(self) -> dict:
        return {"exporter": "torch.onnx.export(dynamo=False), eager attention", "opset": self.opset,
                "converter": "openvino.convert_model, weights fp32", "dynamic_axes": ["batch", "sequence"],
                "precision": self.precision, "inference_precision_hint": PRECISION_HINT[self.precision]}

    def versions(self) -> dict:
        return {"openvino": metadata.version("openvino")}

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        import openvino

        workdir.mkdir(parents=True, exist_ok=True)
        exported = workdir / "exported.onnx"
        with progress.step(f"  {self.candidate}: export"):
            export(module, example, exported, self.opset)
        with progress.step(f"  {self.candidate}: convert"):
            openvino.save_model(openvino.convert_model(exported), target, compress_to_fp16=False)

    def load(self, target: Path):
        import openvino

        config = {"INFERENCE_PRECISION_HINT": PRECISION_HINT[self.precision], "PERFORMANCE_HINT": "LATENCY"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        compiled = openvino.Core().compile_model(str(target), "CPU", config)
        request, output = compiled.create_infer_request(), compiled.output(0)

        def run(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            feed = dict(zip(INPUTS, (input_ids.numpy(), attention_mask.numpy())))
            return torch.from_numpy(np.array(request.infer(feed)[output], dtype=np.float32))  # a copy: the
            # request reuses its output buffer on the next call

        return run
