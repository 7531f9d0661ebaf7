"""Checkers for the exercises of chapter 1, "Inverted dropout".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
or raises :class:`CheckFailed` with a message that says what is wrong (for example, "survivors
are not scaled: did you forget to divide by 1 - p?"). Instructors can reuse them in assignments.

The implement checkers draw their drop rates from their own seeded generator (the same rates on
every call, never 0.5) and try several shapes, so that a hard-coded rate or a mask shared over a
batch fails; the derive checker calls the student's function with a second mask distribution, so
that a typed-in answer fails. The helpers these checkers share with other chapters (reading a
student's number or dict, drawing rates, detecting reused draws) live in
``dropoutbook.exercises._core``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import types

import sympy as sp
import torch

from .. import _validation, derivations, masks
from ._core import (
    CheckFailed, _agree, _as_output, _check_numbers, _derived_dict, _drawn_rates, _forbidden, _library_forbidden,
    _number_dict, _patched, _reused_draws, _survivor_scale_message, call_student, passed,
)

__all__ = [
    "check_inverted_dropout", "check_dropout_variance", "check_test_time_scaling",
    "check_naive_predictor_terms", "NAIVE_PREDICTOR_EXERCISE",
]

_Z = 5.0
_SEED = 2024  # the checkers' own generator: the same drawn rates on every call, reproducible messages


# --------------------------------------------------------------------------------------------
# implement: inverted dropout

# (shape, dtype) of the inputs: a vector, a batch, a 3-D and a 4-D tensor (one of them float32),
# each of about 200 000 elements, so that the standard error of a drop fraction is about 0.001.
_CASES = [((200_000,), torch.float64), ((400, 500), torch.float64), ((20, 40, 250), torch.float32),
          ((8, 5, 50, 100), torch.float64)]
# the drop rate of each case is drawn from these ranges (never near 0.5, where 1/p = 1/(1-p))
_RATE_RANGES = [(0.1, 0.4), (0.6, 0.85), (0.15, 0.4), (0.55, 0.8)]

#: Functions the implement exercise of chapter 1 forbids: torch's dropout and the library's.
_TORCH_DROPOUTS = [(torch.nn.functional, name) for name in
                   ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout")]
_TORCH_DROPOUTS += [(torch, name) for name in ("dropout", "dropout_", "feature_dropout", "alpha_dropout")]


def _test_input(shape, dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.5).to(dtype)  # in [0.5, 1.5), never zero


@contextlib.contextmanager
def _without_dropout_shortcuts():
    """Run the block with torch's dropout functions and the library's :mod:`~dropoutbook.masks` forbidden."""
    hint = "write the mask with plain torch operations, e.g. torch.rand_like(x) >= p"
    with contextlib.ExitStack() as stack:
        for target, name in _TORCH_DROPOUTS:
            if hasattr(target, name):
                stack.enter_context(_patched(target, name, _forbidden(f"{target.__name__}.{name}", hint)))
        stack.enter_context(_library_forbidden(masks, hint))
        yield


def check_inverted_dropout(fn) -> None:
    """Check an implementation ``fn(x, p, training=True)`` of inverted dropout (chapter 1 exercises).

    It tries a vector, a batch, a 3-D and a 4-D input (one of them float32), each with its own
    drop rate drawn from the checker's seeded generator, and checks: the output's type, shape and
    dtype; that ``x`` is not modified; that every survivor is scaled by exactly 1/(1-p); that the
    mask is not shared along any dimension (one draw per element); that the fraction of zeros is p
    within 5 standard errors (which catches swapped drop and keep probabilities and a hard-coded
    rate); that two calls draw different masks; that ``training=False`` and ``p = 0`` return the
    input. ``torch.nn.functional.dropout``, ``torch.dropout`` and the library's dropout are
    forbidden while it runs.
    """
    with torch.random.fork_rng(devices=[]):  # seed for reproducible messages; the caller's RNG state is restored
        torch.manual_seed(1)
        with _without_dropout_shortcuts():
            summary = _check_inverted_dropout(fn, "your dropout function")
    passed(summary)


def _dropout_output(fn, x: torch.Tensor, p: float, training: bool, what: str) -> torch.Tensor:
    """Call ``fn(x, p, training=...)`` and return its output as float64, after the type, shape, dtype and in-place checks."""
    before = x.clone()
    where = f"{what} (input of shape {tuple(x.shape)}, p = {p})"
    out = call_student(fn, x, p, training=training, what=f"{what}, on an input of shape {tuple(x.shape)},")
    if isinstance(out, torch.Tensor) and out.shape == x.shape and out.is_floating_point() and out.dtype != x.dtype:
        raise CheckFailed(f"{where} should keep the input's dtype {x.dtype}, got {out.dtype}: draw the mask in "
                          "the dtype of x (torch.rand_like(x)), or convert it with .to(x.dtype)")
    out = _as_output(out, x, what)
    if not torch.equal(x, before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead (avoid x.mul_, x[...] = ...)")
    return out


def _shared_dimension_message(kept: torch.Tensor) -> str | None:
    """Say along which dimension the mask ``kept`` is shared (constant), or None if it is not."""
    shape = tuple(kept.shape)
    shared = [d for d in range(kept.ndim) if shape[d] > 1
              and torch.equal(kept, kept.narrow(d, 0, 1).expand_as(kept))]
    if not shared:
        return None
    if len(shared) == kept.ndim:
        return (f"on an input of shape {shape} your mask is one single draw: every element is kept or every element "
                "is dropped. Use one draw per element, e.g. torch.rand_like(x) >= p")
    d = shared[0]
    whom = "example of the batch" if d == 0 else f"index along dimension {d}"
    return (f"on an input of shape {shape} you use the same mask for every {whom} (your mask is constant along "
            f"dimension {d}, of size {shape[d]}): you drew fewer decisions than elements and shared them, so those "
            "units are dropped together. Use one draw per element, the shape of x: torch.rand_like(x) >= p")


def _dependent_draws_message(kept: torch.Tensor) -> str | None:
    """Say where the mask ``kept`` reuses its draws (see :func:`_reused_draws`), or None."""
    found = _reused_draws(kept)
    if found is None:
        return None
    shift, where, agree, expected = found
    return (f"on an input of shape {tuple(kept.shape)} your mask's draws are not independent: elements "
            f"{shift} apart along {where} are both kept or both dropped in {agree:.1%} of the places, "
            f"where independent draws agree in {expected:.1%}. You reused random numbers (the same mask "
            "for two halves, a repeated or interleaved mask, u and 1 - u); draw one fresh number per "
            "element: torch.rand_like(x) >= p")


def _check_gradient(fn, p: float, what: str) -> None:
    """The training output must pass gradients to ``x``: d out / d x is the mask divided by 1 - p."""
    x = _test_input((60, 50), torch.float64, seed=11).requires_grad_(True)
    out = call_student(fn, x, p, training=True, what=f"{what}, on an input that requires gradients,")
    _as_output(out, x, what)  # the type and shape checks
    if not out.requires_grad:
        raise CheckFailed(
            "your output carries no gradient back to x (torch.no_grad(), .detach(), .data or a detour through "
            "NumPy cut the graph): dropout is used in training, so backpropagation must reach x through the "
            "survivors; compute the output from x with torch operations")
    (grad,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    expected = (out.detach() != 0).double() / (1 - p)
    if grad is None or not torch.allclose(grad, expected, rtol=1e-6, atol=1e-12):
        raise CheckFailed(
            f"the gradient of your output with respect to x is not the scaled mask (with p = {p} it should be 0 for "
            f"a dropped unit and 1/(1-p) = {1 / (1 - p):.4g} for a survivor): the mask must multiply x, and nothing "
            "else should depend on x")


def _kept_scale(out: torch.Tensor, x: torch.Tensor) -> float | str | None:
    """The common factor of the survivors ``out / x``, a message when they differ, None when nothing is kept."""
    kept = out != 0
    if not kept.any():
        return None  # nothing kept: the fraction check reports it
    ratios = out[kept] / x[kept]
    lo, hi = ratios.min().item(), ratios.max().item()
    if hi - lo > 1e-6 * max(abs(lo), abs(hi)):
        return (f"survivors are scaled by different factors (from {lo:.4g} to {hi:.4g}); "
                "every kept unit should be multiplied by the same factor 1/(1-p)")
    return ratios[0].item()


def _check_inverted_dropout(fn, what: str) -> str:
    """Run the checks of :func:`check_inverted_dropout` (without the forbidden shortcuts); return the summary of a pass."""
    rates = _drawn_rates(_RATE_RANGES, seed=_SEED)
    first_kept = None
    fractions = []
    for i, ((shape, dtype), p) in enumerate(zip(_CASES, rates)):
        x = _test_input(shape, dtype, seed=i)
        xd = x.to(torch.float64)
        out = _dropout_output(fn, x, p, True, what)
        scale = _kept_scale(out, xd)
        if isinstance(scale, str):
            raise CheckFailed(scale)
        message = _survivor_scale_message(scale, p) if scale is not None else None
        if message:
            other = rates[1] if i != 1 else rates[0]
            if not math.isclose(scale, 1.0, rel_tol=1e-4):
                again = _kept_scale(_dropout_output(fn, x, other, True, what), xd)
                if isinstance(again, float) and math.isclose(again, scale, rel_tol=1e-9):
                    raise CheckFailed(
                        f"survivors are scaled by the same factor for p = {p} and p = {other} ({scale:.4g} = "
                        f"1/(1 - {1 - 1 / scale:.4g})): the drop rate is hard-coded; use the argument p")
            raise CheckFailed(f"with p = {p}: {message}")
        kept = out != 0
        shared = _shared_dimension_message(kept) or _dependent_draws_message(kept)
        if shared:
            raise CheckFailed(shared)
        dropped = 1.0 - kept.double().mean().item()
        se = math.sqrt(p * (1 - p) / x.numel())
        if abs(dropped - p) > _Z * se:
            if abs(dropped - (1 - p)) <= _Z * se:
                raise CheckFailed(
                    f"{dropped:.1%} of the units are zero with p = {p}: you drop with probability 1 - p. "
                    "A unit is dropped with probability p and kept with probability 1 - p"
                )
            other = rates[1] if i != 1 else rates[0]
            kept_other = _dropout_output(fn, x, other, True, what) != 0
            dropped_other = 1.0 - kept_other.double().mean().item()
            if abs(dropped_other - dropped) <= _Z * math.sqrt(2) * max(se, 1e-4):
                raise CheckFailed(
                    f"the fraction of zeros does not change with p: {dropped:.1%} at p = {p} and {dropped_other:.1%} "
                    f"at p = {other}. The rate of your mask is hard-coded; compare with the argument p")
            raise CheckFailed(f"{dropped:.1%} of the units are zero; with p = {p} the fraction should be {p:.1%} "
                              f"(±{_Z * se:.1%})")
        fractions.append(f"{dropped:.1%} at p = {p}")
        if first_kept is None:
            first_kept = kept
            again = _dropout_output(fn, x, p, True, what) != 0
            if torch.equal(again, kept):
                raise CheckFailed("two calls dropped exactly the same units: draw a new random mask on every call")
    _check_gradient(fn, rates[0], what)
    for shape, dtype in _CASES[:2]:
        x = _test_input(shape, dtype, seed=7)
        p = rates[0]
        evaluated = _dropout_output(fn, x, p, False, what)
        if not torch.allclose(evaluated, x.double(), rtol=1e-6, atol=0):
            ratio = (evaluated / x.double()).mean().item()
            raise CheckFailed(
                f"with training=False the output should equal the input (the scaling happened in training); "
                f"yours is {ratio:.4g}·x on average (p = {p})"
            )
        zero_p = _dropout_output(fn, x, 0.0, True, what)
        if not torch.allclose(zero_p, x.double(), rtol=1e-6, atol=0):
            raise CheckFailed("with p = 0 nothing is dropped, so the output should equal the input")
    return (f"drops {', '.join(fractions[:2])} (and on 3-D and 4-D inputs), one draw per element, "
            "survivors times 1/(1-p), identity in eval")


# --------------------------------------------------------------------------------------------
# derive: E and Var of one unit


def check_dropout_variance(fn) -> None:
    r"""Check ``fn(mask)``, which returns ``{"mean": E[h~], "variance": Var[h~]}`` for :math:`\tilde h = m h/(1-p)`, :math:`m \sim` ``mask``.

    The answers are sympy expressions in ``p`` and ``h`` (chapter 1 exercises). The checker calls
    ``fn`` with ``mask = derivations.Bernoulli(1 - p)``, where the answer is :math:`h` and
    :math:`\frac{p}{1-p}h^2`, and names the usual wrong answers (standard dropout's moments,
    :math:`\mathbb E[\tilde h^2]` as the variance, a mask that keeps with probability p). It then
    calls ``fn`` with a second distribution, :math:`m \sim \mathrm{Bernoulli}(k)`: an answer typed
    in, or computed with a fixed distribution instead of ``mask``, does not follow it.
    """
    what = "your derivation"
    p, h = derivations.drop_rate, derivations.activation
    m = sp.Symbol("m")
    unit = m * h / (1 - p)
    keys = ("mean", "variance")

    def moments(mask):
        mean = derivations.expectation(unit, {m: mask})
        return {"mean": mean, "variance": sp.simplify(derivations.expectation(unit**2, {m: mask}) - mean**2)}

    answer = _derived_dict(call_student(fn, derivations.Bernoulli(1 - p), what=what), keys, {"p": p, "h": h}, what)
    truth = moments(derivations.Bernoulli(1 - p))
    points = [(0.1, 1.3), (0.3, -0.7), (0.75, 2.0)]
    symbols = (p, h)
    if not _agree(answer["mean"], truth["mean"], symbols, points):
        mistakes = [
            (p * h / (1 - p), "E[h~] = p·h/(1-p): your mask keeps a unit with probability p, as m ~ Bernoulli(p) "
                              "would; use the distribution passed as mask (here Bernoulli(1-p): kept with probability "
                              "1 - p)"),
            ((1 - p) * h, "E[h~] = (1-p)·h: the survivors are not scaled; divide by 1 - p, so that E[h~] = h"),
        ]
        _raise_named_mistake("the 'mean' entry", answer["mean"], mistakes, symbols, points, truth["mean"],
                             "E[h~]", "p = 0.3, h = 2", {p: sp.Rational(3, 10), h: 2})
    if not _agree(answer["variance"], truth["variance"], symbols, points):
        mistakes = [
            (p * (1 - p) * h**2, "that is the variance of standard dropout m·h (no scaling); with inverted dropout "
                                 "the mask is m/(1-p)"),
            (h**2 / (1 - p), "that is E[h~²] only; the variance is E[h~²] − E[h~]², and E[h~] = h"),
            (h**2 / (1 - p) + h**2, "the variance is E[h~²] − E[h~]²: subtract the squared mean, do not add it"),
            (h**2 * (1 - p) / p, "that treats p as the keep probability; here p is the drop probability and "
                                 "m ~ Bernoulli(1-p)"),
            (p * h**2 / (1 - p) ** 2, "the variance of m/(1-p) is p(1-p)/(1-p)²: one factor 1-p cancels"),
            (h**2 * p, "that is missing the 1/(1-p) factor from the scaled mask"),
        ]
        _raise_named_mistake("the 'variance' entry", answer["variance"], mistakes, symbols, points,
                             truth["variance"], "Var[h~]", "p = 0.5, h = 1", {p: sp.Rational(1, 2), h: 1})
    # a second distribution: the answer must follow the argument
    k = sp.Symbol("k", positive=True)
    other = _derived_dict(call_student(fn, derivations.Bernoulli(k), what=what), keys, {"p": p, "h": h, "k": k}, what)
    truth_k = moments(derivations.Bernoulli(k))
    points_k = [(0.1, 1.3, 0.4), (0.3, -0.7, 0.9), (0.75, 2.0, 0.15)]
    symbols_k = (p, h, k)
    if not all(_agree(other[key], truth_k[key], symbols_k, points_k) for key in keys):
        if all(_agree(other[key], truth[key], symbols_k, points_k) for key in keys):
            raise CheckFailed(
                "called with another mask distribution, m ~ Bernoulli(k), your function returns the same answer as "
                "for Bernoulli(1-p): it was typed in, or computed with a fixed distribution instead of the argument "
                "mask. Let derivations.expectation compute it with {m: mask}")
        if (_agree(other["mean"], h, symbols_k, points_k)
                and _agree(other["variance"], (1 - k) / k * h**2, symbols_k, points_k)):
            raise CheckFailed(
                "with m ~ Bernoulli(k) your mean is h: you divided by the keep probability of mask. The unit is "
                "m·h/(1-p), with the drop rate p of the exercise whatever the distribution of m")
        raise CheckFailed(
            f"with m ~ Bernoulli(k) your function returns mean {sp.sstr(other['mean'])} and variance "
            f"{sp.sstr(other['variance'])}, but E[h~] = {sp.sstr(sp.factor(truth_k['mean']))} and Var[h~] = "
            f"{sp.sstr(sp.factor(truth_k['variance']))} there: compute both with derivations.expectation and {{m: mask}}")
    passed(f"E[h~] = {derivations.tidy(answer['mean'], p)}, Var[h~] = {derivations.tidy(answer['variance'], p)}, "
           "and your derivation follows the mask distribution")


def _raise_named_mistake(label: str, expr, mistakes, symbols, points, truth, name: str, at: str, subs: dict):
    """Raise the message of the first ``(wrong, message)`` that ``expr`` equals, or one that compares values at ``subs``."""
    for wrong, message in mistakes:
        if _agree(expr, wrong, symbols, points):
            raise CheckFailed(f"{label} is not right: {message}")
    value, expected = complex(expr.subs(subs)).real, complex(truth.subs(subs)).real
    raise CheckFailed(f"{label}: at {at} your expression gives {value:.4g}, but {name} is {expected:.4g} there")


# --------------------------------------------------------------------------------------------
# find the bug: test-time scaling


def check_test_time_scaling(fn) -> None:
    """Check the repaired dropout ``fn(x, p, training)`` of the find-the-bug exercise (chapter 1 exercises).

    The test-time output must equal the training-time mean: for two drop rates drawn by the
    checker it compares the mean of training outputs (with its standard error) with the evaluation
    output and names the side that is off; then it runs the checks of :func:`check_inverted_dropout`.
    """
    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is restored afterwards
        torch.manual_seed(2)
        summary = _check_test_time_scaling(fn)
    passed(summary)


def _check_test_time_scaling(fn) -> str:
    what = "your repaired dropout"
    x = torch.full((200_000,), 1.5, dtype=torch.float64)
    shown = []
    for p in _drawn_rates(_RATE_RANGES[:2], seed=_SEED + 1):
        train = _dropout_output(fn, x, p, True, what)
        test = _dropout_output(fn, x, p, False, what)
        train_mean = train.mean().item()
        se = train.std().item() / math.sqrt(train.numel()) if train.std().item() > 0 else 1e-12
        test_mean = test.mean().item()
        at = f"with p = {p}, "
        if abs(train_mean - 1.5) <= _Z * se and math.isclose(test_mean, 1.5 * (1 - p), rel_tol=1e-6):
            raise CheckFailed(
                f"{at}training outputs average {train_mean:.4f} ≈ x = 1.5 but the test output is {test_mean:.4f} = "
                "(1-p)·x: the survivors were already divided by 1-p in training, so the test-time scaling by 1-p must go"
            )
        if abs(train_mean - 1.5 * (1 - p)) <= _Z * se and math.isclose(test_mean, 1.5 * (1 - p), rel_tol=1e-6):
            raise CheckFailed(
                f"{at}training outputs now average {train_mean:.4f} = (1-p)·x and the test output is (1-p)·x: this is "
                "standard dropout, consistent but not inverted. Keep the division by 1-p in training and make the "
                "test-time output equal to x instead"
            )
        if abs(train_mean - 1.5 * (1 - p)) <= _Z * se and math.isclose(test_mean, 1.5, rel_tol=1e-6):
            raise CheckFailed(
                f"{at}training outputs now average {train_mean:.4f} = (1-p)·x while the test output is x: you removed "
                "the training-time scaling; keep the division by 1-p in training and remove the test-time factor instead"
            )
        if abs(train_mean - test_mean) > _Z * se:
            detail = ""
            if math.isclose(test_mean, 1.5 / (1 - p), rel_tol=1e-6):
                detail = " (= x/(1-p): the survivors are scaled in training already; at test time return x itself)"
            raise CheckFailed(
                f"{at}the training outputs average {train_mean:.4f} ± {se:.4f} but the test output is "
                f"{test_mean:.4f}{detail}; the two must agree in expectation"
            )
        shown.append(f"{train_mean:.3f} ± {se:.3f} at p = {p}")
    _check_inverted_dropout(fn, what)
    return f"training means {' and '.join(shown)} match the test output 1.5; inverted dropout in training"


# --------------------------------------------------------------------------------------------
# predict: the naive predictor's error terms

#: Weights, inputs, drop rate and noise variance of the "predict" exercise of chapter 1 (the
#: defaults of :func:`~dropoutbook.exercises.check_naive_predictor_terms`; an instructor may pass others).
NAIVE_PREDICTOR_EXERCISE = types.MappingProxyType(dict(w=(1.0, -2.0, 0.5), x=(3.0, 1.0, 2.0), p=0.2,
                                                       noise_variance=0.25))


@functools.lru_cache(maxsize=8)
def _naive_predictor(d: int):
    """The decomposition of chapter 1 for d inputs, derived once per d (sympy is slow)."""
    return derivations.naive_predictor_decomposition(d)


def _naive_predictor_values(w, x, p, noise_variance) -> dict:
    dec = _naive_predictor(len(w))
    subs = {derivations.drop_rate: sp.nsimplify(p), dec.noise_variance: sp.nsimplify(noise_variance)}
    subs.update(zip(dec.w, map(sp.nsimplify, w)))
    subs.update(zip(dec.x, map(sp.nsimplify, x)))
    return {
        "squared_bias": float(dec.squared_bias.subs(subs)),
        "variance": float(dec.variance.subs(subs)),
        "expected_squared_error": float(dec.expected_squared_error.subs(subs)),
    }


def check_naive_predictor_terms(fn, *, w=(1.0, -2.0, 0.5), x=(3.0, 1.0, 2.0), p=0.2, noise_variance=0.25) -> None:
    r"""Check ``fn()``, which returns the predicted ``squared_bias``, ``variance`` and ``expected_squared_error``
    of the naive predictor :math:`\hat y = w^\top(m \odot x)` (chapter 1 exercises).

    The numbers of the exercise are the keyword arguments (their defaults are the book's,
    :data:`~dropoutbook.exercises.ch01.NAIVE_PREDICTOR_EXERCISE`); the truth is derived from them with
    :func:`~dropoutbook.derivations.naive_predictor_decomposition`. Any real number type is accepted.
    """
    w = _validation.check_real_vector(w, "w")
    x = _validation.check_real_vector(x, "x", length=len(w), like="w")
    p = _validation.check_probability(p, "p", allow_one=False)
    noise_variance = _validation.check_nonnegative(noise_variance, "noise_variance")
    what = "your prediction"
    keys = ("squared_bias", "variance", "expected_squared_error")
    answer = _number_dict(call_student(fn, what=what), keys, what)
    truth = _naive_predictor_values(w, x, p, noise_variance)
    wx = sum(a * b for a, b in zip(w, x))
    sum_sq = sum((a * b) ** 2 for a, b in zip(w, x))
    mistakes = {
        "squared_bias": [
            ((1 - p) ** 2 * wx**2, "E[ŷ] = (1-p)·wᵀx, so the bias is E[ŷ] − wᵀx = −p·wᵀx: square p·wᵀx, not (1-p)·wᵀx"),
            (p * wx**2, "the bias p·wᵀx must be squared as a whole: p²(wᵀx)², not p(wᵀx)²"),
        ],
        "variance": [
            (p * (1 - p) * wx**2, "the masks are independent, so the variances of the terms w_i m_i x_i add: "
                                  "use Σ(w_i x_i)², not (Σ w_i x_i)²"),
            (p * sum_sq / (1 - p), "the naive predictor does not scale by 1/(1-p); that is inverted dropout's variance"),
        ],
        "expected_squared_error": [
            (truth["squared_bias"] + truth["variance"], "you left out the irreducible noise σ²"),
            (truth["squared_bias"] + noise_variance, "you left out the variance of ŷ: E[(ŷ − y)²] = bias² + Var[ŷ] + σ²"),
            (truth["variance"] + noise_variance, "you left out the squared bias: the naive predictor is biased, "
                                                 "E[(ŷ − y)²] = bias² + Var[ŷ] + σ²"),
        ],
    }
    _check_numbers(answer, truth, keys, mistakes, retry="recompute it from the decomposition")
    passed(", ".join(f"{k} = {truth[k]:.4g}" for k in keys))
