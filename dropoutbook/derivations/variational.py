"""Chapter 10, "Variational dropout and sparsification": derivations."""

from __future__ import annotations

__all__: list[str] = []
