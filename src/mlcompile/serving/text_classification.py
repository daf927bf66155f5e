"""Text classification's post-processing: transformers' `TextClassificationPipeline.postprocess`
(top_k=None: every label, best first) in numpy, and mlcompile's prediction of it (the task's `convert`,
which tasks/text_classification.py calls too)."""

from __future__ import annotations

import numpy as np

from .artifact import LabelConfig

MULTI_LABEL = "multi_label_classification"
MULTI_LABEL_THRESHOLD = 0.5  # a label applies when its sigmoid score is above this
SIGMOID, SOFTMAX, NONE = "sigmoid", "softmax", "none"


def sigmoid(outputs: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-outputs))


def softmax(outputs: np.ndarray) -> np.ndarray:
    maxes = np.max(outputs, axis=-1, keepdims=True)
    shifted_exp = np.exp(outputs - maxes)
    return shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)


def function_for(config: LabelConfig, function_to_apply: str | None = None) -> str:
    """The pipeline's rule: regression none; multi-label or a single label sigmoid; several labels softmax."""
    if function_to_apply is not None:
        return function_to_apply.lower()
    if config.problem_type == "regression":
        return NONE
    if config.problem_type == MULTI_LABEL or config.num_labels == 1:
        return SIGMOID
    if config.problem_type == "single_label_classification" or config.num_labels > 1:
        return SOFTMAX
    if config.function_to_apply is not None:
        return str(config.function_to_apply).lower()
    return NONE


def postprocess(logits: np.ndarray, config: LabelConfig, function_to_apply: str | None = None) -> list[dict]:
    """One text's logits as the pipeline's `[{"label", "score"}, ...]`, every label, best first."""
    outputs = np.asarray(logits, dtype=np.float32)
    function = function_for(config, function_to_apply)
    if function == SIGMOID:
        scores = sigmoid(outputs)
    elif function == SOFTMAX:
        scores = softmax(outputs)
    elif function == NONE:
        scores = outputs
    else:
        raise ValueError(f"Unrecognized `function_to_apply` argument: {function_to_apply}")
    found = [{"label": config.id2label[i], "score": score.item()} for i, score in enumerate(scores)]
    found.sort(key=lambda x: x["score"], reverse=True)
    return found


def prediction(output: list[dict], labels: list[str], problem_type: str | None) -> dict:
    """The pipeline's output for one text as mlcompile's prediction: the argmax label, its score and every
    class probability; multi-label: the labels scored above 0.5 and every probability."""
    scores = {item["label"]: float(item["score"]) for item in output}
    probabilities = {label: scores[label] for label in labels}
    if problem_type == MULTI_LABEL:
        chosen = [label for label in labels if scores[label] > MULTI_LABEL_THRESHOLD]
        return {"label": chosen, "probabilities": probabilities}
    best = max(scores, key=scores.get)
    return {"label": best, "score": scores[best], "probabilities": probabilities}
