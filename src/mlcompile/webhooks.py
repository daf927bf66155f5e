"""Compile when a version is registered: the receiver of MLflow's registry webhooks (`mlcompile webhook serve`),
and the MLflow webhook that posts to it (`mlcompile webhook create`).

MLflow (3.3 and later, SQL store) POSTs every `model_version.created` as JSON, signed: `X-MLflow-Signature` is
`v1,` + base64(HMAC-SHA256(WEBHOOK_SECRET, "<delivery id>.<timestamp>.<body>")). The receiver refuses (401) a
delivery without a valid signature, one whose timestamp is outside the replay window, and a delivery id it has
seen; it ignores other events and versions of models no served project compiles (the compiled model's own
versions among them); and it answers 202 at once for a version of a served project's UNCOMPILED_MODEL, which
one worker thread then compiles, one version at a time in arrival order: `mlcompile run` in a subprocess with
PROJECT, UNCOMPILED_WITH_ID and an OUTPUTS_DIR of its own (WEBHOOK_DISPATCH=local), or a workflow_dispatch of
.github/workflows/compile.yaml (WEBHOOK_DISPATCH=github). A version already queued or running is not queued
again (a file lock keeps receivers sharing a host from running it twice); a later delivery runs it again,
which the stages' fingerprints make a no-op (already registered, nothing new).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from filelock import FileLock, Timeout
from pydantic import SecretStr

from .errors import ConfigError, RegistryError
from .registry import MODEL_NAME

log = logging.getLogger(__name__)

EVENT = "model_version.created"
SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER = "X-MLflow-Signature", "X-MLflow-Timestamp", "X-MLflow-Delivery-Id"
REPLAY_WINDOW = 300  # seconds: older (or later) timestamps are refused, delivery ids are remembered this long
MAX_BODY = 1 << 20  # MLflow's payloads are a few hundred bytes
WORKFLOW = "compile.yaml"  # .github/workflows/compile.yaml, its workflow_dispatch inputs: project, model, version
DEFAULT_NAME = "mlcompile"  # the MLflow webhook's name: create and delete find it by name
CHILD_SECRETS = ("WEBHOOK_SECRET", "WEBHOOK_GITHUB_TOKEN")  # what a compile run does not need to see


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's signature of a delivery: `v1,` + base64(HMAC-SHA256(secret, "<delivery id>.<timestamp>.<body>"))."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Refused(Exception):
    """A delivery that is not MLflow's, or not this one's first time (the reason never holds the secret)."""


@dataclass(frozen=True)
class Job:
    """A version to compile, and the delivery that asked for it."""

    project: str
    model: str
    version: int
    delivery_id: str

    @property
    def version_id(self) -> str:
        return f"{self.model}-{self.version}"  # as settings name it (UNCOMPILED_WITH_ID, split_version_id)


@dataclass(frozen=True)
class Reply:
    status: int
    detail: str


class Verifier:
    """Signed by the secret, within the replay window, and the first delivery of its id."""

    def __init__(self, secret: SecretStr, window: float = REPLAY_WINDOW, clock: Callable[[], float] = time.time):
        self._secret, self.window, self.clock = secret, window, clock
        self._seen: dict[str, float] = {}  # delivery id -> when it was accepted
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Verifier(window={self.window})"

    def verify(self, headers, body: bytes) -> str:
        """The delivery id of a genuine, fresh, first delivery; else Refused with the reason."""
        delivery_id, timestamp = headers.get(DELIVERY_HEADER), headers.get(TIMESTAMP_HEADER)
        signed = headers.get(SIGNATURE_HEADER)
        if not signed:
            raise Refused(f"no {SIGNATURE_HEADER} header (an unsigned delivery: is the webhook created with "
                          "WEBHOOK_SECRET? `mlcompile webhook create` sets it)")
        if not delivery_id or not timestamp:
            raise Refused(f"no {DELIVERY_HEADER if not delivery_id else TIMESTAMP_HEADER} header")
        expected = signature(self._secret.get_secret_value(), delivery_id, timestamp, body)
        if not any(hmac.compare_digest(expected.encode(), given.encode()) for given in signed.split()):
            raise Refused("the signature does not match (another secret than WEBHOOK_SECRET, or a forged delivery)")
        try:
            age = self.clock() - int(timestamp)
        except ValueError:
            raise Refused(f"{TIMESTAMP_HEADER} is not unix seconds") from None
        if abs(age) > self.window:
            raise Refused(f"timestamp {age:+.0f} s from now, outside the {self.window:.0f} s replay window "
                          "(a replayed delivery, or this host's clock is off)")
        with self._lock:
            now = self.clock()
            self._seen = {seen: at for seen, at in self._seen.items() if now - at <= 2 * self.window}
            if delivery_id in self._seen:
                raise Refused("this delivery id was accepted before (a replayed delivery)")
            self._seen[delivery_id] = now
        return delivery_id


class Receiver:
    """Verifies deliveries, keeps `model_version.created` of the served models (`projects`: uncompiled model ->
    project) and hands each version to `run`, in one worker thread, one version at a time. A version already
    queued or running is not queued again; `lock_dir` holds a file lock per running version for receivers
    sharing a host."""

    def __init__(self, secret: SecretStr, projects: dict[str, str], run: Callable[[Job], object],
                 lock_dir: Path | None = None, window: float = REPLAY_WINDOW, clock: Callable[[], float] = time.time):
        self.verifier = Verifier(secret, window, clock)
        self.projects, self.run, self.lock_dir = dict(projects), run, lock_dir
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._active: set[str] = set()  # version ids queued or running
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Receiver(models={sorted(self.projects)}, run={self.run!r})"

    def handle(self, headers, body: bytes) -> Reply:
        """What to answer a delivery (and the job queued, if any)."""
        shown = _printable(headers.get(DELIVERY_HEADER))
        try:
            delivery_id = self.verifier.verify(headers, body)
        except Refused as refused:
            log.warning("refused delivery %s: %s", shown, refused)
            return Reply(401, f"refused: {refused}")
        try:
            event = json.loads(body)
            kind = f"{event['entity']}.{event['action']}"
            data = event["data"] if kind == EVENT else {}
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("delivery %s: not an MLflow webhook payload (%s: %s)", shown, type(exc).__name__, exc)
            return Reply(400, "not an MLflow webhook payload: {entity, action, timestamp, data}")
        if kind != EVENT:
            log.info("delivery %s: %s ignored (only %s starts a compile)", shown, _printable(kind), EVENT)
            return Reply(200, f"ignored: {kind}")
        name, version = str(data.get("name", "")), str(data.get("version", ""))
        if not MODEL_NAME.fullmatch(name) or not version.isdigit():
            log.warning("delivery %s: %s without a model name and version number", shown, EVENT)
            return Reply(400, f"{EVENT} without a model name and version number")
        project = self.projects.get(name)
        if project is None:
            log.info("delivery %s: %s-%s ignored: not the UNCOMPILED_MODEL of a served project (%s)", shown, name,
                     version, ", ".join(f"{model} of {p}" for model, p in sorted(self.projects.items())))
            return Reply(200, f"ignored: {name} is not compiled here")
        job = Job(project, name, int(version), delivery_id)
        with self._lock:
            if job.version_id in self._active:
                log.info("delivery %s: %s is already queued or running; not queued again", shown, job.version_id)
                return Reply(200, f"{job.version_id} is already queued or running")
            self._active.add(job.version_id)
            self._queue.put(job)
            waiting = self._queue.qsize() - 1
        log.info("delivery %s: queued %s (project %s; %d before it)", shown, job.version_id, project, max(waiting, 0))
        return Reply(202, f"queued {job.version_id} (project {project})")

    # the worker -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="mlcompile-webhook-worker", daemon=True)
            self._worker.start()

    def stop(self, timeout: float | None = None) -> None:
        """Let the worker finish what is queued, then end it."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout)
            self._worker = None

    def idle(self) -> bool:
        with self._lock:
            return not self._active

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                with self._host_lock(job) as mine:
                    if mine:
                        self.run(job)
                    else:
                        log.info("%s is running in another receiver on this host; not started", job.version_id)
            except Exception:
                log.exception("compiling %s failed", job.version_id)
            finally:
                with self._lock:
                    self._active.discard(job.version_id)

    @contextlib.contextmanager
    def _host_lock(self, job: Job):
        if self.lock_dir is None:
            yield True
            return
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_dir / f"{job.version_id}.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()


