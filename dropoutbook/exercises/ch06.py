"""Checkers for the exercises of chapter 6, "Dropout and BatchNorm: the variance shift"."""

from __future__ import annotations

__all__: list[str] = []
