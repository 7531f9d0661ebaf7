"""Shared test settings.

Hypothesis runs derandomized (a fixed seed derived from each test), without a deadline (sympy and
the first torch call are slow to warm up; tests never assert a time) and without writing an example
database into the repository.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("dropoutbook", derandomize=True, deadline=None, database=None, print_blob=False)
settings.load_profile("dropoutbook")
