"""The ner project with a regression set (40 rows of the shipped one), through the pytest pipeline in
this process: the clean compiled model agrees on every entity (F1 1.0) and every tensor; a compiled
model with one faulty shape falls below the F1 threshold, the verdict names its worst rows with their
texts, and nothing is registered."""

from __future__ import annotations

import json
import shutil

import pytest

from mlcompile.registry.local import LocalRegistry

from ..conftest import REPO, fault_in_one_shape

pytestmark = pytest.mark.integration
SET = REPO / "tests" / "data" / "ner-regression.jsonl"


def test_ner_regression_set_carries_f1_and_blocks_a_faulty_model(seeded_registries, tmp_path, in_process):
    shutil.copytree(seeded_registries["ner"], tmp_path / "registry")
    env = {"PROJECT": "ner", "COMPILER": "torchscript", "SEQUENCE_LENGTHS": "32,256", "REGRESSION_SET": SET,
           "REGRESSION_INVARIANCE_SAMPLE": "4"}
    clean = in_process.cli(tmp_path, "run", "--stage", "download", "--stage", "compile", "--stage", "validate", **env)
    assert clean.returncode == 0, clean.output
    assert "validate: regression set ner-regression.jsonl (40 rows): entity_f1 1 (min 1) passed" in clean.output
    verdict = json.loads((tmp_path / "outputs" / "validate" / "verdict.json").read_text())
    f1 = verdict["results"]["regression-set::entity_f1"]
    assert f1["passed"] and f1["details"]["value"] == 1.0 and f1["details"]["worst_rows"] == []
    assert f1["details"]["totals"]["tp"] > 20  # the set has entities to agree on
    assert verdict["results"]["regression-set::logits"]["details"]["rows"] == 40
    assert verdict["results"]["regression-set::invariance"]["details"]["rows"] == 4
    report = (tmp_path / "outputs" / "validate" / "report.html").read_text()
    assert "Regression set" in report and "rows per largest |diff|" in report

    # a compiler bug in the batched 32-token shape: logits negated, so the argmax (the entities) moves
    fault_in_one_shape(tmp_path / "outputs" / "compile", "bucket_32", scale=-1.0)
    faulty = in_process.cli(tmp_path, "run", "--stage", "validate", "--stage", "upload", **env)
    assert faulty.returncode == 1, faulty.output
    verdict = json.loads((tmp_path / "outputs" / "validate" / "verdict.json").read_text())
    f1 = verdict["results"]["regression-set::entity_f1"]
    assert not f1["passed"] and f1["details"]["value"] < 0.9
    worst = f1["details"]["worst_rows"]
    assert len(worst) == 5 and all(row["text"] and row["compiled"] != row["reference"] for row in worst)
    assert "upload: refused" in faulty.output and "regression-set::entity_f1" in faulty.output
    assert LocalRegistry(tmp_path / "registry").list_versions("mlcompile/ner", "NER-COMPILED") == []
