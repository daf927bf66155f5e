"""neptune 1.x model registry (`neptune` client; the token only from NEPTUNE_API_TOKEN).

Hosted neptune.ai was shut down on 2026-03-05: this backend serves teams that run a
neptune-compatible server or keep the neptune API in their code. Ids are neptune's: a model
`KEYWORDS-COMPILED` (project key KEYWORDS, model key COMPILED) has versions `KEYWORDS-COMPILED-3`.

A version holds `files` (a file set; it downloads as a zip, extracted with a guard against paths
that escape the destination), `model_card` (JSON), `checksums` (sha256 per file, verified after
download), `metadata` (JSON) and `fingerprint`; its lifecycle is neptune's own stage field (`change_stage`).
"""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path

from ..artifacts import hash_tree
from ..errors import RegistryError
from . import LIFECYCLES, VersionDetails, VersionInfo, copy_verified, safe_extract_zip, split_version_id

FIELDS = {"files": "files", "card": "model_card", "checksums": "checksums", "metadata": "metadata",
          "details": "details", "fingerprint": "fingerprint"}


def write_version(version, files: Path, card: dict, metadata: dict, fingerprint: str,
                  details: VersionDetails | None = None) -> str:
    """Fill an open neptune model version; returns its id."""
    version[FIELDS["files"]].upload_files(str(files))
    version[FIELDS["card"]] = json.dumps(card)
    version[FIELDS["checksums"]] = json.dumps(hash_tree(files))
    version[FIELDS["metadata"]] = json.dumps(metadata)
    version[FIELDS["details"]] = json.dumps((details or VersionDetails()).as_record())
    version.wait()
    # Last: a version without its fingerprint is never listed nor taken for this artifact.
    version[FIELDS["fingerprint"]] = fingerprint
    version.wait()
    return version["sys/id"].fetch()


class _NotFound(RegistryError):
    pass


