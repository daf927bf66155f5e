"""A stand-in for AWS's XLA-based `torch_neuronx` (the one with `trace`, PyTorch 2.9, Neuron SDK
2.31, torch-neuronx 2.9.0.2.15), for tests on hosts without Neuron devices (tests only).

It is as strict as torch_neuronx, neuronx-cc and the Neuron runtime where mlcompile depends on them,
and refuses what they refuse:

- `trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None, compiler_args=None,
  partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False)` (keywords after the
  inputs only) runs neuronx-cc's argument parser over `compiler_args` (a str, split like a shell
  does, or a list of str; a list item that is not a str is a TypeError). The options known are
  the ones AWS's neuronx-cc reference documents for SDK 2.31 (`NEURONX_CC_OPTIONS` below), in the
  `--opt value` and `--opt=value` forms (`-O2` too), no abbreviations. An unknown option, a
  missing value or a value outside the allowed ones (`--auto-cast matmul`) makes trace raise
  `RuntimeError("neuronx-cc failed with 2: neuronx-cc: error: argument --auto-cast: invalid
  choice: 'matmul' (...)")`, `--lnc 2` for an inf2/trn1 target raises NCC_EARG001 (exit 70), and
  nothing is returned to be saved (torch_neuronx raises `neuronx-cc failed with N`; the parser's
  message, which the real one prints on stderr, is appended here). Compiling needs no device;
- the module trace returns is TorchScript that `torch.jit.save/load` round-trip; its forward calls
  the operator `neuron::forward_v2`, which only `import torch_neuronx` registers (as the real one
  does), so `torch.jit.load` of a saved trace without that import fails ("Unknown builtin op:
  neuron::forward_v2"). The operator's Python kernel is the Neuron runtime: running a traced model
  needs a visible Neuron device, or it raises RuntimeError ("The PyTorch Neuron Runtime could not be
  initialized ... No neuron device available"). The module accepts exactly the traced shapes and
  dtypes: anything else raises, as a NEFF does;
- `dynamic_batch(neuron_script, enabled=True)` modifies and returns the same module: it then takes
  any size along dimension 0 (split into traced-size chunks, the last padded), raises ValueError
  when another dimension differs, and ValueError when the inputs' dimension 0 differ from each
  other (ids of batch 4 with a mask of batch 1: every input is split along dimension 0 together);
- the host's NeuronCores: the devices are the files matching the glob `NEURON_STANDIN_DEVICES`
  (default "/dev/neuron*"; read from the environment when set, else the value it had when
  torch_neuronx was imported: in-process pipeline runs in the tests drop NEURON_* variables),
  2 NeuronCores each (inf2/trn1), restricted by `NEURON_RT_VISIBLE_CORES` ("0-3", "0,1", "2");
  naming a core the host lacks fails as the runtime does. Core indices passed to the functions
  below are relative to the visible cores (0 = the first visible one), as in torch_neuronx;
- `DataParallel(module, device_ids=None, dim=0, set_dynamic_batching=True)` replicates the module
  over every visible NeuronCore (or `device_ids`: ints or "nc:#"; a core that is not visible
  raises RuntimeError, a malformed id ValueError; no device: RuntimeError "Neuron runtime cannot be
  initialized; cannot determine the number of available NeuronCores"). Like the real one it turns
  the module's dynamic batching on (dim 0, `set_dynamic_batching=True`) or off (otherwise, and after
  `disable_dynamic_batching()`), splits every input along `dim` over the cores as the real
  `scatter` does and runs each chunk through the module, which must accept it: without dynamic
  batching the batch must be (compiled batch x number of cores), or the module raises;
- `move_trace_to_device(trace, device_id)` (to be deprecated by AWS in favour of
  `set_neuron_cores`) and `set_neuron_cores(trace, start_nc=-1, nc_count=-1)` (out of
  `torch_neuronx.experimental` since Neuron 2.25; `experimental.set_neuron_cores` still works)
  check that the cores exist among the visible ones (RuntimeError otherwise; ValueError for an
  `nc_count` that is not -1 or positive); here the weights stay on the CPU;
- it writes the compiler's log into `compiler_workdir`.
The computation itself is `torch.jit.trace` on the CPU. Every public call is recorded in `CALLS`.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import sys
import warnings
from typing import List

import torch

__version__ = "2.9.0.2.15.standin"
CALLS: list[dict] = []

# --- the host's Neuron devices and the runtime's view of them -------------------------------------
DEVICES = os.environ.get("NEURON_STANDIN_DEVICES", "/dev/neuron*")  # the host's devices, as at import
CORES_PER_DEVICE = 2  # NeuronCore-v2: inf2 and trn1 devices have two each
NO_DEVICE = ("The PyTorch Neuron Runtime could not be initialized. Neuron Driver issues are logged to your "
             "system logs (TDRV:tdrv_get_dev_info No neuron device available: no device matches {glob}). "
             "See the Neuron Runtime's troubleshooting guide; in a container pass --device=/dev/neuron0")


def _devices() -> list[str]:
    return sorted(glob.glob(os.environ.get("NEURON_STANDIN_DEVICES", DEVICES)))


def _parse_cores(visible: str) -> list[int]:
    cores: list[int] = []
    for part in visible.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if match is None or (match.group(2) is not None and int(match.group(2)) < int(match.group(1))):
            raise RuntimeError(f"NRT:nrt_init Invalid NEURON_RT_VISIBLE_CORES={visible!r}: expected a core, a range "
                               "of cores (0-3) or a comma-separated list of them")
        cores.extend(range(int(match.group(1)), int(match.group(2) or match.group(1)) + 1))
    return cores


def _visible_cores() -> list[int]:
    """The host's NeuronCores this process may use (global indices), as nrt_init finds them."""
    devices = _devices()
    if not devices:
        raise RuntimeError(NO_DEVICE.format(glob=os.environ.get("NEURON_STANDIN_DEVICES", DEVICES)))
    count = CORES_PER_DEVICE * len(devices)
    visible = os.environ.get("NEURON_RT_VISIBLE_CORES")
    if not visible:
        return list(range(count))
    cores = _parse_cores(visible)
    missing = [core for core in cores if core >= count]
    if missing:
        raise RuntimeError(f"NRT:nrt_allocate_neuron_cores NeuronCore(s) not available - Requested: "
                           f"NEURON_RT_VISIBLE_CORES={visible} Available: {count} (0-{count - 1}, {len(devices)} "
                           f"device(s) x {CORES_PER_DEVICE})")
    return cores


