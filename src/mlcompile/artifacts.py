"""Stage outputs as verified artifacts.

A stage directory `outputs/<stage>/` holds `manifest.json`: the sha256 of every other file and a
fingerprint of everything that produced it. A stage is built in a temporary sibling directory and
renamed into place, under a file lock, so a crash never leaves a directory a later run accepts and
concurrent builders (xdist workers, parallel pipelines) build once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from .errors import ArtifactError

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(data: Any) -> str:
    """A stable sha256 of JSON-serialisable data."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_tree(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every regular file below root, keyed by its posix path relative to root."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise ArtifactError(f"{path}: symbolic links are not allowed in artifacts")
        if path.is_file() and rel not in exclude:
            files[rel] = sha256_file(path)
    return files


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    with open(path) as handle:
        return json.load(handle)


@dataclass
class Artifact:
    """A published, verified stage directory."""

    path: Path
    manifest: dict
    reused: bool = False

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def content_id(self) -> str:
        """The fingerprint and the files' hashes: this exact build. A rebuild from the same inputs
        whose bytes differ (e.g. COMPILER=auto measured another winner) is another artifact."""
        return fingerprint({"fingerprint": self.fingerprint, "files": self.manifest["files"]})

    @property
    def info(self) -> dict:
        return self.manifest.get("info", {})


@dataclass
class StageDir:
    """`outputs/<name>`: build once per fingerprint, publish atomically, verify on reuse."""

    root: Path
    name: str
    lock_timeout: float = 3600

    @property
    def path(self) -> Path:
        return self.root / self.name

    @property
    def lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / f".{self.name}.lock"), timeout=self.lock_timeout)

    def problem(self, expected_fingerprint: str | None = None) -> str | None:
        """Why the published directory cannot be used, or None when it verifies."""
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            return f"{self.path} has no {MANIFEST} (never built, or an interrupted build)"
        try:
            manifest = read_json(manifest_path)
            recorded = manifest["files"]
        except (ValueError, KeyError, OSError) as exc:
            return f"{manifest_path} is unreadable: {exc}"
        if expected_fingerprint is not None and manifest.get("fingerprint") != expected_fingerprint:
            return f"{self.name} was built from other inputs (fingerprint changed)"
        actual = hash_tree(self.path, exclude=(MANIFEST,))
        if set(actual) != set(recorded):
            extra, missing = sorted(set(actual) - set(recorded)), sorted(set(recorded) - set(actual))
            return f"{self.path} files differ from its manifest (missing {missing}, unexpected {extra})"
        changed = sorted(p for p, digest in recorded.items() if actual[p] != digest)
        if changed:
            return f"{self.path} files were modified after publishing: {changed}"
        return None

    def recorded_manifest(self) -> dict | None:
        """The manifest as written, without verifying the files: for reports of a stage this
        session already verified (re-hashing hundreds of MB to print a line is waste)."""
        try:
            return read_json(self.path / MANIFEST)
        except (OSError, ValueError):
            return None

    def load(self, expected_fingerprint: str | None = None) -> Artifact:
        """The published artifact; ArtifactError if it is missing, stale or corrupted."""
        problem = self.problem(expected_fingerprint)
        if problem:
            raise ArtifactError(problem)
        return Artifact(self.path, read_json(self.path / MANIFEST), reused=True)

    def ensure(
        self,
        fp: str,
        build: Callable[[Path], dict | None],
        inputs: dict | None = None,
        still_valid: Callable[[Artifact], bool] | None = None,
        force: bool = False,
    ) -> Artifact:
        """Reuse the published artifact when it verifies, matches `fp` and (optionally) passes
        `still_valid`; otherwise build and publish it.

        `build(tmpdir)` writes the stage files into tmpdir and may return info for the manifest.
        """
        with self.lock:
            problem = "a rebuild was requested" if force else self.problem(fp)
            if problem is None:
                artifact = Artifact(self.path, read_json(self.path / MANIFEST), reused=True)
                if still_valid is None or still_valid(artifact):
                    log.info("%s: reusing %s (fingerprint %s)", self.name, self.path, fp[:12])
                    return artifact
                problem = "its record no longer holds"
            log.info("%s: building (%s)", self.name, problem)
            return self._build(fp, build, inputs or {})

    def publish(self, fp: str, build: Callable[[Path], dict | None], inputs: dict | None = None) -> Artifact:
        """Build and publish unconditionally (new evidence replaces old)."""
        with self.lock:
            return self._build(fp, build, inputs or {})

    def _build(self, fp: str, build: Callable[[Path], dict | None], inputs: dict) -> Artifact:
        self._remove_leftovers()
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{self.name}.build-"))
        try:
            started = time.perf_counter()
            info = build(tmp) or {}
            manifest = {
                "stage": self.name,
                "fingerprint": fp,
                "inputs": inputs,
                "info": info,
                "build_seconds": round(time.perf_counter() - started, 3),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "created_unix": time.time(),
                "files": hash_tree(tmp, exclude=(MANIFEST,)),
            }
            write_json_atomic(tmp / MANIFEST, manifest)
            self._swap_in(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return Artifact(self.path, manifest, reused=False)

    def _swap_in(self, tmp: Path) -> None:
        # Two renames: a crash between them leaves no published directory, which rebuilds.
        old = None
        if self.path.exists():
            old = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{self.name}.old-"))
            os.rename(self.path, old / "stage")
        os.rename(tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        for leftover in self.root.glob(f".{self.name}.build-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.root.glob(f".{self.name}.old-*"):
            shutil.rmtree(leftover, ignore_errors=True)
