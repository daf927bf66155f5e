"""A stand-in for AWS's `torch_neuronx`, for tests on hosts without Neuron devices (tests only).

It mirrors the signatures of `torch_neuronx.trace` and `torch_neuronx.dynamic_batch` and their
behaviour that mlcompile relies on: `trace` returns a TorchScript module (here `torch.jit.trace`
on CPU, instead of a Neuron executable) that `torch.jit.save/load` round-trip, and writes the
compiler's log into `compiler_workdir`; `dynamic_batch` returns a module that takes any batch size
by splitting the input into chunks of the traced batch size and padding the last one. Every call
is recorded in `CALLS` for the tests to inspect.
"""

from __future__ import annotations

import os

import torch

__version__ = "2.0.0+standin"
CALLS: list[dict] = []
_TRACED_BATCH: dict[int, int] = {}  # the batch size each traced module was compiled for


def trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None, compiler_args=None,
          partitioner_config=None, inline_weights_to_neff=True):
    CALLS.append({"function": "trace", "example_shapes": [tuple(t.shape) for t in example_inputs],
                  "compiler_workdir": compiler_workdir, "compiler_args": compiler_args,
                  "inline_weights_to_neff": inline_weights_to_neff})
    if compiler_workdir is not None:
        os.makedirs(compiler_workdir, exist_ok=True)
        with open(os.path.join(compiler_workdir, "log-neuron-cc.txt"), "w") as log:
            log.write(f"neuronx-cc (stand-in) compile {compiler_args}\n")
    traced = torch.jit.trace(func, example_inputs, check_trace=False)
    _TRACED_BATCH[id(traced)] = example_inputs[0].shape[0]
    return traced


class _DynamicBatch(torch.nn.Module):
    def __init__(self, traced, batch_size: int):
        super().__init__()
        self.traced = traced
        self.batch_size = batch_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        outputs = []
        for start in range(0, input_ids.shape[0], self.batch_size):
            ids = input_ids[start:start + self.batch_size]
            mask = attention_mask[start:start + self.batch_size]
            rows = ids.shape[0]
            if rows < self.batch_size:
                ids = torch.cat([ids, ids[:1].expand(self.batch_size - rows, -1)])
                mask = torch.cat([mask, mask[:1].expand(self.batch_size - rows, -1)])
            outputs.append(self.traced(ids, mask)[:rows])
        return torch.cat(outputs)


def dynamic_batch(neuron_script):
    CALLS.append({"function": "dynamic_batch"})
    return torch.jit.script(_DynamicBatch(neuron_script, _TRACED_BATCH[id(neuron_script)]))
