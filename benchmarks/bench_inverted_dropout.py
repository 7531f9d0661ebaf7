"""Speed of db.inverted_dropout against torch.nn.functional.dropout, measured in one run.

Machines here are noisy, so the two are timed interleaved, many times, and the script prints the
ratio of their median times (and of their 25th and 75th percentiles). It also checks, in the same
run, that both have the same distribution: the fraction of dropped elements and the value of the
survivors. Run it with `make bench`. Target (issue "Foundation"): ratio of at least 2 on CPU.
"""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F

import dropoutbook as db
from _timing import interleaved, speedup

SHAPE, P, ROUNDS, CALLS = (256, 4096), 0.3, 31, 20


def compare(x: torch.Tensor, label: str) -> float:
    """Time both on ``x`` interleaved; print and return the ratio of their median times."""
    times = interleaved({"F.dropout": lambda: F.dropout(x, P, training=True),
                         "ours": lambda: db.inverted_dropout(x, P)}, ROUNDS, CALLS)
    ratio, line = speedup(times["F.dropout"], times["ours"])
    print(f"  {label}: F.dropout {statistics.median(times['F.dropout']) * 1e3:.3f} ms, "
          f"db.inverted_dropout {statistics.median(times['ours']) * 1e3:.3f} ms (medians)")
    print(f"    {line}")
    return ratio


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {SHAPE} float32, p = {P}")
    ratio = compare(torch.randn(*SHAPE), "no gradient (inference, or a tensor outside autograd)")
    compare(torch.randn(*SHAPE, requires_grad=True), "input requires grad (training)")

    ones = torch.ones(4_000_000)
    n = ones.numel()
    se = math.sqrt(P * (1 - P) / n)
    for name, out in [("F.dropout", F.dropout(ones, P, training=True)), ("db.inverted_dropout", db.inverted_dropout(ones, P))]:
        dropped = (out == 0).double().mean().item()
        survivors = sorted(set(out[out != 0].unique().tolist()))
        print(f"  {name:>20}: dropped {dropped:.4f} (z = {(dropped - P) / se:+.2f}), survivor values {survivors}")
    print("  target: speed-up >= 2x with the same distribution:", "met" if ratio >= 2 else "NOT met")


if __name__ == "__main__":
    main()
