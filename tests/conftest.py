"""Shared helpers for the framework's own tests: isolated registries and outputs per test."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from mlcompile.settings import Settings

REPO = Path(__file__).resolve().parents[1]
STANDINS = REPO / "tests" / "standins"  # stand-ins for hardware-only packages (torch_neuronx)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# What settings read from the environment: every field of the settings model, and what picks the env
# files (CI, MLCOMPILE_CONFIG_DIR); kept out of the tests, whatever the caller's environment holds.
SETTING_NAMES = {name.upper() for name in Settings.model_fields} | {"CI", "MLCOMPILE_CONFIG_DIR"}


def clean_environ(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and not k.startswith("PYTEST_")}
    env["MLCOMPILE_CONFIG_DIR"] = str(REPO / "config")
    env["REGRESSION_SET"] = ""  # the projects' regression sets run in the tests that ask for them
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.fixture
def settings_env(monkeypatch, tmp_path):
    """A clean settings environment for in-process tests, with its own registry and outputs."""
    for key in list(os.environ):
        if key in SETTING_NAMES:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLCOMPILE_CONFIG_DIR", str(REPO / "config"))
    monkeypatch.setenv("REGISTRY_PATH", str(tmp_path / "registry"))
    monkeypatch.setenv("OUTPUTS_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("REGRESSION_SET", "")  # the projects' regression sets run in the tests that ask for them
    monkeypatch.chdir(REPO)
    return tmp_path


PROJECTS = ("keywords", "ner", "sentiment")
FAKES = REPO / "tests" / "pipeline_fakes"
# Three keywords cases (short, empty, longer than compiled): where a test needs a real validation,
# not the project's fifteen cases (the full set runs in test_projects.py and test_pipeline_stages.py).
FEW_CASES = REPO / "tests" / "data" / "keywords-few-cases.json"
# Two lengths at batch 1 (shapes bucket_16 and bucket_256 of model.pt): a small artifact for
# tests whose point is not the shapes.
SMALL_SHAPES = {"SEQUENCE_LENGTHS": "16,256", "BATCH_SIZE": "1"}


@pytest.fixture
def fake_pipeline(pytester, monkeypatch, settings_env):
    """`pytest pipeline_tests ARGS` in a copy of the pipeline tests, in this process, with the model
    work faked (tests/pipeline_fakes/mlcompile_fakes.py): the plugin, spool, gate and local registry
    are the real ones. Needs `pytest_plugins = ["pytester"]` in the test module."""
    shutil.copytree(REPO / "pipeline_tests", pytester.path / "pipeline_tests")
    shutil.copyfile(REPO / "pytest.ini", pytester.path / "pytest.ini")
    # xdist workers import from the rootdir (their sys.path is a copy of this process's): the plugin
    # and the fakes are copied beside the tests, and the conftest registers both.
    shutil.copytree(REPO / "fixtures", pytester.path / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(FAKES / "mlcompile_fakes.py", pytester.path / "mlcompile_fakes.py")
    (pytester.path / "conftest.py").write_text('pytest_plugins = ["fixtures.plugin", "mlcompile_fakes"]\n')
    for key, value in {"REGISTRY_PATH": pytester.path / "registry", "OUTPUTS_DIR": pytester.path / "outputs",
                       "CASES_FILE": REPO / "config" / "cases" / "keywords.json", "COMPILER": "torchscript",
                       "SEQUENCE_LENGTHS": "16", "TORCH_THREADS": "1"}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.chdir(pytester.path)
    forget_pipeline_tests()  # a real in-process run of this worker imported the repository's
    # Imported here, before pytester snapshots sys.modules: imported inside an in-process run (the plugin
    # configures transformers' logging), pytester drops them after it and the next run's re-import fails
    # to find httpx2's package metadata.
    for module in ("huggingface_hub.file_download", "transformers.utils.logging"):
        importlib.import_module(module)

    def pipeline(*args: str, **env: str):
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            return pytester.runpytest_inprocess("pipeline_tests", "-p", "no:cacheprovider", *args)

    return pipeline


def registered(pytester, project: str = "mlcompile/keywords", model: str = "KEYWORDS-COMPILED") -> list[str]:
    from mlcompile.registry.local import LocalRegistry

    return [v.version_id for v in LocalRegistry(pytester.path / "registry").list_versions(project, model)]



@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """Seed the demo models before xdist starts its workers, when the run includes tests that use
    them: training beside busy workers oversubscribes the cores (measured: 40 s became 7 minutes)."""
    config = session.config
    if hasattr(config, "workerinput") or not _may_use_demo_models(config):
        return
    for project in PROJECTS:
        _seed_shared(config, project)


def _may_use_demo_models(config) -> bool:
    """Unit tests never use the seeded registries: `-m unit` or tests/unit alone seed nothing."""
    if all("tests/unit" in str(arg) for arg in config.args):
        return False
    from fixtures.configure import marker_selected

    markexpr = config.getoption("markexpr")
    return not markexpr or any(marker_selected(markexpr, kind) for kind in ("integration", "functional"))


def _seed_shared(config, project: str) -> Path:
    """The registry with `project`'s demo model, seeded once per test run (by the session start
    above, or else by the first xdist worker to ask, while the others wait on its lock)."""
    shared = shared_dir(config) / "seeded"
    shared.mkdir(exist_ok=True)
    root = shared / project
    with FileLock(str(shared / f"{project}.lock")):
        if not (root / "seeded").is_file():
            from transformers.utils import logging as hf_logging

            from mlcompile.demo import seed
            from mlcompile.settings import load_settings

            hf_logging.disable_progress_bar()  # as `mlcompile seed` does

            with pytest.MonkeyPatch.context() as patch:  # `mlcompile seed <project>`, in this process
                for key in list(os.environ):
                    patch.delenv(key)
                env = clean_environ(REGISTRY_PATH=root / "registry", OUTPUTS_DIR=root / "outputs", PROJECT=project)
                for key, value in env.items():
                    patch.setenv(key, value)
                patch.chdir(REPO)
                version, _ = seed(load_settings())
            (root / "seeded").write_text(version.version_id)
    return root / "registry"


@pytest.fixture(scope="session")
def seeded_registry(pytestconfig) -> Path:
    """A registry with the demo KEYWORDS-TRAINED-1."""
    return _seed_shared(pytestconfig, "keywords")


@pytest.fixture(scope="session")
def seeded_registries(pytestconfig) -> dict[str, Path]:
    """A registry per project with its demo model (ner and sentiment trained at seed time)."""
    return {project: _seed_shared(pytestconfig, project) for project in PROJECTS}


@pytest.fixture
def workspace(tmp_path, seeded_registry):
    """A copy of the seeded registry and an empty outputs directory for one test."""
    shutil.copytree(seeded_registry, tmp_path / "registry")
    return tmp_path


def pipeline_env(workspace: Path, **overrides) -> dict:
    # One thread per pipeline process: the test workers run pipelines side by side on few cores.
    # TorchScript unless a test asks otherwise: COMPILER=auto compiles every CPU backend to pick one.
    return clean_environ(REGISTRY_PATH=workspace / "registry", OUTPUTS_DIR=workspace / "outputs",
                         **{"TORCH_THREADS": 1, "COMPILER": "torchscript", **overrides})


def forget_pipeline_tests() -> None:
    """An in-process run imports pipeline_tests.*; the next run (maybe of a copy elsewhere) imports afresh."""
    for name in [n for n in sys.modules if n == "pipeline_tests" or n.startswith("pipeline_tests.")]:
        del sys.modules[name]


@pytest.fixture
def neuron_device(tmp_path, monkeypatch):
    """A Neuron device node as the driver makes one (a file standing in for /dev/neuron0)."""
    from mlcompile.compilers import neuron

    device = tmp_path / "dev" / "neuron0"
    device.parent.mkdir()
    device.touch()
    monkeypatch.setattr(neuron, "DEVICES", str(device.parent / "neuron*"))
    # The stand-in torch_neuronx runs compiled models only where its runtime finds a device; this
    # host's two NeuronCores all visible, whatever an earlier test left in NEURON_RT_VISIBLE_CORES.
    monkeypatch.setenv("NEURON_STANDIN_DEVICES", str(device.parent / "neuron*"))
    monkeypatch.delenv("NEURON_RT_VISIBLE_CORES", raising=False)
    return device


@pytest.fixture
def no_neuron_device(tmp_path, monkeypatch):
    """A host without Neuron devices, for mlcompile and for a stand-in torch_neuronx imported before."""
    from mlcompile.compilers import neuron

    none = str(tmp_path / "no-dev" / "neuron*")
    monkeypatch.setattr(neuron, "DEVICES", none)
    monkeypatch.setenv("NEURON_STANDIN_DEVICES", none)
    if (standin := sys.modules.get("torch_neuronx")) is not None and hasattr(standin, "DEVICES"):
        monkeypatch.setattr(standin, "DEVICES", none)  # what it falls back to where the environment is cleared


@pytest.fixture
def standin_neuronx(monkeypatch, neuron_device):
    """The stand-in torch_neuronx (tests/standins) on a host with a Neuron device, importable for
    this test only and forgotten after it: a module left in sys.modules would make COMPILER=auto
    choose neuron in later tests."""
    def forget():  # the package and its submodules (torch_neuronx.experimental)
        for name in [n for n in sys.modules if n == "torch_neuronx" or n.startswith("torch_neuronx.")]:
            del sys.modules[name]

    monkeypatch.syspath_prepend(str(STANDINS))
    forget()
    import torch_neuronx

    torch_neuronx.CALLS.clear()
    yield torch_neuronx
    forget()


@pytest.fixture
def placeholder_neuronx(monkeypatch):
    """PyPI's torch-neuronx 1.0 installed (its import raises ImportError), for this test only."""
    monkeypatch.syspath_prepend(str(STANDINS / "placeholder"))
    sys.modules.pop("torch_neuronx", None)
    yield
    sys.modules.pop("torch_neuronx", None)


