"""Checkers for the exercises of chapter 8, "Stochastic depth".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
(and returns None) or raises :class:`CheckFailed` with a message that says what is wrong, for
example "you used the seed's formula: p_L is a survival probability".
"""

from __future__ import annotations

import math
import numbers

import sympy as sp
import torch

from .. import derivations
from ._core import CheckFailed, _check_numbers, _as_output, _survivor_scale_message, call_student, passed

__all__ = [
    "check_drop_path", "check_survival_schedule", "check_depth_prediction", "check_block_test_time",
    "DEPTH_EXERCISE",
]

_Z = 5.0

#: Number of blocks and survival probability of the last block in the "predict" exercise of chapter 8.
DEPTH_EXERCISE = {"L": 12, "p_L": 0.5}


# --------------------------------------------------------------------------------------------
# exercise 1: implement per-sample DropPath


def check_drop_path(fn, p: float = 0.3) -> None:
    """Check an implementation ``fn(x, p, training=True)`` of per-sample DropPath with inverted scaling (chapter 8 exercises).

    In order: output type and shape; ``x`` not modified; one draw per *sample* (all entries of a
    sample dropped or kept together); survivors scaled by exactly 1/(1-p); the fraction of dropped
    samples is p within 5 standard errors; a new draw on every call; the identity with
    ``training=False`` and with ``p = 0``.
    """
    if not 0 < p < 1 or math.isclose(p, 0.5):
        raise ValueError(f"p must be in (0, 1) and not 0.5 (where 1/p = 1/(1-p)), got {p}")
    with torch.random.fork_rng(devices=[]):  # reproducible messages; the caller's RNG state is restored
        torch.manual_seed(8)
        passed(_check_drop_path(fn, p))


