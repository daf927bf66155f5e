"""The four stages as separate pytest runs against a temporary registry, as CI and users run them."""

from __future__ import annotations

import json

import pytest
import torch

from mlcompile.artifacts import MANIFEST, Stage, hash_tree, read_json, write_json_atomic
from mlcompile.registry.local import LocalRegistry

from ..conftest import run_pipeline

pytestmark = pytest.mark.integration
PROJECT = "mlcompile/keywords"


def compiled_versions(workspace):
    return LocalRegistry(workspace / "registry").list_versions(PROJECT, "KEYWORDS-COMPILED")


def test_stages_one_by_one_register_once_and_reuse(workspace):
    for stage in ("download", "compile"):
        done = run_pipeline(workspace, "-m", stage)
        assert done.returncode == 0, done.output
        assert f"{stage}: " in done.output, done.output

    # A verdict made under looser rules (tolerances, fewer cases) does not let the upload through.
    one_case = workspace / "one-case.json"
    one_case.write_text('[{"id": "only", "text": "Supervised learning maps inputs to outputs."}]')
    loose = run_pipeline(workspace, "-m", "validate", ATOL="0.5", RTOL="0.5", CASES_FILE=one_case)
    assert loose.returncode == 0, loose.output
    refused = run_pipeline(workspace, "-m", "upload")
    assert refused.returncode == 1
    assert "the validation verdict was made under other rules than the current settings call for" in refused.output
    assert "ATOL: 0.5 in the verdict, 0.001 now" in refused.output
    assert "cases the verdict did not check: supervised-learning-en, long-document" in refused.output
    assert "cases checked that the current cases do not have: only" in refused.output
    assert compiled_versions(workspace) == []

    for stage in ("validate", "upload"):
        done = run_pipeline(workspace, "-m", stage)
        assert done.returncode == 0, done.output
    assert "upload: registered KEYWORDS-COMPILED-1" in done.output

    outputs = workspace / "outputs"
    compile_id = Stage(outputs, "compile").load().content_id  # inputs and bytes of this build
    [version] = compiled_versions(workspace)
    assert version.version_id == "KEYWORDS-COMPILED-1"
    assert version.lifecycle == "staging"
    assert version.fingerprint == compile_id
    assert {"compiled/compiled.json", "compiled/bucket-16.pt", "compiled/bucket-64.pt", "compiled/bucket-256.pt",
            "validation/report.html", "validation/verdict.json"} <= set(version.files)
    lineage = version.card["lineage"]
    assert lineage["uncompiled_version"] == "KEYWORDS-TRAINED-1"
    assert lineage["compiler"] == "torchscript" and lineage["sequence_lengths"] == [16, 64, 256]
    assert version.card["library_versions"]["torch"] == torch.__version__
    assert version.card["validation"]["passed"] and version.card["validation"]["checks"] >= 40
    assert read_json(outputs / "upload" / "registered.json")["version_id"] == "KEYWORDS-COMPILED-1"

    report = (outputs / "validate" / "report.html").read_text()
    assert "longer-than-compiled" in report and "margin" in report
    verdict = read_json(outputs / "validate" / "verdict.json")
    assert verdict["summary"]["truncated_cases"] == ["longer-than-compiled"]

    # A warm re-run of the whole pipeline reuses every stage and registers nothing new.
    again = run_pipeline(workspace)
    assert again.returncode == 0, again.output
    for line in ("download: reused", "compile: reused", "validate: reused the passed verdict",
                 "already registered, nothing new: KEYWORDS-COMPILED-1"):
        assert line in again.output
    assert len(compiled_versions(workspace)) == 1

    # Recompiling with other settings invalidates the verdict: upload refuses until validated again.
    recompiled = run_pipeline(workspace, "-m", "compile", BATCH_SIZE=4)
    assert recompiled.returncode == 0, recompiled.output
    refused = run_pipeline(workspace, "-m", "upload", BATCH_SIZE=4)
    assert refused.returncode == 1
    assert "recompiled since it was validated" in refused.output
    # The summary says what this run did, not what an earlier run recorded.
    assert "upload: refused: the validation verdict is for another compiled artifact" in refused.output
    assert "already registered" not in refused.output
    assert len(compiled_versions(workspace)) == 1


def perturb_compiled_model(outputs, scale: float = 1.3, files: str = "bucket-256.pt") -> None:
    """Simulate a faulty compiler: scale the last layer's weights in `files` and re-seal the
    manifest, so the artifact verifies but computes something else. By default only the full
    batch of the largest bucket, which no case alone reaches: the artifact's coverage check must."""
    compiled = outputs / "compile"
    for bucket in compiled.glob(files):
        module = torch.jit.load(str(bucket))
        with torch.no_grad():
            for name, param in module.named_parameters():
                if "layer.5.output.dense.weight" in name:
                    param.mul_(scale)
        torch.jit.save(module, str(bucket))
    manifest = read_json(compiled / MANIFEST)
    manifest["files"] = hash_tree(compiled, exclude=(MANIFEST,))
    write_json_atomic(compiled / MANIFEST, manifest)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_perturbed_compiled_model_fails_validation_and_blocks_upload(workspace, workers):
    built = run_pipeline(workspace, "-m", "download or compile")
    assert built.returncode == 0, built.output
    perturb_compiled_model(workspace / "outputs")

    done = run_pipeline(workspace, "-n", workers)
    assert done.returncode == 1
    assert "upload refused: validation did not pass" in done.output
    assert "compiled-artifact::coverage: failed: 1 of 6 compiled executables differ" in done.output
    assert "upload: refused: validation did not pass" in done.output  # the run's summary
    assert compiled_versions(workspace) == []
    verdict = json.loads((workspace / "outputs" / "validate" / "verdict.json").read_text())
    assert verdict["summary"]["passed"] is False
    assert [e["executable"] for e in verdict["summary"]["coverage"] if not e["passed"]] == ["bucket-256.pt"]

    # A later upload-only run reads the published (failed) verdict and refuses too.
    later = run_pipeline(workspace, "-m", "upload")
    assert later.returncode == 1 and "validation did not pass" in later.output
    assert compiled_versions(workspace) == []


def test_upload_without_any_validation_is_refused(workspace):
    done = run_pipeline(workspace, "-m", "upload")
    assert done.returncode == 1
    assert "no validation verdict" in done.output
    assert compiled_versions(workspace) == []
