"""Validation cases: the test inputs stored with the uncompiled version (with their recorded
predictions) and the project's cases file, read into one list of `Case`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .artifacts import read_json
from .errors import ConfigError

# Where a registered uncompiled version keeps its test files (written by `mlcompile seed`).
TEST_FILES = {"inputs": "tests/inputs.json", "params": "tests/params.json", "predictions": "tests/predictions.json"}
# The texts an MLflow version was logged with (its input example), written at download: cases without
# a stored prediction.
INPUT_EXAMPLE = "tests/input_example.json"
ARTIFACT_CASE = "compiled-artifact"  # the id the compiled artifact's own checks use, never a case's


def params_key(params: dict) -> str:
    """Texts with the same inference parameters run in one call: the key they are grouped by."""
    return json.dumps(params, sort_keys=True)


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    params: dict = field(default_factory=dict)
    expected: dict | None = None  # prediction stored with the uncompiled version
    source: str = ""
    note: str = ""


def read_cases_file(path: Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"CASES_FILE={str(path)!r}: cannot read cases: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(c, dict) and "id" in c and "text" in c for c in data):
        raise ConfigError(f"CASES_FILE={str(path)!r}: expected a JSON list of objects with 'id' and 'text'")
    return data


def stored_cases(model_dir: Path, card_params: dict) -> list[Case]:
    """The test inputs registered with the uncompiled version, with their recorded predictions."""
    inputs_file = model_dir / TEST_FILES["inputs"]
    if not inputs_file.is_file():
        return []
    params_file = model_dir / TEST_FILES["params"]
    params = read_json(params_file) if params_file.is_file() else {}
    predictions_file = model_dir / TEST_FILES["predictions"]
    predictions = {p["id"]: p for p in read_json(predictions_file)} if predictions_file.is_file() else {}
    return [Case(f"registry-{item['id']}", item["text"], {**card_params, **params}, predictions.get(item["id"]),
                 "registry") for item in read_json(inputs_file)]


def input_example_cases(model_dir: Path, card_params: dict) -> list[Case]:
    """The texts of the version's input example, if it was logged with one."""
    path = model_dir / INPUT_EXAMPLE
    texts = read_json(path) if path.is_file() else []
    return [Case(f"input-example-{i}", text, dict(card_params), None, "input example") for i, text in
            enumerate(texts, 1)]


# The sources of cases `evidence` counts besides stored predictions, in words.
EVIDENCE_SOURCES = {"stored_inputs": "the version's stored inputs", "input_example": "its input example",
                    "cases_file": "the cases file"}


def evidence(cases: list[Case]) -> dict[str, int]:
    """How many cases each kind of evidence gave: stored predictions (the `expected` check), the
    version's stored inputs, its input example and the cases file."""
    return {"stored_predictions": sum(1 for case in cases if case.expected),
            "stored_inputs": sum(1 for case in cases if case.source == "registry"),
            "input_example": sum(1 for case in cases if case.source == "input example"),
            "cases_file": sum(1 for case in cases if case.source not in ("registry", "input example"))}


def load_cases(model_dir: Path, card_params: dict, cases_file: Path) -> list[Case]:
    """The stored cases of the downloaded version in `model_dir` (its test inputs, else its input
    example), then those of `cases_file`."""
    cases = stored_cases(model_dir, card_params) or input_example_cases(model_dir, card_params)
    for item in read_cases_file(cases_file):
        if item["id"] == ARTIFACT_CASE:
            raise ConfigError(f"CASES_FILE={str(cases_file)!r}: case id {item['id']!r} is reserved for the "
                              "compiled artifact's own checks; rename the case")
        cases.append(Case(item["id"], item["text"], {**card_params, **item.get("params", {})}, None,
                          str(cases_file), item.get("note", "")))
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise ConfigError(f"case id {case.id!r} appears twice (CASES_FILE={cases_file})")
        seen.add(case.id)
    return cases