def _printable(value, limit: int = 80) -> str:
    """A header or payload value as it may appear in a log line (no line breaks, bounded)."""
    return repr(str(value)[:limit]) if value is not None else "(no id)"


# what starts a compile ---------------------------------------------------------------------------------------
class LocalRun:
    """`mlcompile run` for the job's version in a subprocess: PROJECT, UNCOMPILED_WITH_ID and an OUTPUTS_DIR of
    its own (`<root>/<VERSION-ID>`); its output in `<root>/<VERSION-ID>.log`; the receiver's settings otherwise
    (without the webhook's secrets). Logs the start, and the exit code and upload line at the end."""

    def __init__(self, root: Path, environ: dict[str, str] | None = None, cwd: Path | None = None):
        self.root = Path(root).absolute()
        self.environ = {k: v for k, v in (os.environ if environ is None else environ).items() if k not in CHILD_SECRETS}
        self.cwd = Path(cwd or Path.cwd())

    def __repr__(self) -> str:
        return f"LocalRun({str(self.root)!r})"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlcompile.cli", "run"]

    def environment(self, job: Job) -> dict[str, str]:
        return {**self.environ, "PROJECT": job.project, "UNCOMPILED_MODEL": job.model,
                "UNCOMPILED_WITH_ID": job.version_id, "UNCOMPILED_PATH": "",
                "OUTPUTS_DIR": str(self.root / job.version_id)}

    def __call__(self, job: Job) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        log_path = self.root / f"{job.version_id}.log"
        started = time.monotonic()
        log.info("started mlcompile run for %s (project %s, delivery %s): outputs %s, log %s", job.version_id,
                 job.project, _printable(job.delivery_id), self.root / job.version_id, log_path)
        with open(log_path, "a") as out:
            out.write(f"--- mlcompile run, PROJECT={job.project} UNCOMPILED_WITH_ID={job.version_id}, "
                      f"delivery {job.delivery_id}\n")
            out.flush()
            code = subprocess.run(self.command(), env=self.environment(job), cwd=self.cwd, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        upload = _last_line(log_path, "upload: ")
        log.info("mlcompile run for %s ended with exit code %d in %.0f s%s", job.version_id, code,
                 time.monotonic() - started, f" ({upload})" if upload else "")
        return code


def _last_line(path: Path, prefix: str) -> str | None:
    found = None
    with open(path, errors="replace") as lines:
        for line in lines:
            if line.lstrip().startswith(prefix):
                found = line.strip()
    return found


class GitHubDispatch:
    """A workflow_dispatch of .github/workflows/compile.yaml with inputs project, model and version, through
    GitHub's REST API (`POST /repos/{owner}/{repo}/actions/workflows/compile.yaml/dispatches`)."""

    def __init__(self, repository: str, ref: str, token: SecretStr, api: str = "https://api.github.com",
                 timeout: float = 10.0):
        self.repository, self.ref, self.api, self.timeout = repository, ref, api.rstrip("/"), timeout
        self._token = token

    def __repr__(self) -> str:
        return f"GitHubDispatch({self.repository!r}, ref={self.ref!r}, api={self.api!r})"

    def request(self, job: Job) -> urllib.request.Request:
        body = {"ref": self.ref, "inputs": {"project": job.project, "model": job.model, "version": str(job.version)}}
        return urllib.request.Request(
            f"{self.api}/repos/{self.repository}/actions/workflows/{WORKFLOW}/dispatches", method="POST",
            data=json.dumps(body).encode(),
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                     "Content-Type": "application/json", "User-Agent": "mlcompile",
                     "Authorization": f"Bearer {self._token.get_secret_value()}"})

    def __call__(self, job: Job) -> int:
        where = f"{self.repository} {WORKFLOW} at {self.ref}"
        try:
            with urllib.request.urlopen(self.request(job), timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace").replace("\n", " ")
            fix = {401: "WEBHOOK_GITHUB_TOKEN is rejected: give a valid token",
                   403: "WEBHOOK_GITHUB_TOKEN may not run workflows: it needs actions: write on the repository",
                   404: "no such repository or workflow for this token: check WEBHOOK_GITHUB_REPOSITORY (owner/name)",
                   422: "the workflow refused the dispatch: check WEBHOOK_GITHUB_REF and that compile.yaml has "
                        "workflow_dispatch inputs project, model, version"}.get(exc.code, "")
            log.error("dispatching %s to %s failed: HTTP %d %s %s", job.version_id, where, exc.code, fix, detail)
            return exc.code
        except OSError as exc:
            log.error("dispatching %s to %s failed: %s cannot be reached (%s)", job.version_id, where, self.api, exc)
            return 1
        log.info("dispatched %s (project %s) to %s: HTTP %d", job.version_id, job.project, where, status)
        return 0


# from settings -----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _project(project: str):
    """PROJECT set while one project's settings are read (load_settings reads the environment)."""
    before = os.environ.get("PROJECT")
    os.environ["PROJECT"] = project
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PROJECT", None)
        else:
            os.environ["PROJECT"] = before


def served_models(projects: list[str]) -> dict[str, str]:
    """Each project's UNCOMPILED_MODEL -> project, read when the receiver starts."""
    from .settings import load_settings

    models: dict[str, str] = {}
    for project in projects:
        with _project(project):
            settings = load_settings()
        if settings.uncompiled_model is None:
            raise ConfigError(f"PROJECT={project!r} compiles UNCOMPILED_PATH={settings.uncompiled_path}, not a "
                              "registered model: no webhook event names it (serve projects whose UNCOMPILED_MODEL is "
                              "in MLflow)")
        if settings.uncompiled_model in models:
            raise ConfigError(f"projects {models[settings.uncompiled_model]!r} and {project!r} both compile "
                              f"UNCOMPILED_MODEL={settings.uncompiled_model}: serve one of them")
        models[settings.uncompiled_model] = project
    return models


def _secret(settings) -> SecretStr:
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        raise ConfigError("WEBHOOK_SECRET is not set: MLflow signs deliveries with it and the receiver refuses any "
                          "other; export the same value for `mlcompile webhook create` and `mlcompile webhook "
                          "serve`, e.g. WEBHOOK_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return settings.webhook_secret


def runner_for(settings) -> LocalRun | GitHubDispatch:
    """What starts a compile, as WEBHOOK_DISPATCH says."""
    if settings.webhook_dispatch == "github":
        repository = settings.webhook_github_repository or ""
        owner, _, name = repository.partition("/")
        if not (owner and name and "/" not in name):
            given = f"={repository!r} is not owner/name" if repository else " is not set"
            raise ConfigError(f"WEBHOOK_GITHUB_REPOSITORY{given}: WEBHOOK_DISPATCH=github dispatches compile.yaml in "
                              "the repository named owner/name, e.g. my-org/mlcompile")
        token = settings.webhook_github_token
        if token is None or not token.get_secret_value():
            raise ConfigError("WEBHOOK_GITHUB_TOKEN is not set: WEBHOOK_DISPATCH=github needs a token that may run "
                              "workflows (a fine-grained token with actions: write on the repository); export it")
        return GitHubDispatch(repository, settings.webhook_github_ref, token, settings.webhook_github_api)
    if settings.registry != "mlflow":
        raise ConfigError(f"REGISTRY={settings.registry!r}: webhook versions are in MLflow; set REGISTRY=mlflow and "
                          "MLFLOW_TRACKING_URI (the server the webhook is created in) for the compile runs")
    return LocalRun(settings.outputs_dir / "webhook")


def receiver_for(settings, projects: list[str] | None = None) -> Receiver:
    """The receiver `mlcompile webhook serve` runs: the settings' secret and dispatch, the projects' models."""
    secret = _secret(settings)
    run = runner_for(settings)
    models = served_models(projects or [settings.project])
    lock_dir = settings.outputs_dir.absolute() / "webhook" / "locks"
    return Receiver(secret, models, run, lock_dir=lock_dir)


# the HTTP server ---------------------------------------------------------------------------------------------
def make_server(receiver: Receiver, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A threading HTTP server answering POSTs with `receiver` (any path) and GET /health; port 0 picks a free
    one (`server.server_address`). The caller runs `serve_forever()` and starts the receiver's worker."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "mlcompile-webhook"

        def do_POST(self):  # noqa: N802 (http.server's name)
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > MAX_BODY:
                return self._reply(Reply(413 if length.isdigit() else 411, "a JSON body of at most 1 MiB"))
            self._reply(receiver.handle(self.headers, self.rfile.read(int(length))))

        def do_GET(self):  # noqa: N802
            if self.path.rstrip("/") == "/health":
                return self._reply(Reply(200, "ok"))
            self._reply(Reply(404, "POST MLflow webhook deliveries here; GET /health"))

        def _reply(self, reply: Reply):
            body = json.dumps({"status": reply.status, "detail": reply.detail}).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature); the receiver logs what matters
            log.debug("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)


def serve(settings, host: str, port: int, projects: list[str] | None = None) -> None:
    """`mlcompile webhook serve`: until interrupted."""
    receiver = receiver_for(settings, projects)
    server = make_server(receiver, host, port)
    receiver.start()
    where = receiver.run.root if isinstance(receiver.run, LocalRun) else receiver.run
    log.info("receiving MLflow webhook deliveries on http://%s:%d/ for %s; compiles with %s, one at a time",
             *server.server_address[:2], ", ".join(f"{m} ({p})" for m, p in sorted(receiver.projects.items())), where)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping: queued versions are dropped (a run in progress gets the interrupt too)")
    finally:
        server.server_close()


# the MLflow webhook ------------------------------------------------------------------------------------------
def _client(settings):
    if settings.registry != "mlflow":
        raise ConfigError(f"REGISTRY={settings.registry!r}: webhooks are MLflow's; set REGISTRY=mlflow and "
                          "MLFLOW_TRACKING_URI to the server (`make mlflow-server` starts one with webhooks on)")
    from .registry import open_registry

    return open_registry(settings)


def _mlflow(registry, what: str, fn):
    from mlflow.exceptions import MlflowException

    from .registry.mlflow import redacted

    try:
        return fn()
    except MlflowException as exc:
        message = str(exc.message).splitlines()[0][:400] if exc.message else type(exc).__name__
        hint = ""
        if "scheme" in message or "private" in message.lower() or "resolve" in message.lower():
            hint = ("; for a receiver on http:// or a private address start the server with "
                    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true "
                    "(`make mlflow-server` does)")
        elif "not supported" in message.lower() or "FileStore" in message:
            hint = "; webhooks need MLflow's SQL store (--backend-store-uri sqlite:///... as `make mlflow-server`)"
        raise RegistryError(f"MLflow at {redacted(registry.uri)}: {what} failed: {message}{hint}") from None
    except OSError as exc:
        raise RegistryError(f"MLflow server at {redacted(registry.uri)} cannot be reached ({what}): {exc}") from None


def _named(registry, name: str) -> list:
    found, token = [], None
    while True:
        page = _mlflow(registry, "list webhooks",
                       lambda: registry.client.list_webhooks(max_results=100, page_token=token))
        found += [webhook for webhook in page if webhook.name == name]
        if not page.token:
            return found
        token = page.token


def create_webhook(settings, url: str, name: str = DEFAULT_NAME) -> tuple[object, bool]:
    """The MLflow webhook `name` posting model_version.created to `url`, signed with WEBHOOK_SECRET: created, or
    updated when one of that name exists. Returns it and whether it was created now."""
    secret = _secret(settings).get_secret_value()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url {url!r}: give the receiver's http(s) URL, e.g. http://127.0.0.1:8765/")
    registry = _client(settings)
    existing = _named(registry, name)
    if existing:
        webhook = _mlflow(registry, f"update webhook {name}", lambda: registry.client.update_webhook(
            existing[0].webhook_id, url=url, events=[EVENT], secret=secret, status="ACTIVE",
            description="mlcompile: compile each new version (mlcompile webhook serve)"))
        return webhook, False
    webhook = _mlflow(registry, f"create webhook {name}", lambda: registry.client.create_webhook(
        name, url, [EVENT], secret=secret, description="mlcompile: compile each new version (mlcompile webhook serve)"))
    return webhook, True


def delete_webhook(settings, name: str = DEFAULT_NAME) -> int:
    """Delete the MLflow webhooks named `name`; how many there were."""
    registry = _client(settings)
    named = _named(registry, name)
    for webhook in named:
        _mlflow(registry, f"delete webhook {name}",
                lambda webhook=webhook: registry.client.delete_webhook(webhook.webhook_id))
    return len(named)
