"""Where an uncompiled model comes from, fetched into the download stage's layout.

Three kinds of source, chosen by the settings:
- a version mlcompile registered (`mlcompile seed`, `mlcompile import`), in any registry: its files,
  its model card and the test inputs (and predictions) stored with it (`registered.py`);
- an MLflow model version logged by MLflow's own `transformers` or `sentence_transformers` flavor, in
  any experiment, with no mlcompile tags (`mlflow_flavors.py`);
- a Hugging Face model directory on disk, `UNCOMPILED_PATH` (`directory.py`).

Each writes the model as a Hugging Face directory under `model/` (and any stored test files under
`tests/`). The download stage then reads what the model is (`huggingface.py`), settles the task and
writes the version's model card, or one derived from the model, recorded as derived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .huggingface import derived_card, inspect, resolve_task

MODEL_DIR = "model"  # the Hugging Face model directory inside the download stage


@dataclass(frozen=True)
class Fetched:
    """What a source wrote, and what it knows of the version."""

    version_id: str
    source_uri: str  # where the version is, e.g. models:/USER-SENTIMENT/1, a directory's path
    card: dict | None = None  # the version's mlcompile model card; None: derived from the model
    metadata: dict = field(default_factory=dict)  # the registry's record of the version (tags, ...)
    named_tasks: tuple[tuple[str, str | None], ...] = ()  # (where, task): what the version says it does
    input_example: tuple[str, ...] = ()  # texts the version was logged with (MLflow's input example)
    extra_card: dict = field(default_factory=dict)  # source facts a derived card records (flavor, ...)
    logged_model_id: str | None = None  # MLflow 3's LoggedModel behind the version, where there is one


class Source(Protocol):
    kind: str

    def identity(self) -> dict:
        """What identifies the version's content (fingerprinted: a change downloads again)."""

    def fetch(self, dest: Path) -> Fetched:
        """Write the model under dest/model (and stored test files under dest/tests)."""


def open_source(settings) -> Source:
    """The source the settings name: UNCOMPILED_PATH, else UNCOMPILED_WITH_ID in the registry, read
    as MLflow logged it when it is a flavor's model version, else as mlcompile registered it."""
    if settings.uncompiled_path is not None:
        from .directory import DirectorySource

        return DirectorySource(settings.uncompiled_path)
    from ..registry import open_registry
    from .registered import RegisteredSource

    registry = open_registry(settings)
    if registry.kind == "mlflow":
        from .mlflow_flavors import flavor_source

        found = flavor_source(registry, settings.uncompiled_project, settings.uncompiled_with_id)
        if found is not None:
            return found
    return RegisteredSource(registry, settings.uncompiled_project, settings.uncompiled_with_id)


def model_card(settings, fetched: Fetched, root: Path) -> dict:
    """The downloaded version's card: its own (mlcompile's) or one derived from the model under
    root/model, with the task settled (MODEL_TASK, else what the version says, else the architecture)
    and the inference parameters the settings override."""
    facts = inspect(root / MODEL_DIR)
    task = resolve_task(facts, settings.model_task, *fetched.named_tasks)
    if fetched.card is not None:
        card = {**fetched.card, "task": task}
    else:
        card = derived_card(facts, task, fetched.source_uri, MODEL_DIR, fetched.extra_card)
    if settings.aggregation_strategy and task == "token-classification":
        card["inference_params"] = {**card.get("inference_params", {}),
                                    "aggregation_strategy": settings.aggregation_strategy}
    return card
