"""Chapter 5, "Monte Carlo dropout": derivations."""

from __future__ import annotations

__all__: list[str] = []
