"""The plain-script steps `bench --overhead` times the pytest pipeline against: the same work,
the same gate, a registered version."""

from __future__ import annotations

import json

import pytest

from mlcompile import overhead

from ..conftest import FEW_CASES, SMALL_SHAPES

pytestmark = pytest.mark.integration


def test_plain_steps_validate_every_check_and_register_once(workspace, in_process):
    done = in_process._run(workspace, lambda: overhead.main() or 0,
                           {"CASES_FILE": FEW_CASES, "COMPILER": "onnx", **SMALL_SHAPES})
    assert done.returncode == 0 and "KEYWORDS-COMPILED-1" in done.output.splitlines(), done.output
    assert "compile onnx [1/1] ..." in done.output and "  onnx: export: " in done.output  # said as it happens
    verdict = json.loads((workspace / "outputs" / "validate" / "verdict.json").read_text())
    assert verdict["summary"]["passed"] and set(verdict["outcomes"]) == set(verdict["rules"]["checks"])
    again = in_process._run(workspace, lambda: overhead.main() or 0,
                            {"CASES_FILE": FEW_CASES, "COMPILER": "onnx", **SMALL_SHAPES})
    assert "KEYWORDS-COMPILED-1" in again.output.splitlines()  # reused, nothing new registered
    assert not (workspace / "registry" / "mlcompile" / "keywords" / "KEYWORDS-COMPILED" / "KEYWORDS-COMPILED-2").exists()
