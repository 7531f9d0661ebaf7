"""Checkers for the exercises of chapter 5, "Monte Carlo dropout"."""

from __future__ import annotations

__all__: list[str] = []
