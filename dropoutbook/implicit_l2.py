"""Chapter 2, "Dropout as implicit L2 regularization"."""

from __future__ import annotations

__all__: list[str] = []
