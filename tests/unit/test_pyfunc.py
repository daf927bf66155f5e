"""A compiled version as an MLflow pyfunc model: the MLmodel written over the files already there, with its
loader's code and only its serving requirements; the light loader path; the inputs MLflow hands over, and
KeyBERT's answer for a batch without a candidate word."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import mlflow
import pandas as pd
import pytest
import yaml

from mlcompile import compiled, pyfunc, registry
from mlcompile.compiled import CompiledSpec
from mlcompile.tasks.keywords import KeywordsPipeline

from ..conftest import REPO

pytestmark = pytest.mark.unit
SPEC = CompiledSpec(task="keywords", backend="onnx", requested_compiler="auto", compiler_settings={},
                    dynamic_shapes=True, batch_size=8, buckets=[], uncompiled_version="KEYWORDS-TRAINED-1",
                    versions={"mlcompile": "0.1.0", "onnxruntime": "1.32.0", "python": "3.11.7", "torch": "2.13.0"})
HEAVY = ("torch", "transformers", "sentence_transformers", "keybert", "pydantic", "filelock")


def spec(task: str, backend: str, **versions) -> CompiledSpec:
    return SPEC.model_copy(update={"task": task, "backend": backend, "versions": versions})


def test_the_mlmodel_loads_the_compiled_folder_already_there_with_the_loader_it_carries(tmp_path):
    (tmp_path / "compiled").mkdir()
    (tmp_path / "compiled" / "model.onnx").write_bytes(b"onnx")
    card = {"inference_params": {"keyphrase_ngram_range": [1, 1], "stop_words": "english", "top_n": 3}}
    pyfunc.write_mlmodel(tmp_path, SPEC, card, ["first case", "second case"])

    mlmodel = yaml.safe_load((tmp_path / "MLmodel").read_text())
    flavor = mlmodel["python_function"] if "python_function" in mlmodel else mlmodel["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlcompile.pyfunc" and flavor["data"] == "compiled"
    assert flavor["code"] == "code"  # MLflow puts code/ first on sys.path: a fresh env imports mlcompile from it
    assert (tmp_path / "code" / "mlcompile" / "pyfunc.py").read_text() == (REPO / "src/mlcompile/pyfunc.py").read_text()
    assert not list((tmp_path / "code").rglob("__pycache__"))
    assert (tmp_path / "compiled" / "model.onnx").read_bytes() == b"onnx"  # not copied, not moved
    assert not (tmp_path / "data").exists()
    required = (tmp_path / "requirements.txt").read_text().split()
    assert required == pyfunc.requirements(SPEC)  # MLflow adds nothing: mlflow-skinny is among them
    assert {"onnxruntime==1.32.0", "torch==2.13.0", f"mlflow-skinny=={mlflow.__version__}",
            f"keybert=={metadata.version('keybert')}"} <= set(required)  # validation's versions, else this env's
    assert not [line for line in required if line.split("==")[0] in ("mlcompile", "mlflow")]
    assert '"text"' in mlmodel["signature"]["inputs"] and '"top_n"' in mlmodel["signature"]["params"]
    assert mlmodel["metadata"] == {"task": "keywords", "backend": "onnx", "precision": "fp32",
                                   "uncompiled_version": "KEYWORDS-TRAINED-1"}
    assert (tmp_path / "input_example.json").is_file()


HARNESS = ["mlflow-skinny", "pandas"]
FULL = ["filelock", "numpy", "pydantic", "pydantic-settings", "python-dotenv", "tokenizers", "torch", "tqdm",
        "transformers"]


@pytest.mark.parametrize("task, backend, libraries", [
    ("text-classification", "onnx", HARNESS + ["numpy", "onnxruntime", "tokenizers"]),
    ("token-classification", "onnx", HARNESS + ["numpy", "onnxruntime", "tokenizers"]),
    ("keywords", "onnx", HARNESS + FULL + ["keybert", "onnxruntime", "scikit-learn", "sentence-transformers"]),
    ("sentence-embeddings", "onnx", HARNESS + FULL + ["onnxruntime"]),
    ("text-classification", "torchscript", HARNESS + ["numpy", "tokenizers", "torch"]),
    ("keywords", "torchscript", HARNESS + FULL + ["keybert", "scikit-learn", "sentence-transformers"]),
    ("token-classification", "neuron", HARNESS + FULL + ["neuronx-cc", "torch-neuronx"]),
    ("keywords", "neuron", HARNESS + FULL + ["keybert", "neuronx-cc", "scikit-learn", "sentence-transformers",
                                             "torch-neuronx"]),
    ("text-classification", "openvino", HARNESS + FULL + ["openvino"]),
    ("keywords", "openvino", HARNESS + FULL + ["keybert", "openvino", "scikit-learn", "sentence-transformers"]),
])
def test_each_format_names_only_what_serving_it_needs(task, backend, libraries):
    assert pyfunc.serving_libraries(task, backend) == sorted(libraries)


def test_requirements_pin_validations_versions_public_and_name_a_vendors_index():
    onnx = spec("token-classification", "onnx", python="3.11.7", mlcompile="0.1.0", torch="2.13.0+cpu",
                onnxruntime="1.32.0", tokenizers="0.22.0", numpy="2.4.6", transformers="5.24.0")
    assert pyfunc.requirements(onnx) == [f"mlflow-skinny=={metadata.version('mlflow-skinny')}", "numpy==2.4.6",
                                         "onnxruntime==1.32.0", f"pandas=={metadata.version('pandas')}",
                                         "tokenizers==0.22.0"]
    neuron = spec("text-classification", "neuron", torch="2.9.0+cpu", torch_neuronx="2.9.0.2.15.32035",
                  **{"neuronx-cc": "2.26.6360.0", "keybert": None})
    required = pyfunc.requirements(neuron)
    assert required[0] == "--extra-index-url https://pip.repos.neuron.amazonaws.com"
    assert {"torch==2.9.0", "torch-neuronx==2.9.0.2.15.32035", "neuronx-cc==2.26.6360.0"} <= set(required)
    assert not [line for line in required if "+" in line or line.startswith(("mlcompile", "keybert"))]


def test_an_artifact_the_serving_package_does_not_take_keeps_the_full_loaders_requirements(tmp_path):
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "compiled.json").write_text(json.dumps(
        {"task": "sentiment", "backend": "onnx", "dynamic_shapes": True, "batch_size": 8,  # mlcompile 0.1's name
         "buckets": [{"length": 128, "file": "model.onnx"}]}))
    assert "torch" in pyfunc.serving_libraries("text-classification", "onnx", tmp_path)  # no tokenizer.json
    (tmp_path / "tokenizer" / "tokenizer.json").write_text("{}")
    assert pyfunc.serving_libraries("sentiment", "onnx", tmp_path) == ["mlflow-skinny", "numpy", "onnxruntime",
                                                                       "pandas", "tokenizers"]


def test_the_constants_read_as_plain_json_are_the_artifacts_own():
    assert pyfunc.SPEC_FILE == compiled.SPEC_FILE and pyfunc.MODEL_CARD == registry.MODEL_CARD


LIGHT_LOAD = """
import json, sys, types
from pathlib import Path
served = types.ModuleType("mlcompile.serving")  # the serving package's API: load(path).predict_many(texts, params)
class Pipeline:
    def __init__(self, path):
        self.path = path
    def predict_many(self, texts, params):
        return [{"label": "POSITIVE", "text": t, "params": params} for t in texts]
