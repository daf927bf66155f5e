"""Errors users see, and the exit codes of `mlcompile run` and `pytest pipeline_tests`.

pytest owns 0-5 (0 passed, 1 tests failed, 2 interrupted, 3 internal error, 4 usage error,
5 no tests collected); mlcompile's own failures use numbers above that range, so a code always
says which kind of failure happened."""

EXIT_CODES = {  # the README's table says the same (a test compares them)
    0: "every selected stage passed (and, with upload, the version is registered, or was already)",
    1: "a check failed: validation did not pass, or the upload gate refused",
    2: "interrupted (pytest's own)",
    3: "internal error (pytest's own: a plugin or hook crashed)",
    4: "usage error (pytest's own: bad pytest arguments)",
    5: "no tests selected (pytest's own)",
    10: "configuration error (bad or missing setting, unknown project/compiler/registry, compiled lengths the "
        "model cannot use, COMPILER=neuron where torch-neuronx cannot compile: not installed, PyPI's "
        "placeholder, native TorchNeuron; a Neuron artifact to validate where no NeuronCore is visible)",
    11: "registry error (unknown model or version, corrupted or incomplete version, unreadable card, server "
        "down, token rejected)",
    12: "stage artifact error (a stage output cannot be built, read or verified)",
    13: "unsupported model (a flavor, architecture, head or task mlcompile does not compile; the message "
        "names what it found and what is supported)",
}


class MlcompileError(Exception):
    exit_code = 1


class ConfigError(MlcompileError):
    """A setting is missing or invalid."""

    exit_code = 10


class RegistryError(MlcompileError):
    """The registry refused or failed a request (unknown model/version, bad files, ...)."""

    exit_code = 11


class ArtifactError(MlcompileError):
    """A stage output is missing, incomplete or does not match its manifest."""

    exit_code = 12


class UnsupportedModel(MlcompileError):
    """The uncompiled model is of a flavor, architecture or task mlcompile does not compile."""

    exit_code = 13


class UploadRefused(MlcompileError):
    """Upload was refused because validation did not pass for this exact artifact under the
    current rules."""

    exit_code = 1


def exit_code_table() -> str:
    return "\n".join(f"  {code:>2}  {meaning}" for code, meaning in EXIT_CODES.items())
