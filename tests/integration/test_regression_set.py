"""The ner project with a regression set (40 rows of the shipped one), through the pytest pipeline in
this process, in one workspace (one compile): the set validated in two shards apart, the upload refusing
while a shard is missing and registering once they merge; the whole set at once carrying entity F1 1.0 and
every tensor; then a compiled model with one faulty shape falling below the F1 threshold, the verdict
naming its worst rows with their texts, and nothing new registered."""

from __future__ import annotations

import json
import shutil

import pytest

from mlcompile.registry.local import LocalRegistry

from ..conftest import REPO, fault_in_one_shape

pytestmark = pytest.mark.integration
SET = REPO / "tests" / "data" / "ner-regression.jsonl"
ENV = {"PROJECT": "ner", "COMPILER": "torchscript", "SEQUENCE_LENGTHS": "32,256", "REGRESSION_SET": SET,
       "REGRESSION_INVARIANCE_SAMPLE": "4"}


def test_ner_regression_set_in_shards_then_whole_then_with_a_faulty_shape(seeded_registries, tmp_path, in_process):
    shutil.copytree(seeded_registries["ner"], tmp_path / "registry")
    registry = LocalRegistry(tmp_path / "registry")
    outputs = tmp_path / "outputs"

    for shard in ("1/2", "2/2"):  # as two CI jobs do, each with the outputs of download and compile
        done = in_process.cli(tmp_path, "run", "--stage", "download", "--stage", "compile", "--stage", "validate",
                              REGRESSION_SHARD=shard, **ENV)
        assert done.returncode == 0, done.output
        assert "(40 rows)" in done.output  # the set, of which this shard validated its half
    halves = [json.loads((outputs / "validate-shards" / name / "verdict.json").read_text())
              for name in ("1-of-2", "2-of-2")]
    assert [h["results"]["regression-set::logits"]["details"]["rows"] for h in halves] == [20, 20]
    assert not (outputs / "validate").exists()  # no verdict over the whole set yet

    shutil.move(outputs / "validate-shards" / "2-of-2", tmp_path / "held-back")
    refused = in_process.cli(tmp_path, "run", "--stage", "upload", **ENV)
    assert refused.returncode == 1 and "missing shard 2/2 of 2" in refused.output, refused.output
    assert registry.list_versions("mlcompile/ner", "NER-COMPILED") == []
    shutil.move(tmp_path / "held-back", outputs / "validate-shards" / "2-of-2")
    merged = in_process.cli(tmp_path, "run", "--stage", "upload", **ENV)
    assert merged.returncode == 0, merged.output
    [version] = registry.list_versions("mlcompile/ner", "NER-COMPILED")
    files = registry.version_dir("mlcompile/ner", version.version_id) / "files"
    registered = json.loads((files / "validation" / "verdict.json").read_text())
    assert registered["results"]["regression-set::logits"]["details"]["rows"] == 40  # merged over the set
    assert "shard" not in registered["rules"]["regression"]
    shutil.rmtree(outputs / "validate-shards")

    whole = in_process.cli(tmp_path, "run", "--stage", "validate", **ENV)
    assert whole.returncode == 0, whole.output
    assert "validate: regression set ner-regression.jsonl (40 rows): entity_f1 1 (min 1) passed" in whole.output
    verdict = json.loads((outputs / "validate" / "verdict.json").read_text())
    f1 = verdict["results"]["regression-set::entity_f1"]
    assert f1["passed"] and f1["details"]["value"] == 1.0 and f1["details"]["worst_rows"] == []
    assert f1["details"]["totals"]["tp"] > 20  # the set has entities to agree on
    assert f1["details"]["totals"] == registered["results"]["regression-set::entity_f1"]["details"]["totals"]
    assert verdict["results"]["regression-set::invariance"]["details"]["rows"] == 4
    report = (outputs / "validate" / "report.html").read_text()
    assert "Regression set" in report and "rows per largest |diff|" in report

    # a compiler bug in the batched 32-token shape: logits negated, so the argmax (the entities) moves
    fault_in_one_shape(outputs / "compile", "bucket_32", scale=-1.0)
    faulty = in_process.cli(tmp_path, "run", "--stage", "validate", "--stage", "upload", **ENV)
    assert faulty.returncode == 1, faulty.output
    verdict = json.loads((outputs / "validate" / "verdict.json").read_text())
    f1 = verdict["results"]["regression-set::entity_f1"]
    assert not f1["passed"] and f1["details"]["value"] < 0.9
    worst = f1["details"]["worst_rows"]
    assert len(worst) == 5 and all(row["text"] and row["compiled"] != row["uncompiled"] for row in worst)
    assert "upload: refused" in faulty.output and "regression-set::entity_f1" in faulty.output
    assert [v.version_id for v in registry.list_versions("mlcompile/ner", "NER-COMPILED")] == [version.version_id]
