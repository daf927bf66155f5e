"""A registered ONNX classifier in a fresh environment that MLflow builds from the model's own requirements
(`--env-manager uv`): it installs (no mlcompile, no local torch version to find), carries its loader, has
no torch or transformers, and `mlflow models predict` and `mlflow models serve` answer what the pipeline
validation ran answers. Builds environments (about a minute each): run by `make test-serving` (-m
serving_env); `make test` deselects it (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from mlcompile import pyfunc
from mlcompile.artifacts import read_json

from ..serving_env import distributions, importable, predict, prepare_env, served, size_mb, tool_env

pytestmark = pytest.mark.serving_env
MODELS = {"ner": "NER", "sentiment": "SEN"}
TEXTS = {"ner": ["Angela Merkel visited Siemens in Munich and loved it.", "", "Google HQ is in Mountain View, CA"],
         "sentiment": ["I love you", "I hate you", "Just ok", ""]}


@pytest.mark.parametrize("project", ["sentiment", "ner"])
def test_an_onnx_classifier_serves_from_its_own_requirements_without_torch(
        project, seeded_registries, tmp_path, in_process, capsys):
    shutil.copytree(seeded_registries[project], tmp_path / "registry")
    done = in_process.cli(tmp_path, "run", PROJECT=project, COMPILER="onnx")
    assert done.returncode == 0, done.output
    files = tmp_path / "registry" / "mlcompile" / project / f"{MODELS[project]}-COMPILED" / \
        f"{MODELS[project]}-COMPILED-1" / "files"
    required = (files / "requirements.txt").read_text().split()
    assert [line.split("==")[0] for line in required] == ["mlflow-skinny", "numpy", "onnxruntime", "pandas",
                                                          "tokenizers"]
    assert (files / "code" / "mlcompile" / "serving" / "__init__.py").is_file()

    env, seconds = prepare_env(files, tmp_path / "envs")
    assert importable(env) == {"torch": False, "transformers": False, "sentence_transformers": False,
                               "keybert": False}
    assert "mlcompile" not in distributions(env)  # the loader came with the model (code/)
    with capsys.disabled():
        print(f"\n{project}: serving env built in {seconds:.0f} s, {size_mb(env)} MB, "
              f"{len(distributions(env))} distributions")

    validated = pyfunc.load(tmp_path / "outputs" / "compile")  # the loader the validate stage ran
    params = read_json(tmp_path / "outputs" / "compile" / "model_card.json").get("inference_params") or None
    expected = json.loads(json.dumps(validated.predict(TEXTS[project], params)))
    assert predict(files, TEXTS[project], params, tmp_path, tmp_path / "envs") == expected
    if project == "sentiment":
        # `mlflow models serve` finds the env prepare_env built
        assert served(str(files), TEXTS[project], "uv", tool_env(tmp_path / "envs"), 180) == expected

