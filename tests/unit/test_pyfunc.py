"""A compiled version as an MLflow pyfunc model: the MLmodel written over the files already there, the
inputs MLflow hands over, and KeyBERT's answer for a batch without a candidate word."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
import yaml

from mlcompile import pyfunc
from mlcompile.compiled import CompiledSpec
from mlcompile.tasks.keywords import KeywordsPipeline

pytestmark = pytest.mark.unit
SPEC = CompiledSpec(task="keywords", backend="onnx", requested_compiler="auto", compiler_settings={},
                    dynamic_shapes=True, batch_size=8, buckets=[], uncompiled_version="KEYWORDS-TRAINED-1",
                    versions={"mlcompile": "0.1.0", "onnxruntime": "1.32.0", "python": "3.11.7", "torch": "2.13.0"})


def test_the_mlmodel_loads_the_compiled_folder_already_there_with_mlcompiles_loader(tmp_path):
    (tmp_path / "compiled").mkdir()
    (tmp_path / "compiled" / "model.onnx").write_bytes(b"onnx")
    card = {"inference_params": {"keyphrase_ngram_range": [1, 1], "stop_words": "english", "top_n": 3}}
    pyfunc.write_mlmodel(tmp_path, SPEC, card, ["first case", "second case"])

    mlmodel = yaml.safe_load((tmp_path / "MLmodel").read_text())
    flavor = mlmodel["python_function"] if "python_function" in mlmodel else mlmodel["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlcompile.pyfunc" and flavor["data"] == "compiled"
    assert (tmp_path / "compiled" / "model.onnx").read_bytes() == b"onnx"  # not copied, not moved
    assert not (tmp_path / "data").exists()
    assert (tmp_path / "requirements.txt").read_text().split() == [  # the versions it was validated with
        f"mlflow=={mlflow.__version__}", "mlcompile==0.1.0", "onnxruntime==1.32.0", "torch==2.13.0"]
    assert '"text"' in mlmodel["signature"]["inputs"] and '"top_n"' in mlmodel["signature"]["params"]
    assert mlmodel["metadata"] == {"task": "keywords", "backend": "onnx", "precision": "fp32",
                                   "uncompiled_version": "KEYWORDS-TRAINED-1"}
    assert (tmp_path / "input_example.json").is_file()


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
