"""The reference projects' shipped regression sets are what demo.corpus builds (so they can be remade)."""

import json

import pytest

from mlcompile.demo.corpus import REGRESSION_DIR, build_regression_set

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("project", ["keywords", "ner", "sentiment"])
def test_the_shipped_regression_set_is_the_one_built(project):
    shipped = [json.loads(line) for line in (REGRESSION_DIR / f"{project}.jsonl").read_text().splitlines()]
    assert shipped == build_regression_set(project)
