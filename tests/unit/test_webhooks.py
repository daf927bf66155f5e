"""The webhook receiver without a server: signatures, replay, the filter, one run per version at a time, the GitHub
dispatch against a local stub, and secrets kept out of logs and reprs."""

from __future__ import annotations

import json
import logging
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from filelock import FileLock
from pydantic import SecretStr

from mlcompile import cli, webhooks
from mlcompile.errors import ConfigError
from mlcompile.settings import load_settings
from mlcompile.webhooks import GitHubDispatch, Job, LocalRun, Receiver, make_server, signature

pytestmark = pytest.mark.unit
SECRET = "s3cret-webhook-sentinel-7f3a"
TOKEN = "ghp_token-sentinel-91c2"
NOW = 1_760_000_000


def payload(name="KEYWORDS-TRAINED", version="3", entity="model_version", action="created") -> bytes:
    return json.dumps({"entity": entity, "action": action, "timestamp": "2025-10-09T08:53:20+00:00",
                       "data": {"name": name, "version": version, "source": "models:/m-1", "run_id": "r1",
                                "tags": {}, "description": None}}).encode()


def signed(body: bytes, delivery="d-1", timestamp=NOW, secret=SECRET) -> dict:
    return {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": str(timestamp),
            "X-MLflow-Signature": signature(secret, delivery, str(timestamp), body)}


class Runs:
    """A runner that records jobs and, when told to, holds each until released."""

    def __init__(self, hold=False):
        self.jobs, self.started, self.release = [], threading.Event(), threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, job):
        self.jobs.append(job)
        self.started.set()
        assert self.release.wait(10)
        return 0


def receiver(run=None, clock=lambda: NOW, **kwargs) -> Receiver:
    return Receiver(SecretStr(SECRET), {"KEYWORDS-TRAINED": "keywords", "NER-TRAINED": "ner"}, run or Runs(),
                    clock=clock, **kwargs)


def wait_idle(hooks: Receiver):
    for _ in range(200):
        if hooks.idle():
            return
        threading.Event().wait(0.05)
    raise AssertionError("the worker did not finish")


def test_the_signature_is_mlflows_own():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = payload()
    assert signature(SECRET, "d-1", "123", body) == _generate_hmac_signature(SECRET, "d-1", "123", body.decode())


def test_a_signed_delivery_is_queued_and_answered_202():
    hooks = receiver()
    reply = hooks.handle(signed(payload()), payload())
    assert (reply.status, reply.detail) == (202, "queued KEYWORDS-TRAINED-3 (project keywords)")


@pytest.mark.parametrize("headers, reason", [
    (lambda body: {}, "no X-MLflow-Signature header"),
    (lambda body: {**signed(body), "X-MLflow-Signature": "v1,AAAA"}, "the signature does not match"),
    (lambda body: signed(body, secret="another secret"), "the signature does not match"),
    (lambda body: {**signed(body), "X-MLflow-Delivery-Id": "d-2"}, "the signature does not match"),  # id re-used
    (lambda body: signed(body, timestamp=NOW - 301), "outside the 300 s replay window"),
    (lambda body: signed(body, timestamp=NOW + 400), "outside the 300 s replay window"),
    (lambda body: {k: v for k, v in signed(body).items() if k != "X-MLflow-Timestamp"}, "no X-MLflow-Timestamp"),
], ids=["missing", "forged", "other-secret", "other-delivery-id", "stale", "future", "no-timestamp"])
def test_unsigned_forged_and_stale_deliveries_are_refused_401(headers, reason, caplog):
    body, runs = payload(), Runs()
    hooks = receiver(runs)
    with caplog.at_level(logging.INFO, logger="mlcompile.webhooks"):
        reply = hooks.handle(headers(body), body)
    assert reply.status == 401 and reason in reply.detail
    assert "refused delivery" in caplog.text and reason in caplog.text
    hooks.start()
    hooks.stop(5)
    assert runs.jobs == []


def test_a_replayed_delivery_id_is_refused_and_a_tampered_body_too(caplog):
    hooks = receiver()
    body = payload()
    assert hooks.handle(signed(body), body).status == 202
    with caplog.at_level(logging.WARNING, logger="mlcompile.webhooks"):
        replay = hooks.handle(signed(body), body)
    assert replay.status == 401 and "accepted before (a replayed delivery)" in replay.detail
    assert "refused delivery 'd-1': this delivery id was accepted before" in caplog.text
    tampered = payload(version="4")
    assert hooks.handle(signed(body, delivery="d-3"), tampered).status == 401


