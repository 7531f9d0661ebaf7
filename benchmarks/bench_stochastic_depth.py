"""Training time saved by stochastic depth (chapter 8), measured in one run.

The chapter derives the expected fraction of residual-branch computations that a training step
skips when blocks are dropped per mini-batch, (1 - p_L)(L + 1)/(2L), and counts it in its
experiment; wall times cannot be printed there (nbval). This script times training steps of the
chapter's residual MLP, interleaved, in three settings, and prints the ratios of their median
times: plain (p_L = 1), stochastic depth per mini-batch (Huang et al., the branch is skipped),
and per-sample DropPath (the branch is always computed). Never asserts a time.
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

import dropoutbook as db
from _timing import interleaved

BLOCKS, WIDTH, BATCH, P_L, ROUNDS, STEPS = 16, 128, 128, 0.5, 7, 10


def make(mode: str, p_L: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = db.residual_mlp(64, WIDTH, BLOCKS, 10, p_L=p_L, mode=mode)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def training_steps(model, opt, x, y):
    """A function running STEPS optimisation steps of ``model`` on one batch."""
    loss_fn = nn.CrossEntropyLoss()

    def run():
        for _ in range(STEPS):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    return run


def main() -> None:
    torch.set_num_threads(1)  # the machine is shared; one thread gives stable ratios
    torch.manual_seed(0)
    x, y = torch.randn(BATCH, 64), torch.randint(0, 10, (BATCH,))
    settings = {"plain": make("batch", 1.0), "per batch": make("batch", P_L), "per sample": make("sample", P_L)}
    times = interleaved({name: training_steps(model, opt, x, y) for name, (model, opt) in settings.items()},
                        ROUNDS)
    skipped = 1 - statistics.mean(db.stochastic_depth_survival(BLOCKS, P_L))  # Huang et al.'s schedule
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; residual MLP with {BLOCKS} blocks "
          f"of width {WIDTH}, batch {BATCH}, p_L = {P_L}")
    print(f"  derived fraction of branch computations skipped per step (per batch): {skipped:.3f}")
    base = statistics.median(times["plain"])
    for name in settings:
        med = statistics.median(times[name])
        print(f"  {name:>10}: median step time / plain = {med / base:.3f}")
    print("  (per batch saves at most the skipped fraction of the branch work; per sample saves none)")


if __name__ == "__main__":
    main()
