"""A regression set: rows streamed from JSON Lines, CSV or Parquet; aggregate checks from one batched
pass of both pipelines (here fakes whose outputs the test sets), their thresholds, worst rows and
histograms; and the rules a verdict is bound to."""

from __future__ import annotations

import json

import pytest

from mlcompile.errors import ConfigError
from mlcompile.regression import describe, evaluate, read_rows
from mlcompile.tasks import Tolerance, get_task
from mlcompile.verdict import Rules

pytestmark = pytest.mark.unit
TOLERANCE = Tolerance(1e-3, 1e-3)


def write_rows(tmp_path, rows: list[dict], suffix: str = ".jsonl"):
    path = tmp_path / f"set{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif suffix == ".csv":
        import csv

        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "text", "params"])
            writer.writeheader()
            writer.writerows({**row, "params": json.dumps(row["params"]) if "params" in row else ""} for row in rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{"id": r["id"], "text": r["text"]} for r in rows]), path)
    return path


ROWS = [{"id": "a", "text": "Maria met Siemens in Munich."}, {"id": "b", "text": "Nothing here.", "params": {"x": 1}},
        {"id": "c", "text": "Lukas works at Volkswagen."}]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_rows_stream_from_each_format_with_the_cards_parameters(tmp_path, suffix):
    rows = list(read_rows(write_rows(tmp_path, ROWS, suffix), {"aggregation_strategy": "simple"}))
    assert [(r.index, r.id, r.text) for r in rows] == [(i, row["id"], row["text"]) for i, row in enumerate(ROWS)]
    assert rows[0].params == {"aggregation_strategy": "simple"}
    if suffix != ".parquet":
        assert rows[1].params == {"aggregation_strategy": "simple", "x": 1}


@pytest.mark.parametrize("content, name, message", [
    ('{"id": "a"}\n', "set.jsonl", "set.jsonl:1: every row needs a 'text' string"),
    ('{"text": "a", "params": [1]}\n', "set.jsonl", "'params' must be an object"),
    ("{not json\n", "set.jsonl", "set.jsonl:1: not a JSON object"),
    ("id,text\n", "set.txt", "use JSON Lines, CSV or Parquet"),
])
def test_a_bad_set_names_the_file_the_row_and_the_fix(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        list(read_rows(path, {}))


class Fake:
    """A task pipeline whose predictions are set per text."""

    def __init__(self, predictions: dict[str, dict]):
        self.predictions, self.batches = predictions, []

    def predict_many(self, texts, params):
        self.batches.append(list(texts))
        return [json.loads(json.dumps(self.predictions[text])) for text in texts]

    def predict(self, text, params):
        return self.predict_many([text], params)[0]


def sentiment(label: str, positive: float) -> dict:
    return {"label": label, "score": positive, "text_info": {},
            "probabilities": {"NEGATIVE": 1 - positive, "NEUTRAL": 0.0, "POSITIVE": positive}}


def test_sentiment_agreement_probability_shift_worst_rows_and_one_batched_pass(tmp_path):
    texts = [f"review number {i} " + "word " * i for i in range(10)]
    path = write_rows(tmp_path, [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)])
    reference = Fake({t: sentiment("POSITIVE", 0.9) for t in texts})
    ours = {t: sentiment("POSITIVE", 0.9 + (2e-3 if i == 7 else 1e-6)) for i, t in enumerate(texts)}
    ours[texts[3]] = sentiment("NEGATIVE", 0.4)
    compiled = Fake(ours)
    results = evaluate(get_task("sentiment"), read_rows(path, {}), compiled, reference, TOLERANCE, 1.0, 5)

    agreement = results["label_agreement"]
    assert not agreement.passed and agreement.details["value"] == 0.9
    assert "rows with the same label over 10 rows: 0.9 < REGRESSION_MIN_AGREEMENT 1" in agreement.message
    [worst] = agreement.details["worst_rows"]
    assert (worst["id"], worst["compiled"], worst["reference"]) == ("r3", "NEGATIVE", "POSITIVE")
    assert worst["text"] == texts[3]

    shift = results["probabilities"]  # the probability shift: every row within ATOL/RTOL
    assert not shift.passed and shift.details["failed_rows"] == 2  # r3 (other label) and r7 (2e-3 off)
    assert [w["id"] for w in shift.details["worst_rows"]][:2] == ["r3", "r7"]
    assert sum(shift.details["histogram"]["counts"]) == 10 and shift.details["histogram"]["counts"][-1] == 1

    assert results["invariance"].passed and results["invariance"].details["rows"] == 2  # rows 0 and 5
    assert compiled.batches[0] == sorted(texts, key=len, reverse=True)  # one batch, longest first
    assert len(reference.batches) == 1  # the reference ran once over the set

    lenient = evaluate(get_task("sentiment"), read_rows(path, {}), Fake(ours), reference, TOLERANCE, 0.9, 0)
    assert lenient["label_agreement"].passed and "invariance" in lenient  # 0 sampled rows: nothing probed


def entities(*spans) -> dict:
    return {"entities": [{"label": label, "start": s, "end": e, "text": t, "score": 0.9}
                         for label, s, e, t in spans], "logits": [[0.0, 1.0]], "text_info": {}}


def test_ner_f1_counts_entities_the_two_models_disagree_on():
    task = get_task("ner")
    same = entities(("PER", 0, 5, "Maria"), ("ORG", 10, 17, "Siemens"))
    other = entities(("PER", 0, 5, "Maria"), ("LOC", 10, 17, "Siemens"))
    counts = task.agreement_counts(other, same)
    assert counts == {"tp": 1, "fp": 1, "fn": 1} and task.row_agreement(counts) == pytest.approx(1 / 3)
    (value, summary), = task.agreement({"tp": 3, "fp": 1, "fn": 1}, 2).values()
    assert value == pytest.approx(0.75) and "precision 0.75, recall 0.75" in summary
    assert task.agreement({}, 5)["entity_f1"][0] == 1.0  # no entities in either: full agreement


def test_keywords_exact_rate_and_jaccard():
    task = get_task("keywords")
    counts = task.agreement_counts({"keywords": [["b", 1], ["a", 1]]}, {"keywords": [["a", 1], ["b", 1]]})
    assert counts == {"exact": 0.0, "jaccard": 1.0}  # same words, other order
    rates = task.agreement({"exact": 3.0, "jaccard": 3.5}, 4)
    assert rates["keywords_exact_rate"][0] == 0.75 and rates["keywords_jaccard"][0] == 0.875


def test_a_verdict_is_bound_to_the_set_and_its_thresholds(tmp_path):
    path = write_rows(tmp_path, ROWS)
    described = {**describe(path), "min_agreement": 1.0, "invariance_sample": 16}
    assert described["rows"] == 3 and described["file"] == "set.jsonl"
    task = get_task("sentiment")
    rules = Rules.build(task, [], TOLERANCE, regression=described)
    assert [c for c in rules.checks if c.startswith("regression-set::")] == [
        "regression-set::label_agreement", "regression-set::probabilities", "regression-set::invariance"]
    looser = Rules.build(task, [], TOLERANCE, regression={**described, "min_agreement": 0.95})
    assert any("regression set: set.jsonl (3 rows" in d and "min agreement 0.95" in d
               for d in rules.differences(looser))
    assert Rules.from_dict(rules.as_dict()) == rules
    write_rows(tmp_path, ROWS[:2])  # the set changed
    assert describe(path)["sha256"] != described["sha256"]
