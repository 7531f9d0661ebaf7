"""Chapter 7, "DropBlock": derivations."""

from __future__ import annotations

__all__: list[str] = []
