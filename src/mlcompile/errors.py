"""Errors users see. Each carries the process exit code the CLI returns for it."""


class MlcompileError(Exception):
    exit_code = 1


class ConfigError(MlcompileError):
    """A setting is missing or invalid."""

    exit_code = 2


class RegistryError(MlcompileError):
    """The registry refused or failed a request (unknown model/version, bad files, ...)."""

    exit_code = 3


class ArtifactError(MlcompileError):
    """A stage output is missing, incomplete or does not match its manifest."""

    exit_code = 4


class UploadRefused(MlcompileError):
    """Upload was refused because validation did not pass for this exact artifact."""

    exit_code = 1
