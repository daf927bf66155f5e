"""Versions of the libraries that build and run a compiled artifact (fingerprinted and recorded).

A registered version's serving requirements are pinned to these (`pyfunc.requirements`): the model's
runtime libraries, tokenizers (it cuts every text), numpy, and KeyBERT's own scikit-learn (its
candidate words); the backend's runtime is recorded by the compiler (`Compiler.versions`)."""

from __future__ import annotations

import platform
from importlib import metadata

from . import __version__

LIBRARIES = ("torch", "transformers", "tokenizers", "sentence-transformers", "keybert", "scikit-learn", "numpy")


def library_versions() -> dict:
    versions = {"python": platform.python_version(), "mlcompile": __version__}
    for dist in LIBRARIES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions
