"""Checkers for the exercises of chapter 10, "Variational dropout and sparsification"."""

from __future__ import annotations

__all__: list[str] = []
