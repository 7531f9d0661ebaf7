"""Checkers for the exercises of chapter 4, "Dropout as an ensemble of subnetworks"."""

from __future__ import annotations

__all__: list[str] = []
