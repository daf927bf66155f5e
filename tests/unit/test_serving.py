"""mlcompile.serving, the serving path of compiled ONNX classifiers without torch or transformers: its
predictions are the compiled transformers pipeline's (task output exactly, tensors within 1e-5) on tiny
models of several tokenizer families (WordPiece, byte-level BPE, Unigram; single- and multi-label) (the
demo models' artifacts: validated through it against the uncompiled model by `make run` and CI); its runner batches exactly as batching.BucketedRunner; it imports and predicts with torch
and transformers blocked; and validation's compiled pipeline of an ONNX artifact is serving's."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mlcompile import serving, stages
from mlcompile.batching import BucketedRunner
from mlcompile.compiled import load_runner
from mlcompile.settings import load_settings
from mlcompile.tasks import get_task
from mlcompile.tasks.classification import ServedPipeline

from ..conftest import REPO, clean_environ
from ..tiny_models import build

TOLERANCE = 1e-5
CASES = REPO / "tests" / "data" / "architecture-cases.json"
LONG = ("Maria Schmidt met the Siemens board in Munich on Tuesday, and then Tim Cook flew to Austin, Texas, where "
        "Apple opened an office; the review said the food was great but the service was slow. ") * 3
TEXTS = [
    "Maria Schmidt met the Siemens board in Munich on Tuesday.",
    "",
    " ",
    "!!! ??? ...",
    "ok",
    LONG,  # longer than the largest compiled length: truncated
    "Tim Cook announced that Apple will open a new office in Austin, Texas.",
    "Anna Müller wohnt in Hamburg und arbeitet für SAP. Café, naïve, 東京, 🙂 émigré.",
    "The service was slow but friendly. The food was great!",
    "unbelievably-hyphenated e-mail addresses like anna@example.com and URLs https://example.com/x?y=1",
    "Google HQ is in Mountain View, CA; Amazon's is in Seattle, WA.",
    "I love it",
    "Numbers: 3.14159, 2,718 and 1e-5.",
    LONG[:150],
]
# (architecture, model kind): WordPiece (word-aware subwords), byte-level BPE, Unigram (the fallback heuristic)
TINY = [("bert", "token-classification"), ("roberta", "token-classification"),
        ("xlm-roberta", "token-classification"), ("deberta-v2", "text-classification"),
        ("distilbert", "multi-label"), ("roberta", "text-classification")]


def compile_onnx(root: Path, model: Path, lengths: str = "16,32", compiler: str = "onnx") -> Path:
    """download and compile `model` (a Hugging Face directory) with `compiler`; the artifact's path."""
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            patch.delenv(key)
        env = clean_environ(REGISTRY_PATH=root / "registry", OUTPUTS_DIR=root / "outputs", PROJECT="sentiment",
                            UNCOMPILED_PATH=model, MODEL_TASK="auto", SEQUENCE_LENGTHS=lengths, BATCH_SIZE=2,
                            COMPILER=compiler, CASES_FILE=CASES, TORCH_THREADS=1)
        for key, value in {**os.environ, **env}.items():
            patch.setenv(key, str(value))
        patch.chdir(REPO)
        settings = load_settings()
        stages.compile_model(settings, stages.download_model(settings))
        return stages.stage(settings, "compile").path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Tiny ONNX artifacts, compiled for 16 and 32 tokens (one dynamic-shape file of 32: longer texts are cut)."""
    found = {}
    for architecture, kind in TINY:
        root = tmp_path_factory.mktemp(f"{architecture}-{kind}")
        found[architecture, kind] = compile_onnx(root, build(architecture, kind, root / "model"))
    return found


def pipelines(artifact: Path):
    """(serving's pipeline loaded on its own, the compiled transformers pipeline today's path built)."""
    spec = json.loads((artifact / "compiled.json").read_text())
    task = get_task(spec["task"])
    runner = load_runner(artifact)
    reference = task.transformers_compiled(runner, artifact, {})
    return serving.load(artifact, threads=1), reference


def assert_same(served: list[dict], reference: list[dict], task: str) -> None:
    assert len(served) == len(reference)
    for ours, theirs in zip(served, reference):
        assert set(ours) == set(theirs)
        assert ours["text_info"] == theirs["text_info"]
        if task == "token-classification":
            assert [{k: v for k, v in e.items() if k != "score"} for e in ours["entities"]] == \
                   [{k: v for k, v in e.items() if k != "score"} for e in theirs["entities"]]
            np.testing.assert_allclose([e["score"] for e in ours["entities"]],
                                       [e["score"] for e in theirs["entities"]], atol=TOLERANCE, rtol=0)
            assert np.shape(ours["logits"]) == np.shape(theirs["logits"])
            np.testing.assert_allclose(ours["logits"], theirs["logits"], atol=TOLERANCE, rtol=0)
        else:
            assert ours["label"] == theirs["label"]
            assert list(ours["probabilities"]) == list(theirs["probabilities"])
            np.testing.assert_allclose(list(ours["probabilities"].values()), list(theirs["probabilities"].values()),
                                       atol=TOLERANCE, rtol=0)
            if "score" in theirs:
                assert math.isclose(ours["score"], theirs["score"], abs_tol=TOLERANCE)


@pytest.mark.unit
@pytest.mark.parametrize("architecture, kind", TINY, ids=[f"{a}-{k}" for a, k in TINY])
# transformers' own warning for BPE/Unigram tokenizers (serving's is asserted below)
@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words:UserWarning")
def test_serving_predicts_what_the_compiled_transformers_pipeline_does(tiny, architecture, kind):
    artifact = tiny[architecture, kind]
    ours, theirs = pipelines(artifact)
    task = "token-classification" if kind == "token-classification" else "text-classification"
    strategies = ("simple", "none", "first", "average", "max") if task == "token-classification" else (None,)
    for strategy in strategies:
        params = {"aggregation_strategy": strategy} if strategy else {}
        with pytest.warns() if architecture != "bert" and strategy in ("first", "average", "max") else contextlib.nullcontext():
            served = ours.predict_many(TEXTS, params)
        assert_same(served, theirs.predict_many(TEXTS, params), task)
        for text in TEXTS[:3] + [LONG]:  # one by one: other batches
            assert_same([ours.predict(text, params)], [theirs.predict(text, params)], task)
    assert any(p["text_info"]["truncated"] for p in served)
    if kind == "multi-label":
        assert all(isinstance(p["label"], list) for p in served) and "score" not in served[0]
    if task == "token-classification":
        assert sum(len(p["entities"]) for p in served) > 5
    assert ours.predict_many([], {}) == []  # (the transformers pipeline raises on no input)


@pytest.mark.unit
def test_validation_runs_the_serving_path_and_keeps_the_runner_for_its_probes(tiny):
    artifact = tiny["bert", "token-classification"]
    from mlcompile import compiled

    pipeline = compiled.load(artifact)
    assert isinstance(pipeline, ServedPipeline) and isinstance(pipeline.runner, BucketedRunner)
    assert isinstance(pipeline.serving, serving.TokenClassificationPipeline)
    # the adapter runs the runner's own sessions: the same predictions as serving's own, bit for bit
    assert pipeline.predict_many(TEXTS, {}) == serving.load(artifact).predict_many(TEXTS, {})
    (own,), _ = pipeline.runner.run([TEXTS[0]])
    assert np.array_equal(own.numpy(), np.asarray(pipeline.predict(TEXTS[0], {})["logits"], dtype=np.float32))


@pytest.mark.unit
def test_without_tokenizer_json_serving_says_why_and_validation_falls_back(tiny, tmp_path):
    artifact = shutil.copytree(tiny["bert", "token-classification"], tmp_path / "artifact")
    (artifact / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(serving.ServingUnsupported, match="has no tokenizer.json"):
        serving.load(artifact)
    runner = load_runner(tiny["bert", "token-classification"])  # its tokenizer loaded before the file went
    fallback = get_task("token-classification").compiled(runner, artifact, {})
    assert not isinstance(fallback, ServedPipeline) and "has no tokenizer.json" in fallback.serving_fallback


@pytest.mark.unit
@pytest.mark.parametrize("architecture, kind", [("bert", "token-classification"), ("roberta", "text-classification")])
@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words:UserWarning")
def test_a_torchscript_artifact_is_served_with_torch_alone_and_validated_through_the_same_path(
        architecture, kind, tmp_path):
    """Static shapes, methods of one shared model.pt, batch-1 methods: serving runs them with torch, no
    transformers, and validation's compiled pipeline is serving's."""
    from mlcompile import compiled, pyfunc

    artifact = compile_onnx(tmp_path, build(architecture, kind, tmp_path / "model"), compiler="torchscript")
    spec = json.loads((artifact / "compiled.json").read_text())
    assert spec["backend"] == "torchscript" and spec["buckets"][0]["single_method"]
    ours, theirs = pipelines(artifact)
    assert_same(ours.predict_many(TEXTS, {}), theirs.predict_many(TEXTS, {}), kind)
    assert_same([ours.predict(TEXTS[0], {})], [theirs.predict(TEXTS[0], {})], kind)  # the batch-1 method
    validated = compiled.load(artifact)
    assert isinstance(validated, ServedPipeline) and validated.runner.backend == "torchscript"
    assert validated.predict_many(TEXTS, {}) == ours.predict_many(TEXTS, {})
    assert pyfunc.serving_libraries(spec["task"], "torchscript", artifact) == [
        "mlflow-skinny", "numpy", "pandas", "tokenizers", "torch"]
    code = ("import sys, json; sys.modules['transformers'] = None; sys.modules['pydantic'] = None; "
            "from mlcompile import serving; "
            f"print(json.dumps(serving.load({str(artifact)!r}).predict_many(['I love it'], {{}})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == json.loads(json.dumps(ours.predict_many(["I love it"], {})))


def fake_module(calls: list):
    """A compiled module's stand-in: per row and token, id * 10 + the row's length; records each call's shape."""
    def run(ids, mask):
        calls.append(tuple(ids.shape))
        ids, mask = np.asarray(ids), np.asarray(mask)
        out = (ids * 10 + mask.sum(1, keepdims=True)).astype(np.float32)
        return np.stack([out, -out], -1)
    return run


