"""The full keywords pipeline against a real MLflow server on 127.0.0.1."""

from __future__ import annotations

import pytest

from mlcompile.registry.mlflow import MlflowRegistry

from ..conftest import FEW_CASES


pytestmark = pytest.mark.integration


def test_pipeline_registers_in_mlflow_with_lineage_and_only_once(mlflow_server, tmp_path, in_process):
    # onnx: one 92 MB file to upload, where TorchScript's six files hold 550 MB
    env = {"REGISTRY": "mlflow", "MLFLOW_TRACKING_URI": mlflow_server, "COMPILER": "onnx", "CASES_FILE": FEW_CASES}
    seeded = in_process.cli(tmp_path, "seed", "keywords", **env)
    assert seeded.returncode == 0, seeded.output
    assert f"registered: KEYWORDS-TRAINED-1 in project 'mlcompile/keywords' of the mlflow registry at {mlflow_server}" \
        in seeded.output

    first = in_process.cli(tmp_path, "run", **env)
    assert first.returncode == 0, first.output
    assert "upload: registered KEYWORDS-COMPILED-1 (lifecycle staging) in the mlflow registry http://127.0.0.1:" in first.output

    registry = MlflowRegistry(mlflow_server)
    version = registry.get_version("mlcompile/keywords", "KEYWORDS-COMPILED-1")
    assert version.lifecycle == "staging"  # an MLflow alias
    assert version.metadata["uncompiled_version"] == "KEYWORDS-TRAINED-1"  # lineage as version tags
    assert version.metadata["compiler"] == "onnx" and version.metadata["validation_passed"] == "true"
    assert version.card["lineage"]["uncompiled_project"] == "mlcompile/keywords"
    assert {"validation/report.html", "compiled/compiled.json"} <= set(version.files)
    alias = registry.client.get_model_version_by_alias("KEYWORDS-COMPILED", "staging")
    assert alias.version == "1"

    second = in_process.cli(tmp_path, "run", **env)
    assert second.returncode == 0, second.output
    assert "already registered, nothing new: KEYWORDS-COMPILED-1" in second.output
    assert [v.version_id for v in registry.list_versions("mlcompile/keywords", "KEYWORDS-COMPILED")] == [
        "KEYWORDS-COMPILED-1"]