def _device_count() -> int:
    """The number of NeuronCores visible to this process (torch_neuronx.parallel's device_count)."""
    try:
        return len(_visible_cores())
    except RuntimeError as exc:
        raise RuntimeError("Neuron runtime cannot be initialized; cannot determine the number of available "
                           f"NeuronCores ({exc})") from exc


def _place(start_nc: int, nc_count: int) -> list[int]:
    """Load onto NeuronCores start_nc .. start_nc + nc_count - 1 (relative to the visible ones)."""
    if nc_count == -1:
        nc_count = 1
    if not isinstance(nc_count, int) or nc_count < 1:
        raise ValueError(f"nc_count={nc_count!r} is not a valid number of NeuronCores (-1 or a positive int)")
    visible = _visible_cores()
    start = 0 if start_nc == -1 else start_nc  # -1: the least used core, here the first
    if not isinstance(start, int) or start < 0 or start + nc_count > len(visible):
        raise RuntimeError(f"nrt_load: NeuronCore(s) {start_nc}..{start_nc + nc_count - 1} requested, but this process "
                           f"sees {len(visible)} NeuronCore(s) (indices 0-{len(visible) - 1}; "
                           f"NEURON_RT_VISIBLE_CORES={os.environ.get('NEURON_RT_VISIBLE_CORES')!r})")
    return visible[start:start + nc_count]


def _execute(inputs: List[torch.Tensor]) -> List[torch.Tensor]:
    """What the runtime does with one call of neuron::forward_v2: here, check it can run at all."""
    _visible_cores()
    return [tensor.clone() for tensor in inputs]  # copied to the device and back


def _forward_v2(inputs: List[torch.Tensor]) -> List[torch.Tensor]:
    # Registered once per process (below): the stand-in imported now does the work.
    module = sys.modules.get(__name__)
    if module is None or not hasattr(module, "_execute"):
        raise RuntimeError("neuron::forward_v2: torch_neuronx is not imported")
    return module._execute(inputs)


