"""The OpenVINO backend on a tiny BERT classifier: one IR file with fp32 weights (no fp16 compression)
that takes any batch and length, matching torch at fp32; `openvino-bf16` the same file run at the CPU
plugin's bf16 inference precision, where the CPU has bf16."""

from __future__ import annotations

import pytest
import torch

from mlcompile.compilers import get_compiler, known_candidates
from mlcompile.machine import bf16_supported
from mlcompile.tasks.classification import LogitsModule

from ..tiny_models import make_model

pytestmark = pytest.mark.integration


def test_openvino_compiles_fp32_weights_and_runs_any_shape(tmp_path):
    import openvino

    assert {"openvino", "openvino-bf16"} <= set(known_candidates())
    model, tokenizer = make_model("bert", "text-classification")
    module = LogitsModule(model).eval()
    example = (torch.tensor([[tokenizer.cls_token_id, 1000, 1001, tokenizer.sep_token_id]] * 2),
               torch.ones((2, 4), dtype=torch.long))
    compiler = get_compiler("openvino")
    compiler.compile(module, example, tmp_path / "model.xml", tmp_path / "work")
    assert (tmp_path / "model.bin").is_file()
    constants = [op for op in openvino.Core().read_model(str(tmp_path / "model.xml")).get_ops()
                 if op.get_type_name() == "Constant" and op.get_output_element_type(0).is_real()]
    assert constants and all(op.get_output_element_type(0) == openvino.Type.f32 for op in constants)
    run = compiler.load(tmp_path / "model.xml")
    for texts in (["a short one"], ["the cat sat on the mat", "a rather longer sentence about nothing much", "hi"]):
        ids = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.inference_mode():
            expected = module(ids["input_ids"], ids["attention_mask"])
        got = run(ids["input_ids"], ids["attention_mask"])
        assert got.shape == expected.shape and got.dtype == torch.float32
        assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    bf16 = get_compiler("openvino-bf16")
    assert bf16.settings()["inference_precision_hint"] == "bf16" and compiler.settings()["inference_precision_hint"] == "f32"
    if bf16_supported():  # bf16 matrix products: close, not equal
        moved = (bf16.load(tmp_path / "model.xml")(ids["input_ids"], ids["attention_mask"]) - expected).abs().max()
        assert 0 < moved < 0.1, moved
