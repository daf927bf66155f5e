"""Token classification (e.g. named entities): a transformers token-classification model and pipeline.

Entities are compared exactly as (label, start, end, text), with the text cut from the original
string at the pipeline's character offsets (an uncased tokenizer lowercases its tokens); their scores
and the per-token logits within tolerance. The pipeline groups tokens into entities by the
`aggregation_strategy` inference parameter (the model card's, or the AGGREGATION_STRATEGY setting).
"""

from __future__ import annotations

from transformers import TokenClassificationPipeline

from ..serving import token_classification as serving
from . import TOKEN_CLASSIFIER
from .classification import ClassificationTask


class TokenClassificationWithLogits(TokenClassificationPipeline):
    """The transformers pipeline, returning the per-token logits beside the entities."""

    def postprocess(self, all_outputs, **kwargs):
        entities = super().postprocess(all_outputs, **kwargs)
        logits = [out["logits"][0][out["attention_mask"][0].bool()] for out in all_outputs]
        return {"entities": entities, "logits": logits[0] if len(logits) == 1 else logits}


class TokenClassificationTask(ClassificationTask):
    name = "token-classification"
    model_kind = TOKEN_CLASSIFIER
    default_params = {"aggregation_strategy": serving.SIMPLE}  # mlcompile.serving's default too
    auto_model = "AutoModelForTokenClassification"
    token_level = True
    task_output_check = "entities"
    tensor_checks = ("scores", "logits")

    def pipeline_class(self):
        return TokenClassificationWithLogits

    def call_kwargs(self, params: dict) -> dict:
        return {"aggregation_strategy": params.get("aggregation_strategy", self.default_params["aggregation_strategy"])}

    def convert(self, text: str, output, config) -> dict:
        """The uncompiled pipeline's output as a prediction: the conversion mlcompile.serving makes."""
        return serving.prediction(text, output["entities"], output["logits"])

    def task_output(self, prediction: dict) -> list:
        return [[e["label"], e["start"], e["end"], e["text"]] for e in prediction["entities"]]

    agreement_checks = ("entity_f1",)

    def agreement_counts(self, compiled: dict, uncompiled: dict) -> dict[str, float]:
        ours = {tuple(entity) for entity in self.task_output(compiled)}
        theirs = {tuple(entity) for entity in self.task_output(uncompiled)}
        return {"tp": len(ours & theirs), "fp": len(ours - theirs), "fn": len(theirs - ours)}

    def row_agreement(self, counts: dict[str, float]) -> float:
        total = counts["tp"] + counts["fp"] + counts["fn"]
        return counts["tp"] / total if total else 1.0

    def agreement(self, totals: dict[str, float], rows: int) -> dict[str, tuple[float, str]]:
        tp, fp, fn = (totals.get(key, 0.0) for key in ("tp", "fp", "fn"))
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"entity_f1": (f1, f"entity-level F1 of the compiled model against the uncompiled one (label, start, "
                                  f"end, text; precision {precision:.4g}, recall {recall:.4g}: {tp:.0f} entities "
                                  f"agree, {fp:.0f} only compiled, {fn:.0f} only uncompiled)")}

    def tensor(self, check: str, prediction: dict):
        if check == "scores":
            return [e["score"] for e in prediction["entities"]]
        return prediction[check]
