"""The machine a validation ran on: the CPU and the flags that change numerics (AVX2, AVX-512, VNNI,
AVX512-BF16, AMX), the runtimes' versions and the Neuron SDK. A verdict records it; a reduced-precision
artifact loaded on a CPU without a flag its validation had was never validated there: loading says so,
and MACHINE_MISMATCH (warn, the default, or refuse) decides what happens."""

from __future__ import annotations

import logging
import os
import platform
from importlib import metadata
from pathlib import Path

from .errors import ArtifactError

log = logging.getLogger(__name__)
# /proc/cpuinfo's names of the flags whose kernels give other numbers at reduced precision (and Arm's)
NUMERIC_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile",
                 "neon", "sve")
RUNTIMES = ("torch", "onnxruntime", "openvino", "torch-neuronx", "neuronx-cc", "libneuronxla")
CPUINFO = Path("/proc/cpuinfo")
POLICIES = ("warn", "refuse")


def bf16_supported() -> bool:
    """This CPU computes bf16 natively (AVX512-BF16 or AMX), which is when bf16 can be faster."""
    import torch

    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_description() -> dict:
    """The CPU model, architecture, numerics flags, torch's kernel capability and logical CPUs."""
    import torch

    found = cpu()
    return {"model": found["model"], "machine": found["machine"], "flags": found["flags"],
            "torch_capability": torch.backends.cpu.get_cpu_capability(), "logical_cpus": found["logical_cpus"]}


def cpu() -> dict:
    """The CPU model, architecture, numerics flags and logical CPUs, read without torch: a registered
    version's loader checks its verdict with it in a serving environment that has no torch."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in CPUINFO.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "machine": platform.machine(), "flags": [f for f in NUMERIC_FLAGS if f in flags],
            "logical_cpus": os.cpu_count()}


def describe() -> dict:
    """This machine as a verdict records it: the CPU and the runtimes installed (Neuron's where present)."""
    runtimes = {}
    for name in RUNTIMES:
        try:
            runtimes[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {**cpu_description(), "runtimes": runtimes}


def mismatch(validated: dict | None, precision: str, here: dict | None = None) -> str | None:
    """Why an artifact of `precision` validated on `validated` is not proven on this machine, or None: a
    reduced-precision artifact on a CPU that lacks a numerics flag the validating CPU had."""
    if precision == "fp32" or not validated:
        return None
    here = here or cpu()
    lacking = [flag for flag in validated.get("flags", []) if flag not in here["flags"]]
    if not lacking:
        return None
    return (f"this {precision} artifact was validated on {validated.get('model', '?')} with "
            f"{', '.join(validated['flags'])}; this CPU ({here['model']}) lacks {', '.join(lacking)}, so its "
            f"{precision} numbers here were never validated (validate it on this machine)")


def check_load(validated: dict | None, precision: str, what: str, policy: str | None = None) -> None:
    """Loading `what`: a warning, or with MACHINE_MISMATCH=refuse an ArtifactError, when `mismatch` finds one."""
    policy = policy or os.environ.get("MACHINE_MISMATCH", "warn")
    if policy not in POLICIES:
        raise ArtifactError(f"MACHINE_MISMATCH={policy!r}: choose {' or '.join(POLICIES)}")
    found = mismatch(validated, precision)
    if found is None:
        return
    if policy == "refuse":
        raise ArtifactError(f"{what}: refused (MACHINE_MISMATCH=refuse): {found}; MACHINE_MISMATCH=warn loads it anyway")
    log.warning("%s: %s", what, found)
