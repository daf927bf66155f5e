"""Stage artifacts: build once per fingerprint, publish atomically, verify on reuse."""

from __future__ import annotations

import json

import pytest

from mlcompile.artifacts import MANIFEST, StageDir, sha256_file, write_json_atomic
from mlcompile.errors import ArtifactError

pytestmark = pytest.mark.unit

NAME = "compile"


class Builder:
    """A build callback that counts its calls and writes two files."""

    def __init__(self, content: bytes = b"weights"):
        self.calls = 0
        self.content = content

    def __call__(self, tmp):
        self.calls += 1
        (tmp / "model.bin").write_bytes(self.content)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "spec.json").write_text('{"lengths": [16]}')
        return {"call": self.calls}


@pytest.fixture
def stage(tmp_path):
    return StageDir(tmp_path / "outputs", NAME, lock_timeout=5)


def leftovers(stage: StageDir) -> list:
    return sorted(p.name for p in stage.root.glob(f".{NAME}.build-*")) + sorted(
        p.name for p in stage.root.glob(f".{NAME}.old-*")
    )


def test_ensure_builds_once_then_reuses(stage):
    build = Builder()
    first = stage.ensure("fp1", build)
    second = stage.ensure("fp1", build)
    assert build.calls == 1
    assert (first.reused, second.reused) == (False, True)
    assert second.fingerprint == "fp1" and second.info == {"call": 1}
    assert second.manifest["files"]["model.bin"] == sha256_file(stage.path / "model.bin")


def test_different_fingerprint_rebuilds(stage):
    build = Builder()
    stage.ensure("fp1", build)
    rebuilt = stage.ensure("fp2", build)
    assert build.calls == 2 and not rebuilt.reused
    assert stage.load("fp2").fingerprint == "fp2"
    assert leftovers(stage) == []


def test_flipped_byte_is_detected_and_rebuilt(stage):
    build = Builder()
    stage.ensure("fp1", build)
    target = stage.path / "model.bin"
    data = bytearray(target.read_bytes())
    data[0] ^= 0x01
    target.write_bytes(bytes(data))
    assert "modified after publishing" in stage.problem("fp1") and "model.bin" in stage.problem("fp1")
    stage.ensure("fp1", build)
    assert build.calls == 2
    assert target.read_bytes() == b"weights" and stage.problem("fp1") is None


def test_extra_file_is_detected(stage):
    stage.ensure("fp1", Builder())
    (stage.path / "sub" / "extra.txt").write_text("x")
    assert "unexpected ['sub/extra.txt']" in stage.problem("fp1")


def test_missing_file_is_detected(stage):
    stage.ensure("fp1", Builder())
    (stage.path / "sub" / "spec.json").unlink()
    assert "missing ['sub/spec.json']" in stage.problem("fp1")
    with pytest.raises(ArtifactError):
        stage.load("fp1")


def test_failed_build_leaves_no_directory_and_no_leftovers(stage):
    def build(tmp):
        (tmp / "half.bin").write_bytes(b"partial")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        stage.ensure("fp1", build)
    assert not stage.path.exists()
    assert leftovers(stage) == []


def test_failed_build_keeps_previous_artifact(stage):
    stage.ensure("fp1", Builder())

    def build(tmp):
        (tmp / "model.bin").write_bytes(b"other")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        stage.ensure("fp2", build)
    assert stage.load("fp1").fingerprint == "fp1"
    assert (stage.path / "model.bin").read_bytes() == b"weights"
    assert leftovers(stage) == []


def test_killed_build_directory_is_never_accepted_and_is_cleaned(stage):
    build = Builder()
    stage.ensure("fp1", build)
    # A build killed just before its rename: complete content, valid manifest, wrong place.
    killed = stage.root / f".{NAME}.build-killed"
    stage.path.rename(killed)
    assert "no manifest.json" in stage.problem("fp1")
    with pytest.raises(ArtifactError):
        stage.load("fp1")
    stage.ensure("fp1", build)
    assert build.calls == 2
    assert not killed.exists() and leftovers(stage) == []


def test_crash_between_swap_renames_rebuilds_and_cleans(stage):
    build = Builder()
    stage.ensure("fp1", build)
    old = stage.root / f".{NAME}.old-crash"
    old.mkdir()
    stage.path.rename(old / "stage")
    assert stage.problem("fp1") is not None
    stage.ensure("fp1", build)
    assert build.calls == 2 and leftovers(stage) == []


def test_load_raises_on_stale_fingerprint(stage):
    stage.ensure("fp1", Builder())
    with pytest.raises(ArtifactError, match="fingerprint changed"):
        stage.load("fp2")
    assert stage.load("fp1").reused


def test_load_raises_when_never_built(stage):
    with pytest.raises(ArtifactError, match="never built"):
        stage.load()


def test_unreadable_manifest_is_a_problem(stage):
    stage.ensure("fp1", Builder())
    (stage.path / MANIFEST).write_text("{not json")
    assert "unreadable" in stage.problem("fp1")


def test_still_valid_false_forces_rebuild(stage):
    build = Builder()
    stage.ensure("fp1", build)
    seen = []

    def still_valid(artifact):
        seen.append(artifact.fingerprint)
        return False

    rebuilt = stage.ensure("fp1", build, still_valid=still_valid)
    assert seen == ["fp1"] and build.calls == 2 and not rebuilt.reused


def test_still_valid_true_reuses(stage):
    build = Builder()
    stage.ensure("fp1", build)
    assert stage.ensure("fp1", build, still_valid=lambda a: True).reused
    assert build.calls == 1


def test_force_rebuilds(stage):
    build = Builder()
    stage.ensure("fp1", build)
    forced = stage.ensure("fp1", build, force=True)
    assert build.calls == 2 and not forced.reused and forced.info == {"call": 2}


def test_manifest_records_inputs_and_info(stage):
    stage.ensure("fp1", Builder(), inputs={"download": "abc"})
    manifest = json.loads((stage.path / MANIFEST).read_text())
    assert manifest["inputs"] == {"download": "abc"} and manifest["stage"] == NAME
    assert set(manifest["files"]) == {"model.bin", "sub/spec.json"}


def test_write_json_atomic_leaves_no_temp_files(tmp_path):
    target = tmp_path / "dir" / "data.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["data.json"]


def test_write_json_atomic_failure_keeps_old_file_and_no_temp_files(tmp_path):
    target = tmp_path / "data.json"
    write_json_atomic(target, {"a": 1})
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError):
        write_json_atomic(target, circular)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_symlink_in_build_is_refused(stage, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("x")

    def build(tmp):
        (tmp / "link").symlink_to(outside)

    with pytest.raises(ArtifactError, match="symbolic links"):
        stage.ensure("fp1", build)
    assert not stage.path.exists() and leftovers(stage) == []


def test_content_id_changes_with_the_bytes_not_only_the_inputs(tmp_path):
    stage = StageDir(tmp_path, "compile")
    first = stage.ensure("fp1", lambda tmp: (tmp / "model.onnx").write_text("onnx") and {}, {})
    again = stage.ensure("fp1", lambda tmp: (tmp / "model.onnx").write_text("other") and {}, {})
    assert again.content_id == first.content_id  # reused, same build
    rebuilt = stage.ensure("fp1", lambda tmp: (tmp / "bucket-16.pt").write_text("torchscript") and {}, {}, force=True)
    assert rebuilt.fingerprint == first.fingerprint and rebuilt.content_id != first.content_id
