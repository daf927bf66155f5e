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
    results = evaluate(get_task("text-classification"), read_rows(path, {}), compiled, reference, TOLERANCE, 1.0, 5)

    agreement = results["label_agreement"]
    assert not agreement.passed and agreement.details["value"] == 0.9
    assert "rows with the same label over 10 rows: 0.9 < REGRESSION_MIN_AGREEMENT 1" in agreement.message
    [worst] = agreement.details["worst_rows"]
    assert (worst["id"], worst["compiled"], worst["uncompiled"]) == ("r3", "NEGATIVE", "POSITIVE")
    assert worst["text"] == texts[3]

    shift = results["probabilities"]  # the probability shift: every row within ATOL/RTOL
    assert not shift.passed and shift.details["failed_rows"] == 2  # r3 (other label) and r7 (2e-3 off)
    assert [w["id"] for w in shift.details["worst_rows"]][:2] == ["r3", "r7"]
    assert sum(shift.details["histogram"]["counts"]) == 10 and shift.details["histogram"]["counts"][-1] == 1

    assert results["invariance"].passed and results["invariance"].details["rows"] == 2  # rows 0 and 5
    assert compiled.batches[0] == sorted(texts, key=len, reverse=True)  # one batch, longest first
    assert len(reference.batches) == 1  # the reference ran once over the set

    lenient = evaluate(get_task("text-classification"), read_rows(path, {}), Fake(ours), reference, TOLERANCE, 0.9, 0)
    assert lenient["label_agreement"].passed and "invariance" in lenient  # 0 sampled rows: nothing probed


def entities(*spans) -> dict:
    return {"entities": [{"label": label, "start": s, "end": e, "text": t, "score": 0.9}
                         for label, s, e, t in spans], "logits": [[0.0, 1.0]], "text_info": {}}


def test_ner_f1_counts_entities_the_two_models_disagree_on():
    task = get_task("token-classification")
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
    task = get_task("text-classification")
    rules = Rules.build(task, [], TOLERANCE, regression=described)
    assert [c for c in rules.checks if c.startswith("regression-set::")] == [
        "regression-set::label_agreement", "regression-set::probabilities", "regression-set::invariance"]
    looser = Rules.build(task, [], TOLERANCE, regression={**described, "min_agreement": 0.95})
    assert any("regression set: set.jsonl (3 rows" in d and "min agreement 0.95" in d
               for d in rules.differences(looser))
    assert Rules.from_dict(rules.as_dict()) == rules
    write_rows(tmp_path, ROWS[:2])  # the set changed
    assert describe(path)["sha256"] != described["sha256"]


def sentiment_set(tmp_path):
    texts = [f"review number {i} " + "word " * i for i in range(12)]
    path = write_rows(tmp_path, [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)])
    ours = {t: sentiment("POSITIVE", 0.9 + 1e-6 * i) for i, t in enumerate(texts)}
    ours[texts[3]], ours[texts[8]] = sentiment("NEGATIVE", 0.4), sentiment("POSITIVE", 0.95)
    return path, Fake(ours), Fake({t: sentiment("POSITIVE", 0.9) for t in texts})


def test_shards_merged_give_the_whole_sets_checks(tmp_path):
    from mlcompile.regression import in_shard, merge

    path, compiled, reference = sentiment_set(tmp_path)
    task = get_task("text-classification")
    whole = evaluate(task, read_rows(path, {}), compiled, reference, TOLERANCE, 0.95, 4)
    parts = [evaluate(task, in_shard(read_rows(path, {}), f"{i}/3"), compiled, reference, TOLERANCE, 0.95, 4)
             for i in (1, 2, 3)]
    assert [p["probabilities"].details["rows"] for p in parts] == [4, 4, 4]
    for check, full in whole.items():
        merged = merge(task, check, [p[check] for p in parts], 0.95, TOLERANCE)
        assert merged.passed == full.passed and merged.details["rows"] == full.details["rows"], check
        assert [r["id"] for r in merged.details["worst_rows"]] == [r["id"] for r in full.details["worst_rows"]], check
        for key in ("value", "failed_rows", "largest_difference", "histogram"):
            assert merged.details.get(key) == full.details.get(key), (check, key)
        assert merged.margin == full.margin, check
    assert not whole["label_agreement"].passed  # 11 of 12 < 0.95 over the set; shards 2 and 3 agree fully
    assert [p["label_agreement"].passed for p in parts] == [False, True, True]


