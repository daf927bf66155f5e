"""Long steps say what they do: a line at the start, a heartbeat while running (from the innermost step
only), the elapsed time at the end, and a failure said as such."""

from __future__ import annotations

import time

import pytest

from mlcompile import progress

pytestmark = pytest.mark.unit


@pytest.fixture
def lines(monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(progress, "sink", said.append)
    return said


def test_a_step_says_its_start_a_heartbeat_and_its_time(lines):
    with progress.step("compile onnx", heartbeat=0.05):
        with progress.step("  onnx: export", heartbeat=0.05):
            time.sleep(0.18)
    assert lines[0] == "compile onnx ..." and lines[1] == "  onnx: export ..."
    beats = [line for line in lines if "still running" in line]
    assert beats and all(line.startswith("  onnx: export: still running") for line in beats)  # innermost only
    assert lines[-2].startswith("  onnx: export: 0.") and lines[-1].startswith("compile onnx: 0.")


def test_a_failing_step_says_it_failed(lines):
    with pytest.raises(RuntimeError), progress.step("quantize", heartbeat=10):
        raise RuntimeError("boom")
    assert lines[-1].startswith("quantize: failed after")
    assert progress._running == []  # no stale step left to silence the next one's heartbeat
