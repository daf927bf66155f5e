"""An in-memory double of the neptune 1.x client (tests only), with the client's own method names
and exceptions: `init_model_version(with_id=... | model=..., project, api_token, mode)`,
`init_model(...)`, field handlers (`fetch`, `upload_files`, `download` of a file set as a zip),
`version[...] = value`, `change_stage`, `wait`, `stop`, `fetch_model_versions_table().to_pandas()`.
Hosted neptune is gone and debug mode keeps nothing between containers, so reading back what was
written needs this double. `hostile_zip` makes `download` hand out an archive that escapes."""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

import pandas
from neptune import exceptions

STAGES = ("none", "staging", "production", "archived")


class NeptuneDouble:
    def __init__(self, token: str = "valid-token"):
        self.token = token
        self.versions: dict[str, dict[str, dict]] = {}  # project -> version id -> fields
        self.hostile_zip: bytes | None = None
        self.fail_upload = False

    def _check(self, api_token):
        if api_token != self.token:
            raise exceptions.NeptuneInvalidApiTokenException()

    def init_model_version(self, with_id=None, *, name=None, model=None, project=None, api_token=None, mode=None):
        self._check(api_token)
        versions = self.versions.setdefault(project, {})
        if with_id is not None:
            if with_id not in versions:
                raise exceptions.ModelVersionNotFound(model_version_id=with_id)
            return _Version(self, versions[with_id], read_only=mode == "read-only")
        number = 1 + sum(1 for vid in versions if vid.rsplit("-", 1)[0] == model)
        fields = {"sys/id": f"{model}-{number}", "sys/stage": "none",
                  "sys/creation_time": datetime.datetime(2026, 11, 25, tzinfo=datetime.timezone.utc)}
        versions[fields["sys/id"]] = fields  # neptune creates the version on the server at once
        return _Version(self, fields, read_only=False)

    def init_model(self, with_id=None, *, project=None, api_token=None, mode=None):
        self._check(api_token)
        versions = self.versions.get(project, {})
        if not any(vid.rsplit("-", 1)[0] == with_id for vid in versions):
            raise exceptions.ModelNotFound(model_id=with_id)
        return _Model([fields for vid, fields in versions.items() if vid.rsplit("-", 1)[0] == with_id])


class _Model:
    def __init__(self, rows):
        self.rows = rows

    def fetch_model_versions_table(self, columns=None):
        frame = pandas.DataFrame([{c: row.get(c) for c in columns} for row in self.rows], columns=columns)
        return type("Table", (), {"to_pandas": lambda _self: frame})()

    def stop(self):
        pass


class _Version:
    def __init__(self, double, fields, read_only):
        self.double, self.fields, self.read_only = double, fields, read_only

    def __getitem__(self, path):
        return _Field(self, path)

    def __setitem__(self, path, value):
        if self.read_only:
            raise exceptions.NeptuneException("read-only mode")
        self.fields[path] = value

    def change_stage(self, stage):
        if stage not in STAGES:
            raise exceptions.NeptuneException(f"bad stage {stage}")
        self.fields["sys/stage"] = stage

    def wait(self):
        pass

    def stop(self):
        pass


class _Field:
    def __init__(self, version, path):
        self.version, self.path = version, path

    def fetch(self):
        if self.path not in self.version.fields:
            raise exceptions.MissingFieldException(self.path)
        return self.version.fields[self.path]

    def upload_files(self, path):
        if self.version.double.fail_upload:
            raise exceptions.FileSetUploadError(path, "connection reset")
        root = Path(path)
        self.version.fields[self.path] = {p.relative_to(root).as_posix(): p.read_bytes()
                                          for p in sorted(root.rglob("*")) if p.is_file()}

    def download(self, destination=None):
        buffer = io.BytesIO()
        if self.version.double.hostile_zip is not None:
            buffer.write(self.version.double.hostile_zip)
        else:
            with zipfile.ZipFile(buffer, "w") as bundle:
                for name, data in self.fetch().items():
                    bundle.writestr(name, data)
        Path(destination, f"{self.path}.zip").write_bytes(buffer.getvalue())
