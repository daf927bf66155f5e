"""The local directory registry: numbered immutable versions, verified downloads, lifecycle stages."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from mlcompile.artifacts import sha256_file
from mlcompile.errors import RegistryError
from mlcompile.registry import split_version_id
from mlcompile.registry.local import LocalRegistry

pytestmark = pytest.mark.unit

PROJECT = "mlcompile/keywords"
MODEL = "KEYWORDS-COMPILED"


def make_files(root, content: str = "weights"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.bin").write_text(content)
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "config.json").write_text('{"layers": 6}')
    return root


@pytest.fixture
def registry(tmp_path):
    return LocalRegistry(tmp_path / "registry")


@pytest.fixture
def files(tmp_path):
    return make_files(tmp_path / "files")


def register(registry, files, fp: str, card=None, metadata=None):
    return registry.register(PROJECT, MODEL, files, card or {"task": "keywords"}, metadata or {}, fp)


def stored_files(registry, version_id: str):
    return registry.root / "mlcompile" / "keywords" / MODEL / version_id / "files"


def test_register_numbers_versions_for_different_fingerprints(registry, files):
    first, created_first = register(registry, files, "fp1")
    second, created_second = register(registry, files, "fp2")
    assert (first.version_id, second.version_id) == (f"{MODEL}-1", f"{MODEL}-2")
    assert created_first and created_second
    assert [v.version_id for v in registry.list_versions(PROJECT, MODEL)] == [f"{MODEL}-1", f"{MODEL}-2"]


def test_same_fingerprint_returns_existing_version(registry, files):
    first, _ = register(registry, files, "fp1")
    again, created = register(registry, files, "fp1")
    assert not created and again.version_id == first.version_id
    assert len(registry.list_versions(PROJECT, MODEL)) == 1


def test_versions_sort_numerically_past_nine(registry, files):
    for i in range(11):
        register(registry, files, f"fp{i}")
    ids = [v.version_id for v in registry.list_versions(PROJECT, MODEL)]
    assert ids == [f"{MODEL}-{n}" for n in range(1, 12)]


def test_unknown_version_names_id_and_known_versions(registry, files):
    register(registry, files, "fp1")
    with pytest.raises(RegistryError) as caught:
        registry.get_version(PROJECT, f"{MODEL}-9")
    assert f"{MODEL}-9 not found" in str(caught.value)
    assert f"known versions of {MODEL}: {MODEL}-1" in str(caught.value)


def test_unknown_model_says_no_known_versions(registry):
    with pytest.raises(RegistryError, match="known versions of OTHER: none"):
        registry.get_version(PROJECT, "OTHER-1")


@pytest.mark.parametrize("bad_id", ["KEYWORDS", "KEYWORDS-x", "", "-1", "KEYWORDS--1", "../KEYWORDS-1"])
def test_malformed_version_ids_are_refused(registry, bad_id):
    with pytest.raises(RegistryError, match="not a model version id"):
        registry.get_version(PROJECT, bad_id)


def test_version_id_with_trailing_newline_is_refused():
    with pytest.raises(RegistryError):
        split_version_id("KEYWORDS-1\n")


@pytest.mark.parametrize("project", ["..", "a/../b", "../outside", "/abs/project", ""])
def test_project_names_escaping_the_root_are_refused(registry, files, project):
    with pytest.raises(RegistryError, match="project name"):
        registry.register(project, MODEL, files, {}, {}, "fp1")
    assert not (registry.root.parent / MODEL).exists() and not (registry.root.parent / "outside").exists()


def test_download_copies_files_and_verifies(registry, files, tmp_path):
    version, _ = register(registry, files, "fp1")
    dest = tmp_path / "dest"
    got = registry.download(PROJECT, version.version_id, dest)
    assert got == version
    assert (dest / "model.bin").read_text() == "weights"
    assert (dest / "sub" / "config.json").read_text() == '{"layers": 6}'
    assert got.files == {"model.bin": sha256_file(files / "model.bin"),
                         "sub/config.json": sha256_file(files / "sub" / "config.json")}


def test_download_of_tampered_file_fails(registry, files, tmp_path):
    version, _ = register(registry, files, "fp1")
    (stored_files(registry, version.version_id) / "model.bin").write_text("weightz")
    with pytest.raises(RegistryError, match="'model.bin' does not match its recorded sha256"):
        registry.download(PROJECT, version.version_id, tmp_path / "dest")


def test_download_of_missing_file_reports_incomplete(registry, files, tmp_path):
    version, _ = register(registry, files, "fp1")
    (stored_files(registry, version.version_id) / "sub" / "config.json").unlink()
    with pytest.raises(RegistryError, match="incomplete.*sub/config.json"):
        registry.download(PROJECT, version.version_id, tmp_path / "dest")


def test_registered_files_are_a_copy(registry, files):
    version, _ = register(registry, files, "fp1")
    (files / "model.bin").write_text("changed after registering")
    assert (stored_files(registry, version.version_id) / "model.bin").read_text() == "weights"


@pytest.mark.parametrize("lifecycle", ["staging", "production", "archived", "none"])
def test_set_lifecycle(registry, files, lifecycle):
    version, _ = register(registry, files, "fp1")
    assert version.lifecycle == "none"
    assert registry.set_lifecycle(PROJECT, version.version_id, lifecycle).lifecycle == lifecycle
    assert registry.get_version(PROJECT, version.version_id).lifecycle == lifecycle


def test_set_unknown_lifecycle_is_refused(registry, files):
    version, _ = register(registry, files, "fp1")
    with pytest.raises(RegistryError, match="'live' is not one of"):
        registry.set_lifecycle(PROJECT, version.version_id, "live")
    assert registry.get_version(PROJECT, version.version_id).lifecycle == "none"


def test_set_lifecycle_of_unknown_version_fails(registry):
    with pytest.raises(RegistryError, match="not found"):
        registry.set_lifecycle(PROJECT, f"{MODEL}-1", "staging")


def test_card_and_metadata_round_trip_through_version_json(registry, files):
    card = {"task": "keywords", "lengths": [16, 256], "nested": {"a": None, "b": 1.5}}
    version, _ = register(registry, files, "fp1", card=card, metadata={"validated": True})
    record = json.loads((stored_files(registry, version.version_id).parent / "version.json").read_text())
    assert record["card"] == card
    assert record["metadata"] == {"validated": True, "fingerprint": "fp1"}
    assert record["files"] == version.files
    loaded = registry.get_version(PROJECT, version.version_id)
    assert loaded.card == card and loaded.fingerprint == "fp1" and loaded.created_at == record["created_at"]
    assert registry.find_version(PROJECT, MODEL, "fp1") == loaded
    assert registry.find_version(PROJECT, MODEL, "other") is None


REGISTER_SCRIPT = """
import sys, time
from pathlib import Path
from mlcompile.registry.local import LocalRegistry
root, files, tag, go = sys.argv[1:]
Path(go + "-ready-" + tag).touch()
while not Path(go).exists():
    time.sleep(0.005)
