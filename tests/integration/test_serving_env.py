"""A registered ONNX classifier in a fresh environment that MLflow builds from the model's own requirements
(`--env-manager uv`): it installs (no mlcompile, no local torch version to find), carries its loader, has
no torch or transformers, and `mlflow models predict` and `mlflow models serve` answer what the pipeline
validation ran answers. Builds environments (about a minute each): run by `make test-serving` (-m
serving_env); `make test` deselects it (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from mlcompile import pyfunc
from mlcompile.artifacts import read_json

from ..conftest import free_port
from ..serving_env import BIN, distributions, importable, predict, prepare_env, size_mb, tool_env

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
        assert served(files, TEXTS[project], tmp_path / "envs") == expected


def served(files, texts: list[str], env_root) -> list[dict]:
    """`mlflow models serve --env-manager uv` (the env prepare_env built, found again), asked once."""
    port = free_port()
    server = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", str(files), "--env-manager", "uv",
                               "-h", "127.0.0.1", "-p", str(port), "-w", "1"], env=tool_env(env_root),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
                time.sleep(0.5)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
            data=json.dumps({"dataframe_records": [{"text": text} for text in texts]}).encode())
        return json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the scoring process it started
        server.wait(timeout=30)
