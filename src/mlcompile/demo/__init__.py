"""Register a project's demo uncompiled model, as a train stage would: model files, a model card
and test files (inputs, inference params, predictions of the uncompiled CPU pipeline)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..artifacts import fingerprint, write_json_atomic
from ..cases import TEST_FILES
from ..errors import ConfigError
from ..registry import VersionInfo, open_registry, register_once, split_version_id
from ..settings import Settings
from ..tasks import get_task
from .models import demo_for

log = logging.getLogger(__name__)


def seed(settings: Settings) -> tuple[VersionInfo, bool]:
    """Register the project's demo model as the next version of UNCOMPILED_MODEL, unless the same
    content is registered already. Returns the version and whether it was created now."""
    demo = demo_for(settings.project)
    if not settings.uncompiled_model:
        raise ConfigError("mlcompile seed needs UNCOMPILED_MODEL (or UNCOMPILED_WITH_ID): the model to register the "
                          "demo as a version of")
    task = get_task(demo.task)
    registry = open_registry(settings)
    project, model = settings.uncompiled_project, settings.uncompiled_model
    # Fingerprint what the model is built from, so a registered demo is found before (re)training.
    fp = fingerprint({"task": demo.task, "recipe": demo.recipe(), "inputs": demo.inputs})

    def build(files: Path) -> tuple[dict, dict]:
        card = demo.build(files)
        params = card.get("inference_params", {})
        uncompiled = task.uncompiled(files, card)
        predictions = []
        for item in demo.inputs:
            prediction = uncompiled.predict(item["text"], params)
            prediction.pop("text_info", None)
            predictions.append({"id": item["id"], **prediction})
        write_json_atomic(files / TEST_FILES["inputs"], demo.inputs)
        write_json_atomic(files / TEST_FILES["params"], params)
        write_json_atomic(files / TEST_FILES["predictions"], predictions)
        return card, {"source": "mlcompile seed"}

    version, created = register_once(registry, project, model, fp, settings.outputs_dir, build)
    if settings.uncompiled_with_id and settings.uncompiled_model == split_version_id(settings.uncompiled_with_id)[0] and (
        version.version_id != settings.uncompiled_with_id
    ):
        log.warning("registered %s, but UNCOMPILED_WITH_ID=%s", version.version_id, settings.uncompiled_with_id)
    return version, created
