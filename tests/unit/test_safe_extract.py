"""Downloaded archives (neptune file sets arrive as zips) never write outside their destination."""

from __future__ import annotations

import stat
import zipfile

import pytest

from mlcompile.errors import RegistryError
from mlcompile.registry import safe_extract_zip

pytestmark = pytest.mark.unit


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            bundle.writestr(info, data)
    return path


@pytest.mark.parametrize("name, mode, why", [
    ("../escaped.txt", 0o100644, "leaves the destination"),
    ("sub/../../escaped.txt", 0o100644, "leaves the destination"),
    ("/tmp/escaped.txt", 0o100644, "leaves the destination"),
    ("link", stat.S_IFLNK | 0o777, "a link"),
])
def test_hostile_members_are_refused_before_anything_is_written(tmp_path, name, mode, why):
    archive = make_zip(tmp_path / "files.zip", [("ok.txt", b"fine", 0o100644), (name, b"/etc/passwd", mode)])
    with pytest.raises(RegistryError, match=why):
        safe_extract_zip(archive, tmp_path / "dest")
    assert not (tmp_path / "dest" / "ok.txt").exists() and not list(tmp_path.rglob("escaped.txt"))


def test_plain_archive_extracts(tmp_path):
    archive = make_zip(tmp_path / "files.zip", [("compiled/model.onnx", b"m", 0o100644), ("a.txt", b"a", 0o100644)])
    safe_extract_zip(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "compiled" / "model.onnx").read_bytes() == b"m"
