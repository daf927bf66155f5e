"""`mlcompile` as a user runs it (in this process): seed a registry, select stages, bench; the exit
codes are in test_exit_codes.py."""

from __future__ import annotations

import json

import pytest

from ..conftest import FEW_CASES, SMALL_SHAPES


pytestmark = pytest.mark.functional


def test_seed_is_idempotent(tmp_path, in_process):
    first = in_process.cli(tmp_path, "seed", "keywords", "--if-missing")
    assert first.returncode == 0, first.output
    assert "registered: KEYWORDS-TRAINED-1" in first.output
    second = in_process.cli(tmp_path, "seed", "keywords")
    assert second.returncode == 0 and "already registered (same content)" in second.output
    third = in_process.cli(tmp_path, "seed", "keywords", "--if-missing")  # make run, compose's compile-seed
    assert third.returncode == 0 and "nothing to seed: KEYWORDS-TRAINED-1 is in project 'mlcompile/keywords'" \
        in third.output
    assert (tmp_path / "registry" / "mlcompile" / "keywords" / "KEYWORDS-TRAINED" / "KEYWORDS-TRAINED-1").is_dir()
    assert not (tmp_path / "registry" / "mlcompile" / "keywords" / "KEYWORDS-TRAINED" / "KEYWORDS-TRAINED-2").exists()


def test_stage_switches_select_stages(workspace, in_process):
    # The CLI turns COMPILE_PIPELINE_EXECUTION_* into -m; the plugin's own mapping: tests/unit/test_plugin.py.
    only_download = in_process.cli(workspace, "run", COMPILE_PIPELINE_EXECUTION_DOWNLOAD="true")
    assert only_download.returncode == 0, only_download.output
    assert (workspace / "outputs" / "download" / "manifest.json").is_file()
    assert not (workspace / "outputs" / "compile").exists()

    only_compile = in_process.cli(workspace, "run", COMPILE_PIPELINE_EXECUTION_COMPILE="true", **SMALL_SHAPES)
    assert only_compile.returncode == 0, only_compile.output
    assert "compile: built" in only_compile.output
    assert (workspace / "outputs" / "compile" / "manifest.json").is_file()
    assert not (workspace / "outputs" / "validate").exists()
    listed = in_process.cli(workspace, "list").output
    assert '"version": "KEYWORDS-TRAINED-1"' in listed and "KEYWORDS-COMPILED" not in listed


def test_bench_prints_each_variant_against_the_uncompiled_pipeline(workspace, in_process):
    done = in_process.cli(workspace, "bench", "--variants", "onnx,optimum-onnx,uncompiled-one-by-one", "--repeat", "1", "--corpus-size", "6",
                          CASES_FILE=FEW_CASES)
    assert done.returncode == 0, done.output
    assert "pipeline: the task pipeline on 6 documents of config/bench/keywords.jsonl" in done.output
    lines = {line.split()[0]: line.split() for line in done.output.splitlines()
             if line.startswith(("uncompiled", "onnx", "optimum-onnx"))}
    # ratios to the uncompiled pipeline batched; task outputs on the corpus, the cases, the agreement set
    assert lines["uncompiled"][2] == lines["uncompiled"][3] == "1.0" and lines["uncompiled"][-3:] == ["6/6"] * 3
    assert lines["onnx"][-3:] == ["6/6"] * 3  # fp32: every task output identical
    assert lines["optimum-onnx"][1] == "skipped:"  # a row that says why, not a missing one
    assert "frontier:" in done.output and "pass 1/1: onnx: " in done.output  # progress as it goes
    result = json.loads((workspace / "outputs" / "bench" / "keywords.json").read_text())
    onnx = result["rows"]["onnx"]
    assert onnx["throughput_vs_uncompiled"] > 0 and onnx["model_vs_uncompiled"] > 0 and onnx["p95_ms"] >= onnx["p50_ms"] > 0
    assert onnx["artifact_mb"] > 50 and onnx["load_seconds"] > 0 and onnx["peak_rss_mb"] > 100
    assert onnx["agreement"] == 1.0 and result["rows"]["uncompiled-one-by-one"]["docs_per_second"] > 0
    assert result["cpu"]["model"] and result["threads"] >= 1
    page = (workspace / "outputs" / "bench" / "keywords.html").read_text()
    assert page.count("<svg") == 4 and "Throughput against agreement" in page
    assert "skipped: optimum-onnx is not installed" in page