@pytest.fixture(autouse=True)
def no_torch_neuronx_left_behind(request):
    """The stand-in leaking into later tests made COMPILER=auto pick neuron there: fail where it leaks."""
    yield
    if sys.modules.get("torch_neuronx") is not None or any(str(STANDINS) in entry for entry in sys.path):
        sys.modules.pop("torch_neuronx", None)
        pytest.fail(f"{request.node.nodeid} left the stand-in torch_neuronx importable", pytrace=False)


@dataclass
class Done:
    returncode: int
    output: str


class InProcess:
    """`mlcompile ARGS` or `pytest pipeline_tests ARGS` run in this test's process, as a user runs
    them but without a new interpreter's seconds of imports; settings as pipeline_env(root, ...)."""

    def __init__(self, monkeypatch, capsys):
        self.monkeypatch, self.capsys = monkeypatch, capsys

    def _run(self, root: Path, main, settings: dict) -> Done:
        self.capsys.readouterr()  # what the test printed before is not this command's output
        forget_pipeline_tests()
        with self.monkeypatch.context() as patch:
            for key in list(os.environ):
                patch.delenv(key)
            for key, value in pipeline_env(root, **settings).items():
                patch.setenv(key, value)
            patch.chdir(REPO)
            code = int(main())
        forget_pipeline_tests()
        captured = self.capsys.readouterr()
        return Done(code, captured.out + captured.err)

    def cli(self, root: Path, *args: str, **settings) -> Done:
        from mlcompile import cli

        return self._run(root, lambda: cli.main(list(args)), settings)

    def pytest(self, root: Path, *args: str, **settings) -> Done:
        return self._run(root, lambda: pytest.main(["pipeline_tests", "-p", "no:cacheprovider", "-q", *args]),
                         settings)


