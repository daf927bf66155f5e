"""Model registries behind one contract.

A registry holds models (e.g. `KEYWORDS-COMPILED`) inside projects; a model has numbered,
immutable versions (`KEYWORDS-COMPILED-1`) with files, a JSON model card, metadata and a lifecycle
stage (none, staging, production, archived; "lifecycle" in code, so "stage" names only pipeline stages).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Protocol, get_args

from ..errors import ConfigError, RegistryError

# A model name: MLflow allows more, but these are safe as folder names and in search filters.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]*(?:-[A-Za-z0-9_.]+)*")
VERSION_ID = re.compile(rf"^(?P<model>{MODEL_NAME.pattern})-(?P<number>[0-9]+)$")
MODEL_CARD = "model_card.json"


def split_version_id(version_id: str) -> tuple[str, int]:
    """`KEYWORDS-TRAINED-3` -> (`KEYWORDS-TRAINED`, 3)."""
    match = VERSION_ID.fullmatch(version_id or "")
    if not match:
        raise RegistryError(
            f"{version_id!r} is not a model version id; expected <MODEL>-<number>, e.g. KEYWORDS-TRAINED-1"
        )
    return match["model"], int(match["number"])


@dataclass(frozen=True)
class Dataset:
    """Data a version was validated on (the cases, the regression set): what MLflow logs as a dataset
    input, so a metric can be traced to the data behind it. `digest` binds it to its content."""

    name: str  # e.g. "validation-cases", "regression-set"
    digest: str  # at most 36 characters (MLflow's limit)
    source: str  # where it came from: a file name, a registry version
    rows: int
    context: str = "validation"

    def as_record(self) -> dict:
        return {"name": self.name, "digest": self.digest, "source": self.source, "rows": self.rows,
                "context": self.context}


@dataclass(frozen=True)
class VersionDetails:
    """What a version's page shows besides its files: what produced it and how it was validated.
    `model_description` describes the model (all its versions), where a registry has model pages (MLflow).
    `metric_datasets` names, per metric, the dataset it was measured on (one of `datasets`)."""

    description: str = ""
    params: dict[str, str] = field(default_factory=dict)  # e.g. backend, shapes, library versions
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. checks passed, smallest margin
    model_description: str = ""
    datasets: tuple[Dataset, ...] = ()
    metric_datasets: dict[str, str] = field(default_factory=dict)

    def dataset_of(self, metric: str) -> Dataset | None:
        name = self.metric_datasets.get(metric)
        return next((dataset for dataset in self.datasets if dataset.name == name), None)

    def as_record(self) -> dict:
        """As a registry that stores JSON keeps it with the version."""
        return {"description": self.description, "params": self.params, "metrics": self.metrics,
                "datasets": [dataset.as_record() for dataset in self.datasets],
                "metric_datasets": self.metric_datasets}

    @classmethod
    def from_record(cls, record: dict | None) -> "VersionDetails":
        record = record or {}
        return cls(record.get("description", ""), dict(record.get("params", {})), dict(record.get("metrics", {})),
                   datasets=tuple(Dataset(**dataset) for dataset in record.get("datasets", [])),
                   metric_datasets=dict(record.get("metric_datasets", {})))


@dataclass(frozen=True)
class VersionInfo:
    project: str
    model: str
    version_id: str
    lifecycle: str
    card: dict
    metadata: dict
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    created_at: str = ""
    details: VersionDetails = field(default_factory=VersionDetails)  # model_description not read back

    @property
    def fingerprint(self) -> str | None:
        return self.metadata.get("fingerprint")


class Registry(Protocol):
    kind: str

    def describe(self) -> dict:
        """What identifies this registry in fingerprints and logs (never secrets)."""

    def get_version(self, project: str, version_id: str) -> VersionInfo: ...

    def download(self, project: str, version_id: str, dest: Path) -> VersionInfo:
        """Write the version's files into dest (verified against their checksums)."""

    def list_versions(self, project: str, model: str) -> list[VersionInfo]: ...

    def find_version(self, project: str, model: str, fingerprint: str) -> VersionInfo | None: ...

    def register(
        self, project: str, model: str, files: Path, card: dict, metadata: dict, fingerprint: str,
        details: VersionDetails | None = None,
    ) -> tuple[VersionInfo, bool]:
        """Create the next version of `model`, unless one with this fingerprint exists.

        Returns the version and whether it was created now."""

    def set_lifecycle(self, project: str, version_id: str, lifecycle: str) -> VersionInfo: ...