def _check_drop_path(fn, p: float) -> str:
    what = "your drop_path"
    n = 20_000
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 4, generator=g, dtype=torch.float64) + 0.5  # never zero
    before = x.clone()
    out = _as_output(call_student(fn, x, p, training=True, what=what), x, what)
    if not torch.equal(x, before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead")
    kept = out != 0
    per_sample = kept.flatten(1)
    mixed = per_sample.any(1) & ~per_sample.all(1)
    if mixed.any():
        raise CheckFailed(
            f"{int(mixed.sum())} of {n} samples have some entries dropped and others kept: DropPath draws "
            "ONE Bernoulli per sample (a mask of shape (N, 1, 1)) and drops the sample's whole branch, "
            "not each element independently as dropout does"
        )
    if kept.any():
        ratios = out[kept] / x[kept]
        if (ratios.max() - ratios.min()).item() > 1e-9 * ratios.abs().max().item():
            raise CheckFailed("kept samples are scaled by different factors; every kept sample is multiplied by 1/(1-p)")
        message = _survivor_scale_message(ratios[0].item(), p)
        if message:
            raise CheckFailed(message)
    dropped = 1.0 - per_sample[:, 0].double().mean().item()
    se = math.sqrt(p * (1 - p) / n)
    if abs(dropped - p) > _Z * se:
        if abs(dropped - (1 - p)) <= _Z * se:
            raise CheckFailed(
                f"{dropped:.1%} of the samples are dropped with p = {p}: you drop with the survival probability "
                "1 - p. In the book's convention p is the drop probability"
            )
        raise CheckFailed(f"{dropped:.1%} of the samples are dropped; with p = {p} it should be {p:.0%} (±{_Z * se:.1%})")
    again = _as_output(call_student(fn, x, p, training=True, what=what), x, what)
    if torch.equal(again != 0, kept):
        raise CheckFailed("two calls dropped exactly the same samples: draw new random numbers on every call")
    evaluated = _as_output(call_student(fn, x, p, training=False, what=what), x, what)
    if not torch.allclose(evaluated, x, rtol=1e-6, atol=0):
        raise CheckFailed(
            "with training=False the output should equal the input: with inverted scaling the factor 1/(1-p) "
            f"was applied in training; yours is {(evaluated / x).mean().item():.4g}·x on average"
        )
    zero = _as_output(call_student(fn, x, 0.0, training=True, what=what), x, what)
    if not torch.allclose(zero, x, rtol=1e-6, atol=0):
        raise CheckFailed("with p = 0 nothing is dropped, so the output should equal the input")
    return f"{dropped:.1%} of samples dropped whole (p = {p}), kept ones times 1/(1-p)"


# --------------------------------------------------------------------------------------------
# exercise 2: the survival schedule


def _as_probabilities(answer, L: int, what: str) -> list[float]:
    if isinstance(answer, torch.Tensor):
        answer = answer.tolist()
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__"):
        raise CheckFailed(f"{what} should return a list of L numbers, got {type(answer).__name__}")
    values = list(answer)
    if len(values) == L + 1:
        raise CheckFailed(
            f"for L = {L} you returned {L + 1} numbers: return the survival probabilities of the L residual "
            "blocks l = 1, ..., L only (the input, l = 0, has no residual branch)"
        )
    if len(values) != L:
        raise CheckFailed(f"for L = {L} your function should return {L} numbers, one per block, got {len(values)}")
    out = []
    for v in values:
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise CheckFailed(f"{what} should return numbers, got {type(v).__name__}")
        out.append(float(v))
    return out


def check_survival_schedule(fn) -> None:
    r"""Check ``fn(L, p_L)``, which returns the survival probabilities :math:`[p_1, \dots, p_L]` of the linear rule (chapter 8 exercises).

    The truth is the derived :func:`~dropoutbook.derivations.linear_survival_schedule`. Names the
    usual mistakes: the seed's formula (drop probability :math:`(l/L)p_L`), drop probabilities
    returned instead of survival probabilities, the order reversed, blocks indexed from 0, a
    ``linspace`` from 1 to :math:`p_L`, and an extra entry for the input.
    """
    what = "your schedule"
    schedule = derivations.linear_survival_schedule()
    l_s, L_s, p_s = derivations.block_index, derivations.n_blocks, derivations.survival_last
    for L, p_L in [(10, 0.8), (4, 0.5), (7, 0.2), (1, 0.3)]:
        got = _as_probabilities(call_student(fn, L, p_L, what=what), L, what)
        truth = [float(schedule.subs({l_s: l, L_s: L, p_s: sp.nsimplify(p_L)})) for l in range(1, L + 1)]
        if all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(got, truth)):
            continue
        ls = range(1, L + 1)
        mistakes = [
            ([1 - (l / L) * p_L for l in ls],
             "you used the seed's formula, drop probability (l/L)·p_L. But p_L is the SURVIVAL probability of the "
             "last block, so block l is dropped with probability (l/L)(1 - p_L) and survives with 1 - (l/L)(1 - p_L)"),
            ([(l / L) * (1 - p_L) for l in ls],
             "these are the drop probabilities (l/L)(1 - p_L); the exercise asks for the survival probabilities "
             "p_l = 1 - (l/L)(1 - p_L)"),
            ([(l / L) * p_L for l in ls],
             "with (l/L)·p_L the survival probability grows with depth and the first block is almost always dropped; "
             "survival starts near 1 and falls linearly to p_L"),
            (list(reversed(truth)), "the order is reversed: block 1 (the shallowest) survives most often, block L with p_L"),
            ([1 - (l / L) * (1 - p_L) for l in range(L)],
             "you indexed the blocks from 0: then block 1 always survives and no block reaches p_L. "
             "Blocks run from l = 1 to L, and l = L gives p_L"),
        ]
        if L > 1:
            mistakes.append(([1 - (k / (L - 1)) * (1 - p_L) for k in range(L)],
                             "that is a linspace from 1 to p_L over L blocks (the schedule of some libraries): the "
                             "first block never drops. Huang et al.'s rule is p_l = 1 - (l/L)(1 - p_L) for l = 1..L, "
                             "so p_1 = 1 - (1 - p_L)/L"))
        for wrong, message in mistakes:
            if all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(got, wrong)):
                raise CheckFailed(f"for L = {L}, p_L = {p_L}: {message}")
        shown = ", ".join(f"{v:.4g}" for v in got[:4])
        expected = ", ".join(f"{v:.4g}" for v in truth[:4])
        raise CheckFailed(f"for L = {L}, p_L = {p_L} your schedule starts {shown}; it should start {expected}")
    passed("p_l = 1 - (l/L)(1 - p_L), e.g. 0.875, 0.75, 0.625, 0.5 for L = 4, p_L = 0.5")


# --------------------------------------------------------------------------------------------
# exercise 3: predict the depth of the sampled network


def _depth_truth(L: int, p_L: float) -> dict:
    d = derivations.sampled_depth(1)  # the linear-schedule closed forms hold for any L
    subs = {derivations.n_blocks: L, derivations.survival_last: sp.nsimplify(p_L)}
    return {
        "expected_depth": float(d.linear_mean.subs(subs)),
        "variance": float(d.linear_variance.subs(subs)),
        "skipped_fraction": float(d.skipped_fraction.subs(subs)),
    }