@pytest.fixture
def in_process(monkeypatch, capsys) -> InProcess:
    return InProcess(monkeypatch, capsys)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SHARED = pytest.StashKey[Path]()
SHARED_OPTION = "mlcompile_tests_shared"  # xdist workerinput key


def pytest_configure(config):
    """One folder every process of this test run sees (seeded registries, the MLflow server), made by
    the controller (or the only process) and handed to xdist workers; removed at the end of the run."""
    if hasattr(config, "workerinput"):
        config.stash[SHARED] = Path(config.workerinput[SHARED_OPTION])
    else:
        config.stash[SHARED] = Path(tempfile.mkdtemp(prefix="mlcompile-tests-"))


ON_REQUEST = "serving_env"  # builds fresh environments (minutes): `make test-serving` runs it, `make test` does not


def pytest_collection_modifyitems(config, items):
    """Tests marked serving_env run only when `-m` names the marker; otherwise they are deselected."""
    if ON_REQUEST in (config.getoption("markexpr") or ""):
        return
    kept = [item for item in items if item.get_closest_marker(ON_REQUEST) is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput[SHARED_OPTION] = str(node.config.stash[SHARED])


def shared_dir(config) -> Path:
    return config.stash[SHARED]


@pytest.fixture(scope="session")
def mlflow_server(pytestconfig) -> str:
    """A real MLflow tracking server on 127.0.0.1 (sqlite store, local artifacts), started by the
    first process of the test run that needs it and shared by all (model names are unique per test);
    stopped at the end of the run (pytest_sessionfinish below)."""
    data = shared_dir(pytestconfig) / "mlflow"
    data.mkdir(exist_ok=True)
    with FileLock(str(data / "start.lock")):
        if not (data / "uri").is_file():
            port = free_port()
            mlflow = Path(sys.executable).with_name("mlflow")
            with open(data / "server.log", "w") as log:
                server = subprocess.Popen(
                    [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                     "--backend-store-uri", f"sqlite:///{data / 'mlflow.db'}",
                     "--artifacts-destination", str(data / "artifacts")],
                    stdout=log, stderr=subprocess.STDOUT, cwd=data, start_new_session=True, env=mlflow_server_env(),
                )
            (data / "pid").write_text(str(server.pid))
            uri = f"http://127.0.0.1:{port}"
            _wait_healthy(uri, server, data / "server.log")
            (data / "uri").write_text(uri)
    return (data / "uri").read_text()


def mlflow_server_env() -> dict:
    """As `make mlflow-server`: registry webhooks may post to a receiver on 127.0.0.1 over http, their secrets
    are stored encrypted with a key of this run, and the server rereads its webhooks every second (60 s by
    default: a webhook created just after another test's registration would wait that long)."""
    import base64

    return {**os.environ, "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "MLFLOW_WEBHOOK_CACHE_TTL": "1"}


def _wait_healthy(uri: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
            raise RuntimeError(f"MLflow server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def pytest_sessionfinish(session):
    """The run's last process to finish (the xdist controller, or the only one) stops the server and
    removes the shared folder."""
    if hasattr(session.config, "workerinput"):
        return
    shared = shared_dir(session.config)
    pid_file = shared / "mlflow" / "pid"
    if pid_file.is_file():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
    shutil.rmtree(shared, ignore_errors=True)


def fault_in_one_shape(compiled: Path, method: str, scale: float = 1.3) -> None:
    """A compiler bug in one shape of a TorchScript artifact (every shape a method of model.pt):
    rewrite model.pt so that `method` scales its output, the other shapes unchanged, and re-seal
    the manifest, so the artifact verifies but one executable computes something else."""
    import torch

    from mlcompile.artifacts import read_json

    spec = read_json(compiled / "compiled.json")
    shapes = {}
    for bucket in spec["buckets"]:
        shapes[bucket["method"]] = (spec["batch_size"], bucket["length"])
        if bucket.get("single_method"):
            shapes[bucket["single_method"]] = (1, bucket["length"])
    assert method in shapes, f"{method} is not a method of {compiled / 'model.pt'}: {sorted(shapes)}"

    def calling(name: str, factor: float):
        def run(self, input_ids, attention_mask):
            return getattr(self.compiled, name)(input_ids, attention_mask) * factor
        return run

    faulty = type("Faulty", (torch.nn.Module,), {n: calling(n, scale if n == method else 1.0) for n in shapes})()
    faulty.compiled = torch.jit.load(str(compiled / "model.pt"))
    examples = {n: (torch.full((b, length), 1000, dtype=torch.long), torch.ones(b, length, dtype=torch.long))
                for n, (b, length) in shapes.items()}
    traced = torch.jit.trace_module(faulty, examples, check_trace=False)
    new = compiled / "model.pt.new"  # a new file: a hard-linked copy of the original stays intact
    torch.jit.save(traced, str(new))
    os.replace(new, compiled / "model.pt")
    reseal(compiled)


def reseal(compiled: Path) -> None:
    """Rewrite a stage's manifest for the files it now holds: the artifact verifies, whatever it computes."""
    from mlcompile.artifacts import MANIFEST, hash_tree, read_json, write_json_atomic

    manifest = read_json(compiled / MANIFEST)
    manifest["files"] = hash_tree(compiled, exclude=(MANIFEST,))
    write_json_atomic(compiled / MANIFEST, manifest)


# What an enclosing make (make test-neuron-profile) passes down and a test's own make must not inherit.
MAKE_VARIABLES = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "RUNNER", "TASK", "COMPONENT", "DOWNLOAD", "COMPILE", "TEST",
                  "UPLOAD", "VENV", "NEURON", "NEURON_AWS", "TEST_MARKERS", "CI", "COMPOSE", "COMPOSE_ENV",
                  "COMPOSE_FILES", "LINT_DOCKERFILES", "LINT_WORKFLOWS", "LINT_COMPOSE_FILES", "LINT_SCRIPTS",
                  "TORCH_INDEX", "SYSTEM_PACKAGES", "NEURON_DEVICES", "PYTHON"}


def make(*args: str, dry: bool = True) -> subprocess.CompletedProcess:
    """`make -n -B ARGS` (or, with dry=False, the real thing) in the repository, with VENV=/nonexistent-venv."""
    env = {key: value for key, value in os.environ.items() if key not in MAKE_VARIABLES}
    return subprocess.run(["make", "--no-print-directory", *(["-n", "-B"] if dry else ["-s"]), "-C", str(REPO),
                           "VENV=/nonexistent-venv", *args], capture_output=True, text=True, env=env, timeout=60)
