"""Speed of db.drop_block2d against the per-channel max-pool formulation, measured in one run.

The reference is written here from the description in Ghiasi et al. (2018) as torchvision
implements it (torchvision is not a dependency of the book): seeds drawn with ``bernoulli_`` at
the paper's rate on the positions where a block fits, padded, dilated into blocks by one
``max_pool2d`` with a ``b x b`` kernel, and rescaled by the realised kept fraction of the whole
batch. ``db.drop_block2d`` differs in three ways: the seed rate is solved so that the expected
dropped fraction is exactly p, seeds come from thresholded uniforms, and the dilation is
separable (a ``b x 1`` then a ``1 x b`` max pool).

The two are timed interleaved, many times, and the script prints the ratio of their median
times. It also prints, from the same run, the dropped fraction each achieves against the target.
Run it with `make bench`. Target (issue "Chapter 7"): ratio of at least 1 at (32, 64, 28, 28),
block 7, p = 0.1, on CPU.
"""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F

import dropoutbook as db
from _timing import interleaved, speedup

SHAPE, P, BLOCK, ROUNDS, CALLS = (32, 64, 28, 28), 0.1, 7, 15, 3


def maxpool_dropblock(x: torch.Tensor, p: float, block_size: int) -> torch.Tensor:
    """The per-channel max-pool formulation of DropBlock (the paper's gamma, torchvision's algorithm)."""
    n, c, h, w = x.shape
    b = min(block_size, h, w)
    gamma = p * h * w / (b**2 * (h - b + 1) * (w - b + 1))
    seeds = torch.empty((n, c, h - b + 1, w - b + 1), dtype=x.dtype, device=x.device).bernoulli_(gamma)
    seeds = F.pad(seeds, [b // 2] * 4, value=0.0)
    dropped = F.max_pool2d(seeds, kernel_size=(b, b), stride=(1, 1), padding=b // 2)
    keep = 1.0 - dropped
    scale = keep.numel() / (1e-6 + keep.sum())  # realised kept fraction of the whole batch
    return x * keep * scale


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(*SHAPE)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {SHAPE} float32, "
          f"block {BLOCK}, p = {P}")
    times = interleaved({"reference": lambda: maxpool_dropblock(x, P, BLOCK),
                         "ours": lambda: db.drop_block2d(x, P, BLOCK)}, ROUNDS, CALLS)
    ratio, line = speedup(times["reference"], times["ours"])
    print(f"  max-pool formulation {statistics.median(times['reference']) * 1e3:.2f} ms, "
          f"db.drop_block2d {statistics.median(times['ours']) * 1e3:.2f} ms (medians)")
    print(f"    {line}")

    ones = torch.ones(SHAPE)
    for name, out in [("max-pool formulation", maxpool_dropblock(ones, P, BLOCK)),
                      ("db.drop_block2d", db.drop_block2d(ones, P, BLOCK))]:
        per_map = (out == 0).double().mean(dim=(-2, -1)).flatten()
        est = db.estimate_mean(per_map)
        print(f"  {name:>20}: dropped {est.value:.4f} ± {est.stderr:.4f} "
              f"(target {P}, z = {db.z_score(est, P):+.1f})")
    expected = db.block_drop_fraction(db.paper_seed_rate(P, 28, 28, BLOCK), 28, 28, BLOCK)
    print(f"  expected dropped fraction with the paper's gamma: {expected:.4f}")
    print("  target: speed-up >= 1x:", "met" if ratio >= 1 else "NOT met")
    assert math.isfinite(ratio)


if __name__ == "__main__":
    main()
