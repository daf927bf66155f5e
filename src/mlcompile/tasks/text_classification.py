"""Text classification: a transformers sequence-classification model and pipeline.

Single-label models (softmax): the label is compared exactly. Multi-label models (the config's
`problem_type` is `multi_label_classification`; sigmoid per label): the set of labels scored above
0.5 is compared exactly. Every class probability within tolerance.
"""

from __future__ import annotations

from transformers import TextClassificationPipeline

from ..serving import text_classification as serving
from . import SEQUENCE_CLASSIFIER
from .classification import ClassificationTask


class TextClassificationTask(ClassificationTask):
    name = "text-classification"
    model_kind = SEQUENCE_CLASSIFIER
    auto_model = "AutoModelForSequenceClassification"
    token_level = False
    task_output_check = "label"
    tensor_checks = ("probabilities",)

    def pipeline_class(self):
        return TextClassificationPipeline

    def call_kwargs(self, params: dict) -> dict:
        return {"top_k": None, "truncation": True}

    def convert(self, text: str, output, config) -> dict:
        """The uncompiled pipeline's output as a prediction: the conversion mlcompile.serving makes."""
        labels = [config.id2label[i] for i in range(len(config.id2label))]
        return serving.prediction(output, labels, getattr(config, "problem_type", None))

    def task_output(self, prediction: dict) -> str | list[str]:
        return prediction["label"]

    agreement_checks = ("label_agreement",)
    agreement_meaning = "rows with the same label"

    def tensor(self, check: str, prediction: dict):
        probabilities = prediction[check]
        return [probabilities[label] for label in sorted(probabilities)]
