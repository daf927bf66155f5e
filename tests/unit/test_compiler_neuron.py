"""The Neuron backend against the stand-in `torch_neuronx` in tests/standins (it mirrors the real
signatures and delegates to torch.jit.trace on CPU): what the backend passes, how it saves and
reloads, dynamic batching, and the clear error where torch_neuronx is missing."""

from __future__ import annotations

import sys

import pytest
import torch

from mlcompile.compilers import candidates, get_compiler
from mlcompile.compilers.neuron import NeuronCompiler
from mlcompile.errors import ConfigError

pytestmark = pytest.mark.unit


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(50, 4)

    def forward(self, input_ids, attention_mask):
        return (self.embed(input_ids) * attention_mask[..., None]).sum(1)


@pytest.fixture
def neuronx(standin_neuronx):
    return standin_neuronx


@pytest.fixture
def no_neuronx(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_neuronx", None)  # import fails, as on a host without it


def example(batch: int = 4, length: int = 6):
    ids = torch.randint(1, 50, (batch, length))
    mask = torch.ones_like(ids)
    mask[:, -2:] = 0
    return ids, mask


def test_trace_gets_workdir_compiler_args_and_weights_setting(neuronx, tmp_path):
    compiler = NeuronCompiler()
    module = Tiny().eval()
    compiler.compile(module, example(), tmp_path / "bucket-6.pt", tmp_path / "workdir" / "bucket-6")
    trace, dynamic = neuronx.CALLS
    assert trace["function"] == "trace" and dynamic == {"function": "dynamic_batch"}
    assert trace["compiler_args"] == ["--auto-cast", "none"]  # fp32 stays fp32 unless asked otherwise
    assert trace["compiler_workdir"] == str(tmp_path / "workdir" / "bucket-6")
    assert (tmp_path / "workdir" / "bucket-6" / "log-neuron-cc.txt").is_file()  # logs kept with the artifact
    assert trace["inline_weights_to_neff"] is True and trace["example_shapes"] == [(4, 6), (4, 6)]


def test_saved_model_reloads_and_takes_any_batch_with_dynamic_batching(neuronx, tmp_path):
    compiler, module = NeuronCompiler(), Tiny().eval()
    compiler.compile(module, example(), tmp_path / "model.pt", tmp_path / "workdir")
    loaded = compiler.load(tmp_path / "model.pt")
    for batch in (1, 4, 7):
        ids, mask = example(batch)
        assert torch.allclose(loaded(ids, mask), module(ids, mask))


def test_settings_choose_args_and_switch_dynamic_batching_off(neuronx, tmp_path):
    class Settings:
        neuron_compiler_args = "--auto-cast matmult --auto-cast-type bf16 -O2"
        neuron_dynamic_batch = False
        neuron_inline_weights = False

    compiler = get_compiler("neuron", Settings())
    compiler.compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "workdir")
    [trace] = neuronx.CALLS
    assert trace["compiler_args"] == ["--auto-cast", "matmult", "--auto-cast-type", "bf16", "-O2"]
    assert trace["inline_weights_to_neff"] is False
    assert compiler.settings()["dynamic_batch"] is False
    assert compiler.versions()["torch_neuronx"] == "2.0.0+standin"


def test_auto_means_neuron_where_torch_neuronx_imports(neuronx):
    assert candidates("auto") == ["neuron"]


def test_missing_torch_neuronx_is_a_clear_error(no_neuronx):
    compiler = NeuronCompiler()
    with pytest.raises(ConfigError) as error:
        compiler.check()
    message = str(error.value)
    assert "https://pip.repos.neuron.amazonaws.com" in message and "inf2" in message and "trn1" in message
    assert "COMPILER=auto, onnx or torchscript" in message
    assert candidates("auto") == ["onnx", "torchscript"]
