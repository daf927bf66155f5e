"""The embedded default registry: a directory.

<root>/<project>/<MODEL>/<MODEL-N>/version.json   card, metadata, file checksums (immutable)
<root>/<project>/<MODEL>/<MODEL-N>/files/...      the version's files (immutable)
<root>/<project>/<MODEL>/<MODEL-N>/stage.json     the stage (the one mutable part)
Versions are written to a temporary directory and renamed into place under a per-model file lock.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

from filelock import FileLock

from ..artifacts import hash_tree, read_json, write_json_atomic
from ..errors import RegistryError
from . import STAGES, VersionInfo, copy_verified, split_version_id


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

    def _version_dir(self, project: str, version_id: str) -> Path:
        model, _ = split_version_id(version_id)
        return self._model_dir(project, model) / version_id

    def _lock(self, project: str, model: str) -> FileLock:
        model_dir = self._model_dir(project, model)
        model_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(model_dir / ".lock"), timeout=120)

    # reading -----------------------------------------------------------
    def get_version(self, project: str, version_id: str) -> VersionInfo:
        model, _ = split_version_id(version_id)
        path = self._version_dir(project, version_id)
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
        stage = "none"
        if (path / "stage.json").is_file():
            stage = read_json(path / "stage.json")["stage"]
        return VersionInfo(
            project=project,
            model=model,
            version_id=version_id,
            stage=stage,
            card=record["card"],
            metadata=record["metadata"],
            files=record["files"],
            created_at=record["created_at"],
        )

    def list_versions(self, project: str, model: str) -> list[VersionInfo]:
        model_dir = self._model_dir(project, model)
        if not model_dir.is_dir():
            return []
        numbered = []
        for child in model_dir.iterdir():
            if (child / "version.json").is_file() and child.name.startswith(f"{model}-"):
                tail = child.name[len(model) + 1 :]
                if tail.isdigit():
                    numbered.append((int(tail), child.name))
        return [self.get_version(project, name) for _, name in sorted(numbered)]

    def find_version(self, project: str, model: str, fingerprint: str) -> VersionInfo | None:
        for version in self.list_versions(project, model):
            if version.fingerprint == fingerprint:
                return version
        return None

    def download(self, project: str, version_id: str, dest: Path) -> VersionInfo:
        version = self.get_version(project, version_id)
        copy_verified(self._version_dir(project, version_id) / "files", version, dest)
        return version

    # writing -----------------------------------------------------------
    def register(
        self, project: str, model: str, files: Path, card: dict, metadata: dict, fingerprint: str
    ) -> tuple[VersionInfo, bool]:
        with self._lock(project, model):
            existing = self.find_version(project, model, fingerprint)
            if existing is not None:
                return existing, False
            model_dir = self._model_dir(project, model)
            number = max((split_version_id(v.version_id)[1] for v in self.list_versions(project, model)), default=0)
            version_id = f"{model}-{number + 1}"
            tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=".new-"))
            try:
                shutil.copytree(files, tmp / "files", symlinks=False)
                record = {
                    "version_id": version_id,
                    "card": card,
                    "metadata": {**metadata, "fingerprint": fingerprint},
                    "files": hash_tree(tmp / "files"),
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                write_json_atomic(tmp / "version.json", record)
                for path in tmp.rglob("*"):  # versions are immutable: files read-only
                    if path.is_file():
                        path.chmod(0o444)
                os.rename(tmp, model_dir / version_id)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return self.get_version(project, version_id), True

    def set_stage(self, project: str, version_id: str, stage: str) -> VersionInfo:
        if stage not in STAGES:
            raise RegistryError(f"stage {stage!r} is not one of {', '.join(STAGES)}")
        self.get_version(project, version_id)
        write_json_atomic(self._version_dir(project, version_id) / "stage.json", {"stage": stage})
        return self.get_version(project, version_id)
