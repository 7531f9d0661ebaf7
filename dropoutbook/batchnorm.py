"""Chapter 6, "Dropout and BatchNorm: the variance shift"."""

from __future__ import annotations

__all__: list[str] = []
