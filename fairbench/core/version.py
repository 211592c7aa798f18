"""The package version, kept apart so that every layer can stamp records and bundles with it."""

__version__ = "0.1.0"
