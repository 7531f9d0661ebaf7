"""Checkers for the exercises of chapter 8, "Stochastic depth".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
(and returns None) or raises :class:`CheckFailed` with a message that says what is wrong, for
example "p_L is the SURVIVAL probability of the last block".
"""

from __future__ import annotations

import math
import types

import sympy as sp
import torch

from .. import derivations, stochastic_depth
from .._validation import check_probability
from .._validation import check_positive_int
from ._core import (
    CheckFailed, _as_output, _check_numbers, _drawn_rates, _library_forbidden, _number_dict, _real_number,
    _survivor_scale_message, call_student, passed,
)

__all__ = [
    "check_drop_path", "check_survival_schedule", "check_depth_prediction", "check_block_test_time",
    "DEPTH_EXERCISE",
]

_Z = 5.0

#: Number of blocks and survival probability of the last block in the "predict" exercise of chapter 8
#: (the defaults of :func:`~dropoutbook.exercises.check_depth_prediction`; the notebook prints them).
DEPTH_EXERCISE = types.MappingProxyType(dict(L=12, p_L=0.5))


# --------------------------------------------------------------------------------------------
# exercise 1: implement per-sample DropPath

#: The inputs of the DropPath check: a batch of scalars, of vectors, of 3-D and 4-D tensors.
_DROP_PATH_SHAPES = ((20_000,), (20_000, 5), (20_000, 3, 4), (8_000, 2, 3, 3))


def check_drop_path(fn, *, p: float = 0.3) -> None:
    """Check an implementation ``fn(x, p, training=True)`` of per-sample DropPath with inverted scaling (chapter 8 exercises).

    ``fn`` gets inputs of shape ``(N,)``, ``(N, D)``, ``(N, C, L)`` and ``(N, C, H, W)``, with the
    rate ``p`` on the 3-D input and rates drawn by the checker's own seeded generator on the others.
    In order, for each: output type and shape; ``x`` not modified; one draw per *sample* (all
    entries of a sample dropped or kept together, and not one draw for the whole batch, for a
    pair of samples or repeated for the two halves of the batch);
    survivors scaled by exactly 1/(1-p); the fraction of dropped samples is p within 5 standard
    errors; a new draw on every call; the identity with ``training=False`` and with ``p = 0``. The
    statement forbids the library's :func:`~dropoutbook.drop_path`: a call fails the check.
    """
    p = check_probability(p, "p", allow_zero=False, allow_one=False)
    if math.isclose(p, 0.5):
        raise ValueError(f"p must not be 0.5 (where 1/p = 1/(1-p) and p = 1 - p hide mistakes), got {p}")
    rates = _drawn_rates([(0.1, 0.24), (0.36, 0.45), (0.12, 0.24)], seed=80)  # never the default 0.3
    rates.insert(2, p)
    with torch.random.fork_rng(devices=[]):  # reproducible messages; the caller's RNG state is restored
        torch.manual_seed(8)
        with _library_forbidden(stochastic_depth, "draw one Bernoulli per sample yourself"):
            shares = [_check_drop_path(fn, shape, rate) for shape, rate in zip(_DROP_PATH_SHAPES, rates)]
    passed(f"{shares[2]:.1%} of samples dropped whole (p = {p}), kept ones times 1/(1-p); "
           f"also right for {len(shares) - 1} other shapes and rates")


def _shape_probe(out, x: torch.Tensor, what: str):
    if isinstance(out, torch.Tensor) and out.dim() > x.dim():
        raise CheckFailed(f"for x of shape {tuple(x.shape)} {what} returned shape {tuple(out.shape)}: a mask of a "
                          "fixed shape such as (N, 1, 1) broadcasts against other shapes. Give the mask the shape "
                          "(N,) + (1,) * (x.dim() - 1), which fits an input of any number of dimensions")
    return out