def shard_verdict(shard: str | None, content: str = "artifact", passed: bool = True, min_agreement: float = 1.0):
    from mlcompile.compare import CheckResult
    from mlcompile.verdict import Outcome, Verdict

    described = {"file": "set.jsonl", "sha256": "s", "rows": 2, "min_agreement": min_agreement,
                 "invariance_sample": 0, **({"shard": shard} if shard else {})}
    rules = Rules.build(get_task("text-classification"), [], TOLERANCE, regression=described)
    part = {"label_agreement": {"rows": 1, "value": 1.0, "threshold": 1.0, "totals": {"same": 1.0}, "worst_rows": []},
            "probabilities": {"rows": 1, "failed_rows": 0, "not_comparable": 0, "largest_difference": 1e-6,
                              "worst_rows": [], "histogram": {"bins": [], "counts": [0, 0, 0, 1]}},
            "invariance": {"rows": 0, "failed_rows": 0, "worst_rows": []}}
    results = {c: CheckResult(*c.split("::"), True, "m", details=part.get(c.split("::")[1], {})) for c in rules.checks}
    outcomes = {c: Outcome.PASSED for c in rules.checks}
    if not passed:
        outcomes["regression-set::label_agreement"] = Outcome.FAILED
    return Verdict(content, rules, outcomes, results, {})


@pytest.mark.parametrize("shards, reason", [
    ([("1-of-2", shard_verdict("1/2"))], "missing shard 2/2 of 2"),
    ([("1-of-2", shard_verdict("1/2")), ("copy", shard_verdict("1/2")), ("2-of-2", shard_verdict("2/2"))],
     "shard 1/2 twice: 1-of-2 and copy"),
    ([("1-of-2", shard_verdict("1/2")), ("2-of-2", shard_verdict("2/2", passed=False))],
     "shard 2/2 (2-of-2) did not pass: regression-set::label_agreement: failed"),
    ([("1-of-2", shard_verdict("1/2")), ("2-of-2", shard_verdict("2/2", content="other"))],
     "shard 2/2 (2-of-2) validated another compiled artifact"),
    ([("1-of-2", shard_verdict("1/2")), ("2-of-2", shard_verdict("2/2", min_agreement=0.9))],
     "shard 2/2 (2-of-2) ran under other rules: regression set:"),
    ([("whole", shard_verdict(None))], "whole: not a shard's verdict"),
])
def test_a_missing_duplicated_failed_or_foreign_shard_refuses_the_merge(shards, reason):
    from mlcompile.errors import UploadRefused
    from mlcompile.shards import merged

    with pytest.raises(UploadRefused) as refused:
        merged("sentiment", shards, TOLERANCE)
    assert reason in str(refused.value)


def test_every_shard_there_and_passed_merges_into_a_verdict_the_gate_takes_and_a_shard_alone_it_refuses():
    from mlcompile.gate import refusal
    from mlcompile.shards import merged

    whole = merged("sentiment", [("2-of-2", shard_verdict("2/2")), ("1-of-2", shard_verdict("1/2"))], TOLERANCE)
    current = shard_verdict(None).rules  # what the upload job's settings call for: no shard
    assert whole.rules == current and whole.passed and refusal(whole, "artifact", current) is None
    assert whole.results["regression-set::label_agreement"].details["rows"] == 2
    alone = shard_verdict("1/2")
    assert "covers shard 1/2 of the regression set only" in refusal(alone, "artifact", alone.rules)


def test_the_growth_bench_repeats_the_set_to_any_size_with_unique_ids(tmp_path):
    from mlcompile.growth import synthesize

    grown = list(read_rows(synthesize(write_rows(tmp_path, ROWS), 7, tmp_path / "grown.jsonl"), {}))
    assert [row.text for row in grown] == [ROWS[i % 3]["text"] for i in range(7)]
    assert len({row.id for row in grown}) == 7 and grown[4].id == "b-r1"


def test_a_project_without_a_bench_corpus_is_timed_on_its_regression_set(tmp_path):
    from mlcompile.workloads import read_corpus

    rows = tmp_path / "mine.jsonl"
    rows.write_text('{"text": "first"}\n{"id": "b", "text": "second"}\n')
    assert read_corpus("mine", root=tmp_path / "no-corpora", fallback=rows) == ["first", "second"]
    with pytest.raises(ConfigError, match="no bench corpus for PROJECT='mine'.*set REGRESSION_SET"):
        read_corpus("mine", root=tmp_path / "no-corpora")
