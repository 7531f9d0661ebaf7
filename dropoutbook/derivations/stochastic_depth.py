"""Chapter 8, "Stochastic depth": derivations."""

from __future__ import annotations

__all__: list[str] = []