@pytest.mark.unit
@pytest.mark.parametrize("dynamic, batch_tokens, single", [(True, None, False), (True, 24, False),
                                                         (False, None, False), (False, None, True)])
def test_the_runner_batches_and_routes_as_the_bucketed_runner(dynamic, batch_tokens, single):
    rows = [[1] + [5 + i % 7] * n + [2] for i, n in enumerate([3, 0, 14, 7, 7, 1, 30, 9, 2, 2, 13])]
    lengths = [32] if dynamic else [8, 16, 32]
    ours_calls, theirs_calls = [], []
    ours = serving.runner.Runner({n: fake_module(ours_calls) for n in lengths}, 3, True, 0, [1, 2], dynamic=dynamic,
                                 single={n: fake_module(ours_calls) for n in lengths} if single else None,
                                 batch_tokens=batch_tokens)

    def torch_module(calls):
        module = fake_module(calls)
        return lambda ids, mask: torch.from_numpy(module(ids.numpy(), mask.numpy()))

    class Tokenizer:
        pad_token_id, cls_token_id, sep_token_id = 0, 1, 2

    theirs = BucketedRunner(Tokenizer(), {n: torch_module(theirs_calls) for n in lengths}, 3, token_level=True,
                            dynamic=dynamic, single={n: torch_module(theirs_calls) for n in lengths} if single else None,
                            batch_tokens=batch_tokens)
    got, expected = ours.run_ids(rows), theirs.run_ids(rows)[0]
    assert ours_calls == theirs_calls
    for a, b in zip(got, expected):
        assert np.array_equal(a, b.numpy())
    assert [ours.text_info(n) for n in (3, 32, 40)] == [theirs._info(n).as_dict() for n in (3, 32, 40)]