def test_other_events_and_other_models_are_acknowledged_and_ignored(caplog):
    runs = Runs()
    hooks = receiver(runs)
    with caplog.at_level(logging.INFO, logger="mlcompile.webhooks"):
        other_event = payload(entity="registered_model", action="created")
        compiled = payload(name="KEYWORDS-COMPILED")  # the pipeline's own registration fires an event too
        replies = [hooks.handle(signed(other_event, "d-1"), other_event),
                   hooks.handle(signed(compiled, "d-2"), compiled)]
    assert [(r.status, r.detail) for r in replies] == [(200, "ignored: registered_model.created"),
                                                       (200, "ignored: KEYWORDS-COMPILED is not compiled here")]
    assert "'registered_model.created' ignored (only model_version.created starts a compile)" in caplog.text
    assert ("KEYWORDS-COMPILED-3 ignored: not the UNCOMPILED_MODEL of a served project "
            "(KEYWORDS-TRAINED of keywords, NER-TRAINED of ner)") in caplog.text
    garbage = b'{"entity": "model_version"}'
    assert hooks.handle(signed(garbage, "d-3"), garbage).status == 400
    hooks.start()
    hooks.stop(5)
    assert runs.jobs == []


def test_a_version_queued_or_running_is_not_queued_again_and_a_later_delivery_runs_again(caplog):
    runs = Runs(hold=True)
    hooks = receiver(runs)
    hooks.start()
    body, ner = payload(), payload(name="NER-TRAINED", version="1")
    with caplog.at_level(logging.INFO, logger="mlcompile.webhooks"):
        assert hooks.handle(signed(body, "d-1"), body).status == 202
        assert runs.started.wait(5)  # running
        again = hooks.handle(signed(body, "d-2"), body)
        assert hooks.handle(signed(ner, "d-3"), ner).status == 202  # another version queues behind it
        queued_again = hooks.handle(signed(ner, "d-4"), ner)
    assert (again.status, again.detail) == (200, "KEYWORDS-TRAINED-3 is already queued or running")
    assert (queued_again.status, queued_again.detail) == (200, "NER-TRAINED-1 is already queued or running")
    assert "delivery 'd-2': KEYWORDS-TRAINED-3 is already queued or running; not queued again" in caplog.text
    runs.release.set()
    wait_idle(hooks)
    assert [job.version_id for job in runs.jobs] == ["KEYWORDS-TRAINED-3", "NER-TRAINED-1"]  # arrival order, once each
    assert hooks.handle(signed(body, "d-5"), body).status == 202  # a later delivery: runs again
    wait_idle(hooks)
    hooks.stop(5)
    assert [job.delivery_id for job in runs.jobs] == ["d-1", "d-3", "d-5"]


def test_a_version_another_receiver_on_this_host_runs_is_not_started(tmp_path, caplog):
    runs = Runs()
    hooks = receiver(runs, lock_dir=tmp_path)
    hooks.start()
    body = payload()
    with FileLock(str(tmp_path / "KEYWORDS-TRAINED-3.lock")), \
            caplog.at_level(logging.INFO, logger="mlcompile.webhooks"):
        assert hooks.handle(signed(body), body).status == 202
        wait_idle(hooks)
    hooks.stop(5)
    assert runs.jobs == [] and "KEYWORDS-TRAINED-3 is running in another receiver on this host" in caplog.text


def test_local_run_is_mlcompile_run_for_that_version_in_outputs_of_its_own(tmp_path, caplog):
    run = LocalRun(tmp_path / "webhook", environ={"WEBHOOK_SECRET": SECRET, "WEBHOOK_GITHUB_TOKEN": TOKEN,
                                                  "REGISTRY": "mlflow", "UNCOMPILED_PATH": "/x"}, cwd=tmp_path)
    job = Job("keywords", "KEYWORDS-TRAINED", 3, "d-1")
    assert run.command()[1:] == ["-m", "mlcompile.cli", "run"]
    assert run.environment(job) == {"REGISTRY": "mlflow", "PROJECT": "keywords", "UNCOMPILED_MODEL": "KEYWORDS-TRAINED",
                                    "UNCOMPILED_WITH_ID": "KEYWORDS-TRAINED-3", "UNCOMPILED_PATH": "",
                                    "OUTPUTS_DIR": str(tmp_path / "webhook" / "KEYWORDS-TRAINED-3")}
    script = "import os; print('upload: already registered, nothing new: ' + os.environ['UNCOMPILED_WITH_ID']); exit(3)"
    run.command = lambda: [sys.executable, "-c", script]
    with caplog.at_level(logging.INFO, logger="mlcompile.webhooks"):
        assert run(job) == 3
    assert "started mlcompile run for KEYWORDS-TRAINED-3 (project keywords, delivery 'd-1')" in caplog.text
    assert ("mlcompile run for KEYWORDS-TRAINED-3 ended with exit code 3 in 0 s (upload: already registered, nothing "
            "new: KEYWORDS-TRAINED-3)") in caplog.text
    assert "UNCOMPILED_WITH_ID=KEYWORDS-TRAINED-3" in (tmp_path / "webhook" / "KEYWORDS-TRAINED-3.log").read_text()


