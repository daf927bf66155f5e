"""AWS Neuron (Inferentia2 / Trainium1): `torch_neuronx.trace` at fixed shapes, saved and loaded
with `torch.jit.save/load`.

Only the XLA-based `torch_neuronx` has `trace` (PyTorch up to 2.9, Neuron SDK up to 2.31: the
Neuron profile, constraints-neuron.txt). The compiler arguments say the model is a transformer
(`--model-type transformer`), keep fp32 (`--auto-cast none`, neuronx-cc's default since 2.22, said
so the recorded arguments are complete whatever the compiler's default) and name the instance family
compiled for (`--target`, NEURON_TARGET); all are recorded and fingerprinted. Compiling needs no
Neuron device: where none is visible, `trace` runs with `cpu_backend=True`, as AWS documents for
compiling on any x86 host; running the compiled model (validation, COMPILER=auto's timing) needs a
NeuronCore. With dynamic batching on, `torch_neuronx.dynamic_batch` lets the compiled model take
any batch size; it needs the weights inlined into the NEFF, so they are (with a warning, as
optimum-neuron does). Weights not inlined are placed on a NeuronCore after loading with
`torch_neuronx.set_neuron_cores` (AWS's successor to `move_trace_to_device`).
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import logging
import os
import shlex
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from ..errors import ConfigError
from ..settings import NEURON_DEFAULT_ARGS as DEFAULT_ARGS
from . import FP32, Backend, quiet_tracing

TARGETS = ("inf2", "trn1", "trn1n", "trn2")  # neuronx-cc --target values (Neuron SDK 2.31)
CORES_PER_DEVICE = {"inf2": 2, "trn1": 2, "trn1n": 2, "trn2": 4}  # trn2: logical cores at its default LNC=2
BF16_CAST = ["--auto-cast", "matmult", "--auto-cast-type", "bf16"]  # matrix products in bf16, the rest fp32
DEVICES = "/dev/neuron*"  # what the Neuron driver creates on inf2/trn1 (in a container: --device=/dev/neuron0)
PROFILE = "the Neuron profile (make install NEURON=1: torch 2.9 with torch-neuronx 2.9.0.2.15.*, Neuron SDK 2.31)"
INSTALL = ("pip install --extra-index-url https://pip.repos.neuron.amazonaws.com -c constraints-neuron.txt "
           "torch-neuronx neuronx-cc")
CPU_ADVICE = "On other hosts use COMPILER=auto, onnx or torchscript."
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NeuronStatus:
    """Whether `torch_neuronx.trace` can compile here, and if not, why and what to do; and whether
    a Neuron device is visible to run what it compiles."""

    usable: bool
    reason: str = ""  # what is wrong, in a few words (shown by COMPILER=auto)
    fix: str = ""
    device: bool = False

    @property
    def runs(self) -> bool:
        return self.usable and self.device


def status() -> NeuronStatus:
    if importlib.util.find_spec("torch_neuronx") is None:
        return NeuronStatus(False, "torch-neuronx is not installed",
                            f"install it from AWS's Neuron package index on an inf2/trn1 host ({INSTALL}), or use {PROFILE}")
    try:
        neuronx = importlib.import_module("torch_neuronx")
    except ImportError as exc:
        version = _version("torch-neuronx")
        if version is not None and not version.startswith("2."):
            return NeuronStatus(False, f"the torch-neuronx installed ({version}) is PyPI's placeholder, which cannot be "
                                       f"imported ({exc})",
                                f"pip uninstall torch-neuronx, then install the real one from AWS's index: {INSTALL}")
        return NeuronStatus(False, f"torch_neuronx does not import ({exc})", f"reinstall it: {INSTALL}")
    if not hasattr(neuronx, "trace"):
        return NeuronStatus(
            False, f"torch-neuronx {_version('torch-neuronx') or ''} is native TorchNeuron (torch.compile, Trn2/Trn3) "
                   f"for torch {torch.__version__}: it has no trace",
            f"for inf2/trn1 use {PROFILE}; on Trn2/Trn3 compile with torch.compile(backend='neuron') outside mlcompile")
    if not glob.glob(DEVICES):
        return NeuronStatus(True, f"no Neuron device is visible ({DEVICES}): compiled models cannot run here",
                            NO_DEVICE_FIX)
    return NeuronStatus(True, device=True)


NO_DEVICE_FIX = ("compile here (COMPILER=neuron, `mlcompile run --stage compile`: neuronx-cc needs no device), then "
                 "validate and upload on an inf2/trn1 host with the Neuron driver (in a container, pass every "
                 "/dev/neuron*)")


def host_cores(target: str = "inf2") -> int:
    """The NeuronCores of this host: its Neuron devices times the cores each has."""
    return len(glob.glob(DEVICES)) * CORES_PER_DEVICE[target]


def worker_cores(worker: int, workers: int, visible: str | None, host: int) -> str:
    """NEURON_RT_VISIBLE_CORES for xdist worker `worker` of `workers`: the runtime gives every core it
    may see to the first process that loads a model, so each worker gets its own share of `visible`
    (the cores this run may use, e.g. "0-3" or "0,1"; unset: the host's `host` cores)."""
    cores: list[int] = []
    for part in (visible or f"0-{host - 1}").split(","):
        first, _, last = part.strip().partition("-")
        cores.extend(range(int(first), int(last or first) + 1))
    where = f"NEURON_RT_VISIBLE_CORES={visible!r}" if visible else f"this host ({host} NeuronCores)"
    if len(cores) < workers:
        raise ConfigError(f"{where} has {len(cores)} NeuronCores for {workers} test workers: "
                          f"run fewer workers (-n {max(len(cores), 1)}) or make more cores visible")
    if missing := [core for core in cores if core >= host]:
        raise ConfigError(f"{where} names NeuronCores {missing} that this host does not have (it has {host}, "
                          f"0-{host - 1}): name cores it has")
    share = len(cores) // workers
    return ",".join(map(str, cores[worker * share:(worker + 1) * share]))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _neuronx(run: bool = False):
    """torch_neuronx, to compile with (run=False) or to run a compiled model with (run=True: a
    NeuronCore is needed)."""
    found = status()
    if not found.usable:
        raise ConfigError(f"COMPILER=neuron cannot run here: {found.reason}. Fix: {found.fix}. {CPU_ADVICE}")
    if run and not found.device:
        raise ConfigError(f"a Neuron artifact needs a NeuronCore to run, and {found.reason}. Fix: {found.fix}")
    return importlib.import_module("torch_neuronx")


@contextmanager
def _platform_target(target: str, cpu_backend: bool):
    """NEURON_PLATFORM_TARGET_OVERRIDE while compiling on a host without a device (what optimum-neuron
    sets there, or libneuronxla asks for a target), unless the caller set it."""
    if not cpu_backend or "NEURON_PLATFORM_TARGET_OVERRIDE" in os.environ:
        yield
        return
    os.environ["NEURON_PLATFORM_TARGET_OVERRIDE"] = target
    try:
        yield
    finally:
        os.environ.pop("NEURON_PLATFORM_TARGET_OVERRIDE", None)


def _with_target(args: list[str], target: str) -> list[str]:
    """The arguments with `--target`: the caller's own, else `target` (needed to compile without a device)."""
    if any(arg == "--target" or arg.startswith("--target=") for arg in args):
        return args
    return args + ["--target", target]


def with_precision(args: list[str], precision: str) -> list[str]:
    """neuronx-cc arguments for `precision`: fp32 keeps NEURON_COMPILER_ARGS as given; bf16 replaces
    its --auto-cast options with matrix products in bf16."""
    if precision == FP32:
        return args
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--auto-cast", "--auto-cast-type"):
            skip = True
        elif not arg.startswith(("--auto-cast=", "--auto-cast-type=")):
            kept.append(arg)
    return kept + BF16_CAST


class NeuronCompiler(Backend):
    name = "neuron"
    suffix = ".pt"
    dynamic_shapes = False
    precisions = (FP32, "bf16")

    def __init__(self, compiler_args: str = DEFAULT_ARGS, dynamic_batch: bool = True, inline_weights: bool = True,
                 data_parallel: bool = False, precision: str = FP32, target: str = "inf2"):
        self.precision = precision
        self.compiler_args = _with_target(with_precision(shlex.split(compiler_args), precision), target)
        self.target = target
        self.dynamic_batch = dynamic_batch
        if dynamic_batch and not inline_weights:
            log.warning("NEURON_DYNAMIC_BATCH=true needs the weights inlined into the NEFF: inlining them, as "
                        "optimum-neuron does (set NEURON_DYNAMIC_BATCH=false to keep them apart)")
            inline_weights = True
        self.inline_weights = inline_weights
        self.data_parallel = data_parallel  # replicate a loaded model over every visible NeuronCore

    @classmethod
    def from_settings(cls, settings=None, precision: str = FP32) -> "NeuronCompiler":
        if settings is None:
            return cls(precision=precision)
        return cls(settings.neuron_compiler_args, settings.neuron_dynamic_batch, settings.neuron_inline_weights,
                   settings.neuron_data_parallel, precision, settings.neuron_target)

    @classmethod
    def from_recorded(cls, recorded: dict, settings=None) -> "NeuronCompiler":
        """Loading an artifact: how it was compiled decides how it is loaded, not today's settings."""
        compiler = cls(shlex.join(recorded["compiler_args"]), recorded["dynamic_batch"],
                       recorded["inline_weights_to_neff"], recorded.get("data_parallel", False),
                       recorded.get("precision", FP32), recorded.get("target", "inf2"))
        compiler.compiler_args = list(recorded["compiler_args"])  # as recorded, not re-derived
        return compiler

    def check(self) -> None:
        if self.data_parallel and not self.dynamic_batch:
            raise ConfigError("NEURON_DATA_PARALLEL=true with NEURON_DYNAMIC_BATCH=false: torch_neuronx.DataParallel "
                              "without dynamic batching takes only batches of exactly the compiled batch times the "
                              "NeuronCores it uses, and the runner sends compiled batches; set NEURON_DYNAMIC_BATCH="
                              "true (DataParallel then splits any batch over the cores) or NEURON_DATA_PARALLEL=false")
        _neuronx()

    def check_runs(self) -> None:
        _neuronx(run=True)

    def settings(self) -> dict:
        return {"method": "torch_neuronx.trace", "compiler_args": self.compiler_args, "target": self.target,
                "dynamic_batch": self.dynamic_batch, "inline_weights_to_neff": self.inline_weights,
                "data_parallel": self.data_parallel, "precision": self.precision}

    def versions(self) -> dict:
        return {"torch": torch.__version__,
                "torch_neuronx": getattr(_neuronx(), "__version__", None) or _version("torch-neuronx"),
                "neuronx-cc": _version("neuronx-cc")}

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        neuronx = _neuronx()
        cpu_backend = not status().device  # compiling on a host without a NeuronCore, for --target
        workdir.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False), torch.no_grad(), quiet_tracing(), _platform_target(self.target, cpu_backend):
            traced = neuronx.trace(
                module.eval(), example, compiler_workdir=str(workdir), compiler_args=list(self.compiler_args),
                inline_weights_to_neff=self.inline_weights, cpu_backend=cpu_backend,
            )
        if self.dynamic_batch:
            neuronx.dynamic_batch(traced)  # modifies and returns the same module
        torch.jit.save(traced, str(target))

    def load(self, target: Path):
        neuronx = _neuronx(run=True)  # registers the Neuron operators torch.jit.load needs
        model = torch.jit.load(str(target)).eval()
        if not self.inline_weights:  # else the weights are copied from the host on every call
            neuronx.set_neuron_cores(model)  # the least-used visible core, not core 0 for every shape
        if self.data_parallel:  # dynamic batching: DataParallel splits any batch over the cores
            return neuronx.DataParallel(model)
        return model
