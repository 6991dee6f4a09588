"""The package version, in one place: `elegy.__version__`, the version recorded in every
save's manifest, and the version `pyproject.toml` builds (its `dynamic` version reads it)."""

__version__ = "0.1.0"
