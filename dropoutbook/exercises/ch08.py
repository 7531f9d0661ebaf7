"""Checkers for the exercises of chapter 8, "Stochastic depth"."""

from __future__ import annotations

__all__: list[str] = []
