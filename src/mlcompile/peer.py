"""The bench's peer: what a user could write in a short script without mlcompile, done well (legacy
`torch.onnx.export` on the model's eager attention, ONNX Runtime's transformer optimizer, texts
length-sorted in batches of 8 with dynamic padding, the session's default options). mlcompile's
compiled pipeline has to beat it; it shares none of mlcompile's compile or batching code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

BATCH = 8
FILE = "peer.onnx"


def export(module: torch.nn.Module, config, dest: Path) -> Path:
    """The model as a user exports it: eager attention, dynamic axes, then the transformer optimizer."""
    from onnxruntime.transformers.optimizer import optimize_model

    from .compilers.onnx import _quiet_exporter

    dest.mkdir(parents=True, exist_ok=True)
    raw, fused = dest / "raw.onnx", dest / FILE
    for model in (m for m in module.modules() if hasattr(m, "set_attn_implementation")):
        model.set_attn_implementation("eager")
    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    axes = {name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask")}
    with torch.no_grad(), _quiet_exporter():
        torch.onnx.export(module.eval(), example, str(raw), input_names=list(axes), output_names=["output"],
                          dynamic_axes={**axes, "output": {0: "batch"}}, opset_version=17, dynamo=False)
    optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                   hidden_size=config.hidden_size).save_model_to_file(str(fused))
    raw.unlink()
    return fused


class PeerModel:
    """The exported model over token ids: sorted batches of 8, each padded to its longest row."""

    def __init__(self, path: Path, pad_id: int, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.pad_id = pad_id

    def run_ids(self, ids: list[list[int]], token_level: bool = False) -> list[np.ndarray]:
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        outputs: list = [None] * len(ids)
        for start in range(0, len(order), BATCH):
            members = order[start:start + BATCH]
            width = max(len(ids[i]) for i in members)
            input_ids = np.full((len(members), width), self.pad_id, dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for row, i in enumerate(members):
                input_ids[row, : len(ids[i])], mask[row, : len(ids[i])] = ids[i], 1
            result = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
            for row, i in enumerate(members):
                outputs[i] = result[row, : len(ids[i])] if token_level else result[row]
        return outputs


def embedder(model: PeerModel, tokenizer, max_length: int):
    """texts -> embeddings through the peer model, for KeyBERT or an embeddings pipeline."""

    def embed(texts: list[str]) -> np.ndarray:
        ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        return np.stack(model.run_ids(ids)) if texts else np.zeros((0, 0), dtype=np.float32)

    return embed
