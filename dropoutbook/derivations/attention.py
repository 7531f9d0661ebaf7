"""Chapter 9, "Dropout in transformers": derivations."""

from __future__ import annotations

__all__: list[str] = []