BLOCKED = """
import json, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
sys.modules["pydantic"] = None
from mlcompile.serving import load
pipeline = load(sys.argv[1], threads=1)
predictions = pipeline.predict_many(["Maria Schmidt met the Siemens board in Munich.", ""], {})
outside = sorted(m for m in sys.modules if m.startswith("mlcompile") and not m.startswith("mlcompile.serving")
                 and m != "mlcompile")
print(json.dumps({"predictions": predictions, "outside": outside}))
"""


@pytest.mark.unit
def test_serving_imports_and_predicts_with_torch_and_transformers_blocked(tiny):
    artifact = tiny["bert", "token-classification"]
    done = subprocess.run([sys.executable, "-c", BLOCKED, str(artifact)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["outside"] == []
    assert found["predictions"] == serving.load(artifact).predict_many(
        ["Maria Schmidt met the Siemens board in Munich.", ""], {})


@pytest.mark.unit
def test_serving_sessions_are_loaded_as_the_onnx_backend_loads_them(tiny):
    from mlcompile.compilers.onnx import OnnxCompiler

    artifact = tiny["bert", "token-classification"]
    ours = serving.sessions.load_session(artifact / "model.onnx", threads=2).session.get_session_options()
    theirs_run = OnnxCompiler(threads=2).load(artifact / "model.onnx")
    session = next(c.cell_contents for c in theirs_run.__closure__ if hasattr(c.cell_contents, "get_session_options"))
    theirs = session.get_session_options()
    for name in ("graph_optimization_level", "execution_mode", "inter_op_num_threads", "intra_op_num_threads"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.get_session_config_entry("session.intra_op.allow_spinning") == "0"
