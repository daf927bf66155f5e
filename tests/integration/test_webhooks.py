"""Compile when a version is registered, against a real MLflow server: `mlcompile webhook create`, the receiver in a
thread running real `mlcompile run` subprocesses, and a trained version registered with nothing else done."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from mlcompile import webhooks
from mlcompile.registry.mlflow import MlflowRegistry
from mlcompile.settings import load_settings

from ..conftest import FEW_CASES, REPO, pipeline_env

pytestmark = pytest.mark.integration
SECRET = "webhook-integration-secret-5b1e"
# Models of their own: test_mlflow_pipeline.py registers KEYWORDS-TRAINED / KEYWORDS-COMPILED in the same server.
MODELS = {"UNCOMPILED_MODEL": "WEBHOOK-TRAINED", "UNCOMPILED_WITH_ID": "WEBHOOK-TRAINED-1",
          "COMPILED_MODEL": "WEBHOOK-COMPILED"}
PROJECT = "mlcompile/keywords"


def until(what: str, done, seconds: float, detail=lambda: ""):
    deadline = time.monotonic() + seconds
    while not (result := done()):
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}; {detail()}"
        time.sleep(0.2)
    return result


def post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())["detail"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["detail"]


def resigned(body: bytes, delivery_id: str) -> dict:
    timestamp = str(int(time.time()))
    return {"X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": timestamp,
            "X-MLflow-Signature": webhooks.signature(SECRET, delivery_id, timestamp, body)}


def test_a_registered_version_is_compiled_once_by_the_webhook_with_nothing_else_done(
        mlflow_server, tmp_path, in_process, monkeypatch, caplog):
    env = {"REGISTRY": "mlflow", "MLFLOW_TRACKING_URI": mlflow_server, "COMPILER": "onnx", "CASES_FILE": FEW_CASES,
           "WEBHOOK_SECRET": SECRET, **MODELS}
    # The receiver as `mlcompile webhook serve --project keywords` builds it under these settings: its runs are real
    # `mlcompile run` subprocesses in outputs of their own (tmp_path/outputs/webhook/<VERSION-ID>).
    environ = pipeline_env(tmp_path, **env)
    with monkeypatch.context() as patch:
        for key in list(os.environ):
            patch.delenv(key)
        for key, value in environ.items():
            patch.setenv(key, value)
        patch.chdir(REPO)
        receiver = webhooks.receiver_for(load_settings(), ["keywords"])
    assert receiver.projects == {"WEBHOOK-TRAINED": "keywords"}
    deliveries = []  # (headers, body, reply) of every request MLflow (or this test) sent
    handle = receiver.handle

    def recorded(headers, body):
        reply = handle(headers, body)
        deliveries.append((dict(headers.items()), body, reply))
        return reply

    receiver.handle = recorded
    server = webhooks.make_server(receiver, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    name = f"mlcompile-test-{uuid.uuid4().hex[:8]}"
    registry = MlflowRegistry(mlflow_server)
    log_file = tmp_path / "outputs" / "webhook" / "WEBHOOK-TRAINED-1.log"

    def run_log() -> str:
        return log_file.read_text()[-3000:] if log_file.is_file() else "(no run log)"

    try:
        with caplog.at_level(logging.INFO, logger="mlcompile.webhooks"):
            created = in_process.cli(tmp_path, "webhook", "create", "--url", url, "--name", name, **env)
            assert created.returncode == 0, created.output
            assert f"created webhook '{name}'" in created.output and f"model_version.created -> {url}" in created.output
            again = in_process.cli(tmp_path, "webhook", "create", "--url", url, "--name", name, **env)
            assert again.returncode == 0 and f"updated webhook '{name}'" in again.output, again.output
            assert [w.name for w in registry.client.list_webhooks(max_results=100) if w.name == name] == [name]

            # Only this: a trained version is registered.
            seeded = in_process.cli(tmp_path, "seed", "keywords", **env)
            assert seeded.returncode == 0 and "registered: WEBHOOK-TRAINED-1" in seeded.output, seeded.output

            [(headers, body, reply)] = until("MLflow's delivery of WEBHOOK-TRAINED-1", lambda: [
                d for d in deliveries if d[2].status == 202], 30, lambda: f"deliveries: {deliveries}")
            assert reply.detail == "queued WEBHOOK-TRAINED-1 (project keywords)"
            assert json.loads(body)["data"]["name"] == "WEBHOOK-TRAINED" and not receiver.idle()  # running

            # While it runs: the same event again (a new delivery id) is acknowledged, not queued; the captured
            # request replayed as it was, and a forged one, are refused.
            assert post(url, body, resigned(body, "redelivery-1")) == (
                200, "WEBHOOK-TRAINED-1 is already queued or running")
            status, detail = post(url, body, headers)
            assert status == 401 and "accepted before (a replayed delivery)" in detail
            status, detail = post(url, body, {**resigned(body, "forged-1"), "X-MLflow-Signature": "v1,Zm9yZ2Vk"})
            assert status == 401 and "the signature does not match" in detail

            until("the compile run", receiver.idle, 150, run_log)
            versions = [v.version_id for v in registry.list_versions(PROJECT, "WEBHOOK-COMPILED")]
            assert versions == ["WEBHOOK-COMPILED-1"], run_log()
            version = registry.get_version(PROJECT, "WEBHOOK-COMPILED-1")
            assert version.metadata["uncompiled_version"] == "WEBHOOK-TRAINED-1"
            # made from a LoggedModel (its model_id and metrics on the version page), with its datasets
            mv = registry.client.get_model_version("WEBHOOK-COMPILED", "1")
            logged = registry.client.get_logged_model(mv.source.removeprefix("models:/"))
            assert logged.model_id.startswith("m-") and logged.params["backend"] == "onnx"
            assert {m.key for m in logged.metrics} >= {"checks", "checks_passed", "cases"}
            assert "validation-cases" in {d.dataset.name for d in registry.client.get_run(mv.run_id).inputs.dataset_inputs}
            assert version.details.metric_datasets["checks_passed"] == "validation-cases"
            assert "upload: registered WEBHOOK-COMPILED-1" in log_file.read_text()
            # the compiled version's own registration fires the webhook too: acknowledged and ignored
            until("the compiled version's delivery", lambda: any(
                d[2].detail == "ignored: WEBHOOK-COMPILED is not compiled here" for d in deliveries), 15)

            # A later delivery of the same version runs again: every stage reused, nothing registered.
            assert post(url, body, resigned(body, "redelivery-2"))[0] == 202
            until("the second run", receiver.idle, 60, run_log)
            assert [v.version_id for v in registry.list_versions(PROJECT, "WEBHOOK-COMPILED")] == ["WEBHOOK-COMPILED-1"]
            assert "upload: already registered, nothing new: WEBHOOK-COMPILED-1" in log_file.read_text()
        logged = caplog.text
        assert "started mlcompile run for WEBHOOK-TRAINED-1 (project keywords" in logged
        assert logged.count("mlcompile run for WEBHOOK-TRAINED-1 ended with exit code 0") == 2
        assert "refused delivery 'forged-1': the signature does not match" in logged
        assert SECRET not in logged and SECRET not in run_log()
    finally:
        deleted = in_process.cli(tmp_path, "webhook", "delete", "--name", name, **env)
        server.shutdown()
        server.server_close()
        receiver.stop(5)
    assert deleted.returncode == 0 and f"deleted 1 webhook(s) named '{name}'" in deleted.output, deleted.output
    assert not [w for w in registry.client.list_webhooks(max_results=100) if w.name == name]