Lifecycle = Literal["none", "staging", "production", "archived"]  # a registered version's lifecycle
LIFECYCLES = get_args(Lifecycle)


def register_once(registry: Registry, project: str, model: str, fingerprint: str, scratch: Path,
                  build: Callable[[Path], tuple[dict, dict]]) -> tuple[VersionInfo, bool]:
    """The version of `model` whose content has `fingerprint`, found before anything is built; else a
    new one: `build(files)` writes its files (in a temporary directory under `scratch`) and returns its
    card and metadata. Returns the version and whether it was created now."""
    import tempfile

    existing = registry.find_version(project, model, fingerprint)
    if existing is not None:
        return existing, False
    Path(scratch).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".register-") as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        card, metadata = build(files)
        return registry.register(project, model, files, card, metadata, fingerprint)


def copy_verified(source: Path, version: VersionInfo, dest: Path) -> None:
    """Copy a version's files from source into dest, each checked against its recorded sha256;
    a file that does not match is removed and the copy fails."""
    from ..artifacts import sha256_file

    for rel, digest in version.files.items():
        src = source / rel
        if not src.is_file():
            raise RegistryError(f"{version.version_id} is incomplete in the registry: file {rel!r} is missing")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        if sha256_file(target) != digest:
            target.unlink()
            raise RegistryError(f"{version.version_id}: file {rel!r} does not match its recorded sha256")


def safe_extract_zip(archive: Path, dest: Path) -> None:
    """Extract a downloaded zip into dest, refusing (before writing anything) members with absolute
    paths, `..` parts or symbolic links: nothing lands outside dest."""
    import stat
    import zipfile

    dest = dest.resolve()
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        for member in members:
            name = member.filename
            target = (dest / name).resolve()
            is_link = stat.S_ISLNK(member.external_attr >> 16)
            if name.startswith(("/", "\\")) or ":" in name.split("/")[0] or is_link or (
                    target != dest and dest not in target.parents):
                raise RegistryError(f"{archive.name}: refusing archive member {name!r}: "
                                    f"{'a link' if is_link else 'its path leaves the destination'}")
        bundle.extractall(dest)


def location(settings) -> str:
    """Where the configured registry is, for messages (no credentials)."""
    if settings.registry == "mlflow":
        from .mlflow import redacted

        return redacted(settings.mlflow_tracking_uri or "")
    if settings.registry == "neptune":
        return "neptune (projects as named in the settings)"
    return str(settings.registry_path)


def model_uri(settings, version_id: str, lifecycle: str) -> str | None:
    """Where `mlcompile predict` / `pyfunc.load` (and MLflow) load a registered compiled version from."""
    if settings.registry == "mlflow":
        model, number = split_version_id(version_id)
        return f"models:/{model}@{lifecycle}" if lifecycle != "none" else f"models:/{model}/{number}"
    if settings.registry == "local":
        from .local import LocalRegistry

        return str(LocalRegistry(settings.registry_path).version_dir(settings.compiled_project, version_id) / "files")
    return None  # neptune: download the version's files first


def open_registry(settings) -> Registry:
    if settings.registry == "local":
        from .local import LocalRegistry

        return LocalRegistry(settings.registry_path)
    if settings.registry == "neptune":
        from .neptune import NeptuneRegistry

        return NeptuneRegistry(settings.neptune_api_token)
    if settings.registry == "mlflow":
        from .mlflow import MlflowRegistry

        return MlflowRegistry(settings.mlflow_tracking_uri, settings.registry_timeout, settings.registry_retries)
    raise ConfigError(f"REGISTRY={settings.registry!r}: unknown registry kind")
