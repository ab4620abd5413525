"""The `codelinkava` command line; `main` is the entry point (`codelinkava.cli:main`)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