# `import torch_neuronx` registers the operator a traced model calls (torch.ops.neuron.forward_v2, as
# in torch_neuronx's NeuronModule; the real schema also takes a torch.classes.neuron.Model). Once per
# process: the tests import the stand-in afresh for every test, and an operator defined twice fails.
_LIBRARY = "_mlcompile_standin_neuron_library"
if not hasattr(torch, _LIBRARY):
    _library = torch.library.Library("neuron", "FRAGMENT")
    _library.define("forward_v2(Tensor[] inputs) -> Tensor[]")
    _library.impl("forward_v2", _forward_v2, "CompositeExplicitAutograd")
    setattr(torch, _LIBRARY, _library)  # kept alive: a collected Library unregisters its operators


# --- neuronx-cc's command line ---------------------------------------------------------------------
class CompilerError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CompilerError(f"{self.prog}: error: {message}", 2)


def _verbose(value: str) -> str:
    if value.lower() in ("debug", "info", "warning", "error", "critical") or value.isdigit():
        return value
    raise argparse.ArgumentTypeError(f"invalid level {value!r} (choose from debug, info, warning, error, critical "
                                     "or a number)")


# `neuronx-cc compile` options in AWS's CLI reference (compiler/neuronx-cc/api-reference-guide) for
# SDK 2.31 and the compiler release notes: (option strings, allowed values or a type, or None for a flag).
NEURONX_CC_OPTIONS = [
    (("--framework",), ["XLA"]),
    (("--target",), ["inf2", "trn1", "trn1n", "trn2", "trn3"]),
    (("--model-type",), ["generic", "transformer", "unet-inference"]),
    (("--auto-cast",), ["none", "matmult", "all"]),
    (("--auto-cast-type",), ["bf16", "fp16", "tf32", "fp8_e4m3"]),
    (("--distribution-strategy", "--distribution_strategy"), ["llm-training"]),
    (("--logical-nc-config", "--lnc", "-lnc"), ["1", "2"]),
    (("--optlevel", "-O"), ["1", "2", "3"]),
    (("--enable-mixed-precision-accumulation",), None),
    (("--disable-mixed-precision-accumulation",), None),
    (("--enable-saturate-infinity",), None),
    (("--enable-fast-context-switch",), None),
    (("--enable-fast-loading-neuron-binaries",), None),
    (("--disable-dge",), None),
    (("--logfile",), str),
    (("--output",), str),
    (("--verbose",), _verbose),
]


def _compiler_parser() -> _Parser:
    parser = _Parser(prog="neuronx-cc", add_help=False, allow_abbrev=False)
    for names, allowed in NEURONX_CC_OPTIONS:
        if allowed is None:
            parser.add_argument(*names, action="store_true")
        elif isinstance(allowed, list):
            parser.add_argument(*names, choices=allowed)
        else:
            parser.add_argument(*names, type=allowed)
    return parser


def _compiler_args(compiler_args) -> list[str]:
    if compiler_args is None:
        return []
    if isinstance(compiler_args, str):
        return shlex.split(compiler_args)
    if not isinstance(compiler_args, (list, tuple)):
        raise TypeError(f"compiler_args must be a str or a list of str, not {type(compiler_args).__name__}")
    for arg in compiler_args:
        if not isinstance(arg, str):  # what subprocess says of the neuronx-cc command line
            raise TypeError(f"expected str, bytes or os.PathLike object, not {type(arg).__name__} "
                            f"(compiler_args item {arg!r})")
    return list(compiler_args)


def _neuronx_cc(args: list[str]) -> argparse.Namespace:
    """Parse the command torch_neuronx runs (its own options first, the user's after: the last wins)."""
    options = _compiler_parser().parse_args(["--framework", "XLA", "--target", "trn1", "--output", "graph.neff", *args])
    if options.logical_nc_config == "2" and options.target in ("inf2", "trn1", "trn1n"):
        raise CompilerError(f"[NCC_EARG001] Logical NeuronCore configuration 2 is not supported on {options.target}: "
                            "only --lnc 1 is", 70)
    return options


