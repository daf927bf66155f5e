"""Fault injection: each test names the fault it injects and asserts that no wrong model is
registered as good and no good run is lost. The README's fault table points at these tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mlcompile.artifacts import MANIFEST, StageDir
from mlcompile.errors import RegistryError
from mlcompile.registry.local import LocalRegistry

from ..conftest import FEW_CASES, REPO, SMALL_SHAPES, pipeline_env

pytestmark = pytest.mark.integration
PROJECT = "mlcompile/keywords"
SENTINELS = {
    "NEPTUNE_API_TOKEN": "SENTINEL-neptune-7f3a9c",
    "AWS_ACCESS_KEY_ID": "AKIASENTINEL4D2E8B1",
    "AWS_SECRET_ACCESS_KEY": "SENTINEL-aws-secret-0b5e71",
}


def flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_fault_byte_flipped_in_compile_and_download_outputs_is_rebuilt(workspace, in_process):
    assert in_process.cli(workspace, "run", "--stage", "compile", **SMALL_SHAPES).returncode == 0
    outputs = workspace / "outputs"
    built_at = {name: StageDir(outputs, name).load().manifest["created_unix"] for name in ("download", "compile")}
    flip_byte(outputs / "compile" / "model.pt")
    flip_byte(next((outputs / "download" / "model").rglob("model.safetensors")))
    again = in_process.cli(workspace, "run", "--stage", "compile", **SMALL_SHAPES)
    assert again.returncode == 0, again.output
    assert "compile: built" in again.output
    for name in ("download", "compile"):  # detected by the manifest, never trusted: rebuilt and intact
        rebuilt = StageDir(outputs, name).load()
        assert rebuilt.manifest["created_unix"] > built_at[name] and StageDir(outputs, name).problem() is None


def test_fault_registry_file_corrupted_fails_download_and_writes_nothing(workspace, in_process):
    version_dir = workspace / "registry" / PROJECT / "KEYWORDS-TRAINED" / "KEYWORDS-TRAINED-1"
    flip_byte(next((version_dir / "files").rglob("model.safetensors")))
    done = in_process.cli(workspace, "run", "--stage", "download")
    assert done.returncode == 11  # registry error
    assert "does not match its recorded sha256" in done.output
    assert not (workspace / "outputs" / "download").exists()  # nothing downloaded half


def test_fault_model_card_that_does_not_parse_is_a_clear_error(workspace, in_process):
    record = workspace / "registry" / PROJECT / "KEYWORDS-TRAINED" / "KEYWORDS-TRAINED-1" / "version.json"
    record.chmod(0o644)
    record.write_text(record.read_text()[:-20])
    done = in_process.cli(workspace, "run", "--stage", "download")
    assert done.returncode != 0 and "is not valid JSON" in done.output
    assert not (workspace / "outputs" / "download").exists()


def test_fault_compile_killed_with_sigkill_leaves_nothing_a_later_run_accepts(workspace, in_process):
    assert in_process.cli(workspace, "run", "--stage", "download").returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "mlcompile.cli", "run", "--stage", "compile"], cwd=REPO,
                               env=pipeline_env(workspace), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    outputs = workspace / "outputs"
    deadline = time.monotonic() + 300
    while not any(outputs.glob(".compile.build-*/tokenizer")):  # mid-build: the tokenizer written, tracing
        assert process.poll() is None and time.monotonic() < deadline, "compile ended before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (outputs / "compile" / MANIFEST).exists()
    again = in_process.cli(workspace, "run", "--stage", "compile")
    assert again.returncode == 0, again.output
    assert "compile: built" in again.output
    assert not list(outputs.glob(".compile.build-*"))  # the killed build was cleaned up


def test_fault_secrets_never_reach_logs_reports_manifests_or_the_registry(workspace, in_process, caplog):
    caplog.set_level("DEBUG")  # every log record of the runs, whatever its level
    done = in_process.cli(workspace, "run", CASES_FILE=FEW_CASES, **SMALL_SHAPES, **SENTINELS)
    assert done.returncode == 0, done.output
    failed = in_process.cli(workspace, "run", BATCH_SIZE="many", **SENTINELS)  # an error path prints settings
    assert failed.returncode == 10  # configuration error
    settings = in_process.cli(workspace, "settings", **SENTINELS)
    texts = {"stdout/stderr": done.output + failed.output + settings.output, "log records": caplog.text}
    assert "compile: building" in caplog.text  # the runs' own log records were seen
    for root in (workspace / "outputs", workspace / "registry"):
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any(path.endswith("report.html") for path in texts)  # pytest-html's, environment table included
    for name, secret in SENTINELS.items():
        leaks = [where for where, text in texts.items() if secret in text]
        assert not leaks, f"{name} leaked into {leaks}"


def test_fault_registry_write_fails_halfway_then_a_retry_registers_once(tmp_path, monkeypatch):
    from mlcompile.registry import local

    registry = LocalRegistry(tmp_path / "registry")
    files = tmp_path / "files"
    (files / "compiled").mkdir(parents=True)
    (files / "compiled" / "a.bin").write_bytes(b"a" * 1000)
    (files / "compiled" / "b.bin").write_bytes(b"b" * 1000)
    def fail(*_args, **_kwargs):  # the files are copied; writing the version record fails
        raise OSError("disk full (injected)")

    with monkeypatch.context() as patch:
        patch.setattr(local, "write_json_atomic", fail)
        with pytest.raises(RegistryError, match="could not write version KEYWORDS-COMPILED-1: disk full .injected."):
            registry.register(PROJECT, "KEYWORDS-COMPILED", files, {}, {}, "fp")
    assert registry.list_versions(PROJECT, "KEYWORDS-COMPILED") == []  # nothing visible as registered
    version, created = registry.register(PROJECT, "KEYWORDS-COMPILED", files, {}, {}, "fp")
    again, created_again = registry.register(PROJECT, "KEYWORDS-COMPILED", files, {}, {}, "fp")
    assert created and not created_again and version.version_id == again.version_id == "KEYWORDS-COMPILED-1"
    model_dir = tmp_path / "registry" / PROJECT / "KEYWORDS-COMPILED"
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".lock")) == [
        "KEYWORDS-COMPILED-1", "counter.json"]
