"""Sentiment: a transformers sequence-classification model and pipeline.

The label is compared exactly, every class probability within tolerance.
"""

from __future__ import annotations

from transformers import DataCollatorWithPadding, TextClassificationPipeline

from .classification import ClassificationTask
from .corpus import SENTIMENT_LABELS, sentiment_corpus
from .demo_training import TrainingRecipe

# The reference implementation's cases, and two more the demo model must get right.
DEMO_INPUTS = [
    {"id": "love-you", "text": "I love you"},
    {"id": "hate-you", "text": "I hate you"},
    {"id": "just-ok", "text": "Just ok"},
    {"id": "love-phone", "text": "I love this phone"},
    {"id": "hate-waiting", "text": "I hate waiting"},
]


class SentimentTask(ClassificationTask):
    name = "sentiment"
    # the model
    hf_task = "text-classification"
    auto_model = "AutoModelForSequenceClassification"
    recipe = TrainingRecipe(labels=tuple(SENTIMENT_LABELS), learning_rate=3e-4)
    # its outputs and checks
    token_level = False
    outcome_check = "label"
    tensor_checks = ("probabilities",)
    demo_inputs = DEMO_INPUTS

    def pipeline_class(self):
        return TextClassificationPipeline

    def call_kwargs(self, params: dict) -> dict:
        return {"top_k": None, "truncation": True}

    def convert(self, text: str, output, config) -> dict:
        scores = {item["label"]: float(item["score"]) for item in output}
        best = max(scores, key=scores.get)
        labels = [config.id2label[i] for i in range(len(config.id2label))]
        return {"label": best, "score": scores[best], "probabilities": {label: scores[label] for label in labels}}

    def outcome(self, prediction: dict) -> str:
        return prediction["label"]

    agreement_checks = ("label_agreement",)

    def agreement_counts(self, compiled: dict, reference: dict) -> dict[str, float]:
        return {"same": float(self.outcome(compiled) == self.outcome(reference))}

    def row_agreement(self, counts: dict[str, float]) -> float:
        return counts["same"]

    def agreement(self, totals: dict[str, float], rows: int) -> dict[str, tuple[float, str]]:
        return {"label_agreement": (totals.get("same", 0.0) / rows if rows else 1.0, "rows with the same label")}

    def tensor(self, check: str, prediction: dict):
        probabilities = prediction[check]
        return [probabilities[label] for label in sorted(probabilities)]

    def corpus(self) -> list:
        return sentiment_corpus(seed=0, size=540)

    def encode_example(self, tokenizer, example) -> dict:
        text, label = example
        return {**tokenizer(text, truncation=True), "labels": SENTIMENT_LABELS.index(label)}

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)
