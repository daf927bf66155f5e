"""The whole artifact is validated, not only its executables: a compiled artifact whose tokenizer, label
map or pooling was changed (and its manifest re-sealed, so every hash verifies) fails validate naming the
component and the first differing entries, and nothing is registered; and the verdict records the machine
it was made on, which loading a reduced-precision artifact checks (tiny models built offline)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mlcompile import machine, pyfunc
from mlcompile.artifacts import StageDir
from mlcompile.errors import ArtifactError
from mlcompile.registry.local import LocalRegistry

from ..conftest import REPO, reseal
from ..tiny_models import build

pytestmark = pytest.mark.integration
CASES = REPO / "tests" / "data" / "architecture-cases.json"


def pipeline(tmp_path, in_process, model: Path, *stages_: str):
    args = [arg for stage in stages_ for arg in ("--stage", stage)]
    return in_process.cli(tmp_path, "run", *args, PROJECT="sentiment", UNCOMPILED_PATH=model, MODEL_TASK="auto",
                          SEQUENCE_LENGTHS="", BATCH_SIZE=2, COMPILER="onnx", CASES_FILE=CASES,
                          COMPILED_MODEL="TAMPERED-COMPILED")


def tampered(tmp_path, in_process, architecture: str, task: str, change) -> str:
    """Download and compile, change the artifact with `change(compiled_dir)`, re-seal its manifest, then
    validate and upload: the run's output (which must be a refusal with nothing registered)."""
    model = build(architecture, task, tmp_path / "trained" / "model")
    built = pipeline(tmp_path, in_process, model, "download", "compile")
    assert built.returncode == 0, built.output
    compiled = tmp_path / "outputs" / "compile"
    change(compiled)
    reseal(compiled)
    assert StageDir(tmp_path / "outputs", "compile").problem() is None  # every hash verifies
    done = pipeline(tmp_path, in_process, model, "validate", "upload")
    assert done.returncode == 1, done.output
    assert "upload: refused: validation did not pass:" in done.output
    assert "compiled-artifact::components: failed:" in done.output
    assert LocalRegistry(tmp_path / "registry").list_versions("mlcompile/sentiment", "TAMPERED-COMPILED") == []
    return done.output


def edit_json(path: Path, change) -> None:
    found = json.loads(path.read_text())
    change(found)
    path.write_text(json.dumps(found))


def test_two_words_swapped_in_the_tokenizer_that_no_case_uses_are_caught(tmp_path, in_process):
    def swap_unused_words(compiled: Path):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(compiled / "tokenizer"))
        used = {i for case in json.loads(CASES.read_text()) for i in tokenizer(case["text"])["input_ids"]}
        vocab = tokenizer.get_vocab()
        a, b = [word for word, i in sorted(vocab.items(), key=lambda item: -item[1]) if i not in used][:2]
        swap_unused_words.words = (a, b)

        def swap(serialized):
            serialized["model"]["vocab"][a], serialized["model"]["vocab"][b] = vocab[b], vocab[a]
        edit_json(compiled / "tokenizer" / "tokenizer.json", swap)

    output = tampered(tmp_path, in_process, "bert", "text-classification", swap_unused_words)
    a, b = swap_unused_words.words
    assert f"tokenizer differs: model['vocab']['{a}']" in output or f"tokenizer differs: model['vocab']['{b}']" in output
    verdict = json.loads((tmp_path / "outputs" / "validate" / "verdict.json").read_text())
    assert verdict["outcomes"]["compiled-artifact::tokenization"] == "passed"  # no case reaches the swapped words
    assert all(outcome == "passed" for check, outcome in verdict["outcomes"].items()
               if check != "compiled-artifact::components")  # only the structural comparison sees it


def test_two_labels_swapped_in_the_label_map_are_caught(tmp_path, in_process):
    def swap_labels(compiled: Path):
        def swap(config):
            config["id2label"]["0"], config["id2label"]["1"] = config["id2label"]["1"], config["id2label"]["0"]
            config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
        edit_json(compiled / "config" / "config.json", swap)

    output = tampered(tmp_path, in_process, "distilbert", "text-classification", swap_labels)
    assert "config differs: id2label[0]: \"NEUTRAL\" in the compiled artifact, \"NEGATIVE\" uncompiled" in output


def test_mean_pooling_changed_to_cls_in_a_sentence_transformer_artifact_is_caught(tmp_path, in_process):
    def cls_pooling(compiled: Path):
        def change(pooling):  # sentence-transformers 6 writes the mode as one key
            assert pooling["pooling_mode"] == "mean"
            pooling["pooling_mode"] = "cls"
        [config] = (compiled / "modules").glob("*Pooling/config.json")
        edit_json(config, change)

    output = tampered(tmp_path, in_process, "bert", "sentence-embeddings", cls_pooling)
    assert "modules differs: 1_Pooling/config.json['pooling_mode']: \"cls\" in the compiled artifact, \"mean\" " \
           "uncompiled" in output


def test_the_verdict_names_its_machine_and_a_reduced_precision_load_elsewhere_warns_or_refuses(
        tmp_path, in_process, monkeypatch, caplog):
    model = build("bert", "text-classification", tmp_path / "trained" / "model")
    done = pipeline(tmp_path, in_process, model)
    assert done.returncode == 0, done.output
    verdict = json.loads((tmp_path / "outputs" / "validate" / "verdict.json").read_text())
    here = machine.cpu_description()
    assert verdict["machine"]["flags"] == here["flags"] and verdict["machine"]["model"] == here["model"]
    assert "onnxruntime" in verdict["machine"]["runtimes"]
    assert f"validate: on {here['model']}" in done.output

    # an int8 artifact as registered: compiled/ beside validation/verdict.json, validated on a CPU with VNNI
    int8 = in_process.cli(tmp_path / "int8", "run", "--stage", "download", "--stage", "compile", PROJECT="sentiment",
                          UNCOMPILED_PATH=model, SEQUENCE_LENGTHS="", BATCH_SIZE=2, COMPILER="onnx-int8",
                          CASES_FILE=CASES)
    assert int8.returncode == 0, int8.output
    files = tmp_path / "version" / "files"
    (files / "validation").mkdir(parents=True)
    (files / "compiled").symlink_to(tmp_path / "int8" / "outputs" / "compile")
    validated = {"model": "Validating CPU", "flags": ["avx2", "avx512f", "avx512_vnni"]}
    (files / "validation" / "verdict.json").write_text(json.dumps({"machine": validated}))
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Serving CPU without VNNI\nflags\t\t: fpu sse avx2 avx512f\n")
    monkeypatch.setattr(machine, "CPUINFO", cpuinfo)

    with caplog.at_level(logging.WARNING, logger="mlcompile.machine"):
        pyfunc._load_pyfunc(str(files / "compiled"))  # what mlflow.pyfunc.load_model calls
    assert "validated on Validating CPU with avx2, avx512f, avx512_vnni; this CPU (Serving CPU without VNNI) " \
           "lacks avx512_vnni" in caplog.text
    monkeypatch.setenv("MACHINE_MISMATCH", "refuse")
    with pytest.raises(ArtifactError, match="refused \\(MACHINE_MISMATCH=refuse\\).*lacks avx512_vnni"):
        pyfunc._load_pyfunc(str(files / "compiled"))
    cpuinfo.write_text("model name\t: Serving CPU with VNNI\nflags\t\t: avx2 avx512f avx512_vnni amx_tile\n")
    pyfunc._load_pyfunc(str(files / "compiled"))  # every flag the validation had: loads
