"""Speed of the recurrent dropout of chapter 11, measured in one run.

1. ``db.locked_dropout`` on a ``(T, B, D)`` tensor (one mask of shape ``(1, B, D)``, broadcast over
   time) against ``torch.nn.functional.dropout`` applied per time step, the loop one writes without
   a locked helper, and against one ``F.dropout`` call on the whole tensor (per-step masks, the
   cheapest form of ordinary dropout). The locked mask needs T times fewer random numbers, and
   CPU ``bernoulli_`` (inside ``F.dropout``) is slow, so most of the gap is the mask draw.
2. A ``db.WeightDrop`` LSTM (one DropConnect mask on ``weight_hh_l0`` per forward pass, the module
   run with the dropped weights through ``torch.func.functional_call``) against the plain
   ``nn.LSTM``, forward and backward, and, for scale, ``db.RecurrentDropout`` with a locked mask,
   which runs an ``nn.LSTMCell`` step by step in Python.

The candidates of each part are timed in turn, round after round (``_timing.interleaved``), and
the script prints ratios of median times from the same run. Never asserts a time.
"""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F
from torch import nn

import dropoutbook as db
from _timing import interleaved, speedup

T, B, D, P = 35, 64, 256, 0.3  # a language-model batch: 35 steps, 64 sequences, 256 features
HIDDEN, LSTM_BATCH, ROUNDS = 256, 32, 9


def masks() -> None:
    x = torch.randn(T, B, D)
    fns = {
        "locked_dropout": lambda: db.locked_dropout(x, P),
        "F.dropout per step": lambda: torch.stack([F.dropout(x[t], P) for t in range(T)]),
        "F.dropout on all": lambda: F.dropout(x, P),
    }
    times = interleaved(fns, ROUNDS, calls=20)
    print(f"1. dropout of a ({T}, {B}, {D}) sequence tensor, p = {P}")
    for name in ("F.dropout per step", "F.dropout on all"):
        _, line = speedup(times[name], times["locked_dropout"])
        print(f"   locked_dropout against {name:<18}: {line}")


def forward_backward(model: nn.Module, x: torch.Tensor):
    def run():
        out, _ = model(x)
        out.sum().backward()
    return run


def lstms() -> None:
    torch.manual_seed(0)
    plain = nn.LSTM(HIDDEN, HIDDEN)
    dropped = nn.LSTM(HIDDEN, HIDDEN)
    dropped.load_state_dict(plain.state_dict())
    cell = nn.LSTMCell(HIDDEN, HIDDEN)
    models = {
        "nn.LSTM": plain,
        "WeightDrop(nn.LSTM)": db.WeightDrop(dropped, P),
        "RecurrentDropout(LSTMCell)": db.RecurrentDropout(cell, P, mode="locked"),
    }
    x = torch.randn(T, LSTM_BATCH, HIDDEN)
    times = interleaved({name: forward_backward(m, x) for name, m in models.items()}, ROUNDS, calls=3)
    print(f"2. one-layer LSTM, {HIDDEN} units, input ({T}, {LSTM_BATCH}, {HIDDEN}), forward + backward, p = {P}")
    base = statistics.median(times["nn.LSTM"])
    q_base = statistics.quantiles(times["nn.LSTM"], n=4)
    for name in ("WeightDrop(nn.LSTM)", "RecurrentDropout(LSTMCell)"):
        q = statistics.quantiles(times[name], n=4)
        print(f"   {name:<27}: median time / nn.LSTM = {statistics.median(times[name]) / base:.2f} "
              f"(quartile ratios {q[0] / q_base[0]:.2f} .. {q[2] / q_base[2]:.2f})")


def main() -> None:
    torch.set_num_threads(1)  # the machine is shared; one thread gives stable ratios
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread")
    masks()
    lstms()


if __name__ == "__main__":
    main()
