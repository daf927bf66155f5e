"""ONNX Runtime: `torch.onnx.export` with dynamic batch and sequence axes, fused by ONNX Runtime's
transformer optimizer (attention, LayerNorm, GELU), optionally int8 (dynamic quantization), run by
an `onnxruntime.InferenceSession` with its graph optimizations on.

The TorchScript-based exporter is used, on the model's eager attention: it is the graph ONNX
Runtime's optimizer fuses into its `Attention` operator (measured on all-MiniLM-L6-v2: 1.09x the uncompiled
model, where the torch.export-based exporter's graph, which it cannot fuse, ran at 0.85x)."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from .. import progress
from ..artifacts import read_json, write_json_atomic
from ..errors import ConfigError
from . import FP32, Backend, quiet_tracing

INPUTS = ("input_ids", "attention_mask")
# Portable fusions only: a higher level writes CPU-specific kernels into the saved file.
OPTIMIZER_LEVEL = 0
FUSIONS = "fusions.json"  # in the compile's work directory: what the optimizer fused, and what not
QUANTIZATION = "quantization.json"  # and what an int8 recipe measured and chose


@contextmanager
def _eager_attention(module: torch.nn.Module):
    """The transformers models inside `module` on their plain (eager) attention while exporting."""
    from transformers import PreTrainedModel

    models = [m for m in module.modules() if isinstance(m, PreTrainedModel)]
    before = [m.config._attn_implementation for m in models]
    try:
        for model in models:
            model.set_attn_implementation("eager")
        yield models
    finally:
        for model, implementation in zip(models, before):
            model.set_attn_implementation(implementation)


@contextmanager
def _quiet_exporter():
    """What the exporter says on every export and nobody can act on: that it is the legacy exporter
    (chosen above, for the fusions), a note on advanced indexing, and the tracer's notes."""
    with quiet_tracing(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="The feature will be removed. Please remove usage of this function")
        warnings.filterwarnings("ignore", message="Exporting aten::index operator of advanced indexing")
        yield



