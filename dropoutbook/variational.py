"""Chapter 10, "Variational dropout and sparsification"."""

from __future__ import annotations

__all__: list[str] = []