served.load = Pipeline
served.ServingUnsupported = type("ServingUnsupported", (ValueError,), {})
sys.modules["mlcompile.serving"] = served
from mlcompile import pyfunc
model = pyfunc._load_pyfunc(sys.argv[1])
print(json.dumps({"predictions": model.predict({"text": ["good"]}, {"top_k": 2}), "path": str(model.pipeline.path),
                  "heavy": sorted(name for name in sys.modules if name.split(".")[0] in %r)}))
"""


def test_an_onnx_classifier_loads_through_the_serving_package_importing_no_torch_or_pydantic(tmp_path):
    files = tmp_path / "files"
    (files / "compiled").mkdir(parents=True)
    (files / "validation").mkdir()
    (files / "compiled" / "compiled.json").write_text(json.dumps(
        {"task": "text-classification", "backend": "onnx", "precision": "int8"}))
    (files / "compiled" / "model_card.json").write_text(json.dumps({"inference_params": {"top_k": 1}}))
    # a verdict made on this CPU: the machine check runs (reduced precision), reads /proc/cpuinfo, not torch
    (files / "validation" / "verdict.json").write_text(json.dumps({"machine": {"model": "here", "flags": []}}))
    done = subprocess.run([sys.executable, "-c", LIGHT_LOAD % (HEAVY,), str(files / "compiled")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["heavy"] == [] and answer["path"] == str(files / "compiled")
    assert answer["predictions"] == [{"label": "POSITIVE", "text": "good", "params": {"top_k": 2}}]


def test_importing_the_loader_imports_nothing_heavy():
    done = subprocess.run([sys.executable, "-c", "import sys, mlcompile.pyfunc, mlcompile.machine; "
                           f"print(sorted(n for n in sys.modules if n.split('.')[0] in {HEAVY!r}))"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("given, texts", [
    (pd.DataFrame({"text": ["a", ""]}), ["a", ""]),
    (pd.DataFrame({"text": [["a", "b"]]}), ["a", "b"]),  # MLflow's frame for {"text": ["a", "b"]}
    ({"text": ["a", "b"]}, ["a", "b"]),
    ("one text", ["one text"]),
    (["a", "b"], ["a", "b"]),
])
def test_the_texts_of_what_mlflow_hands_over(given, texts):
    assert pyfunc.texts_of(given) == texts


def test_an_input_without_a_text_column_is_named():
    with pytest.raises(ValueError, match=r"columns \['sentence'\]; it needs a 'text' column"):
        pyfunc.texts_of(pd.DataFrame({"sentence": ["a"]}))


class NoCandidateWords:
    """KeyBERT's answer to several documents none of which has a candidate word: [] for all of them."""

    class model:
        @staticmethod
        def embed(texts):
            return [pd.Series([0.0, 1.0]) for _ in texts]

    @staticmethod
    def extract_keywords(texts, **kwargs):
        return []


def test_a_batch_without_candidate_words_still_gets_one_prediction_per_text():
    pipeline = KeywordsPipeline(NoCandidateWords(), lambda texts: [{"tokens": 2} for _ in texts])
    predictions = pipeline.predict_many(["a", "b c"], {})
    assert [p["keywords"] for p in predictions] == [[], []] and len(predictions) == 2