def export(module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, opset: int = 17):
    """`module` as an ONNX file with dynamic batch and sequence axes, traced on the eager attention of the
    transformers models inside it; returns the first one's config (None if it has none)."""
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "output": {0: "batch"}}
    with torch.inference_mode(False), torch.no_grad(), _eager_attention(module) as models, _quiet_exporter():
        torch.onnx.export(module.eval(), example, str(target), input_names=list(INPUTS), output_names=["output"],
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    return models[0].config if models else None


def _optimizer_model_type(config) -> str:
    """ONNX Runtime's optimizer type for the model: its own where it has one, else `bert`, whose patterns
    cover the BERT-like encoders (optimum's ORT configs map all of mlcompile's encoders to it)."""
    from onnxruntime.transformers.optimizer import MODEL_TYPES

    return config.model_type if config.model_type in MODEL_TYPES else "bert"


# Why the optimizer's attention patterns do not match an architecture's attention.
UNFUSED_ATTENTION = {
    "deberta-v2": "DeBERTa's disentangled attention adds relative-position terms to the scores",
    "mpnet": "MPNet adds a relative-position bias to the attention scores",
    "modernbert": "ModernBERT's attention uses rotary positions and a sliding window",
}


def fusion_report(statistics: dict, config) -> dict:
    """What the optimizer fused, and, where attention ran unfused (in some layers or all), why."""
    fused = {name: count for name, count in statistics.items() if count}
    attention = fused.get("Attention", 0) + fused.get("MultiHeadAttention", 0)
    layers = getattr(config, "num_hidden_layers", None) if config is not None else None
    model_type = getattr(config, "model_type", "?")
    report = {"optimizer_model_type": _optimizer_model_type(config) if config is not None else "bert",
              "fused": fused, "attention_unfused": None}
    if not attention:
        why = UNFUSED_ATTENTION.get(model_type, "ONNX Runtime's transformer optimizer has no pattern for it")
        report["attention_unfused"] = (f"attention not fused in any layer: {why} ({model_type}); it runs as "
                                       f"separate MatMul and Softmax operators")
    elif layers and attention < layers:
        report["attention_unfused"] = (f"attention fused in {attention} of {layers} layers ({model_type}"
                                       + ("; ALBERT's layers share one set of weights" if model_type == "albert" else "")
                                       + ")")
    return report


class OnnxCompiler(Backend):
    name = "onnx"
    suffix = ".onnx"
    dynamic_shapes = True
    precisions = (FP32, "int8")
    recipes = {"int8": ("mixed",)}

    def __init__(self, threads: int | None = None, opset: int = 17, precision: str = FP32, recipe: str | None = None):
        self.threads = threads  # intra-op threads of the session: a run-time choice, not fingerprinted
        self.opset = opset
        self.precision = precision
        self.recipe = recipe

    @property
    def calibrated(self) -> bool:
        """Its compile measures the model on calibration texts (needs the tokenizer)."""
        return self.recipe == "mixed"

    @classmethod
    def from_settings(cls, settings=None, precision: str = FP32) -> "OnnxCompiler":
        return cls(threads=getattr(settings, "torch_threads", None), precision=precision)

    def check(self) -> None:
        for package in ("onnx", "onnxruntime"):
            try:
                metadata.version(package)
            except metadata.PackageNotFoundError:
                raise ConfigError(f"COMPILER=onnx needs the Python package {package!r}: "
                                  f"pip install {package}") from None

    def settings(self) -> dict:
        found = {"exporter": "torch.onnx.export(dynamo=False), eager attention", "opset": self.opset,
                 "dynamic_axes": ["batch", "sequence"], "fusion": f"onnxruntime.transformers.optimizer, "
                 f"opt_level {OPTIMIZER_LEVEL}", "graph_optimization": "ORT_ENABLE_ALL", "precision": self.precision}
        if self.precision == "int8":
            from .onnx_int8 import QUANTIZED_SHARE, vnni_available

            found["quantization"] = "quantize_dynamic, QInt8 weights, per channel"
            found["reduce_range"] = not vnni_available()
            if self.recipe:
                found["recipe"] = self.recipe
                found["quantization"] += (f"; the layers most sensitive on calibration texts kept in fp32 until the "
                                          f"quantized ones make at most {QUANTIZED_SHARE:.0%} of the summed effect")
        return found

    def versions(self) -> dict:
        return {name: metadata.version(name) for name in ("onnx", "onnxruntime")}

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path,
                tokenizer=None) -> None:
        from onnxruntime.transformers.optimizer import optimize_model

        workdir.mkdir(parents=True, exist_ok=True)
        exported = workdir / "exported.onnx"
        with progress.step(f"  {self.candidate}: export"):
            config = export(module, example, exported, self.opset)
        with progress.step(f"  {self.candidate}: optimize"):
            fused = optimize_model(str(exported), model_type=_optimizer_model_type(config) if config else "bert",
                                   num_heads=getattr(config, "num_attention_heads", 0),
                                   hidden_size=getattr(config, "hidden_size", 0), opt_level=OPTIMIZER_LEVEL)
        write_json_atomic(workdir / FUSIONS, fusion_report(fused.get_fused_operator_statistics(), config))
        if self.precision == FP32:
            fused.save_model_to_file(str(target))
            return
        from . import onnx_int8

        fp32 = workdir / "fused.onnx"
        fused.save_model_to_file(str(fp32))
        reduce_range = self.settings()["reduce_range"]
        with progress.step(f"  {self.candidate}: quantize" + (" (measuring each layer's sensitivity)" if self.recipe else "")):
            if self.recipe == "mixed":
                feeds = onnx_int8.calibration_inputs(tokenizer, tokenizer.model_max_length)
                write_json_atomic(workdir / QUANTIZATION, onnx_int8.mixed(fp32, target, workdir, feeds, reduce_range))
            else:
                onnx_int8.quantize(fp32, target, reduce_range)

    def report(self, workdir: Path) -> dict:
        """The optimizer's fusions of the compiled file (its work directory's record)."""
        found = {}
        for name, key in ((FUSIONS, None), (QUANTIZATION, "quantization")):
            files = sorted(workdir.rglob(name))
            if files:
                found.update({key: read_json(files[0])} if key else read_json(files[0]))
        return found

    def load(self, target: Path):
        import onnxruntime

        from ..serving.sessions import session_options  # one definition: what serves is what was validated

        session = onnxruntime.InferenceSession(str(target), session_options(self.threads),
                                               providers=["CPUExecutionProvider"])

        def run(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
            return torch.from_numpy(np.asarray(session.run(None, feed)[0]))

        return run