registry = LocalRegistry(root)
for i in range(5):
    version, created = registry.register("p/x", "MODEL", Path(files), {"by": tag}, {"i": i}, f"{tag}-{i}")
    assert created, version
    print(version.version_id)
"""


def test_concurrent_registration_from_two_processes(registry, tmp_path):
    go = tmp_path / "go"
    procs = []
    for tag in ("a", "b"):
        source = make_files(tmp_path / f"files-{tag}", content=f"weights of {tag}")
        procs.append(subprocess.Popen(
            [sys.executable, "-c", REGISTER_SCRIPT, str(registry.root), str(source), tag, str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"go-ready-{tag}").exists() for tag in "ab") and time.monotonic() < deadline:
        time.sleep(0.005)
    go.touch()  # both processes start registering at once
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    ids = [line for out, _ in outputs for line in out.split()]
    assert sorted(ids, key=lambda v: int(v.rsplit("-", 1)[1])) == [f"MODEL-{n}" for n in range(1, 11)]
    versions = registry.list_versions("p/x", "MODEL")
    assert len({v.fingerprint for v in versions}) == 10
    for version in versions:
        dest = tmp_path / "check" / version.version_id
        registry.download("p/x", version.version_id, dest)
        assert (dest / "model.bin").read_text() == f"weights of {version.card['by']}"
    assert not list((registry.root / "p" / "x" / "MODEL").glob(".new-*"))


def test_registered_files_are_read_only(registry, files):
    version, _ = register(registry, files, "fp1")
    stored = stored_files(registry, version.version_id)
    assert all(not (p.stat().st_mode & 0o222) for p in stored.rglob("*") if p.is_file())


def test_a_version_deleted_by_hand_is_never_handed_out_again(registry, files):
    import shutil

    first, _ = register(registry, files, "fp1")
    version_dir = stored_files(registry, first.version_id).parent
    for path in version_dir.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(version_dir)
    again, created = register(registry, files, "fp2")
    assert created and again.version_id == f"{MODEL}-2"  # the counter remembers 1


def test_stray_and_half_written_directories_are_skipped_not_raw_errors(registry, files, caplog):
    register(registry, files, "fp1")
    model_dir = stored_files(registry, f"{MODEL}-1").parent.parent
    (model_dir / f"{MODEL}-2").mkdir()  # stray: no version.json
    (model_dir / f"{MODEL}-2" / "leftover.bin").write_text("x")
    (model_dir / f"{MODEL}-4" / "files").mkdir(parents=True)  # half-written, further on
    version, created = register(registry, files, "fp2")
    assert created and version.version_id == f"{MODEL}-5"
    assert [v.version_id for v in registry.list_versions(PROJECT, MODEL)] == [f"{MODEL}-1", f"{MODEL}-5"]
    assert f"{MODEL}-2, {MODEL}-4" in caplog.text  # named in the log


def test_counter_that_does_not_parse_is_a_clear_registry_error(registry, files):
    register(registry, files, "fp1")
    counter = stored_files(registry, f"{MODEL}-1").parent.parent / "counter.json"
    counter.write_text("{not json")
    with pytest.raises(RegistryError, match="counter.json is unreadable.*delete it to count from the directories"):
        register(registry, files, "fp2")


def test_a_failed_rename_is_a_registry_error_and_leaves_nothing(registry, files, monkeypatch):
    from mlcompile.registry import local

    def refuse(*_args):
        raise OSError(39, "Directory not empty")

    monkeypatch.setattr(local.os, "rename", refuse)
    with pytest.raises(RegistryError, match=f"could not write version {MODEL}-1: .*Directory not empty"):
        register(registry, files, "fp1")
    monkeypatch.undo()
    model_dir = registry.root / "mlcompile" / "keywords" / MODEL
    assert not list(model_dir.glob(".new-*"))
    assert register(registry, files, "fp1")[0].version_id == f"{MODEL}-2"  # 1 was handed out: not reused