class GitHubStub:
    """A local stand-in for api.github.com: records each request, answers `status`."""

    def __init__(self, status=204):
        self.requests, stub = [], self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.requests.append((self.path, dict(self.headers), json.loads(body)))
                answer = b"" if status == 204 else b'{"message": "Resource not accessible by personal access token"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_github_dispatch_is_a_workflow_dispatch_of_compile_yaml_with_the_version(caplog):
    stub = GitHubStub()
    try:
        dispatch = GitHubDispatch("my-org/mlcompile", "main", SecretStr(TOKEN), api=stub.url + "/")
        with caplog.at_level(logging.DEBUG, logger="mlcompile.webhooks"):
            assert dispatch(Job("ner", "NER-TRAINED", 7, "d-1")) == 0
    finally:
        stub.close()
    [(path, headers, body)] = stub.requests
    assert path == "/repos/my-org/mlcompile/actions/workflows/compile.yaml/dispatches"
    assert body == {"ref": "main", "inputs": {"project": "ner", "model": "NER-TRAINED", "version": "7"}}
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["Accept"] == "application/vnd.github+json"
    assert headers["X-Github-Api-Version"] == "2022-11-28"
    assert "dispatched NER-TRAINED-7 (project ner) to my-org/mlcompile compile.yaml at main: HTTP 204" in caplog.text
    assert TOKEN not in caplog.text and TOKEN not in repr(dispatch)


def test_a_refused_dispatch_names_the_setting_to_fix_and_never_the_token(caplog):
    stub = GitHubStub(status=403)
    try:
        dispatch = GitHubDispatch("my-org/mlcompile", "main", SecretStr(TOKEN), api=stub.url)
        with caplog.at_level(logging.DEBUG, logger="mlcompile.webhooks"):
            assert dispatch(Job("ner", "NER-TRAINED", 7, "d-1")) == 403
    finally:
        stub.close()
    assert "HTTP 403 WEBHOOK_GITHUB_TOKEN may not run workflows: it needs actions: write" in caplog.text
    assert "Resource not accessible" in caplog.text and TOKEN not in caplog.text