def _check_drop_path(fn, shape: tuple, p: float) -> float:
    what = "your drop_path"
    n = shape[0]
    g = torch.Generator().manual_seed(len(shape))
    x = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5  # never zero
    before = x.clone()
    where = f"for x of shape {tuple(shape)} and p = {p}"
    probe = x[:6].clone()  # a small batch first: a mask of a fixed shape may broadcast to N x N
    _as_output(_shape_probe(call_student(fn, probe, p, training=True, what=what), probe, what), probe, what)
    out = call_student(fn, x, p, training=True, what=what)
    if isinstance(out, torch.Tensor) and out.dtype != x.dtype:
        raise CheckFailed(f"for x of dtype {x.dtype} {what} returned dtype {out.dtype}: keep the input's dtype")
    out = _as_output(out, x, what)
    if not torch.equal(x, before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead")
    kept = out != 0
    per_sample = kept.reshape(n, -1)
    mixed = per_sample.any(1) & ~per_sample.all(1)
    if mixed.any():
        raise CheckFailed(
            f"{where}, {int(mixed.sum())} of {n} samples have some entries dropped and others kept: DropPath "
            "draws ONE Bernoulli per sample (a mask of shape (N, 1, ..., 1)) and drops the sample's whole "
            "branch, not each element independently as dropout does"
        )
    if kept.any():
        ratios = out[kept] / x[kept]
        if (ratios.max() - ratios.min()).item() > 1e-9 * ratios.abs().max().item():
            raise CheckFailed("kept samples are scaled by different factors; every kept sample is multiplied by 1/(1-p)")
        scale = ratios[0].item()
        share = 1.0 - per_sample[:, 0].double().mean().item()
        fixed = 1 - 1 / scale if scale > 1 else None
        if fixed is not None and not math.isclose(fixed, p, rel_tol=1e-4) and \
                abs(share - fixed) <= _Z * math.sqrt(fixed * (1 - fixed) / n):
            raise CheckFailed(f"{where} your function drops {share:.1%} of the samples and scales the others by "
                              f"1/(1 - {fixed:.3g}): it uses the rate {fixed:.3g}, not the p it receives")
        message = _survivor_scale_message(scale, p)
        if message:
            raise CheckFailed(f"{where}: {message}")
    if per_sample[:, 0].all() or not per_sample[:, 0].any():  # a chance of (1-p)^N for independent draws
        raise CheckFailed(f"{where} all {n} samples were {'kept' if kept.any() else 'dropped'}: you made one draw "
                          "for the whole batch. Draw one Bernoulli per sample, a mask of shape "
                          "(N,) + (1,) * (x.dim() - 1)")
    dropped = 1.0 - per_sample[:, 0].double().mean().item()
    se = math.sqrt(p * (1 - p) / n)
    if abs(dropped - p) > _Z * se:
        if abs(dropped - (1 - p)) <= _Z * se:
            raise CheckFailed(
                f"{dropped:.1%} of the samples are dropped with p = {p}: you drop with the survival probability "
                "1 - p. In the book's convention p is the drop probability"
            )
        raise CheckFailed(f"{where}, {dropped:.1%} of the samples are dropped; it should be {p:.0%} "
                          f"(±{_Z * se:.1%}): use the p your function receives")
    _check_samples_independent(per_sample[:, 0].double(), 1 - p, where)
    again = _as_output(call_student(fn, x, p, training=True, what=what), x, what)
    if torch.equal(again != 0, kept):
        raise CheckFailed("two calls dropped exactly the same samples: draw new random numbers on every call "
                          "(do not reseed inside the function)")
    evaluated = _as_output(call_student(fn, x, p, training=False, what=what), x, what)
    if not torch.allclose(evaluated, x, rtol=1e-6, atol=0):
        raise CheckFailed(
            "with training=False the output should equal the input: with inverted scaling the factor 1/(1-p) "
            f"was applied in training; yours is {(evaluated / x).mean().item():.4g}·x on average"
        )
    zero = _as_output(call_student(fn, x, 0.0, training=True, what=what), x, what)
    if not torch.allclose(zero, x, rtol=1e-6, atol=0):
        raise CheckFailed("with p = 0 nothing is dropped, so the output should equal the input")
    if not torch.equal(x, before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead")
    return dropped


def _check_samples_independent(kept: torch.Tensor, keep: float, where: str) -> None:
    """Two samples (neighbours, or one from each half of the batch) are both kept with probability
    keep² when the draws are independent (5 standard errors): one draw per pair of samples, or one
    mask repeated for the two halves, fails."""
    n = kept.shape[0] // 2
    for name, both in {"neighbouring samples": kept[0:2 * n:2] * kept[1:2 * n:2],
                       "the two halves of the batch": kept[:n] * kept[n:2 * n]}.items():
        se = math.sqrt(keep**2 * (1 - keep**2) / n)
        share = both.mean().item()
        if abs(share - keep**2) > _Z * se:
            raise CheckFailed(f"{where} the draws of {name} are not independent: both are kept in {share:.1%} of the "
                              f"cases, not (1 - p)² = {keep**2:.1%}. Draw one independent Bernoulli per sample, "
                              "a mask of shape (N,) + (1,) * (x.dim() - 1)")


# --------------------------------------------------------------------------------------------
# exercise 2: the survival schedule


def _as_probabilities(answer, L: int, what: str) -> list[float]:
    if isinstance(answer, torch.Tensor) or type(answer).__module__ == "numpy":
        answer = answer.tolist()
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__len__"):
        raise CheckFailed(f"{what} should return a list of L numbers, got {type(answer).__name__}")
    values = list(answer)
    if len(values) == L + 1:
        raise CheckFailed(
            f"for L = {L} you returned {L + 1} numbers: return the survival probabilities of the L residual "
            "blocks l = 1, ..., L only (the input, l = 0, has no residual branch)"
        )
    if len(values) != L:
        raise CheckFailed(f"for L = {L} your function should return {L} numbers, one per block, got {len(values)}")
    return [_real_number(v, f"entry {i} of {what} for L = {L}") for i, v in enumerate(values)]


def check_survival_schedule(fn) -> None:
    r"""Check ``fn(L, p_L)``, which returns the survival probabilities :math:`[p_1, \dots, p_L]` of the linear rule (chapter 8 exercises).

    The truth is the derived :func:`~dropoutbook.derivations.linear_survival_schedule`, at four
    settings and three drawn by the checker's own seeded generator. Names the
    usual mistakes: a widespread formula (drop probability :math:`(l/L)p_L`), drop probabilities
    returned instead of survival probabilities, the order reversed, blocks indexed from 0, a
    ``linspace`` from 1 to :math:`p_L`, and an extra entry for the input.
    """
    what = "your schedule"
    schedule = derivations.linear_survival_schedule()
    l_s, L_s, p_s = derivations.block_index, derivations.n_blocks, derivations.survival_last
    drawn = list(zip((5, 13, 9), _drawn_rates([(0.05, 0.15), (0.55, 0.75), (0.85, 0.95)], seed=81)))
    for L, p_L in [(10, 0.8), (4, 0.5), (7, 0.2), (1, 0.3), *drawn]:
        got = _as_probabilities(call_student(fn, L, p_L, what=what), L, what)
        truth = [float(schedule.subs({l_s: l, L_s: L, p_s: sp.nsimplify(p_L)})) for l in range(1, L + 1)]
        if all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(got, truth)):
            continue
        ls = range(1, L + 1)
        mistakes = [
            ([1 - (l / L) * p_L for l in ls],
             "you used a widespread but wrong formula, drop probability (l/L)·p_L. But p_L is the SURVIVAL probability of the "
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


def check_depth_prediction(fn, *, L: int = 12, p_L: float = 0.5) -> None:
    """Check ``fn()``, which returns a dict with the predicted ``"expected_depth"``, ``"variance"`` and
    ``"skipped_fraction"`` of the number of surviving blocks of a network of ``L`` residual blocks with
    the linear schedule and last-block survival ``p_L`` (chapter 8 exercises; the defaults are
    :data:`~dropoutbook.exercises.ch08.DEPTH_EXERCISE`). Any real number type is accepted."""
    L = check_positive_int(L, "L")
    p_L = check_probability(p_L, "p_L")
    what = "your prediction"
    keys = ("expected_depth", "variance", "skipped_fraction")
    answer = _number_dict(call_student(fn, what=what), keys, what)
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
            (math.sqrt(truth["variance"]), "that is the standard deviation of D; the variance is its square, "
                                           "Σ p_l(1 - p_l)"),
        ],
        "skipped_fraction": [
            ((1 - p_L) / 2, "(1 - p_L)/2 is the limit for many blocks; for L blocks it is (1 - p_L)(L + 1)/(2L)"),
            (1 - p_L, "1 - p_L is the drop probability of the LAST block; average the drop probabilities over all blocks"),
            (truth["expected_depth"] / L, "that is the fraction of branches that are computed, E[D]/L; "
                                          "the skipped fraction is 1 - E[D]/L"),
            (L - truth["expected_depth"], "that is the expected number of skipped blocks, L - E[D]; the fraction "
                                          "is 1 - E[D]/L"),
            (100 * (1 - truth["expected_depth"] / L), "that is a percentage; return the fraction, 1 - E[D]/L"),
        ],
    }
    _check_numbers(answer, truth, keys, mistakes,
                   retry="recompute it from the derived closed forms")
    passed(", ".join(f"{k} = {truth[k]:.4g}" for k in keys))


# --------------------------------------------------------------------------------------------
# exercise 4: find the bug in a residual block with the original (non-inverted) rule


def check_block_test_time(fn, *, survival: float = 0.6) -> None:
    """Check the repaired block ``fn(x, fx, survival, training)`` of the find-the-bug exercise (chapter 8 exercises).

    ``fn`` returns the block output from the input ``x`` and the branch output ``fx``. It must keep
    the original rule of Huang et al.: no scaling in training (``x + b·fx``, one draw per call,
    a new one on every call) and ``x + survival·fx`` at test time, so that the test output equals
    the training mean. It is tried with ``survival`` and two survival probabilities drawn by the
    checker's own seeded generator, on inputs of three shapes; the inputs must not change.
    """
    survival = check_probability(survival, "survival", allow_zero=False, allow_one=False)
    if math.isclose(survival, 0.5):
        raise ValueError(f"survival must not be 0.5 (where survival = 1 - survival hides mistakes), got {survival}")
    drawn = [s for s in _drawn_rates([(0.15, 0.4), (0.7, 0.9), (0.2, 0.4)], seed=84) if abs(s - survival) > 0.08][:2]
    cases = [(survival, (2, 3)), *zip(drawn, ((4,), (2, 3, 5)))]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        summaries = [_check_block_test_time(fn, s, shape) for s, shape in cases]
    passed(summaries[0])


def _check_block_test_time(fn, s: float, shape: tuple) -> str:
    what = "your repaired block"
    g = torch.Generator().manual_seed(len(shape))
    x = torch.rand(shape, generator=g, dtype=torch.float64) - 0.5
    fx = torch.rand(shape, generator=g, dtype=torch.float64) + 1.0  # never zero
    inputs = (x.clone(), fx.clone())
    where = f"with survival = {s}"
    calls = 3000
    branch = []
    for _ in range(calls):
        out = call_student(fn, x, fx, s, training=True, what=what)
        if isinstance(out, torch.Tensor) and out.dtype != x.dtype:
            raise CheckFailed(f"for x of dtype {x.dtype} {what} returned dtype {out.dtype}: keep the input's dtype")
        out = _as_output(out, x, what)
        if not (torch.equal(x, inputs[0]) and torch.equal(fx, inputs[1])):
            raise CheckFailed("your block changed x or fx in place; return a new tensor instead")
        coef = (out - x) / fx
        if not torch.allclose(coef, coef.flatten()[0].expand_as(coef), rtol=1e-9, atol=1e-12):
            raise CheckFailed("in training the branch should be either dropped or kept as a whole (one draw per call, "
                              "for all samples and entries), so the output is x or x + f(x)")
        branch.append(coef.flatten()[0].item())
    values = torch.tensor(branch, dtype=torch.float64)
    kept_value = values.max().item()
    if not all(math.isclose(v, 0.0, abs_tol=1e-9) or math.isclose(v, kept_value, rel_tol=1e-9) for v in branch):
        raise CheckFailed("in training the branch should be either dropped or kept as a whole (one draw per call), "
                          "so the output is x or x + f(x)")
    if len({round(v, 9) for v in branch}) == 1:
        raise CheckFailed(f"{where} all {calls} training calls gave the same output: draw the branch's Bernoulli anew "
                          "on every call (do not reseed inside the function)")
    mean = values.mean().item()
    se = values.std().item() / math.sqrt(calls)
    test = _as_output(call_student(fn, x, fx, s, training=False, what=what), x, what)
    test_coefs = (test - x) / fx
    test_coef = test_coefs.mean().item()
    if not (torch.equal(x, inputs[0]) and torch.equal(fx, inputs[1])):
        raise CheckFailed("your block changed x or fx in place; return a new tensor instead")
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
        fixed = " whatever survival it receives" if math.isclose(kept_value, 1.0, rel_tol=1e-6) else ""
        raise CheckFailed(
            f"{where} the training outputs average x + {mean:.3f}·f(x) (± {se:.3f}) but the test block is "
            f"x + {test_coef:.3f}·f(x){fixed}; the two must agree in expectation: scale by the survival "
            "probability the block receives"
        )
    if not math.isclose(kept_value, 1.0, rel_tol=1e-6):
        raise CheckFailed(
            f"a surviving branch is multiplied by {kept_value:.4g} in training; the original rule keeps it as it is "
            "(x + f(x)) and scales at test time"
        )
    return f"training mean x + {mean:.3f}·f(x) matches the test block x + {test_coef:.3f}·f(x)"
