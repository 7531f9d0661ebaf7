"""Shared test settings.

Hypothesis runs derandomized (a fixed seed derived from each test), without a deadline (sympy and
the first torch call are slow to warm up; tests never assert a time) and without writing an example
database into the repository.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("dropoutbook", derandomize=True, deadline=None, database=None, print_blob=False)
settings.load_profile("dropoutbook")

# The tests run on two xdist workers on a two-core machine and use small tensors: one intra-op
# thread per worker avoids oversubscription (threads spinning while they wait) and keeps sums
# reproducible. Tests that need more threads set them and restore this value.
import torch  # noqa: E402

torch.set_num_threads(1)