def check_depth_prediction(fn) -> None:
    """Check ``fn()``, which returns the predicted ``expected_depth``, ``variance`` and ``skipped_fraction``
    of the number of surviving blocks for :data:`~dropoutbook.exercises.ch08.DEPTH_EXERCISE` (chapter 8 exercises)."""
    what = "your prediction"
    answer = call_student(fn, what=what)
    keys = ("expected_depth", "variance", "skipped_fraction")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(keys)}")
    L, p_L = DEPTH_EXERCISE["L"], DEPTH_EXERCISE["p_L"]
    truth = _depth_truth(L, p_L)
    survival = [1 - (l / L) * (1 - p_L) for l in range(1, L + 1)]
    mean_s = sum(survival) / L
    mistakes = {
        "expected_depth": [
            (L * p_L, "L·p_L is the depth if every block survived with the last block's p_L; add up p_l over the blocks"),
            (L - truth["expected_depth"], "you added up the drop probabilities 1 - p_l; E[D] is the sum of the "
                                          "survival probabilities p_l"),
            (L * (1 + p_L) / 2, "L(1 + p_L)/2 averages 1 and p_L; the blocks run from l = 1 (survival "
                                "1 - (1-p_L)/L, not 1) to L, so E[D] = L - (1 - p_L)(L + 1)/2"),
        ],
        "variance": [
            (L * mean_s * (1 - mean_s), "L·p̄(1 - p̄) is the variance of a binomial with the average survival; the blocks "
                                        "have different p_l, and the variance is the sum of p_l(1 - p_l)"),
            (sum(s * s for s in survival), "the variance of one block is p_l(1 - p_l), not p_l²"),
            (truth["expected_depth"], "the variance of a sum of Bernoulli variables is Σ p_l(1 - p_l), not Σ p_l"),
        ],
        "skipped_fraction": [
            ((1 - p_L) / 2, "(1 - p_L)/2 is the limit for many blocks; for L blocks it is (1 - p_L)(L + 1)/(2L)"),
            (1 - p_L, "1 - p_L is the drop probability of the LAST block; average the drop probabilities over all blocks"),
            (truth["expected_depth"] / L, "that is the fraction of branches that are computed, E[D]/L; "
                                          "the skipped fraction is 1 - E[D]/L"),
        ],
    }
    _check_numbers(answer, truth, keys, mistakes,
                   retry="recompute it from the derived closed forms")
    passed(", ".join(f"{k} = {truth[k]:.4g}" for k in keys))


# --------------------------------------------------------------------------------------------
# exercise 4: find the bug in a residual block with the original (non-inverted) rule


def check_block_test_time(fn, survival: float = 0.6) -> None:
    """Check the repaired block ``fn(x, fx, survival, training)`` of the find-the-bug exercise (chapter 8 exercises).

    ``fn`` returns the block output from the input ``x`` and the branch output ``fx``. It must keep
    the original rule of Huang et al.: no scaling in training (``x + b·fx``, one draw per call)
    and ``x + survival·fx`` at test time, so that the test output equals the training mean.
    """
    if not 0 < survival < 1 or math.isclose(survival, 0.5):
        raise ValueError(f"survival must be in (0, 1) and not 0.5, got {survival}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        passed(_check_block_test_time(fn, survival))


def _check_block_test_time(fn, s: float) -> str:
    what = "your repaired block"
    x = torch.full((2, 3), 0.5, dtype=torch.float64)
    fx = torch.full((2, 3), 2.0, dtype=torch.float64)
    calls = 4000
    branch = []
    for _ in range(calls):
        out = _as_output(call_student(fn, x, fx, s, training=True, what=what), x, what)
        branch.append(((out - x) / fx).mean().item())
    values = torch.tensor(branch, dtype=torch.float64)
    kept_value = values.max().item()
    if not all(math.isclose(v, 0.0, abs_tol=1e-9) or math.isclose(v, kept_value, rel_tol=1e-9) for v in branch):
        raise CheckFailed("in training the branch should be either dropped or kept as a whole (one draw per call), "
                          "so the output is x or x + f(x)")
    mean = values.mean().item()
    se = values.std().item() / math.sqrt(calls)
    test = _as_output(call_student(fn, x, fx, s, training=False, what=what), x, what)
    test_coef = ((test - x) / fx).mean().item()
    if math.isclose(kept_value, 1 / s, rel_tol=1e-6) and math.isclose(test_coef, s, rel_tol=1e-6):
        raise CheckFailed(
            "you now divide the surviving branch by the survival probability in training AND multiply by it at "
            "test time: that scales twice. Keep one of the two; the exercise keeps the original rule, "
            "x + b·f(x) in training and x + survival·f(x) at test"
        )
    if math.isclose(test_coef, 1 - s, rel_tol=1e-6):
        raise CheckFailed(
            f"at test time you scale the branch by 1 - survival = {1 - s:.2g}, the drop probability; "
            f"the training mean of the branch is survival·f(x) = {s:.2g}·f(x)"
        )
    if math.isclose(kept_value, 1.0, rel_tol=1e-6) and math.isclose(test_coef, 1.0, rel_tol=1e-6):
        raise CheckFailed(
            f"the training outputs average x + {mean:.3f}·f(x) but the test block is x + f(x): with the original "
            "rule a surviving branch is not scaled in training, so at test time the branch must be multiplied by "
            "its survival probability"
        )
    if abs(mean - test_coef) > _Z * se + 1e-12:
        raise CheckFailed(
            f"the training outputs average x + {mean:.3f}·f(x) (± {se:.3f}) but the test block is "
            f"x + {test_coef:.3f}·f(x); the two must agree in expectation"
        )
    if not math.isclose(kept_value, 1.0, rel_tol=1e-6):
        raise CheckFailed(
            f"a surviving branch is multiplied by {kept_value:.4g} in training; the original rule keeps it as it is "
            "(x + f(x)) and scales at test time"
        )
    return f"training mean x + {mean:.3f}·f(x) matches the test block x + {test_coef:.3f}·f(x)"
