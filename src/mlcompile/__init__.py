"""mlcompile: the compile stage of model CI (download, compile, validate, upload)."""

__version__ = "0.1.0"
