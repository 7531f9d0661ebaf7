"""Speed of db.mc_predict (batched MC dropout) against a Python loop of T passes, and against its limit.

Three ways to get T = 100 MC-dropout passes of an MLP on a batch of B inputs (B = 1 and B = 64):

* loop:    ``T`` forward passes of ``model(x)`` under ``db.mc_dropout``, stacked;
* batched: ``db.mc_predict(model, x, T)``, which replicates ``x`` T times and runs one forward;
* limit:   one forward over an already replicated batch of ``T·B`` rows, with nothing else (the
  cost ``mc_predict`` cannot go below).

Machines here are noisy, so the three are timed interleaved, many times, and the script prints the
ratios of their median times (loop / batched: the speed-up; batched / limit: the overhead of
mc_predict). It also checks in the same run that batched and loop passes have the same mean and
spread. Tests never assert a time (DESIGN.md §8). Run with
``python benchmarks/bench_mc_predict.py``; chapter 5, "Monte Carlo dropout".
"""

from __future__ import annotations

import math
import statistics

import torch

import dropoutbook as db
from dropoutbook.training import mlp
from _timing import interleaved

T, ROUNDS, SIZES = 100, 7, [64, 256, 256, 10]


def compare(model: torch.nn.Module, batch: int) -> None:
    x = torch.randn(batch, SIZES[0])
    rows = x.unsqueeze(0).expand(T, *x.shape).reshape(T * batch, -1).contiguous()

    def loop():
        with db.mc_dropout(model), torch.no_grad():
            return torch.stack([model(x) for _ in range(T)])

    def batched():
        return db.mc_predict(model, x, T)

    def limit():
        with db.mc_dropout(model), torch.no_grad():
            return model(rows)

    times = interleaved({"loop": loop, "batched": batched, "limit": limit}, ROUNDS,
                        {"loop": 1, "batched": 3, "limit": 3})
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"  B = {batch:>3}: loop {med['loop'] * 1e3:8.2f} ms, mc_predict {med['batched'] * 1e3:7.2f} ms, "
          f"one forward of T·B rows {med['limit'] * 1e3:7.2f} ms (medians)")
    print(f"           speed-up of mc_predict over the loop: {med['loop'] / med['batched']:.1f}x; "
          f"mc_predict / limit: {med['batched'] / med['limit']:.2f}")


def same_distribution(model: torch.nn.Module, n: int = 2000) -> None:
    """The mean and the spread of one output, batched vs loop, in the same run."""
    x = torch.randn(1, SIZES[0])
    a = db.mc_predict(model, x, n, generator=torch.Generator().manual_seed(1), return_samples=True).samples[:, 0, 0]
    torch.manual_seed(2)
    with db.mc_dropout(model), torch.no_grad():
        b = torch.stack([model(x) for _ in range(n)])[:, 0, 0]
    z = (a.mean() - b.mean()).item() / math.sqrt((a.var() + b.var()).item() / n)
    print(f"same distribution ({n} passes each): means differ by z = {z:+.2f}, "
          f"std {a.std().item():.4f} (mc_predict) vs {b.std().item():.4f} (loop)")


def main() -> None:
    torch.manual_seed(0)
    model = mlp(SIZES, dropout=0.5).eval()
    for threads in sorted({torch.get_num_threads(), 1}, reverse=True):
        torch.set_num_threads(threads)
        print(f"torch {torch.__version__}, {threads} thread(s), MLP {SIZES} with dropout 0.5, T = {T}, float32")
        for batch in (1, 64):
            compare(model, batch)
    same_distribution(model)


if __name__ == "__main__":
    main()