def test_the_http_server_answers_deliveries_and_health_and_secrets_stay_out_of_logs_and_reprs(caplog):
    runs = Runs()
    hooks = receiver(runs, clock=__import__("time").time)
    server = make_server(hooks, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hooks.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def post(body: bytes, headers: dict) -> tuple[int, dict]:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    now = int(__import__("time").time())
    body = payload()
    try:
        with caplog.at_level(logging.DEBUG, logger="mlcompile.webhooks"):
            assert post(body, signed(body, "d-1", now)) == (202, {"status": 202, "detail": "queued KEYWORDS-TRAINED-3 "
                                                                                            "(project keywords)"})
            status, answer = post(body, {**signed(body, "d-2", now), "X-MLflow-Signature": "v1,forged"})
            assert status == 401 and "signature does not match" in answer["detail"]
            with urllib.request.urlopen(url + "health", timeout=10) as response:
                assert json.loads(response.read())["detail"] == "ok"
            wait_idle(hooks)
    finally:
        server.shutdown()
        server.server_close()
        hooks.stop(5)
    assert [job.version_id for job in runs.jobs] == ["KEYWORDS-TRAINED-3"]
    signatures = [signed(body, delivery, now)["X-MLflow-Signature"].split(",", 1)[1] for delivery in ("d-1", "d-2")]
    for secret in (SECRET, *signatures):
        assert secret not in caplog.text and secret not in repr(hooks) and secret not in repr(hooks.verifier)


@pytest.fixture
def webhook_env(settings_env, monkeypatch):
    monkeypatch.setenv("REGISTRY", "mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    return monkeypatch


def test_the_receiver_serves_each_projects_uncompiled_model(webhook_env):
    hooks = webhooks.receiver_for(load_settings(), ["keywords", "ner", "sentiment"])
    assert hooks.projects == {"KEYWORDS-TRAINED": "keywords", "NER-TRAINED": "ner", "SEN-TRAINED": "sentiment"}
    assert isinstance(hooks.run, LocalRun) and hooks.run.root.name == "webhook"
    assert "WEBHOOK_SECRET" not in hooks.run.environ and SECRET not in repr(hooks)
    webhook_env.setenv("UNCOMPILED_MODEL", "MY-MODEL")  # the environment wins over the project files
    assert webhooks.receiver_for(load_settings()).projects == {"MY-MODEL": "keywords"}
    with pytest.raises(ConfigError, match="projects 'keywords' and 'ner' both compile UNCOMPILED_MODEL=MY-MODEL"):
        webhooks.receiver_for(load_settings(), ["keywords", "ner"])


@pytest.mark.parametrize("settings, message", [
    ({"WEBHOOK_SECRET": ""}, "WEBHOOK_SECRET is not set: MLflow signs deliveries with it"),
    ({"REGISTRY": "local"}, "REGISTRY='local': webhook versions are in MLflow; set REGISTRY=mlflow"),
    ({"WEBHOOK_DISPATCH": "github"}, "WEBHOOK_GITHUB_REPOSITORY is not set: WEBHOOK_DISPATCH=github dispatches "
                                     "compile.yaml in the repository named owner/name"),
    ({"WEBHOOK_DISPATCH": "github", "WEBHOOK_GITHUB_REPOSITORY": "mlcompile"},
     "WEBHOOK_GITHUB_REPOSITORY='mlcompile' is not owner/name"),
    ({"WEBHOOK_DISPATCH": "github", "WEBHOOK_GITHUB_REPOSITORY": "my-org/mlcompile"},
     "WEBHOOK_GITHUB_TOKEN is not set: WEBHOOK_DISPATCH=github needs a token"),
], ids=["no-secret", "local-registry", "github-no-repository", "github-not-owner-name", "github-no-token"])
def test_the_receiver_will_not_start_without_what_it_needs(webhook_env, settings, message):
    for key, value in settings.items():
        webhook_env.setenv(key, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        webhooks.receiver_for(load_settings())


def test_github_dispatch_from_settings(webhook_env):
    for key, value in {"WEBHOOK_DISPATCH": "github", "WEBHOOK_GITHUB_REPOSITORY": "my-org/mlcompile",
                       "WEBHOOK_GITHUB_TOKEN": TOKEN, "WEBHOOK_GITHUB_REF": "release", "REGISTRY": "local"}.items():
        webhook_env.setenv(key, value)
    hooks = webhooks.receiver_for(load_settings())
    assert repr(hooks.run) == "GitHubDispatch('my-org/mlcompile', ref='release', api='https://api.github.com')"
    assert TOKEN not in repr(hooks)


@pytest.mark.parametrize("settings, message", [
    ({"WEBHOOK_SECRET": ""}, "mlcompile: WEBHOOK_SECRET is not set"),
    ({"REGISTRY": "local"}, "mlcompile: REGISTRY='local': webhooks are MLflow's; set REGISTRY=mlflow"),
], ids=["no-secret", "not-mlflow"])
def test_webhook_create_needs_the_secret_and_mlflow(webhook_env, capsys, settings, message):
    for key, value in settings.items():
        webhook_env.setenv(key, value)
    assert cli.main(["webhook", "create", "--url", "http://127.0.0.1:8765/"]) == 10
    assert message in capsys.readouterr().err


def test_mlcompile_settings_prints_every_secret_as_set_or_not_set(webhook_env, capsys):
    webhook_env.setenv("WEBHOOK_GITHUB_TOKEN", TOKEN)
    assert cli.main(["settings"]) == 0
    printed = capsys.readouterr().out
    assert "WEBHOOK_SECRET=<set>" in printed and "WEBHOOK_GITHUB_TOKEN=<set>" in printed
    assert "NEPTUNE_API_TOKEN=<not set>" in printed and "WEBHOOK_DISPATCH=local" in printed
    assert SECRET not in printed and TOKEN not in printed and "**********" not in printed
