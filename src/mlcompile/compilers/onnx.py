"""ONNX Runtime: `torch.onnx.export` (the torch.export-based exporter) with dynamic batch and
sequence axes, run by an `onnxruntime.InferenceSession` with its graph optimizations on."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError

INPUTS = ("input_ids", "attention_mask")


@contextmanager
def _quiet_exporter():
    """The exporter warns that both axes share a name and that torchvision is absent: true and
    harmless here, so not shown on every compile."""
    log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will not be used, since it shares the same shape constraints")
            yield
    finally:
        log.setLevel(level)


class OnnxCompiler:
    name = "onnx"
    suffix = ".onnx"
    dynamic_shapes = True

    def __init__(self, threads: int | None = None, opset: int = 18):
        self.threads = threads  # intra-op threads of the session: a run-time choice, not fingerprinted
        self.opset = opset

    @classmethod
    def from_settings(cls, settings=None) -> "OnnxCompiler":
        return cls(threads=getattr(settings, "torch_threads", None))

    def check(self) -> None:
        for package in ("onnx", "onnxruntime", "onnxscript"):
            try:
                metadata.version(package)
            except metadata.PackageNotFoundError:
                raise ConfigError(f"COMPILER=onnx needs the Python package {package!r}: "
                                  f"pip install {package}") from None

    def settings(self) -> dict:
        return {"exporter": "torch.onnx.export(dynamo=True)", "opset": self.opset,
                "dynamic_axes": ["batch", "sequence"], "graph_optimization": "ORT_ENABLE_ALL"}

    def versions(self) -> dict:
        return {name: metadata.version(name) for name in ("onnx", "onnxruntime", "onnxscript")}

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        # min 2: torch 2.9's exporter guards the batch away from 1 (a broadcast it will not
        # specialise); batch 1 still runs, and validation's coverage runs it (a single row).
        batch = torch.export.Dim("batch", min=2, max=4096)
        sequence = torch.export.Dim("sequence", min=2, max=example[0].shape[1])
        axes = {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}
        with torch.inference_mode(False), torch.no_grad(), _quiet_exporter():
            torch.onnx.export(
                module.eval(), example, str(target), input_names=list(INPUTS), output_names=["output"],
                dynamic_shapes=axes, opset_version=self.opset, dynamo=True, external_data=False, verbose=False,
                artifacts_dir=str(workdir),
            )

    def load(self, target: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
        session = onnxruntime.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])

        def run(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
            return torch.from_numpy(np.asarray(session.run(None, feed)[0]))

        return run
