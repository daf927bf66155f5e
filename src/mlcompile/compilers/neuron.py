"""AWS Neuron (Inferentia2 / Trainium1): `torch_neuronx.trace` at fixed shapes, saved and loaded
with `torch.jit.save/load`.

Only the XLA-based `torch_neuronx` has `trace` (PyTorch up to 2.9, Neuron SDK up to 2.31: the
Neuron profile, constraints-neuron.txt). neuronx-cc casts fp32 matrix multiplications to bf16
unless told otherwise, so the default compiler arguments keep fp32 (`--auto-cast none`) and say the
model is a transformer (`--model-type transformer`); both are recorded and fingerprinted. With
dynamic batching on, `torch_neuronx.dynamic_batch` lets the compiled model take any batch size.
Weights not inlined into the NEFF are moved to the NeuronCore once after loading, as AWS advises;
dynamic batching with such weights is refused, as optimum-neuron does.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import shlex
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from ..errors import ConfigError
from . import FP32, Backend, quiet_tracing

DEFAULT_ARGS = "--auto-cast none --model-type transformer"
BF16_CAST = ["--auto-cast", "matmult", "--auto-cast-type", "bf16"]  # matrix products in bf16, the rest fp32
DEVICES = "/dev/neuron*"  # what the Neuron driver creates on inf2/trn1 (in a container: --device=/dev/neuron0)
PROFILE = "the Neuron profile (make install NEURON=1: torch 2.9 with torch-neuronx 2.9.0.2.15.*, Neuron SDK 2.31)"
INSTALL = ("pip install --extra-index-url https://pip.repos.neuron.amazonaws.com -c constraints-neuron.txt "
           "torch-neuronx neuronx-cc")
CPU_ADVICE = "On other hosts use COMPILER=auto, onnx or torchscript."


@dataclass(frozen=True)
class NeuronStatus:
    """Whether `torch_neuronx.trace` can run here, and if not, why and what to do."""

    usable: bool
    reason: str = ""  # what is wrong, in a few words (shown by COMPILER=auto)
    fix: str = ""


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
        return NeuronStatus(False, f"no Neuron device is visible ({DEVICES})",
                            "run on an inf2/trn1 host with the Neuron driver (in a container, pass --device=/dev/neuron0)")
    return NeuronStatus(True)


def worker_cores(worker: int, workers: int, visible: str | None) -> str:
    """NEURON_RT_VISIBLE_CORES for xdist worker `worker` of `workers`: the runtime gives every core it
    may see to the first process that loads a model, so each worker gets its own share of `visible`
    (the cores this run may use, e.g. "0-3" or "0,1"; unset: worker N gets core N)."""
    if not visible:
        return str(worker)
    cores: list[int] = []
    for part in visible.split(","):
        first, _, last = part.strip().partition("-")
        cores.extend(range(int(first), int(last or first) + 1))
    if len(cores) < workers:
        raise ConfigError(f"NEURON_RT_VISIBLE_CORES={visible!r} has {len(cores)} NeuronCores for {workers} test workers: "
                          f"run fewer workers (-n {len(cores)}) or make more cores visible")
    share = len(cores) // workers
    return ",".join(map(str, cores[worker * share:(worker + 1) * share]))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _neuronx():
    found = status()
    if not found.usable:
        raise ConfigError(f"COMPILER=neuron cannot run here: {found.reason}. Fix: {found.fix}. {CPU_ADVICE}")
    return importlib.import_module("torch_neuronx")


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
                 data_parallel: bool = False, precision: str = FP32):
        self.precision = precision
        self.compiler_args = with_precision(shlex.split(compiler_args), precision)
        self.dynamic_batch = dynamic_batch
        self.inline_weights = inline_weights
        self.data_parallel = data_parallel  # replicate a loaded model over every visible NeuronCore

    @classmethod
    def from_settings(cls, settings=None, precision: str = FP32) -> "NeuronCompiler":
        if settings is None:
            return cls(precision=precision)
        return cls(settings.neuron_compiler_args, settings.neuron_dynamic_batch, settings.neuron_inline_weights,
                   settings.neuron_data_parallel, precision)

    @classmethod
    def from_recorded(cls, recorded: dict, settings=None) -> "NeuronCompiler":
        """Loading an artifact: how it was compiled decides how it is loaded, not today's settings."""
        return cls(shlex.join(recorded["compiler_args"]), recorded["dynamic_batch"], recorded["inline_weights_to_neff"],
                   recorded.get("data_parallel", False), recorded.get("precision", FP32))

    def check(self) -> None:
        if self.dynamic_batch and not self.inline_weights:
            raise ConfigError("NEURON_DYNAMIC_BATCH=true with NEURON_INLINE_WEIGHTS=false: dynamic batching needs the "
                              "weights inlined into the NEFF (optimum-neuron refuses the same); set one of them the "
                              "other way")
        _neuronx()

    def settings(self) -> dict:
        return {"method": "torch_neuronx.trace", "compiler_args": self.compiler_args,
                "dynamic_batch": self.dynamic_batch, "inline_weights_to_neff": self.inline_weights,
                "data_parallel": self.data_parallel, "precision": self.precision}

    def versions(self) -> dict:
        return {"torch": torch.__version__,
                "torch_neuronx": getattr(_neuronx(), "__version__", None) or _version("torch-neuronx"),
                "neuronx-cc": _version("neuronx-cc")}

    def compile(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...], target: Path, workdir: Path) -> None:
        neuronx = _neuronx()
        workdir.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False), torch.no_grad(), quiet_tracing():
            traced = neuronx.trace(
                module.eval(), example, compiler_workdir=str(workdir), compiler_args=list(self.compiler_args),
                inline_weights_to_neff=self.inline_weights,
            )
        if self.dynamic_batch:
            neuronx.dynamic_batch(traced)  # modifies and returns the same module
        torch.jit.save(traced, str(target))

    def load(self, target: Path):
        neuronx = _neuronx()  # registers the Neuron operators torch.jit.load needs
        model = torch.jit.load(str(target)).eval()
        if not self.inline_weights:  # else the weights are copied from the host on every call
            neuronx.move_trace_to_device(model, 0)
        if self.data_parallel:
            return neuronx.DataParallel(model, set_dynamic_batching=self.dynamic_batch)
        return model
