"""The embedded default registry: a directory.

<root>/<project>/<MODEL>/<MODEL-N>/version.json   card, metadata, file checksums (immutable)
<root>/<project>/<MODEL>/<MODEL-N>/files/...      the version's files (immutable)
<root>/<project>/<MODEL>/<MODEL-N>/lifecycle.json its lifecycle (the one mutable part)
<root>/<project>/<MODEL>/counter.json             the last version number handed out
Versions are written to a temporary directory and renamed into place under a per-model file lock.
Version numbers only grow: one deleted by hand, or a stray directory, is never handed out again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

from filelock import FileLock

from ..artifacts import hash_tree, read_json, write_json_atomic
from ..errors import RegistryError
from . import LIFECYCLES, VersionDetails, VersionInfo, copy_verified, split_version_id

log = logging.getLogger(__name__)
COUNTER = "counter.json"
LIFECYCLE = "lifecycle.json"


class LocalRegistry:
    kind = "local"

    def __init__(self, root: Path | str):
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalRegistry({str(self.root)!r})"

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.root)}

    # paths -------------------------------------------------------------
    def _project_dir(self, project: str) -> Path:
        parts = PurePosixPath(project).parts
        if not project or PurePosixPath(project).is_absolute() or any(p in ("..", ".") for p in parts):
            raise RegistryError(f"project name {project!r} is not valid; use e.g. 'mlcompile/keywords'")
        return self.root.joinpath(*parts)

    def _model_dir(self, project: str, model: str) -> Path:
        split_version_id(f"{model}-1")  # validates the model key
        return self._project_dir(project) / model

    def version_dir(self, project: str, version_id: str) -> Path:
        """Where a version is (its `files/` and `version.json`)."""
        model, _ = split_version_id(version_id)
        return self._model_dir(project, model) / version_id

    def _lock(self, project: str, model: str) -> FileLock:
        model_dir = self._model_dir(project, model)
        model_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(model_dir / ".lock"), timeout=120)

    # reading -----------------------------------------------------------
    def get_version(self, project: str, version_id: str) -> VersionInfo:
        model, _ = split_version_id(version_id)
        path = self.version_dir(project, version_id)
        if not (path / "version.json").is_file():
            known = [v.version_id for v in self.list_versions(project, model)]
            raise RegistryError(
                f"model version {version_id} not found in project {project!r} of the local registry at "
                f"{self.root} (known versions of {model}: {', '.join(known) or 'none'}); "
                f"register it first, e.g. `mlcompile seed <project>` for the demo models"
            )
        try:
            record = read_json(path / "version.json")
        except ValueError as exc:
            raise RegistryError(f"{path / 'version.json'} is not valid JSON: {exc}") from exc
        lifecycle = "none"
        if (path / LIFECYCLE).is_file():
            lifecycle = read_json(path / LIFECYCLE)["lifecycle"]
        return VersionInfo(
            project=project,
            model=model,
            version_id=version_id,
            lifecycle=lifecycle,
            card=record["card"],
            metadata=record["metadata"],
            files=record["files"],
            created_at=record["created_at"],
            details=VersionDetails.from_record(record.get("details")),
        )

    def _numbered_dirs(self, model_dir: Path, model: str) -> list[tuple[int, Path]]:
        """Every `<MODEL>-<N>` directory, registered or not (stray, half-deleted)."""
        found = []
        for child in model_dir.iterdir() if model_dir.is_dir() else ():
            tail = child.name[len(model) + 1 :]
            if child.is_dir() and child.name.startswith(f"{model}-") and tail.isdigit():
                found.append((int(tail), child))
        return sorted(found)

    def list_versions(self, project: str, model: str) -> list[VersionInfo]:
        model_dir = self._model_dir(project, model)
        return [self.get_version(project, path.name) for _, path in self._numbered_dirs(model_dir, model)
                if (path / "version.json").is_file()]

    def _next_number(self, model_dir: Path, model: str) -> int:
        """One past every number handed out (the counter) or present on disk; stray directories
        (no version.json) are skipped and named in the log."""
        counter = model_dir / COUNTER
        try:
            last = int(read_json(counter)["last"]) if counter.is_file() else 0
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{counter} is unreadable ({exc}); it records the last version number handed out: "
                                "restore it, or delete it to count from the directories present") from exc
        numbered = self._numbered_dirs(model_dir, model)
        stray = [path.name for _, path in numbered if not (path / "version.json").is_file()]
        if stray:
            log.warning("local registry %s: skipping directories that hold no registered version: %s",
                        model_dir, ", ".join(stray))
        return max([last, *(number for number, _ in numbered)]) + 1

    def find_version(self, project: str, model: str, fingerprint: str) -> VersionInfo | None:
        for version in self.list_versions(project, model):
            if version.fingerprint == fingerprint:
                return version
        return None

    def download(self, project: str, version_id: str, dest: Path) -> VersionInfo:
        version = self.get_version(project, version_id)
        copy_verified(self.version_dir(project, version_id) / "files", version, dest)
        return version

    # writing -----------------------------------------------------------
    def register(
        self, project: str, model: str, files: Path, card: dict, metadata: dict, fingerprint: str,
        details: VersionDetails | None = None,
    ) -> tuple[VersionInfo, bool]:
        with self._lock(project, model):
            existing = self.find_version(project, model, fingerprint)
            if existing is not None:
                return existing, False
            model_dir = self._model_dir(project, model)
            number = self._next_number(model_dir, model)
            version_id = f"{model}-{number}"
            tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=".new-"))
            try:
                shutil.copytree(files, tmp / "files", symlinks=False)
                record = {
                    "version_id": version_id,
                    "card": card,
                    "metadata": {**metadata, "fingerprint": fingerprint},
                    "files": hash_tree(tmp / "files"),
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "details": (details or VersionDetails()).as_record(),
                }
                write_json_atomic(tmp / "version.json", record)
                for path in tmp.rglob("*"):  # versions are immutable: files read-only
                    if path.is_file():
                        path.chmod(0o444)
                write_json_atomic(model_dir / COUNTER, {"last": number})  # handed out, even if the rename fails
                os.rename(tmp, model_dir / version_id)
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise RegistryError(f"local registry {model_dir}: could not write version {version_id}: {exc}") from exc
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return self.get_version(project, version_id), True

    def set_lifecycle(self, project: str, version_id: str, lifecycle: str) -> VersionInfo:
        if lifecycle not in LIFECYCLES:
            raise RegistryError(f"lifecycle {lifecycle!r} is not one of {', '.join(LIFECYCLES)}")
        self.get_version(project, version_id)
        write_json_atomic(self.version_dir(project, version_id) / LIFECYCLE, {"lifecycle": lifecycle})
        return self.get_version(project, version_id)
