"""The full keywords pipeline against a real MLflow server on 127.0.0.1, and the registered version as an
MLflow user meets it: loaded by alias with the MLflow client alone, served by `mlflow models serve`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcompile import pyfunc
from mlcompile.artifacts import read_json
from mlcompile.registry.mlflow import MlflowRegistry

from ..conftest import FEW_CASES
from ..serving_env import BIN, served


pytestmark = pytest.mark.integration
MODEL = "KEYWORDS-COMPILED"


def assert_same_predictions(served: dict, expected: dict):
    assert served["keywords"] == expected["keywords"] and served["text_info"] == expected["text_info"]
    np.testing.assert_array_equal(served["embedding"], expected["embedding"])


def test_pipeline_registers_in_mlflow_with_lineage_only_once_and_only_when_validated(
        mlflow_server, tmp_path, in_process, monkeypatch):
    # onnx: one 92 MB file to upload, where TorchScript's six files hold 550 MB
    env = {"REGISTRY": "mlflow", "MLFLOW_TRACKING_URI": mlflow_server, "COMPILER": "onnx", "CASES_FILE": FEW_CASES}
    seeded = in_process.cli(tmp_path, "seed", "keywords", **env)
    assert seeded.returncode == 0, seeded.output
    assert f"registered: KEYWORDS-TRAINED-1 in project 'mlcompile/keywords' of the mlflow registry at {mlflow_server}" \
        in seeded.output

    refused = in_process.cli(tmp_path, "run", **{**env, "ATOL": "1e-12", "RTOL": "0"})
    assert refused.returncode == 1, refused.output
    registry = MlflowRegistry(mlflow_server)
    assert registry.list_versions("mlcompile/keywords", MODEL) == []  # a failed validation is never a model

    first = in_process.cli(tmp_path, "run", **env)
    assert first.returncode == 0, first.output
    assert "upload: registered KEYWORDS-COMPILED-1 (lifecycle staging) in the mlflow registry http://127.0.0.1:" \
        in first.output
    version = registry.get_version("mlcompile/keywords", "KEYWORDS-COMPILED-1")
    assert version.lifecycle == "staging"  # an MLflow alias
    assert version.metadata["uncompiled_version"] == "KEYWORDS-TRAINED-1"  # lineage as version tags
    assert version.metadata["uncompiled_model_uri"] == "models:/KEYWORDS-TRAINED/1"  # in the same server
    assert version.metadata["compiler"] == "onnx" and version.metadata["validation_passed"] == "true"
    assert version.card["lineage"]["uncompiled_project"] == "mlcompile/keywords"
    assert {"validation/report.html", "compiled/compiled.json", "MLmodel"} <= set(version.files)
    alias = registry.client.get_model_version_by_alias(MODEL, "staging")
    assert alias.version == "1"

    second = in_process.cli(tmp_path, "run", **env)
    assert second.returncode == 0, second.output
    assert "already registered, nothing new: KEYWORDS-COMPILED-1" in second.output
    assert [v.version_id for v in registry.list_versions("mlcompile/keywords", MODEL)] == ["KEYWORDS-COMPILED-1"]

    # As an MLflow user meets it, with the client alone aimed at the server by MLFLOW_TRACKING_URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    compiled = pyfunc.load(tmp_path / "outputs" / "compile").pipeline  # the pipeline the validate stage ran
    card_params = read_json(tmp_path / "outputs" / "compile" / "model_card.json")["inference_params"]
    loads_by_alias_and_predicts_the_cases(compiled, card_params, tmp_path / "alias")
    its_page_says_what_produced_it(read_json(tmp_path / "outputs" / "validate" / "verdict.json"))
    mlflow_models_serve_answers_a_case(compiled, card_params, tmp_path / "serve")


def loads_by_alias_and_predicts_the_cases(compiled, card_params, scratch: Path):
    import mlflow.pyfunc

    scratch.mkdir()

    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@staging", dst_path=str(scratch))
    for case in read_json(FEW_CASES):
        params = case.get("params", {})
        [served] = model.predict(pd.DataFrame({"text": [case["text"]]}), params=params or None)
        assert_same_predictions(served, compiled.predict(case["text"], {**card_params, **params}))
    assert model.metadata.get_params_schema().to_dict()[2] == {"name": "top_n", "type": "long", "default": 3,
                                                                "shape": None}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(scratch))  # MLflow downloads the whole model there to read one file
        required = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{MODEL}@staging")).read_text().splitlines()
    assert any(line.startswith("onnxruntime==") for line in required)
    # mlcompile's own call reaches the same pipeline through the URI, and leaves no download behind
    with tempfile.TemporaryDirectory() as scratch:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tempfile, "tempdir", scratch)
            [loaded] = pyfunc.load(f"models:/{MODEL}@staging").predict(["compiled models"])
        assert loaded["keywords"] == compiled.predict("compiled models", card_params)["keywords"]
        assert not list(Path(scratch).iterdir())


def its_page_says_what_produced_it(verdict: dict):
    from mlflow import MlflowClient

    client = MlflowClient()
    version = client.get_model_version_by_alias(MODEL, "staging")
    run = client.get_run(version.run_id)
    assert "compiled from KEYWORDS-TRAINED-1 (models:/KEYWORDS-TRAINED/1) by onnx" in version.description
    assert 'mlflow.pyfunc.load_model("models:/KEYWORDS-COMPILED@staging")' in version.description
    assert "checks passed over" in run.data.tags["mlflow.note.content"]
    assert "after every validation check" in client.get_registered_model(MODEL).description
    assert {"backend": "onnx", "precision": "fp32", "uncompiled_version": "KEYWORDS-TRAINED-1"}.items() \
        <= run.data.params.items()
    assert run.data.params["version.onnxruntime"] and run.data.params["compiler.opset"] == "17"
    metrics = run.data.metrics
    assert metrics["checks_passed"] == metrics["checks"] == len(verdict["rules"]["checks"])
    assert metrics["cases"] == len(verdict["rules"]["cases"]) == 6  # the version's 3 stored, the file's 3
    assert 0 < metrics["smallest_margin"] <= metrics["smallest_margin.embedding"]
    assert 0 <= metrics["largest_difference.embedding"] < 1e-3  # within ATOL
    # made from a LoggedModel: the version page shows its model_id, parameters and metrics, each metric
    # linked to the dataset it was measured on, which the run lists as its input
    assert version.source.startswith("models:/m-")
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == version.run_id and logged.params["backend"] == "onnx"
    inputs = {given.dataset.name: given.dataset for given in run.inputs.dataset_inputs}
    assert json.loads(inputs["validation-cases"].profile)["num_rows"] == metrics["cases"]
    linked = {metric.key: (metric.dataset_name, metric.dataset_digest) for metric in logged.metrics}
    assert linked["checks_passed"] == ("validation-cases", inputs["validation-cases"].digest)
    regression = verdict["rules"]["regression"]
    if regression:
        assert inputs["regression-set"].digest == regression["sha256"][:32]
        assert all(linked[key] == ("regression-set", inputs["regression-set"].digest)
                   for key in metrics if key.startswith("regression."))


def mlflow_models_serve_answers_a_case(compiled, card_params, scratch: Path):
    text = read_json(FEW_CASES)[0]["text"]
    # MLflow starts `uvicorn` from PATH: the venv's; it downloads the model under TMPDIR and leaves it there
    scratch.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{BIN}:{os.environ['PATH']}", "TMPDIR": str(scratch)}
    [answer] = served(f"models:/{MODEL}@staging", [text], "local", env, 90)
    assert_same_predictions(answer, compiled.predict(text, card_params))
