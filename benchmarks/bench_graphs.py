"""DropEdge and DropNode (chapter 12) against their references, measured in one run.

``db.drop_edge`` is compared with ``torch_geometric.utils.dropout_edge`` (the reference whose
conventions it follows), without and with ``force_undirected``; with it, the library also checks
that every edge is listed in both directions (a sort of the edge codes), which PyTorch Geometric
does not do, so that ratio includes the price of that check. ``db.drop_node`` is compared with the
usual way of writing row dropout with torch, ``x * F.dropout(ones(N, 1), p)``. Times are
interleaved (benchmarks/_timing.py) and compared as ratios of medians; never asserts a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import dropoutbook as db
from _timing import interleaved, speedup

P, ROUNDS = 0.3, 15


def main() -> None:
    try:
        from torch_geometric.utils import dropout_edge
    except ImportError:  # pragma: no cover - the book extra installs it
        raise SystemExit("this benchmark compares with PyTorch Geometric: pip install 'dropoutbook[graphs]'")
    torch.set_num_threads(1)  # the machine is shared; one thread gives stable ratios
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread; p = {P}")
    graphs = {
        "karate club (156 directed edges)": (db.karate_club().edge_index, 2000),
        "block model, 2,000 nodes": (db.stochastic_block_model([500] * 4, 0.02, 0.002, seed=0).edge_index, 100),
    }
    for name, (edge_index, calls) in graphs.items():
        print(f"{name}: {edge_index.shape[1]} directed edges")
        for undirected in (False, True):
            times = interleaved({
                "pyg": lambda: dropout_edge(edge_index, P, force_undirected=undirected),
                "db": lambda: db.drop_edge(edge_index, P, force_undirected=undirected),
            }, ROUNDS, calls)
            _, line = speedup(times["pyg"], times["db"])
            print(f"  drop_edge vs dropout_edge, force_undirected={undirected!s:>5}: {line}")
    for shape, calls in (((240, 16), 2000), ((20_000, 128), 20)):
        x = torch.randn(shape)

        def reference():
            return x * F.dropout(torch.ones(shape[0], 1), P)

        times = interleaved({"reference": reference, "db": lambda: db.drop_node(x, P)}, ROUNDS, calls)
        _, line = speedup(times["reference"], times["db"])
        print(f"  drop_node vs x * F.dropout(ones(N, 1)), x of shape {shape}: {line}")
    print("  (a speed-up above 1 means the library is faster)")


if __name__ == "__main__":
    main()
