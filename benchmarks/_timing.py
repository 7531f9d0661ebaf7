"""Timing shared by the benchmark scripts: interleaved rounds, medians and quartile ratios.

Machines here are noisy, so each benchmark times its candidates in turn, round after round, and
compares medians (and the 25th and 75th percentiles) measured in the same run. The scripts import
this module as ``_timing`` (Python puts the script's folder on the path).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def seconds_per_call(fn: Callable[[], object], calls: int) -> float:
    """Mean wall time of ``calls`` consecutive calls of ``fn``."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def interleaved(fns: Mapping[str, Callable[[], object]], rounds: int,
                calls: int | Mapping[str, int] = 1) -> dict[str, list[float]]:
    """Warm every function up once, then time them in turn for ``rounds`` rounds.

    Returns the per-round times (seconds per call) of each function, by name.
    """
    per_call = calls if isinstance(calls, Mapping) else {name: calls for name in fns}
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(seconds_per_call(fn, per_call[name]))
    return times


def speedup(reference: list[float], ours: list[float]) -> tuple[float, str]:
    """Ratio of median times ``reference / ours``, and a line with it and the quartile ratios."""
    ratio = statistics.median(reference) / statistics.median(ours)
    q_ref, q_ours = statistics.quantiles(reference, n=4), statistics.quantiles(ours, n=4)
    return ratio, (f"speed-up {ratio:.2f}x (quartile ratios {q_ref[0] / q_ours[0]:.2f}x .. "
                   f"{q_ref[2] / q_ours[2]:.2f}x)")