# --- the compiled model ------------------------------------------------------------------------------
class _Neff(torch.nn.Module):
    """A traced module behind the checks a compiled Neuron executable makes on its inputs."""

    def __init__(self, traced, shapes: List[List[int]], dtypes: List[torch.Tensor]):
        super().__init__()
        self.traced = traced
        self.shapes = shapes
        self.dtypes = dtypes  # empty tensors of the traced dtypes (TorchScript keeps no list of dtypes)
        self.dynamic = False

    def _check(self, index: int, tensor: torch.Tensor):
        if tensor.dtype != self.dtypes[index].dtype:
            raise RuntimeError("Neuron: input " + str(index) + " has another dtype than the traced input")
        shape = tensor.shape
        traced = self.shapes[index]
        if len(shape) != len(traced):
            raise RuntimeError("Neuron: input " + str(index) + " has another rank than the traced input")
        for dim in range(len(traced)):
            if shape[dim] != traced[dim] and not (self.dynamic and dim == 0):
                if self.dynamic:
                    raise ValueError("dynamic_batch: dimension " + str(dim) + " of input " + str(index) + " is "
                                     + str(shape[dim]) + ", traced " + str(traced[dim]) + "; only dimension 0 may differ")
                raise RuntimeError("Neuron: input " + str(index) + " shape " + str(shape)
                                   + " differs from the traced shape " + str(traced))

    def _run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        on_device = torch.ops.neuron.forward_v2([input_ids, attention_mask])  # the runtime: needs a device
        return self.traced(on_device[0], on_device[1])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self._check(0, input_ids)
        self._check(1, attention_mask)
        if self.dynamic and input_ids.shape[0] != attention_mask.shape[0]:
            raise ValueError("dynamic_batch: the inputs' dimension 0 differ (input 0 has " + str(input_ids.shape[0])
                             + ", input 1 has " + str(attention_mask.shape[0])
                             + "); every input is split along dimension 0 together")
        batch = self.shapes[0][0]
        if not self.dynamic or input_ids.shape[0] == batch:
            return self._run(input_ids, attention_mask)
        outputs: List[torch.Tensor] = []
        for start in range(0, input_ids.shape[0], batch):
            ids = input_ids[start:start + batch]
            mask = attention_mask[start:start + batch]
            rows = ids.shape[0]
            if rows < batch:
                ids = torch.cat([ids, ids[:1].expand(batch - rows, -1)])
                mask = torch.cat([mask, mask[:1].expand(batch - rows, -1)])
            outputs.append(self._run(ids, mask)[:rows])
        return torch.cat(outputs)


def trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None, compiler_args=None,
          partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False):
    example = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    CALLS.append({"function": "trace", "example_shapes": [tuple(t.shape) for t in example],
                  "example_dtypes": [t.dtype for t in example], "compiler_workdir": compiler_workdir,
                  "compiler_args": compiler_args, "inline_weights_to_neff": inline_weights_to_neff,
                  "cpu_backend": cpu_backend})
    args = _compiler_args(compiler_args)
    try:
        _neuronx_cc(args)
    except CompilerError as exc:  # torch_neuronx: RuntimeError(f"neuronx-cc failed with {status}")
        raise RuntimeError(f"neuronx-cc failed with {exc.status}: {exc}") from None
    if compiler_workdir is not None:
        os.makedirs(compiler_workdir, exist_ok=True)
        with open(os.path.join(compiler_workdir, "log-neuron-cc.txt"), "w") as log:
            log.write(f"neuronx-cc (stand-in) compile --framework XLA --target trn1 {shlex.join(args)}\n")
    traced = torch.jit.trace(func, example, check_trace=False)
    return torch.jit.script(_Neff(traced, [list(t.shape) for t in example], [torch.empty(0, dtype=t.dtype)
                                                                           for t in example]))


def _set_dynamic(neuron_script, enabled: bool) -> None:
    neuron_script.dynamic = enabled


def dynamic_batch(neuron_script, enabled: bool = True):
    CALLS.append({"function": "dynamic_batch", "enabled": enabled})
    _set_dynamic(neuron_script, enabled)
    return neuron_script


