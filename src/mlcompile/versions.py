"""Versions of the libraries that build and run a compiled artifact (fingerprinted and recorded)."""

from __future__ import annotations

import platform
from importlib import metadata

from . import __version__

LIBRARIES = ("torch", "transformers", "sentence-transformers", "keybert", "numpy")


def library_versions() -> dict:
    versions = {"python": platform.python_version(), "mlcompile": __version__}
    for dist in LIBRARIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions
