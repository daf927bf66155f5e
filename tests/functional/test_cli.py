"""`mlcompile` as a user runs it: seed a registry, run the pipeline, read the exit codes."""

from __future__ import annotations

import pytest

from ..conftest import run_cli

pytestmark = pytest.mark.functional


def test_seed_is_idempotent(tmp_path):
    first = run_cli(tmp_path, "seed", "keywords")
    assert first.returncode == 0, first.output
    assert "registered: KEYWORDS-TRAINED-1" in first.output
    second = run_cli(tmp_path, "seed", "keywords")
    assert second.returncode == 0 and "already registered (same content)" in second.output
    assert (tmp_path / "registry" / "mlcompile" / "keywords" / "KEYWORDS-TRAINED" / "KEYWORDS-TRAINED-1").is_dir()
    assert not (tmp_path / "registry" / "mlcompile" / "keywords" / "KEYWORDS-TRAINED" / "KEYWORDS-TRAINED-2").exists()


def test_stage_switches_select_stages_then_full_run_registers(workspace):
    only_download = run_cli(workspace, "run", COMPILE_PIPELINE_EXECUTION_DOWNLOAD="true")
    assert only_download.returncode == 0, only_download.output
    assert (workspace / "outputs" / "download" / "manifest.json").is_file()
    assert not (workspace / "outputs" / "compile").exists()

    full = run_cli(workspace, "run")
    assert full.returncode == 0, full.output
    assert "upload: registered KEYWORDS-COMPILED-1" in full.output
    assert "report outputs" in full.output or "report " in full.output
    listed = run_cli(workspace, "list")
    assert '"version": "KEYWORDS-COMPILED-1"' in listed.output and '"stage": "staging"' in listed.output


def test_configuration_error_exits_2_and_writes_nothing(tmp_path):
    done = run_cli(tmp_path, "run", PROJECT="no-such-project", BATCH_SIZE="many")
    assert done.returncode == 2
    assert "PROJECT='no-such-project' (environment)" in done.output
    assert "known projects: keywords" in done.output
    assert not (tmp_path / "outputs").exists()


def test_unknown_uncompiled_version_is_a_clear_failure(workspace):
    done = run_cli(workspace, "run", "--stage", "download", UNCOMPILED_WITH_ID="KEYWORDS-TRAINED-9")
    assert done.returncode != 0
    assert "KEYWORDS-TRAINED-9 not found" in done.output and "KEYWORDS-TRAINED-1" in done.output
