"""int8 recipes for a fused ONNX model (ONNX Runtime's dynamic quantization: int8 weights per channel,
activations quantized per call):

- every quantizable operator (matrix products, fused attention, embedding lookups): `onnx-int8`;
- `mixed`: the model's layers ranked by measured sensitivity (each layer quantized alone, its effect on
  the output over calibration texts), and the most sensitive kept in fp32 until the quantized layers
  account for at most `QUANTIZED_SHARE` of the summed effect: `onnx-int8-mixed`.

Calibration texts are documentation prose of their own seed, apart from the validation cases, the
regression set and the bench corpus. Where the CPU lacks VNNI (or AMX), weights use 7 bits
(`reduce_range`), as ONNX Runtime advises against overflow in its non-VNNI int8 kernels."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from . import logger_at

QUANTIZED_SHARE = 0.5
CALIBRATION_TEXTS = 24
LAYER = re.compile(r"(?:layer[._/]|Attention_)(\d+)\b")


def vnni_available() -> bool:
    from ..machine import cpu_description

    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(cpu_description()["flags"]))


def calibration_inputs(tokenizer, max_length: int) -> list[dict[str, np.ndarray]]:
    """Feeds of the calibration texts, length-sorted in batches of 8, padded per batch."""
    from ..workloads import build_corpus

    texts = [doc["text"] for doc in build_corpus("sentiment", seed=7, count=CALIBRATION_TEXTS)]
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    ids.sort(key=len)
    feeds = []
    for start in range(0, len(ids), 8):
        rows = ids[start:start + 8]
        width = max(map(len, rows))
        input_ids = np.full((len(rows), width), tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)], mask[r, : len(row)] = row, 1
        feeds.append({"input_ids": input_ids, "attention_mask": mask})
    return feeds


def _quantizable(model_path: Path) -> dict[str, list[str]]:
    """The operators dynamic quantization would change, grouped: `layer N`, or `other` (embeddings, head)."""
    import onnx
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    groups: dict[str, list[str]] = {}
    for node in onnx.load(str(model_path), load_external_data=False).graph.node:
        if node.op_type in IntegerOpsRegistry:
            found = LAYER.search(node.name) or next(filter(None, (LAYER.search(o) for o in node.output)), None)
            groups.setdefault(f"layer {found.group(1)}" if found else "other", []).append(node.name)
    return groups


def quantize(source: Path, target: Path, reduce_range: bool, exclude: list[str] = ()) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the fused operators carry no type the quantizer knows; they stay float
    with logger_at(None, logging.ERROR):  # the quantizer advises pre-processing meant for image models
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=reduce_range, nodes_to_exclude=list(exclude),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _outputs(model: Path, feeds: list[dict]) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return [session.run(None, feed)[0] for feed in feeds]


def _effect(outputs: list[np.ndarray], fp32_outputs: list[np.ndarray]) -> float:
    """Mean relative change of the output rows (padding positions included alike on both sides)."""
    changes = [np.linalg.norm((o - r).reshape(len(r), -1), axis=1) / np.maximum(
        np.linalg.norm(r.reshape(len(r), -1), axis=1), 1e-12) for o, r in zip(outputs, fp32_outputs)]
    return float(np.concatenate(changes).mean())


def mixed(source: Path, target: Path, workdir: Path, feeds: list[dict], reduce_range: bool) -> dict:
    """The `mixed` recipe into `target`; returns what it measured (each layer's effect, the layers kept)."""
    groups = _quantizable(source)
    fp32_outputs = _outputs(source, feeds)
    effects = {}
    everything = [name for names in groups.values() for name in names]
    for group, names in groups.items():
        alone = workdir / f"only-{group.replace(' ', '-')}.onnx"
        quantize(source, alone, reduce_range, exclude=[n for n in everything if n not in names])
        effects[group] = _effect(_outputs(alone, feeds), fp32_outputs)
        alone.unlink()
    kept, total = [], sum(effects.values())
    for group in sorted(effects, key=effects.get, reverse=True):
        if sum(v for g, v in effects.items() if g not in kept) <= QUANTIZED_SHARE * total:
            break
        kept.append(group)
    quantize(source, target, reduce_range, exclude=[n for g in kept for n in groups[g]])
    return {"recipe": "mixed", "effect_per_group": {g: round(v, 6) for g, v in effects.items()},
            "kept_fp32": kept, "quantized_share": QUANTIZED_SHARE,
            "effect_of_result": round(_effect(_outputs(target, feeds), fp32_outputs), 6)}
