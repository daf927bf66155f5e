"""The four stages as separate pytest runs on the real demo model (in this process), as CI and users run
them; the gate's refusals with faked model work are in tests/unit/test_plugin.py."""

from __future__ import annotations

import json

import pytest
import torch

from mlcompile.artifacts import StageDir, read_json
from mlcompile.registry.local import LocalRegistry

from ..conftest import FEW_CASES, fault_in_one_shape


pytestmark = pytest.mark.integration
PROJECT = "mlcompile/keywords"


def compiled_versions(workspace):
    return LocalRegistry(workspace / "registry").list_versions(PROJECT, "KEYWORDS-COMPILED")


def test_stages_one_by_one_register_once_and_reuse(workspace, in_process):
    for stage in ("download", "compile", "validate", "upload"):
        done = in_process.pytest(workspace, "-m", stage, CASES_FILE=FEW_CASES)
        assert done.returncode == 0, done.output
    assert "upload: registered KEYWORDS-COMPILED-1" in done.output

    outputs = workspace / "outputs"
    compile_id = StageDir(outputs, "compile").load().content_id  # inputs and bytes of this build
    [version] = compiled_versions(workspace)
    assert version.version_id == "KEYWORDS-COMPILED-1"
    assert version.lifecycle == "staging"
    assert version.fingerprint == compile_id
    assert {"compiled/compiled.json", "compiled/model.pt",  # every shape a method of one file
            "validation/report.html", "validation/verdict.json"} <= set(version.files)
    lineage = version.card["lineage"]
    assert lineage["uncompiled_version"] == "KEYWORDS-TRAINED-1"
    assert lineage["compiler"] == "torchscript" and lineage["sequence_lengths"] == [16, 64, 256]
    assert version.card["library_versions"]["torch"] == torch.__version__
    # 3 stored cases with their recorded predictions (5 checks each), 3 cases (4 each), the coverage
    assert version.card["validation"]["passed"] and version.card["validation"]["checks"] == 3 * 5 + 3 * 4 + 3  # the cases' checks and the artifact's three
    assert read_json(outputs / "upload" / "registered.json")["version_id"] == "KEYWORDS-COMPILED-1"

    report = (outputs / "validate" / "report.html").read_text()
    assert "longer-than-compiled" in report and "margin" in report and "Coverage of the compiled artifact" in report
    verdict = read_json(outputs / "validate" / "verdict.json")
    assert verdict["summary"]["truncated_cases"] == ["longer-than-compiled"]

    # A warm re-run of the whole pipeline reuses every stage and registers nothing new.
    again = in_process.pytest(workspace, CASES_FILE=FEW_CASES)
    assert again.returncode == 0, again.output
    for line in ("download: reused", "compile: reused", "validate: reused the passed verdict",
                 "already registered, nothing new: KEYWORDS-COMPILED-1"):
        assert line in again.output
    assert len(compiled_versions(workspace)) == 1


def test_perturbed_compiled_model_fails_validation_and_blocks_upload_under_xdist(workspace, in_process):
    built = in_process.pytest(workspace, "-m", "download or compile")
    assert built.returncode == 0, built.output
    fault_in_one_shape(workspace / "outputs" / "compile", "bucket_256")  # the full batch of the largest bucket

    done = in_process.pytest(workspace, "-n", "2")  # the project's cases: none reaches a full batch at 256
    assert done.returncode == 1
    assert "upload refused: validation did not pass" in done.output
    assert "compiled-artifact::coverage: failed: 1 of 6 compiled executables differ" in done.output
    assert "upload: refused: validation did not pass" in done.output  # the run's summary
    assert compiled_versions(workspace) == []
    verdict = json.loads((workspace / "outputs" / "validate" / "verdict.json").read_text())
    assert verdict["summary"]["passed"] is False
    assert [e["executable"] for e in verdict["summary"]["coverage"] if not e["passed"]] == ["model.pt:bucket_256"]
    # the hole the coverage check closes: every case check passed, only the artifact's coverage did not
    assert [c for c, outcome in verdict["outcomes"].items() if outcome != "passed"] == ["compiled-artifact::coverage"]

    # A later upload-only run reads the published (failed) verdict and refuses too.
    later = in_process.pytest(workspace, "-m", "upload")
    assert later.returncode == 1 and "validation did not pass" in later.output
    assert compiled_versions(workspace) == []
