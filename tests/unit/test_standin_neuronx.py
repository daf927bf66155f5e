"""The stand-in torch_neuronx (tests/standins) refuses what AWS's torch_neuronx, neuronx-cc and the
Neuron runtime refuse: mismatched batches under dynamic batching, batches DataParallel cannot split
over the visible NeuronCores, neuronx-cc arguments its parser rejects, loading a trace without
`import torch_neuronx`, running without a device, and placement on cores the process cannot see."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from ..conftest import STANDINS

pytestmark = pytest.mark.unit


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(100, 4)

    def forward(self, input_ids, attention_mask):
        return (self.embed(input_ids) * attention_mask[..., None]).sum(1)


def example(batch: int = 2, length: int = 6):
    ids = torch.randint(1, 50, (batch, length))
    mask = torch.ones_like(ids)
    mask[:, -2:] = 0
    return ids, mask


def traced(neuronx, batch: int = 2, length: int = 6, **kwargs):
    return neuronx.trace(Tiny().eval(), example(batch, length), **kwargs)


def no_device(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURON_STANDIN_DEVICES", str(tmp_path / "no-dev" / "neuron*"))


# --- 1. dynamic batching ----------------------------------------------------------------------------
def test_dynamic_batching_splits_every_input_together_and_refuses_batches_that_differ(standin_neuronx):
    module = Tiny().eval()
    model = standin_neuronx.dynamic_batch(traced(standin_neuronx, batch=4))
    for batch in (1, 4, 7):
        ids, mask = example(batch)
        assert torch.allclose(model(ids, mask), module(ids, mask))
    ids, _ = example(4)
    _, mask = example(1)
    with pytest.raises(torch.jit.Error, match=r"ValueError: dynamic_batch: the inputs' dimension 0 differ"):
        model(ids, mask)
    with pytest.raises(torch.jit.Error, match=r"ValueError: dynamic_batch: dimension 1"):
        model(*example(batch=4, length=8))


def test_a_static_model_takes_exactly_the_traced_shapes_and_dtypes(standin_neuronx):
    model = traced(standin_neuronx, batch=4)
    ids, mask = example(4)
    assert model(ids, mask).shape == (4, 4)
    with pytest.raises(torch.jit.Error, match="differs from the traced shape"):
        model(*example(batch=1))
    with pytest.raises(torch.jit.Error, match="another dtype"):
        model(ids, mask.int())


# --- 2. DataParallel over the visible NeuronCores ---------------------------------------------------
def test_data_parallel_uses_every_visible_core_two_per_device(standin_neuronx, neuron_device, monkeypatch):
    (neuron_device.parent / "neuron1").touch()  # two devices: four NeuronCores
    model = traced(standin_neuronx)
    assert standin_neuronx.DataParallel(model).device_ids == [0, 1, 2, 3]
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1-3")
    assert standin_neuronx.DataParallel(model).device_ids == [0, 1, 2]  # indices among the visible ones
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0,2")
    assert standin_neuronx.DataParallel(model, device_ids=["nc:1"]).device_ids == [1]
    assert standin_neuronx.CALLS[-1] == {"function": "DataParallel", "device_ids": ["nc:1"], "dim": 0,
                                         "set_dynamic_batching": True}


def test_data_parallel_with_dynamic_batching_splits_any_batch_over_the_cores(standin_neuronx):
    module = Tiny().eval()
    parallel = standin_neuronx.DataParallel(traced(standin_neuronx, batch=2))  # one device: two cores
    for batch in (2, 3, 4, 7):
        ids, mask = example(batch)
        assert torch.allclose(parallel(ids, mask), module(ids, mask))
    ids, mask = example(1)
    with pytest.warns(UserWarning, match="NeuronCores are not being fully utilized"):  # one chunk, two cores
        assert torch.allclose(parallel(ids, mask), module(ids, mask))
    with pytest.raises(torch.jit.Error, match="dimension 1"):  # each chunk goes through the module
        parallel(*example(batch=4, length=8))


@pytest.mark.parametrize("disable", ["argument", "method"])
def test_data_parallel_without_dynamic_batching_takes_only_compiled_batch_times_cores(standin_neuronx, disable):
    model = standin_neuronx.dynamic_batch(traced(standin_neuronx, batch=2))  # DataParallel turns it off
    if disable == "argument":
        parallel = standin_neuronx.DataParallel(model, set_dynamic_batching=False)
    else:
        parallel = standin_neuronx.DataParallel(model)
        parallel.disable_dynamic_batching()
    assert parallel(*example(batch=4)).shape == (4, 4)  # 2 per core on two cores
    for batch in (2, 3, 6):
        with pytest.raises(torch.jit.Error, match="differs from the traced shape"):
            parallel(*example(batch=batch))


def test_data_parallel_refuses_cores_it_cannot_see_and_hosts_without_a_device(standin_neuronx, monkeypatch,
                                                                             tmp_path):
    model = traced(standin_neuronx)
    with pytest.raises(RuntimeError, match="sees 2 NeuronCore"):
        standin_neuronx.DataParallel(model, device_ids=[0, 2])
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1")
    with pytest.raises(RuntimeError, match="sees 1 NeuronCore"):
        standin_neuronx.DataParallel(model, device_ids=["nc:1"])
    with pytest.raises(ValueError, match="Expected `nc:#` or an integer"):
        standin_neuronx.DataParallel(model, device_ids=["gpu:0"])
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "2-3")  # the host has cores 0 and 1
    with pytest.raises(RuntimeError, match="NeuronCore\\(s\\) not available"):
        standin_neuronx.DataParallel(model)
    monkeypatch.delenv("NEURON_RT_VISIBLE_CORES")
    no_device(monkeypatch, tmp_path)
    with pytest.raises(RuntimeError, match="Neuron runtime cannot be initialized; cannot determine the number"):
        standin_neuronx.DataParallel(model)


# --- 3. neuronx-cc's arguments --------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    None, "", "--auto-cast none --model-type transformer",
    ["--auto-cast", "matmult", "--auto-cast-type", "bf16", "-O2"],
    "--auto-cast=all --auto-cast-type=fp8_e4m3 --optlevel=3", "-O 1 --model-type unet-inference --target inf2",
    ["--target=trn2", "--lnc", "2"], "--lnc=1 --enable-fast-loading-neuron-binaries --enable-saturate-infinity",
    "--enable-mixed-precision-accumulation --disable-mixed-precision-accumulation --enable-fast-context-switch",
    "--verbose info --logfile neuron.log --framework XLA --distribution-strategy llm-training --target trn1n",
])
def test_trace_accepts_what_neuronx_cc_accepts(standin_neuronx, tmp_path, args):
    model = traced(standin_neuronx, compiler_args=args, compiler_workdir=str(tmp_path / "w"))
    assert model(*example()).shape == (2, 4) and (tmp_path / "w" / "log-neuron-cc.txt").is_file()
    assert standin_neuronx.CALLS[0]["compiler_args"] == args


@pytest.mark.parametrize("args, message", [
    ("--auto-cast matmul", "argument --auto-cast: invalid choice: 'matmul' (choose from 'none', 'matmult', 'all')"),
    (["--auto-cast=matmul"], "argument --auto-cast: invalid choice: 'matmul'"),
    ("--auto-cast-type fp32", "argument --auto-cast-type: invalid choice: 'fp32'"),
    ("--model-type bert", "argument --model-type: invalid choice: 'bert'"),
    ("-O4", "argument --optlevel/-O: invalid choice: '4'"),
    ("--target inf1", "argument --target: invalid choice: 'inf1'"),
    ("--auto-cast", "argument --auto-cast: expected one argument"),
    ("--auto-cst none", "unrecognized arguments: --auto-cst none"),
    ("--auto none", "unrecognized arguments: --auto none"),  # no abbreviations
    ("--verbose loud", "argument --verbose: invalid level 'loud'"),
    ("--enable-saturate-infinity=yes", "argument --enable-saturate-infinity: ignored explicit argument 'yes'"),
])
def test_trace_fails_as_neuronx_cc_does_and_writes_nothing(standin_neuronx, tmp_path, args, message):
    with pytest.raises(RuntimeError, match="^" + re.escape(f"neuronx-cc failed with 2: neuronx-cc: error: {message}")):
        traced(standin_neuronx, compiler_args=args, compiler_workdir=str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()
    assert standin_neuronx.CALLS[-1]["function"] == "trace"  # recorded all the same


def test_two_logical_cores_exist_only_on_trn2_and_args_are_strings(standin_neuronx):
    for args in ("--lnc 2", "-lnc=2 --target inf2", "--logical-nc-config 2 --target trn1"):
        with pytest.raises(RuntimeError, match=r"neuronx-cc failed with 70: \[NCC_EARG001\]"):
            traced(standin_neuronx, compiler_args=args)
    with pytest.raises(TypeError, match="expected str.*not int"):
        traced(standin_neuronx, compiler_args=["-O", 2])
    with pytest.raises(TypeError, match="compiler_args must be a str or a list"):
        traced(standin_neuronx, compiler_args={"--auto-cast": "none"})


# --- 4. a saved trace needs `import torch_neuronx` -------------------------------------------------
LOAD = textwrap.dedent("""
    import sys, torch
    try:
        torch.jit.load(sys.argv[1])
    except RuntimeError as exc:
        print("without:", str(exc).strip().splitlines()[0])
    else:
        print("without: loaded")
    import torch_neuronx
    model = torch.jit.load(sys.argv[1])
    print("with:", tuple(model(torch.ones(2, 6, dtype=torch.long), torch.ones(2, 6, dtype=torch.long)).shape))