def move_trace_to_device(trace, device_id):
    """AWS: to be deprecated in favour of set_neuron_cores."""
    CALLS.append({"function": "move_trace_to_device", "device_id": device_id})
    _place(device_id, 1)


def set_neuron_cores(trace, start_nc: int = -1, nc_count: int = -1):
    """Load `trace` onto NeuronCores start_nc .. start_nc + nc_count - 1, relative to the cores this
    process sees (start_nc=-1: the least used one; nc_count=-1: one core). RuntimeError when the
    runtime cannot start (no device) or the cores are not visible; ValueError for an invalid nc_count.
    torch_neuronx.experimental.set_neuron_cores until Neuron 2.25, torch_neuronx.set_neuron_cores since
    (the experimental name is still used, e.g. by optimum-neuron, and kept here)."""
    CALLS.append({"function": "set_neuron_cores", "start_nc": start_nc, "nc_count": nc_count})
    _place(start_nc, nc_count)


# --- DataParallel, after torch_neuronx/xla_impl/data_parallel.py -----------------------------------
def _neuroncore_index(neuroncore) -> int:
    if isinstance(neuroncore, str):
        match = re.fullmatch(r"nc:(\d+)", neuroncore)
        if match:
            return int(match.group(1))
    elif isinstance(neuroncore, int) and not isinstance(neuroncore, bool):
        return neuroncore
    raise ValueError(f"Expected `nc:#` or an integer, but got: {neuroncore}")


def _scatter(inputs: tuple, cores: int, dim: int) -> list[tuple]:
    """Chunks of every tensor along `dim`, as torch_neuronx's scatter: sizes divmod(n, cores)."""

    def chunks(obj):
        if not isinstance(obj, torch.Tensor):
            return None
        split, remainder = divmod(obj.shape[dim], cores)
        jobs = remainder if split == 0 else cores
        return [obj.narrow(dim, i * split + min(i, remainder), split + (1 if i < remainder else 0))
                for i in range(jobs)]

    split = [chunks(obj) for obj in inputs]
    jobs = min((len(c) for c in split if c is not None), default=1)
    return [tuple(obj if c is None else c[i] for obj, c in zip(inputs, split)) for i in range(jobs)]


class DataParallel(torch.nn.Module):
    def __init__(self, module, device_ids=None, dim=0, set_dynamic_batching=True):
        super().__init__()
        CALLS.append({"function": "DataParallel", "device_ids": device_ids, "dim": dim,
                      "set_dynamic_batching": set_dynamic_batching})
        if device_ids is None:
            device_ids = list(range(_device_count()))
        self.module = module
        self.dim = dim
        self.set_dynamic_batching = set_dynamic_batching
        self._apply_dynamic_batching()
        self.device_ids = sorted(_neuroncore_index(device_id) for device_id in device_ids)
        self.loaded_modules = self._load_modules()

    def _apply_dynamic_batching(self) -> None:
        if hasattr(self.module, "dynamic"):  # a traced Neuron module (else the real one warns and skips)
            _set_dynamic(self.module, self.set_dynamic_batching and self.dim == 0)

    def _load_modules(self) -> list:
        ids = self.device_ids
        if ids and ids == list(range(ids[0], ids[0] + len(ids))):
            _place(ids[0], len(ids))  # consecutive: one load replicated over the cores
        else:
            for nc in ids:
                _place(nc, 1)
        return [self.module]

    def disable_dynamic_batching(self):
        self.set_dynamic_batching = False
        self._apply_dynamic_batching()
        self.loaded_modules = self._load_modules()

    def forward(self, *inputs):
        if not self.device_ids:
            return self.module(*inputs)
        jobs = _scatter(inputs, len(self.device_ids), self.dim)
        if len(jobs) % len(self.device_ids) != 0:
            warnings.warn("The NeuronCores are not being fully utilized because `inputs.shape[dim]` is not divisible "
                          "by the number of NeuronCores given in `device_ids`.")
        outputs = [self.loaded_modules[i % len(self.loaded_modules)](*job) for i, job in enumerate(jobs)]
        if isinstance(outputs[0], torch.Tensor):
            return torch.cat(outputs, self.dim)
        return outputs


from . import experimental  # noqa: E402  (torch_neuronx.experimental.set_neuron_cores, the older name)
