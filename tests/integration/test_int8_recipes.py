"""The int8 recipes of the ONNX backend on a tiny BERT classifier: `onnx-int8` quantizes every layer;
`onnx-int8-mixed` measures each layer's effect alone on calibration texts, keeps the most sensitive in
fp32 and says so, and its output moves less from the fp32 model's than the fully quantized one's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcompile.compilers import get_compiler, known_candidates, parse_candidate
from mlcompile.compilers.onnx_int8 import QUANTIZED_SHARE
from mlcompile.tasks.classification import LogitsModule

from ..tiny_models import make_model

pytestmark = pytest.mark.integration


def _quantized_layers(path) -> set[str]:
    import onnx

    from mlcompile.compilers.onnx_int8 import LAYER

    integer_ops = ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "DynamicQuantizeLinear")
    return {f"layer {m.group(1)}" for node in onnx.load(str(path)).graph.node if node.op_type in integer_ops
            for m in [LAYER.search(node.name) or next(filter(None, (LAYER.search(o) for o in node.output)), None)] if m}


def test_the_mixed_recipe_keeps_the_most_sensitive_layers_in_fp32(tmp_path):
    assert "onnx-int8-mixed" in known_candidates() and parse_candidate("onnx-int8-mixed") == ("onnx", "int8", "mixed")
    model, tokenizer = make_model("bert", "text-classification")
    module = LogitsModule(model).eval()
    tokenizer.model_max_length = 64
    example = (torch.tensor([[tokenizer.cls_token_id, 1000, 1001, tokenizer.sep_token_id]] * 2),
               torch.ones((2, 4), dtype=torch.long))
    outputs = {}
    for name in ("onnx", "onnx-int8", "onnx-int8-mixed"):
        compiler = get_compiler(name)
        assert compiler.candidate == name
        compiler.compile(module, example, tmp_path / f"{name}.onnx", tmp_path / name, tokenizer=tokenizer)
        ids = tokenizer(["the cat sat on the mat", "a rather longer sentence about nothing much at all"],
                        padding=True, return_tensors="pt")
        outputs[name] = compiler.load(tmp_path / f"{name}.onnx")(ids["input_ids"], ids["attention_mask"]).numpy()
    report = get_compiler("onnx-int8-mixed").report(tmp_path / "onnx-int8-mixed")["quantization"]
    layers = {group for group in report["effect_per_group"] if group.startswith("layer")}
    assert layers == {f"layer {i}" for i in range(model.config.num_hidden_layers)}
    kept = report["kept_fp32"]
    assert kept and set(kept) < set(report["effect_per_group"])
    effects = report["effect_per_group"]
    assert sum(v for g, v in effects.items() if g not in kept) <= QUANTIZED_SHARE * sum(effects.values())
    assert min(effects[g] for g in kept) >= max(v for g, v in effects.items() if g not in kept)  # the most sensitive
    assert _quantized_layers(tmp_path / "onnx-int8-mixed.onnx") == layers - set(kept)
    assert _quantized_layers(tmp_path / "onnx-int8.onnx") == layers
    moved = {name: float(np.abs(outputs[name] - outputs["onnx"]).max()) for name in ("onnx-int8", "onnx-int8-mixed")}
    assert 0 < moved["onnx-int8-mixed"] < moved["onnx-int8"], moved
    assert get_compiler("onnx-int8-mixed").settings()["recipe"] == "mixed"  # in the compile fingerprint
