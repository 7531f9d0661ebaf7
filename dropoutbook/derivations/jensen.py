"""Chapter 3, "The Jensen bias": derivations."""

from __future__ import annotations

__all__: list[str] = []