class NeptuneRegistry:
    kind = "neptune"

    def __init__(self, api_token, client=None):
        token = api_token.get_secret_value() if hasattr(api_token, "get_secret_value") else api_token
        if not token:
            raise RegistryError("REGISTRY=neptune needs NEPTUNE_API_TOKEN (the token is read only from there)")
        self._token = token
        self.neptune = client or importlib.import_module("neptune")

    def __repr__(self) -> str:
        return "NeptuneRegistry(token=<hidden>)"

    def describe(self) -> dict:
        return {"kind": self.kind}

    def _open(self, project: str, what: str, **kwargs):
        """An open neptune container; client errors become one clear RegistryError."""
        from neptune import exceptions

        try:
            return self.neptune.init_model_version(project=project, api_token=self._token, **kwargs)
        except exceptions.NeptuneInvalidApiTokenException:
            raise RegistryError("neptune rejected NEPTUNE_API_TOKEN; check the token") from None
        except exceptions.MetadataContainerNotFound as exc:
            raise _NotFound(f"{what} not found in neptune project {project!r}: {exc}") from None
        except exceptions.NeptuneException as exc:
            raise RegistryError(f"neptune: {what} failed: {str(exc).splitlines()[0][:300]}") from None

    def _info(self, project: str, version) -> VersionInfo:
        version_id = version["sys/id"].fetch()
        model, _ = split_version_id(version_id)
        try:
            card = json.loads(version[FIELDS["card"]].fetch())
            files = json.loads(version[FIELDS["checksums"]].fetch())
            metadata = json.loads(version[FIELDS["metadata"]].fetch())
        except ValueError as exc:
            raise RegistryError(f"{version_id}: model card, checksums or metadata do not parse: {exc}") from None
        metadata["fingerprint"] = version[FIELDS["fingerprint"]].fetch()
        return VersionInfo(project, model, version_id, version["sys/stage"].fetch(), card, metadata, files,
                           str(version["sys/creation_time"].fetch()), self._details(version))

    @staticmethod
    def _details(version) -> VersionDetails:
        from neptune import exceptions

        try:
            return VersionDetails.from_record(json.loads(version[FIELDS["details"]].fetch()))
        except exceptions.MissingFieldException:  # registered before versions had details
            return VersionDetails()

    # reading -----------------------------------------------------------
    def get_version(self, project: str, version_id: str) -> VersionInfo:
        model, _ = split_version_id(version_id)
        try:
            version = self._open(project, f"model version {version_id}", with_id=version_id, mode="read-only")
        except _NotFound as exc:
            known = ", ".join(row["sys/id"] for row in self._version_ids(project, model, ["sys/id"])) or "none"
            raise RegistryError(f"{exc} (known versions of {model}: {known})") from None
        try:
            return self._info(project, version)
        finally:
            version.stop()

    def _version_ids(self, project: str, model: str, columns: list[str]):
        from neptune import exceptions

        try:
            handle = self.neptune.init_model(with_id=model, project=project, api_token=self._token, mode="read-only")
        except exceptions.MetadataContainerNotFound:
            return []
        except exceptions.NeptuneInvalidApiTokenException:
            raise RegistryError("neptune rejected NEPTUNE_API_TOKEN; check the token") from None
        try:
            table = handle.fetch_model_versions_table(columns=columns).to_pandas()
        finally:
            handle.stop()
        rows = table.to_dict("records")
        return sorted(rows, key=lambda row: split_version_id(row["sys/id"])[1])

    def list_versions(self, project: str, model: str) -> list[VersionInfo]:
        """Registered versions: those with a fingerprint (written last, so a failed upload never counts)."""
        rows = self._version_ids(project, model, ["sys/id", FIELDS["fingerprint"]])
        registered = [row["sys/id"] for row in rows if isinstance(row.get(FIELDS["fingerprint"]), str)]
        return [self.get_version(project, version_id) for version_id in registered]

    def find_version(self, project: str, model: str, fingerprint: str) -> VersionInfo | None:
        for row in self._version_ids(project, model, ["sys/id", FIELDS["fingerprint"]]):
            if row.get(FIELDS["fingerprint"]) == fingerprint:
                return self.get_version(project, row["sys/id"])
        return None

    def download(self, project: str, version_id: str, dest: Path) -> VersionInfo:
        version = self._open(project, f"model version {version_id}", with_id=version_id, mode="read-only")
        try:
            info = self._info(project, version)
            with tempfile.TemporaryDirectory(prefix="mlcompile-neptune-") as tmp:
                version[FIELDS["files"]].download(destination=tmp)
                archives = list(Path(tmp).glob("*.zip"))
                if len(archives) != 1:
                    raise RegistryError(f"{version_id}: expected one zip archive of files, got {archives}")
                safe_extract_zip(archives[0], Path(tmp) / "files")
                copy_verified(Path(tmp) / "files", info, dest)
        finally:
            version.stop()
        return info

    # writing -----------------------------------------------------------
    def register(
        self, project: str, model: str, files: Path, card: dict, metadata: dict, fingerprint: str,
        details: VersionDetails | None = None,
    ) -> tuple[VersionInfo, bool]:
        split_version_id(f"{model}-1")
        existing = self.find_version(project, model, fingerprint)
        if existing is not None:
            return existing, False
        version = self._open(project, f"model {model}", model=model)  # neptune creates it on the server now
        try:
            version_id = write_version(version, files, card, metadata, fingerprint, details)
        except BaseException:
            version.change_stage("archived")  # the partial version, visibly out of use
            raise
        finally:
            version.stop()
        return self.get_version(project, version_id), True

    def set_lifecycle(self, project: str, version_id: str, lifecycle: str) -> VersionInfo:
        if lifecycle not in LIFECYCLES:
            raise RegistryError(f"lifecycle {lifecycle!r} is not one of {', '.join(LIFECYCLES)}")
        version = self._open(project, f"model version {version_id}", with_id=version_id)
        try:
            version.change_stage(lifecycle)
            version.wait()
        finally:
            version.stop()
        return self.get_version(project, version_id)
