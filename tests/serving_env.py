"""A registered model's serving environment, built by MLflow from the model's own requirements
(`mlflow models prepare-env|predict|serve --env-manager uv`), and what it holds; and, run as a script
(`make serving-sizes`), the table of env build times and sizes: an ONNX text classifier, an ONNX token
classifier, the keywords model, and the uncompiled models' libraries at the project's pins.

uv, not virtualenv: MLflow's virtualenv manager installs the model's Python with pyenv, and `mlflow models
predict` does it in a throwaway pyenv root, so it downloads and builds CPython from python.org each time
(not reachable here); uv uses the Python found on the host. uv reads no pip configuration: torch's CPU
wheel is found through UV_FIND_LINKS (this host's /opt/wheels), PyPI's torch being a CUDA build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the project venv's: mlflow, uv
HEAVY = ("torch", "transformers", "sentence_transformers", "keybert")
UNCOMPILED = {  # the uncompiled models' libraries (pyproject's), at the project's pins
    "ner/sentiment": ["torch", "transformers"],
    "keywords": ["torch", "transformers", "sentence-transformers", "keybert"],
}


def tool_env(env_root: Path, **extra: str) -> dict:
    """The environment MLflow's env manager runs in: uv on PATH, envs under env_root, caches kept."""
    scratch = env_root / "tmp"  # what MLflow downloads or unpacks there stays with the envs, not in /tmp
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "MLFLOW_ENV_ROOT": str(env_root),
           "HF_HUB_OFFLINE": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "TMPDIR": str(scratch)}
    if Path("/opt/wheels").is_dir():  # this host's torch CPU wheel (pip finds it through its find-links)
        env.setdefault("UV_FIND_LINKS", "/opt/wheels")
    env.update(extra)
    return env


def mlflow(*args: str, env: dict, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mlflow"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def prepare_env(model: Path, env_root: Path) -> tuple[Path, float]:
    """`mlflow models prepare-env --env-manager uv`: the env MLflow builds from the model's requirements
    (under MLFLOW_ENV_ROOT, where `mlflow models serve` finds it again), and the seconds it took."""
    before = set(env_root.glob("mlflow-*")) if env_root.is_dir() else set()
    started = time.perf_counter()
    done = mlflow("models", "prepare-env", "-m", str(model), "--env-manager", "uv", env=tool_env(env_root))
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    [env] = set(env_root.glob("mlflow-*")) - before or set(env_root.glob("mlflow-*"))
    return env, seconds


def importable(env: Path, modules=HEAVY) -> dict[str, bool]:
    """Which of `modules` the env's Python can import (found, not imported)."""
    code = ("import importlib.util, json, sys; "
            "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))")
    done = subprocess.run([str(env / "bin" / "python"), "-c", code, *modules], capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def distributions(env: Path) -> dict[str, str]:
    code = ("import json; from importlib import metadata; "
            "print(json.dumps({d.metadata['Name'].lower(): d.version for d in metadata.distributions()}))")
    done = subprocess.run([str(env / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def size_mb(path: Path) -> int:
    return int(subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def predict(model: Path, texts: list[str], params: dict | None, workdir: Path, env_root: Path) -> list[dict]:
    """`mlflow models predict -m model --env-manager uv`: MLflow builds a fresh env from the model's own
    requirements (a throwaway one of its own) and predicts in it."""
    request = {"dataframe_records": [{"text": text} for text in texts], **({"params": params} if params else {})}
    (workdir / "input.json").write_text(json.dumps(request))
    done = mlflow("models", "predict", "-m", str(model), "-i", str(workdir / "input.json"), "-t", "json",
                  "-o", str(workdir / "output.json"), "--env-manager", "uv", env=tool_env(env_root))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads((workdir / "output.json").read_text())["predictions"]


def served(model: str, texts: list[str], env_manager: str, env: dict, seconds: float) -> list[dict]:
    """`mlflow models serve -m model --env-manager ...` on a free port, asked once for `texts` (waiting at most
    `seconds` for it to answer /ping); the server and the scoring process it starts are stopped after."""
    import signal
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", model, "--env-manager", env_manager,
                               "-h", "127.0.0.1", "-p", str(port), "-w", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + seconds
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
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def uncompiled_env(packages: list[str], dest: Path) -> tuple[Path, float]:
    """A venv with the uncompiled model's libraries at the project's pins (constraints.txt; torch the CPU
    build pip finds, here the local wheel), as a fresh serving env of the uncompiled model would need."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(dest)], check=True)
    subprocess.run([str(dest / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    "-c", str(REPO / "constraints.txt"), *packages], check=True)
    return dest, time.perf_counter() - started


def register(project: str, workspace: Path, compiler: str = "onnx") -> Path:
    """The demo model of `project` seeded, compiled, validated and registered in workspace's local
    registry by `mlcompile` (run as a user runs it); the registered version's files."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
           "MLCOMPILE_CONFIG_DIR": str(REPO / "config"), "REGISTRY_PATH": str(workspace / "registry"),
           "OUTPUTS_DIR": str(workspace / "outputs"), "PROJECT": project, "COMPILER": compiler,
           "REGRESSION_SET": "", "HF_HUB_OFFLINE": "1"}
    for args in (["seed", "--if-missing"], ["run"]):
        done = subprocess.run([str(BIN / "mlcompile"), *args], env=env, cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    [files] = (workspace / "registry").glob("mlcompile/*/*-COMPILED/*-COMPILED-1/files")
    return files


def main() -> int:
    """The table: each serving env's build seconds and size, against the uncompiled models' libraries."""
    root = Path(os.environ.get("SERVING_SIZES_DIR") or tempfile.mkdtemp(prefix="mlcompile-serving-sizes-"))
    rows = []
    for project in ("sentiment", "ner", "keywords"):
        files = register(project, root / project)
        requirements = (files / "requirements.txt").read_text().split()
        env, seconds = prepare_env(files, root / "envs")
        heavy = [name for name, found in importable(env).items() if found]
        rows.append((f"{project} (onnx, registered)", seconds, size_mb(env), len(distributions(env)),
                     ", ".join(heavy) or "none", " ".join(requirements)))
    for name, packages in UNCOMPILED.items():
        env, seconds = uncompiled_env(packages, root / "uncompiled" / name.replace("/", "-"))
        heavy = [module for module, found in importable(env).items() if found]
        rows.append((f"{name} uncompiled", seconds, size_mb(env), len(distributions(env)), ", ".join(heavy),
                     " ".join(packages) + " (-c constraints.txt)"))
    print("| env | build s | size MB | distributions | of torch/transformers/sentence_transformers/keybert | "
          "requirements |\n| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row[0]} | {row[1]:.0f} | {row[2]} | {row[3]} | {row[4]} | {row[5]} |")
    print(f"(envs kept in {root}; remove it when done)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
