"""A Hugging Face model directory on disk (what `save_pretrained` or `SentenceTransformer.save`
writes): compiled straight from its path (UNCOMPILED_PATH), or imported into a registry as the next
version of UNCOMPILED_MODEL with a card derived from the model's own config (`mlcompile import`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..artifacts import fingerprint, sha256_file
from ..errors import ArtifactError, ConfigError
from ..registry import VersionInfo, open_registry, register_once
from . import MODEL_DIR, Fetched
from .huggingface import derived_card, inspect, resolve_task

SKIPPED = (".git", "__pycache__", ".cache")  # never part of a model


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not set(p.relative_to(root).parts) & set(SKIPPED))


def checksums(root: Path) -> dict[str, str]:
    """sha256 per file, following links (a Hugging Face cache's snapshot links to its blobs)."""
    return {path.relative_to(root).as_posix(): sha256_file(path) for path in _files(root)}


def copy_model(root: Path, dest: Path, expected: dict[str, str]) -> dict[str, str]:
    """Copy the directory's files (links resolved) to dest; their checksums (`expected`, taken before),
    verified after copying."""
    for path in _files(root):
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    copied = {rel: sha256_file(dest / rel) for rel in expected}
    if copied != expected:
        changed = sorted(rel for rel in expected if copied[rel] != expected[rel])
        raise ArtifactError(f"{root}: files changed while they were copied ({', '.join(changed)}); try again")
    return copied


def _checked(path: Path) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"{path}: no such directory; give the folder `save_pretrained` or "
                          f"`SentenceTransformer.save` wrote (it holds config.json)")
    return path


class DirectorySource:
    kind = "directory"

    def __init__(self, path: Path):
        self.path = _checked(path)
        self._checksums: dict[str, str] | None = None

    def identity(self) -> dict:
        if self._checksums is None:
            self._checksums = checksums(self.path)
        return {"path": str(self.path), "files": self._checksums}

    def fetch(self, dest: Path) -> Fetched:
        inspect(self.path)  # incomplete or unsupported: said before anything is copied
        files = copy_model(self.path, dest / MODEL_DIR, self.identity()["files"])
        digest = fingerprint(files)[:12]
        return Fetched(f"{self.path.name}@{digest}", self.path.as_uri())


def import_directory(settings, path: Path, task: str = "auto") -> tuple[VersionInfo, bool]:
    """Register the model directory at `path` as the next version of UNCOMPILED_MODEL (in
    UNCOMPILED_PROJECT of the configured registry), with a card derived from its config; a directory
    already registered (the same files) is found, not registered again."""
    path = _checked(path)
    facts = inspect(path)
    chosen = resolve_task(facts, task)
    registry = open_registry(settings)
    project, model = settings.uncompiled_project, settings.uncompiled_model
    if not model:
        raise ConfigError("mlcompile import needs UNCOMPILED_MODEL: the model to register the directory as a "
                          "version of, e.g. UNCOMPILED_MODEL=MY-SENTIMENT")

    content = checksums(path)

    def build(files: Path) -> tuple[dict, dict]:
        copy_model(path, files / MODEL_DIR, content)
        return derived_card(facts, chosen, path.as_uri(), MODEL_DIR), {"source": "mlcompile import",
                                                                       "imported_from": str(path)}

    return register_once(registry, project, model, fingerprint({"imported": content}), settings.outputs_dir, build)
