"""Every exit code of `mlcompile run` (errors.EXIT_CODES, the README's table), produced in process
through `cli.main([...])` (which runs the pipeline's pytest session in this process); pytest's own
2 (interrupted) and 3 (internal error) through a plugin that interrupts or breaks the session."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from mlcompile import cli
from mlcompile.errors import EXIT_CODES

from ..conftest import REPO, SMALL_SHAPES, pipeline_env
from ..tiny_models import build

pytestmark = pytest.mark.functional


@pytest.fixture
def run(workspace, monkeypatch, capsys):
    """`mlcompile <args>` in this process with the workspace's settings; returns (code, output)."""
    def main(*args: str, **settings) -> tuple[int, str]:
        with monkeypatch.context() as patch:
            for key in list(os.environ):
                patch.delenv(key)
            for key, value in pipeline_env(workspace, **settings).items():
                patch.setenv(key, value)
            patch.chdir(REPO)
            code = cli.main(list(args))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return main


def test_help_lists_every_exit_code(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    shown = capsys.readouterr().out
    for code, meaning in EXIT_CODES.items():
        assert f"{code:>2}  {meaning.split(':')[0]}" in shown


def test_0_every_selected_stage_passed(run, workspace):
    code, output = run("run", "--stage", "download")
    assert code == 0, output
    assert (workspace / "outputs" / "download" / "manifest.json").is_file()


def test_1_upload_refused(run, workspace):
    code, output = run("run", "--stage", "compile", "--stage", "upload", **SMALL_SHAPES)
    assert code == 1, output
    assert "upload refused: no validation verdict" in output
    assert not (workspace / "registry" / "mlcompile" / "keywords" / "KEYWORDS-COMPILED").exists()


def plugin(tmp_path, monkeypatch, name: str, raised: str) -> str:
    """A pytest plugin `name` whose collection hook raises `raised` (before any stage runs)."""
    (tmp_path / f"{name}.py").write_text(f"def pytest_collection_modifyitems(items):\n    raise {raised}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_2_interrupted_passes_through(run, tmp_path, monkeypatch):
    code, output = run("run", "--stage", "download", "--", "-p", plugin(tmp_path, monkeypatch, "interrupting", "KeyboardInterrupt"))
    assert code == 2, output


def test_3_internal_error_passes_through(run, tmp_path, monkeypatch):
    code, output = run("run", "--stage", "download", "--", "-p", plugin(tmp_path, monkeypatch, "crashing", "RuntimeError('bug')"))
    assert code == 3, output
    assert "INTERNALERROR" in output


def test_4_pytest_usage_error_passes_through(run):
    code, output = run("run", "--stage", "download", "--", "--no-such-option")
    assert code == 4, output


def test_5_nothing_selected_passes_through(run):
    code, output = run("run", "--stage", "download", "--", "-k", "no_such_test")
    assert code == 5, output


def test_10_configuration_error_before_pytest_writes_nothing(run, workspace):
    code, output = run("run", PROJECT="no-such-project", BATCH_SIZE="many")
    assert code == 10
    assert "PROJECT='no-such-project' (environment)" in output and "known projects: keywords" in output
    assert not (workspace / "outputs").exists()


def test_10_configuration_error_found_by_the_pipeline_plugin(run, workspace, monkeypatch):
    """A backend that cannot run here stops the pytest session before any stage, with 10, not pytest's 4."""
    monkeypatch.setitem(sys.modules, "torch_neuronx", None)  # as on a host without it, whatever ran here before
    code, output = run("run", COMPILER="neuron")
    assert code == 10, output
    assert "COMPILER=neuron cannot run here: torch-neuronx is not installed" in output and "https://pip.repos.neuron.amazonaws.com" in output
    assert not (workspace / "outputs" / "download").exists()
    assert not list((workspace / "outputs").glob(".compile*"))  # no temporary build left behind


def test_11_registry_error(run):
    code, output = run("run", "--stage", "download", UNCOMPILED_WITH_ID="KEYWORDS-TRAINED-9")
    assert code == 11, output
    assert "KEYWORDS-TRAINED-9 not found" in output and "KEYWORDS-TRAINED-1" in output


def test_13_unsupported_model_names_what_it_found_and_writes_nothing(run, workspace):
    model = build("bert", "text-classification", workspace / "gpt" / "model")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "gpt2",
                                                   "architectures": ["GPT2ForSequenceClassification"]}))
    code, output = run("run", UNCOMPILED_PATH=model, MODEL_TASK="auto", SEQUENCE_LENGTHS="")
    assert code == 13, output
    assert "architecture GPT2ForSequenceClassification (model_type 'gpt2') is not supported" in output
    assert "mlcompile compiles the encoders bert, distilbert, roberta, xlm-roberta" in output
    assert not (workspace / "outputs" / "download").exists()
    assert not list((workspace / "outputs").glob(".download.build-*"))  # no half-built stage left behind


def test_12_stage_artifact_error(run, workspace):
    assert run("run", "--stage", "download")[0] == 0
    model = workspace / "outputs" / "download" / "model"
    (model / "planted").symlink_to(shutil.which("python3") or "/bin/sh")  # a link inside a stage output
    code, output = run("run", "--stage", "download")
    assert code == 12, output
    assert "symbolic links are not allowed in artifacts" in output


def test_every_exit_code_is_produced_here_and_in_the_readme_table():
    produced = {int(name.split("_")[1]) for name in globals() if name.startswith("test_") and name.split("_")[1].isdigit()}
    assert produced == set(EXIT_CODES)
    readme = (REPO / "README.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in readme, f"README's exit-code table differs from errors.EXIT_CODES at {code}"
