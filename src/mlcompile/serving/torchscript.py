"""TorchScript executables (mlcompile's torchscript backend: every shape a method of one `model.pt`) as
serving's numpy functions: torch is the only library they need, imported here and nowhere else in serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_module(path: Path, threads: int | None = None):
    """The saved TorchScript module, on the CPU, in eval mode; `threads`: torch's intra-op threads."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.jit.load(str(path), map_location="cpu").eval()


def executable(module, method: str | None = None):
    """`(input_ids, attention_mask) -> output` in numpy over the module (or one of its methods)."""
    import torch

    run_shape = getattr(module, method) if method else module

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return run_shape(torch.from_numpy(input_ids), torch.from_numpy(attention_mask)).numpy()

    return run
