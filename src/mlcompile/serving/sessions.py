"""ONNX Runtime sessions as mlcompile's ONNX backend loads them (compilers/onnx.py, `OnnxCompiler.load`):
all graph optimizations, sequential execution, one inter-op thread, no spinning, `threads` intra-op
threads (None: ONNX Runtime's default), CPU provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUTS = ("input_ids", "attention_mask")


def session_options(threads: int | None = None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    # idle threads sleep instead of spinning: no CPU taken from other work between calls
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


def load_session(path: Path, threads: int | None = None):
    """`(input_ids, attention_mask) -> first output` over one ONNX file."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])

    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {INPUTS[0]: input_ids, INPUTS[1]: attention_mask})[0])

    run.session = session  # type: ignore[attr-defined]
    return run
