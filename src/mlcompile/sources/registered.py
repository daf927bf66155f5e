"""A version mlcompile registered (`mlcompile seed`, `mlcompile import`, or an earlier pipeline's
train stage), in any registry: the files, the model card and the stored test files, each file checked
against the checksum recorded with the version."""

from __future__ import annotations

from pathlib import Path

from ..errors import RegistryError
from ..registry import Registry, VersionInfo, split_version_id
from . import MODEL_DIR, Fetched


class RegisteredSource:
    kind = "registered"

    def __init__(self, registry: Registry, project: str, version_id: str):
        self.registry, self.project, self.version_id = registry, project, version_id
        self._version: VersionInfo | None = None

    @property
    def version(self) -> VersionInfo:
        if self._version is None:
            self._version = self.registry.get_version(self.project, self.version_id)
        return self._version

    def uri(self) -> str:
        if self.registry.kind == "mlflow":
            model, number = split_version_id(self.version_id)
            return f"models:/{model}/{number}"
        return f"{self.registry.kind}:{self.project}/{self.version_id}"

    def identity(self) -> dict:
        version = self.version
        return {"registry": self.registry.describe(), "project": self.project, "version_id": self.version_id,
                "files": version.files, "card": version.card, "metadata": version.metadata}

    def fetch(self, dest: Path) -> Fetched:
        card = self.version.card
        if not isinstance(card, dict):
            raise RegistryError(f"{self.version_id}: its model card is not a JSON object")
        if card.get("model_dir", MODEL_DIR) != MODEL_DIR:
            raise RegistryError(f"{self.version_id}: its model card puts the model in {card['model_dir']!r}; "
                                f"mlcompile reads it from {MODEL_DIR!r}")
        got = self.registry.download(self.project, self.version_id, dest)
        return Fetched(got.version_id, self.uri(), card=got.card, metadata=got.metadata,
                       named_tasks=(("the version's model card", got.card.get("task")),),
                       logged_model_id=got.metadata.get("logged_model_id"))
