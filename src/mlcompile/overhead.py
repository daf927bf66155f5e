"""`mlcompile bench --overhead`: what pytest and the framework cost on top of the work. The project
runs three ways, each in a fresh process with fresh outputs and its own copy of the local registry:
the full pytest pipeline (`mlcompile run`, cold), the same command again (warm: every stage reused,
nothing registered), and the four steps as a plain script (the stage functions called directly)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import stages
from .artifacts import write_json_atomic
from .compiled import CompiledSpec
from .errors import ConfigError
from .settings import Settings, load_settings


def plain_steps(settings: Settings) -> str:
    """Download, compile, validate every check and register, without pytest; the registered id."""
    downloaded = stages.download_model(settings)
    compiled = stages.compile_model(settings, downloaded)
    cases = stages.load_cases(settings, downloaded)
    rules = stages.rules_for(settings, stages.task_of(downloaded), cases, CompiledSpec.read(compiled.path).precision)
    verdict = stages.validate_model(settings, downloaded, compiled, cases, rules)
    stages.publish_validation(settings, verdict, None)
    return stages.upload_model(settings, compiled, verdict, rules).info.get("version_id", "")


def main() -> None:  # the plain script's process
    print(plain_steps(load_settings()))


def _timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds


def run(settings: Settings, out=print) -> dict:
    if settings.registry != "local":
        raise ConfigError(f"bench --overhead runs on a copy of the local registry; REGISTRY={settings.registry!r} "
                          "would register versions in a shared one: use REGISTRY=local")
    cli = [sys.executable, "-m", "mlcompile.cli"]
    with tempfile.TemporaryDirectory(prefix="mlcompile-overhead-") as tmp:
        def fresh(name: str) -> dict:
            shutil.copytree(settings.registry_path, Path(tmp) / name / "registry")
            return {**os.environ, "OUTPUTS_DIR": str(Path(tmp) / name / "outputs"),
                    "REGISTRY_PATH": str(Path(tmp) / name / "registry"), "PROJECT": settings.project}

        pipeline = fresh("pytest")
        seconds = {"cold": _timed([*cli, "run"], pipeline), "warm": _timed([*cli, "run"], pipeline),
                   "plain": _timed([sys.executable, "-c", "from mlcompile.overhead import main; main()"],
                                   fresh("plain"))}
    result = {"project": settings.project, "seconds": {k: round(v, 1) for k, v in seconds.items()},
              "warm_vs_cold": round(seconds["warm"] / seconds["cold"], 3),
              "pytest_vs_plain": round(seconds["cold"] / seconds["plain"], 3)}
    write_json_atomic(Path(settings.outputs_dir) / "bench" / f"overhead-{settings.project}.json", result)
    out(f"{settings.project}: cold pytest pipeline {seconds['cold']:.1f} s; warm re-run {seconds['warm']:.1f} s "
        f"({result['warm_vs_cold']:.0%} of cold); the same steps as a plain script {seconds['plain']:.1f} s "
        f"(pytest pipeline = {result['pytest_vs_plain']:.2f}x the plain script)")
    return result
