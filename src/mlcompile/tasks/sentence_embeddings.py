"""Sentence embeddings: a sentence-transformers model (its transformer, pooling and normalization
modules, as the model saved them), compiled as one `(input_ids, attention_mask) -> embedding` function.

The task-level output is what an embedding is used for: which texts it is nearest to. Each text's
embedding is compared by cosine similarity with a fixed set of anchor sentences embedded by the same
pipeline, and the `top_k` nearest anchors, in order, are compared exactly; the embedding and the
similarities within tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..batching import BucketedRunner
from . import SENTENCE_TRANSFORMER, CompiledPipeline, Pipeline, TaskFamily, model_max_length, uncompiled_text_info

MODEL_DIR = "model"
# Sentences on unrelated topics (three languages): what a text is nearest to among them.
ANCHORS = {
    "weather": "It is raining heavily and the streets are flooded.",
    "football": "The team won the football match in the last minute.",
    "cooking": "Fry the onions in the pan until they are golden.",
    "finance": "The central bank raised interest rates again this quarter.",
    "software": "The program crashed because of a null pointer error.",
    "health": "Regular exercise lowers the risk of heart disease.",
    "travel": "Our flight to Madrid was delayed by three hours.",
    "music": "She plays the violin in the city orchestra.",
    "law": "The court ruled that the contract was void.",
    "science": "Photosynthesis turns sunlight into chemical energy.",
    "train-de": "Der Zug nach Berlin fährt um acht Uhr ab.",
    "museum-es": "El museo abre todos los días excepto los lunes.",
}


class SentenceEmbedding(torch.nn.Module):
    """The sentence-transformer's own modules (transformer, pooling, normalization) as one
    `(input_ids, attention_mask) -> embedding` function."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]


def sentence_modules(model_dir: Path) -> list[dict]:
    """A sentence-transformers model's modules in order (type, path), from its modules.json; none for a
    plain transformers model."""
    modules = model_dir / "modules.json"
    return json.loads(modules.read_text()) if modules.is_file() else []


def transformer_dir(model_dir: Path) -> Path:
    """Where a sentence-transformers model keeps its Transformer module (config and tokenizer):
    the path modules.json gives its first module, usually the model's root."""
    modules = sentence_modules(model_dir)
    return model_dir / modules[0].get("path", "") if modules else model_dir


def load_sentence_transformer(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir / MODEL_DIR), device="cpu", local_files_only=True).eval()


def compiled_embed(runner: BucketedRunner) -> Callable[[list[str]], np.ndarray]:
    """Texts -> embeddings (rows) through the compiled buckets."""

    def embed(texts: list[str]) -> np.ndarray:
        outputs, _ = runner.run(list(texts))
        return torch.stack(outputs).float().numpy() if outputs else np.zeros((0, 0), dtype=np.float32)

    return embed


def uncompiled_embed(model) -> Callable[[list[str]], np.ndarray]:
    def embed(texts: list[str]) -> np.ndarray:
        return model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False)

    return embed


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


class EmbeddingsPipeline(Pipeline):
    def __init__(self, embed: Callable[[list[str]], np.ndarray], text_info: Callable[[list[str]], list[dict]]):
        self.embed = embed
        self.text_info = text_info  # texts -> [{"tokens", "bucket", "truncated"}]
        self._anchors: np.ndarray | None = None

    def anchors(self) -> np.ndarray:
        if self._anchors is None:  # embedded by this pipeline, once
            self._anchors = _unit(self.embed(list(ANCHORS.values())))
        return self._anchors

    def predict_many(self, texts: list[str], params: dict) -> list[dict]:
        texts = list(texts)
        embeddings = self.embed(texts)
        similarities = _unit(embeddings) @ self.anchors().T if texts else np.zeros((0, len(ANCHORS)))
        top_k = int(params.get("top_k", SentenceEmbeddingsTask.default_params["top_k"]))
        names = list(ANCHORS)
        return [
            {"neighbours": [names[i] for i in np.argsort(-row, kind="stable")[:top_k]],
             "similarities": dict(zip(names, row.tolist())), "embedding": embedding.tolist(), "text_info": info}
            for row, embedding, info in zip(similarities, embeddings, self.text_info(texts), strict=True)
        ]


class CompiledEmbeddingsPipeline(EmbeddingsPipeline, CompiledPipeline):
    def __init__(self, runner: BucketedRunner):
        super().__init__(compiled_embed(runner), lambda texts: [info.as_dict() for info in runner.describe(texts)])
        self.runner = runner


def sentence_max_length(model_dir: Path) -> int:
    """sentence-transformers truncates at max_seq_length (its module's config), not the tokenizer's
    maximum; and no model embeds more positions than it has."""
    module = transformer_dir(model_dir)
    limit = model_max_length(module)
    config = module / "sentence_bert_config.json"
    configured = json.loads(config.read_text()).get("max_seq_length") if config.is_file() else None
    return min(int(configured), limit) if configured else limit


class SentenceEmbeddingsTask(TaskFamily):
    name = "sentence-embeddings"
    model_kind = SENTENCE_TRANSFORMER
    token_level = False
    task_output_check = "neighbours"
    tensor_checks = ("similarities", "embedding")
    default_params = {"top_k": 3}

    def tokenizer_dir(self, model_dir: Path) -> Path:
        return transformer_dir(model_dir / MODEL_DIR)

    def traceable(self, model_dir: Path) -> torch.nn.Module:
        return SentenceEmbedding(load_sentence_transformer(model_dir)).eval()

    def max_length(self, model_dir: Path) -> int:
        return sentence_max_length(model_dir / MODEL_DIR)

    def uncompiled_text_info(self, model) -> Callable[[list[str]], list[dict]]:
        def text_info(texts: list[str]) -> list[dict]:
            counts = [len(ids) for ids in model.tokenizer(texts, verbose=False)["input_ids"]]
            return [uncompiled_text_info(n, model.max_seq_length) for n in counts]

        return text_info

    def uncompiled_model(self, model_dir: Path):
        """The sentence-transformer, truncating at no more than the model can embed."""
        model = load_sentence_transformer(model_dir)
        model.max_seq_length = self.max_length(model_dir)
        return model

    def uncompiled(self, model_dir: Path, card: dict) -> EmbeddingsPipeline:
        model = self.uncompiled_model(model_dir)
        return EmbeddingsPipeline(uncompiled_embed(model), self.uncompiled_text_info(model))

    def compiled(self, runner: BucketedRunner, model_dir: Path, card: dict) -> CompiledEmbeddingsPipeline:
        return CompiledEmbeddingsPipeline(runner)

    def over_embed(self, embed, text_info) -> EmbeddingsPipeline:
        return EmbeddingsPipeline(embed, text_info)

    def task_output(self, prediction: dict) -> list[str]:
        return prediction["neighbours"]

    def tensor(self, check: str, prediction: dict):
        if check == "similarities":
            return [prediction[check][name] for name in ANCHORS]
        return prediction[check]

    agreement_checks = ("neighbours_exact_rate",)
    agreement_meaning = "rows with the same nearest anchor sentences in the same order"
