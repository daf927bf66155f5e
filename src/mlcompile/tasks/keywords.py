"""Keyword extraction: KeyBERT, an application over a sentence-embeddings model.

The compiled part is the sentence-transformer (tokens -> its pooled, normalized embedding); KeyBERT
runs on top of it unchanged, embedding the document and its candidate words through the buckets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..batching import BucketedRunner
from . import CompiledPipeline, Pipeline
from .sentence_embeddings import SentenceEmbeddingsTask, compiled_embed

DEFAULT_PARAMS = {"keyphrase_ngram_range": [1, 1], "stop_words": "english", "top_n": 3}


def keybert_kwargs(params: dict) -> dict:
    kwargs = {**DEFAULT_PARAMS, **params}
    kwargs["keyphrase_ngram_range"] = tuple(kwargs["keyphrase_ngram_range"])
    return kwargs


def _keybert(model):
    # imported on use: KeyBERT pulls in sentence-transformers (seconds), which collecting the
    # validate tests or a warm re-run never needs
    from keybert import KeyBERT

    return KeyBERT(model=model)


def keybert_backend(embed_texts: Callable[[list[str]], np.ndarray]):
    """A KeyBERT backend over an embedding function (the compiled buckets, or the bench's peer)."""
    from keybert.backend import BaseEmbedder

    class CompiledEmbedder(BaseEmbedder):
        def __init__(self):
            super().__init__()
            self.embed_texts = embed_texts

        def embed(self, documents, verbose: bool = False) -> np.ndarray:
            return self.embed_texts(list(documents))

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
        super().__init__(_keybert(keybert_backend(compiled_embed(runner))), lambda texts: [
            info.as_dict() for info in runner.describe(texts)
        ])
        self.runner = runner


def keywords_pipeline(embed_texts: Callable[[list[str]], np.ndarray], text_info) -> KeywordsPipeline:
    return KeywordsPipeline(_keybert(keybert_backend(embed_texts)), text_info)


class KeywordsTask(SentenceEmbeddingsTask):
    name = "keywords"
    task_output_check = "keywords"
    tensor_checks = ("scores", "embedding")
    default_params = DEFAULT_PARAMS

    def uncompiled(self, model_dir: Path, card: dict) -> KeywordsPipeline:
        model = self.uncompiled_model(model_dir)
        return KeywordsPipeline(_keybert(model), self.uncompiled_text_info(model))

    def compiled(self, runner: BucketedRunner, model_dir: Path, card: dict) -> CompiledKeywordsPipeline:
        return CompiledKeywordsPipeline(runner)

    def over_embed(self, embed, text_info) -> KeywordsPipeline:
        return keywords_pipeline(embed, text_info)

    def task_output(self, prediction: dict) -> list[str]:
        return [word for word, _ in prediction["keywords"]]

    agreement_checks = ("keywords_exact_rate", "keywords_jaccard")

    def agreement_counts(self, compiled: dict, uncompiled: dict) -> dict[str, float]:
        ours, theirs = self.task_output(compiled), self.task_output(uncompiled)
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