""")


def test_a_saved_trace_loads_only_after_import_torch_neuronx(standin_neuronx, tmp_path):
    torch.jit.save(traced(standin_neuronx), str(tmp_path / "model.pt"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(STANDINS), *sys.path])}
    done = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "model.pt")], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "without: Unknown builtin op: neuron::forward_v2" in done.stdout, done.stdout
    assert "with: (2, 4)" in done.stdout, done.stdout


def test_importing_the_standin_again_keeps_its_operator(standin_neuronx, tmp_path):
    torch.jit.save(traced(standin_neuronx), str(tmp_path / "model.pt"))
    for name in [n for n in sys.modules if n.split(".")[0] == "torch_neuronx"]:
        del sys.modules[name]
    import torch_neuronx  # registers nothing twice

    assert torch_neuronx is not standin_neuronx
    assert torch.jit.load(str(tmp_path / "model.pt"))(*example()).shape == (2, 4)
    assert traced(torch_neuronx)(*example()).shape == (2, 4)


# --- 5. running needs a device, compiling does not ---------------------------------------------------
def test_a_traced_model_runs_only_where_a_neuron_device_is_visible(standin_neuronx, monkeypatch, tmp_path):
    no_device(monkeypatch, tmp_path)
    model = traced(standin_neuronx)  # neuronx-cc compiles on any host
    torch.jit.save(model, str(tmp_path / "model.pt"))
    for loaded in (model, torch.jit.load(str(tmp_path / "model.pt"))):
        with pytest.raises(RuntimeError, match="Neuron Runtime could not be initialized.*No neuron device available"):
            loaded(*example())
    monkeypatch.delenv("NEURON_STANDIN_DEVICES")  # unset: the devices as when torch_neuronx was imported
    assert model(*example()).shape == (2, 4)
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "2")  # the host has cores 0 and 1
    with pytest.raises(RuntimeError, match="NeuronCore\\(s\\) not available - Requested: NEURON_RT_VISIBLE_CORES=2"):
        model(*example())


# --- 6. placement on NeuronCores --------------------------------------------------------------------
def test_set_neuron_cores_and_move_trace_to_device_need_visible_cores(standin_neuronx, monkeypatch, tmp_path):
    from torch_neuronx.experimental import set_neuron_cores as experimental_name  # before Neuron 2.25, still works

    set_neuron_cores = standin_neuronx.set_neuron_cores
    model = traced(standin_neuronx)
    set_neuron_cores(model)
    experimental_name(model, start_nc=0, nc_count=2)
    standin_neuronx.move_trace_to_device(model, 1)
    assert standin_neuronx.CALLS[-3:] == [
        {"function": "set_neuron_cores", "start_nc": -1, "nc_count": -1},
        {"function": "set_neuron_cores", "start_nc": 0, "nc_count": 2},
        {"function": "move_trace_to_device", "device_id": 1}]
    with pytest.raises(RuntimeError, match="sees 2 NeuronCore"):
        set_neuron_cores(model, start_nc=1, nc_count=2)
    with pytest.raises(ValueError, match="nc_count=0 is not a valid number"):
        set_neuron_cores(model, start_nc=0, nc_count=0)
    with pytest.raises(RuntimeError, match="sees 2 NeuronCore"):
        standin_neuronx.move_trace_to_device(model, 2)
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1")
    set_neuron_cores(model, start_nc=0)  # core 1 of the host, the first this process sees
    with pytest.raises(RuntimeError, match="sees 1 NeuronCore"):
        set_neuron_cores(model, start_nc=1)
    no_device(monkeypatch, tmp_path)
    with pytest.raises(RuntimeError, match="No neuron device available"):
        set_neuron_cores(model)
    with pytest.raises(RuntimeError, match="No neuron device available"):
        standin_neuronx.move_trace_to_device(model, 0)
