"""A stand-in for AWS's XLA-based `torch_neuronx` (the one with `trace`, PyTorch 2.9, Neuron SDK
2.31), for tests on hosts without Neuron devices (tests only).

It is as strict as a compiled Neuron executable where mlcompile depends on it:
- `trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None, compiler_args=None,
  partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False)` (keywords after the
  inputs only) returns a TorchScript module that `torch.jit.save/load` round-trip and that accepts
  exactly the traced shapes and dtypes: anything else raises, as a NEFF does;
- `dynamic_batch(neuron_script)` modifies and returns the same module: it then takes any size along
  dimension 0 (split into traced-size chunks, the last padded), and raises ValueError when another
  dimension differs;
- `move_trace_to_device(trace, device_id)` and `DataParallel(model, device_ids=None, dim=0,
  set_dynamic_batching=True)` are recorded (here the weights stay on the CPU);
- it writes the compiler's log into `compiler_workdir`.
The computation itself is `torch.jit.trace` on the CPU. Every call is recorded in `CALLS`.
"""

from __future__ import annotations

import os
from typing import List

import torch

__version__ = "2.9.0.2.15.standin"
CALLS: list[dict] = []


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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self._check(0, input_ids)
        self._check(1, attention_mask)
        batch = self.shapes[0][0]
        if not self.dynamic or input_ids.shape[0] == batch:
            return self.traced(input_ids, attention_mask)
        outputs: List[torch.Tensor] = []
        for start in range(0, input_ids.shape[0], batch):
            ids = input_ids[start:start + batch]
            mask = attention_mask[start:start + batch]
            rows = ids.shape[0]
            if rows < batch:
                ids = torch.cat([ids, ids[:1].expand(batch - rows, -1)])
                mask = torch.cat([mask, mask[:1].expand(batch - rows, -1)])
            outputs.append(self.traced(ids, mask)[:rows])
        return torch.cat(outputs)


def trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None, compiler_args=None,
          partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False):
    example = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    CALLS.append({"function": "trace", "example_shapes": [tuple(t.shape) for t in example],
                  "example_dtypes": [t.dtype for t in example], "compiler_workdir": compiler_workdir,
                  "compiler_args": compiler_args, "inline_weights_to_neff": inline_weights_to_neff,
                  "cpu_backend": cpu_backend})
    if compiler_workdir is not None:
        os.makedirs(compiler_workdir, exist_ok=True)
        with open(os.path.join(compiler_workdir, "log-neuron-cc.txt"), "w") as log:
            log.write(f"neuronx-cc (stand-in) compile {compiler_args}\n")
    traced = torch.jit.trace(func, example, check_trace=False)
    return torch.jit.script(_Neff(traced, [list(t.shape) for t in example], [torch.empty(0, dtype=t.dtype)
                                                                           for t in example]))


def dynamic_batch(neuron_script, enabled: bool = True):
    CALLS.append({"function": "dynamic_batch", "enabled": enabled})
    neuron_script.dynamic = enabled
    return neuron_script


def move_trace_to_device(trace, device_id):
    CALLS.append({"function": "move_trace_to_device", "device_id": device_id})


class DataParallel(torch.nn.Module):
    def __init__(self, model, device_ids=None, dim=0, set_dynamic_batching=True):
        super().__init__()
        CALLS.append({"function": "DataParallel", "device_ids": device_ids, "dim": dim,
                      "set_dynamic_batching": set_dynamic_batching})
        self.model = model

    def forward(self, *inputs):
        return self.model(*inputs)
