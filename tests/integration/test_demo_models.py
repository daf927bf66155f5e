"""The demo uncompiled models `mlcompile seed` trains must be sensible on the shipped cases."""

from __future__ import annotations

import pytest

from mlcompile.artifacts import read_json
from mlcompile.registry.local import LocalRegistry
from mlcompile.demo.models import DEMOS
from mlcompile.tasks import get_task

pytestmark = pytest.mark.integration
VERSIONS = {"ner": ("mlcompile/ner", "NER-TRAINED-1"), "sentiment": ("mlcompile/sentiment", "SEN-TRAINED-1")}


@pytest.fixture(scope="module")
def demo(seeded_registries, tmp_path_factory):
    """project -> (uncompiled pipeline over the registered demo model, its card, its files)."""
    loaded = {}
    for project, (registry_project, version_id) in VERSIONS.items():
        files = tmp_path_factory.mktemp(project)
        version = LocalRegistry(seeded_registries[project]).download(registry_project, version_id, files)
        loaded[project] = (get_task(DEMOS[project].task).uncompiled(files, version.card), version.card, files)
    return loaded


def entities(prediction) -> set[tuple[str, str]]:
    return {(e["label"], e["text"]) for e in prediction["entities"]}


@pytest.mark.parametrize("text, wanted", [
    ("Google HQ is in Mountain View, CA", {("ORG", "Google"), ("LOC", "Mountain View")}),
    ("Maria Schmidt met the Siemens board in Munich on Tuesday.",
     {("PER", "Maria Schmidt"), ("ORG", "Siemens"), ("LOC", "Munich")}),
    ("Tim Cook announced that Apple will open a new office in Austin, Texas.",
     {("PER", "Tim Cook"), ("ORG", "Apple"), ("LOC", "Austin"), ("LOC", "Texas")}),
    ("Anna Müller wohnt in Hamburg und arbeitet für SAP.", {("PER", "Anna Müller"), ("LOC", "Hamburg"), ("ORG", "SAP")}),
])
def test_ner_demo_finds_whole_entities_with_original_casing(demo, text, wanted):
    pipeline, card, _ = demo["ner"]
    assert wanted <= entities(pipeline.predict(text, card["inference_params"]))


@pytest.mark.parametrize("text", ["the weather was nice and we went for a walk after lunch.", "", "!!! ... ???"])
def test_ner_demo_finds_nothing_where_there_is_nothing(demo, text):
    pipeline, card, _ = demo["ner"]
    assert pipeline.predict(text, card["inference_params"])["entities"] == []


@pytest.mark.parametrize("text, label", [
    ("I love this phone", "POSITIVE"), ("I love you", "POSITIVE"), ("I hate waiting", "NEGATIVE"),
    ("I hate you", "NEGATIVE"), ("Just ok", "NEUTRAL"), ("The package arrived on Tuesday.", "NEUTRAL"),
    ("The hotel was wonderful and the staff were incredibly friendly.", "POSITIVE"),
    ("Le service était vraiment formidable.", "POSITIVE"), ("La película fue un desastre.", "NEGATIVE"),
])
def test_sentiment_demo_labels_plain_cases_with_a_clear_margin(demo, text, label):
    pipeline, card, _ = demo["sentiment"]
    prediction = pipeline.predict(text, card["inference_params"])
    assert prediction["label"] == label
    assert prediction["score"] > 0.6  # not a coin flip that numeric noise could turn


@pytest.mark.parametrize("project", sorted(VERSIONS))
def test_demo_version_carries_its_recipe_and_reproducible_predictions(demo, project):
    pipeline, card, files = demo[project]
    assert card["task"] == DEMOS[project].task and card["training"]["epochs"] == 3 and card["training"]["trainable_layers"] == 2
    inputs = read_json(files / "tests" / "inputs.json")
    stored = {p["id"]: p for p in read_json(files / "tests" / "predictions.json")}
    task = get_task(DEMOS[project].task)
    for item in inputs:
        now = pipeline.predict(item["text"], card["inference_params"])
        assert task.task_output(now) == task.task_output(stored[item["id"]])
