"""Checkers for the exercises of chapter 3, "The Jensen bias".

Each checker calls the student's function and either prints one "Correct: ..." line or raises
:class:`CheckFailed` with a message that names the mistake (drop and keep probabilities
swapped, the mask probabilities forgotten, the factor 1/2 of the delta method missing, ...).
The implement checkers use several numbers of inputs and drop rates drawn from their own seeded
generator, and forbid the library's :func:`~dropoutbook.jensen_gap`; the derive checker calls the
student's function with a second mask distribution, so that a typed-in answer fails.
"""

from __future__ import annotations

import functools
import math
import types

import sympy as sp
import torch

from .. import _validation, derivations, jensen
from ..jensen import _mask_chunks, jensen_gap
from ._core import (
    CheckFailed, _agree, _check_numbers, _derived_dict, _drawn_rates, _library_forbidden, _number_dict, _real_number,
    _reused_draws, call_student, passed,
)

__all__ = [
    "check_quadratic_gap", "check_exact_ensemble_mean", "check_delta_prediction",
    "check_mc_jensen_gap", "DELTA_EXERCISE",
]

_Z = 5.0
_SEED = 2026
_HINT = "sum over the masks yourself"

#: Weights, inputs and drop rate of the "predict" exercise of chapter 3, a tanh unit (the defaults
#: of :func:`~dropoutbook.exercises.check_delta_prediction`; an instructor may pass others).
DELTA_EXERCISE = types.MappingProxyType(dict(w=(0.5, -1.0, 1.5), x=(1.0, 0.4, 0.6), p=0.2))


# --------------------------------------------------------------------------------------------
# exercise 1: the quadratic gap in both scalings (sympy)


def check_quadratic_gap(fn) -> None:
    r"""Check ``fn(mask, scale)``, which returns ``{"mean": E[z], "gap": E[z²] − E[z]²}`` for :math:`z = m x / s`,
    :math:`m \sim` ``mask``, :math:`s` = ``scale``, as sympy expressions in ``p`` (drop probability) and ``x``.

    It calls ``fn`` for inverted dropout (``mask = derivations.Bernoulli(1 - p)``, ``scale = 1 - p``)
    and for standard dropout (``scale = 1``), and recognizes the keep-probability formula
    :math:`x^2(1-p)/p`, the missing subtraction of :math:`f(\mathbb E[z])`, a reversed sign, the scale
    ignored or multiplied, and a mask that keeps with probability p (it gives the right gap but the
    wrong mean). It then calls ``fn`` with :math:`m \sim \mathrm{Bernoulli}(k)`, where a typed-in
    answer does not follow. Chapter 3 exercises.
    """
    what = "your derivation"
    p, x = derivations.drop_rate, sp.Symbol("x", real=True)
    m = sp.Symbol("m")
    keys = ("mean", "gap")
    names = {"p": p, "x": x}
    points = [(0.1, 1.3), (0.3, -0.7), (0.75, 2.0)]

    def moments(mask, scale):
        z = m * x / scale
        mean = derivations.expectation(z, {m: mask})
        return {"mean": mean, "gap": sp.simplify(derivations.expectation(z**2, {m: mask}) - mean**2)}

    bernoulli = derivations.Bernoulli(1 - p)
    answers = {}
    for scaling, scale in (("inverted", 1 - p), ("standard", sp.Integer(1))):
        answer = _derived_dict(call_student(fn, bernoulli, scale, what=what), keys, names, what)
        truth = moments(bernoulli, scale)
        at = f"with scale = {scale} ({scaling} dropout), the"
        other = moments(bernoulli, 1 - p if scaling == "standard" else sp.Integer(1))
        if not _agree(answer["mean"], truth["mean"], (p, x), points):
            mistakes = [
                (other["mean"], "that is the mean of the other scaling: z = m·x/scale, so divide by scale"),
                (moments(derivations.Bernoulli(p), scale)["mean"],
                 "your mask keeps a unit with probability p, as m ~ Bernoulli(p) would; use the distribution passed "
                 "as mask (here Bernoulli(1-p))"),
                (moments(bernoulli, 1 / scale)["mean"], "you multiplied by scale; z = m·x / scale: divide"),
            ]
            _raise_mistake(f"{at} 'mean' entry", answer["mean"], truth["mean"], mistakes, (p, x), points)
        if not _agree(answer["gap"], truth["gap"], (p, x), points):
            mistakes = [
                (-truth["gap"], "the sign is reversed: the gap is E[f(z)] − f(E[z]), and for the convex f(z) = z² "
                                "it is ≥ 0"),
                ((1 - p) * x**2 / scale**2, "that is E[f(z)] = E[z²] only; subtract f(E[z]) = E[z]²"),
                ((1 - p) * x**2 / scale**2 - truth["mean"], "you subtracted E[z]; f(E[z]) is the square E[z]²"),
                (other["gap"], "that is the gap of the other scaling: z = m·x/scale, so divide by scale"),
            ]
            if scaling == "inverted":
                mistakes.append((x**2 * (1 - p) / p, "that is the often-quoted formula with p as the KEEP "
                                 "probability; here p is the drop probability and m ~ Bernoulli(1-p)"))
                mistakes.append((p * x**2 / (1 - p) ** 2, "E[m/(1-p)]² and E[m²/(1-p)²] share the factor 1/(1-p)²; "
                                 "one factor 1 - p cancels in E[m²] = 1 - p"))
            _raise_mistake(f"{at} 'gap' entry", answer["gap"], truth["gap"], mistakes, (p, x), points)
        answers[scaling] = answer
    # a second distribution: the answer must follow the argument
    k = sp.Symbol("k", positive=True)
    points_k = [pt + (kk,) for pt, kk in zip(points, (0.45, 0.9, 0.2))]
    answer = _derived_dict(call_student(fn, derivations.Bernoulli(k), 1 - p, what=what), keys, {**names, "k": k}, what)
    truth = moments(derivations.Bernoulli(k), 1 - p)
    if not all(_agree(answer[key], truth[key], (p, x, k), points_k) for key in keys):
        if all(_agree(answer[key], answers["inverted"][key], (p, x, k), points_k) for key in keys):
            raise CheckFailed(
                "called with another mask distribution, m ~ Bernoulli(k), your function returns the same answer as "
                "for Bernoulli(1-p): it was typed in, or computed with a fixed distribution instead of the argument "
                "mask. Let derivations.expectation compute it with {m: mask}")
        raise CheckFailed(f"with m ~ Bernoulli(k) and scale = 1 - p your function returns mean "
                          f"{sp.sstr(answer['mean'])} and gap {sp.sstr(answer['gap'])}, but E[z] = "
                          f"{sp.sstr(sp.factor(truth['mean']))} and the gap is {sp.sstr(sp.factor(truth['gap']))} there")
    passed("; ".join(f"{scaling}: gap {derivations.tidy(answers[scaling]['gap'], p)}, mean {answers[scaling]['mean']}"
                     for scaling in answers))


def _raise_mistake(label: str, expr, truth, mistakes, symbols, points):
    """Name the first mistake ``expr`` equals, or compare its value with the truth at p = 0.25, x = 3/2
    (not x = 1, where x and x² agree)."""
    for wrong, message in mistakes:
        if _agree(expr, wrong, symbols, points):
            raise CheckFailed(f"{label} {sp.sstr(expr)} is not right: {message}")
    at = dict(zip(symbols, (sp.Rational(1, 4), sp.Rational(3, 2))))
    raise CheckFailed(f"{label} is {complex(expr.subs(at)).real:.4g} at p = 0.25, x = 1.5, but it should be "
                      f"{complex(truth.subs(at)).real:.4g} there")


# --------------------------------------------------------------------------------------------
# exercise 2: the exact average over all masks


def _enumerated(f, w, x, keep: float, scale: float, *, uniform: bool = False) -> float:
    """E[f(sum_i w_i m_i x_i * scale)] over m_i ~ Bernoulli(keep) (or the unweighted mean over masks)."""
    total = 0.0
    for masks, probs in _mask_chunks(x.numel(), keep):
        values = f((masks * (w * x * scale)).sum(dim=1))
        weights = torch.full_like(probs, 2.0 ** -x.numel()) if uniform else probs
        total += (weights * values).sum().item()
    return total


# (activation, name, weights, inputs); a drop rate is drawn for each
_EXACT_CASES = [
    (torch.tanh, "tanh", (0.8, -1.2, 0.5, 1.1, -0.3), (1.0, 0.5, -1.5, 0.7, 2.0)),
    (torch.relu, "relu", (1.0, -0.6, 0.9, 0.4), (0.5, 1.5, -1.0, 2.0)),
    (torch.sigmoid, "sigmoid", (2.0, -1.0, 1.0, 0.5, 1.5, -2.0, 0.7), (0.5, 1.0, 1.0, -1.0, 0.3, 0.2, 1.2)),
    (torch.tanh, "tanh", (1.5, -0.5, 2.0), (0.6, 1.2, -0.4)),
]
_EXACT_RATES = [(0.1, 0.4), (0.15, 0.35), (0.55, 0.8), (0.6, 0.85)]


def _student_value(fn, f, w, x, p, what: str) -> float:
    with _library_forbidden(jensen, _HINT):
        return _real_number(call_student(fn, f, w, x, p, what=f"{what} (with {len(x)} inputs)"), what)


def check_exact_ensemble_mean(fn) -> None:
    r"""Check ``fn(f, w, x, p)``, which must return :math:`\mathbb E_m[f(z)]` exactly, for inverted dropout
    :math:`z = \sum_i w_i m_i x_i / (1-p)`, :math:`m_i \sim \mathrm{Bernoulli}(1-p)`, by summing over all masks.

    It compares with :func:`~dropoutbook.jensen_gap` for tanh, ReLU and sigmoid units with 3 to 7
    inputs, each with a drop rate drawn from the checker's seeded generator (never 0.5), and names
    the usual mistakes: an unweighted mean over the masks, drop and keep probabilities swapped, no
    rescaling or a division by p, the deterministic output :math:`f(\mathbb E z)`, sampling instead of
    enumerating, a rate typed in. The library's :func:`~dropoutbook.jensen_gap` is forbidden while
    the student's code runs. Chapter 3 exercises.
    """
    what = "your ensemble mean"
    rates = _drawn_rates(_EXACT_RATES, seed=_SEED)
    for case, ((f, name, w, x), p) in enumerate(zip(_EXACT_CASES, rates)):
        w_t, x_t = torch.tensor(w, dtype=torch.float64), torch.tensor(x, dtype=torch.float64)
        copies = w_t.clone(), x_t.clone()
        value = _student_value(fn, f, w_t, x_t, p, what)
        if not (torch.equal(w_t, copies[0]) and torch.equal(x_t, copies[1])):
            raise CheckFailed(f"{what} changed w or x in place; compute with new tensors instead")
        truth = jensen_gap(f, w_t, x_t, p, method="exact").ensemble_mean.item()
        if math.isclose(value, truth, rel_tol=1e-6, abs_tol=1e-9):
            continue
        q = 1 - p
        mistakes = [
            (_enumerated(f, w_t, x_t, q, 1 / q, uniform=True),
             f"every mask has the same weight 1/2^N in your sum; a mask that keeps k of the N units has "
             f"probability (1-p)^k p^(N-k) (the two agree only at p = 0.5; here p = {p})"),
            (_enumerated(f, w_t, x_t, p, 1 / q),
             "your mask keeps a unit with probability p; a unit is dropped with probability p and kept with 1 - p"),
            (_enumerated(f, w_t, x_t, q, 1.0),
             "the survivors are not divided by 1 - p; with inverted dropout z = Σ w_i m_i x_i / (1-p)"),
            (_enumerated(f, w_t, x_t, q, 1 / p),
             "the survivors are divided by p; divide them by the keep probability 1 - p"),
            (f(w_t @ x_t).item(),
             "that is f(E[z]), the deterministic output of the weight-scaled network; average f(z) over the masks instead"),
            (_enumerated(f, w_t, x_t, q, 1.0) / q,
             "you divided f's average by 1 - p; the survivors are scaled inside the unit: z = Σ w_i m_i x_i / (1-p), "
             "then f(z)"),
        ]
        for wrong, message in mistakes:
            if math.isclose(value, wrong, rel_tol=1e-6, abs_tol=1e-9):
                raise CheckFailed(f"for the {name} unit (p = {p}) you return {value:.6f}: {message}")
        again = _student_value(fn, f, w_t, x_t, p, what)
        if again != value:
            raise CheckFailed(f"two calls gave different values ({value:.6f}, {again:.6f}): you are sampling masks. "
                              "The exact mean enumerates all 2^N masks with their probabilities")
        other = rates[(case + 1) % len(rates)]
        if _student_value(fn, f, w_t, x_t, other, what) == value:
            raise CheckFailed(f"your mean does not change with p (the same at p = {p} and p = {other}): the drop "
                              "rate is hard-coded; use the argument p")
        close = " (close, but not exact: a sample of masks, even with a fixed seed, only approximates the sum; " \
            "enumerate all 2^N masks)" if abs(value - truth) <= 0.02 * max(1.0, abs(truth)) else ""
        raise CheckFailed(f"for the {name} unit with w = {w}, x = {x}, p = {p} you return {value:.6f}, "
                          f"but E[f(z)] = {truth:.6f}{close}")
    passed(f"E[f(z)] matches the sum over all masks for tanh, relu and sigmoid units with 3 to 7 inputs "
           f"(p = {', '.join(map(str, rates))})")


# --------------------------------------------------------------------------------------------
# exercise 3: predict the delta-method approximation


@functools.lru_cache(maxsize=8)
def _delta_values(w: tuple, x: tuple, p: float) -> dict:
    dec = derivations.delta_method_gap(len(w), "inverted")
    subs = {derivations.drop_rate: sp.nsimplify(p)}
    subs.update({s: sp.nsimplify(v) for s, v in zip(dec.w, w)})
    subs.update({s: sp.nsimplify(v) for s, v in zip(dec.x, x)})
    mean = dec.mean.subs(subs)
    var = dec.variance.subs(subs)
    delta = dec.approximation(sp.tanh).subs({dec.mu: mean, dec.var: var})
    return {"mean": float(mean), "variance": float(var), "delta": float(delta)}


def check_delta_prediction(fn, *, w=(0.5, -1.0, 1.5), x=(1.0, 0.4, 0.6), p=0.2) -> None:
    r"""Check ``fn()``, which returns the predicted ``mean`` :math:`\mu`, ``variance`` :math:`\operatorname{Var}[z]`
    and second-order gap ``delta`` :math:`\tfrac12 \tanh''(\mu)\operatorname{Var}[z]` of a tanh unit with
    inverted dropout on its inputs (chapter 3 exercises).

    The weights, inputs and drop rate are the keyword arguments (their defaults are the book's,
    :data:`~dropoutbook.exercises.ch03.DELTA_EXERCISE`); the truth is derived from them with
    :func:`~dropoutbook.derivations.delta_method_gap`. Any real number type is accepted.
    """
    w = _validation.check_real_vector(w, "w")
    x = _validation.check_real_vector(x, "x", length=len(w), like="w")
    p = _validation.check_probability(p, "p", allow_one=False)
    what = "your prediction"
    keys = ("mean", "variance", "delta")
    answer = _number_dict(call_student(fn, what=what), keys, what)
    truth = _delta_values(w, x, p)
    mu = sum(a * b for a, b in zip(w, x))
    sum_sq = sum((a * b) ** 2 for a, b in zip(w, x))
    t = math.tanh(truth["mean"])
    second = -2 * t * (1 - t**2)
    mistakes = {
        "mean": [
            ((1 - p) * mu, "with inverted dropout E[z] = Σ w_i x_i: the factor 1/(1-p) cancels E[m_i] = 1 - p"),
        ],
        "variance": [
            (p * (1 - p) * sum_sq, "that is the variance without rescaling; inverted dropout adds a factor 1/(1-p)²"),
            (p / (1 - p) * mu**2, "the masks are independent, so the variances of the terms add: "
                                  "use Σ (w_i x_i)², not (Σ w_i x_i)²"),
            ((1 - p) / p * sum_sq, "that uses p as the keep probability; here p is the drop probability"),
            (p / (1 - p) ** 2 * sum_sq, "one factor 1/(1-p) too many: Var[m_i/(1-p)] = p(1-p)/(1-p)² = p/(1-p)"),
        ],
        "delta": [
            (second * truth["variance"], "the second-order term is ½ f''(μ) Var[z]: you left out the ½"),
            (-0.5 * second * truth["variance"], "the sign is wrong: tanh is concave for z > 0, "
                                                "tanh''(μ) = −2 tanh(μ)(1 − tanh²(μ)) < 0"),
            (0.5 * (1 - t**2) * truth["variance"], "you used the first derivative 1 − tanh²(μ); "
                                                   "the delta method needs the second, −2 tanh(μ)(1 − tanh²(μ))"),
            (0.5 * second * p * (1 - p) * sum_sq, "you used the variance of standard dropout p(1-p) Σ (w_i x_i)²; with "
                                                  "inverted dropout Var[z] = p/(1-p) Σ (w_i x_i)²"),
        ],
    }
    _check_numbers(answer, truth, keys, mistakes,
                   retry="recompute it from μ = E[z], "
                          "Var[z] = p/(1-p) Σ (w_i x_i)² and ½ f''(μ) Var[z]")
    passed(", ".join(f"{k} = {truth[k]:.4f}" for k in keys))


# --------------------------------------------------------------------------------------------
# exercise 4: a Monte-Carlo estimate of the gap with its standard error

# (activation, weights, inputs); a drop rate is drawn for each, far from 0.5, where a swap of drop and
# keep, or a division by p, would give the right numbers
# keep, or a division by p, would give the right numbers. With n = 80 000 every wrong estimator named
# below lies more than 20 standard errors from the truth and from every other one (tests check it).
_MC_CASES = [
    (torch.tanh, (-1.1, 0.9, 0.3, -0.2), (2.6, -0.1, -1.8, 1.0)),
    (torch.tanh, (1.0, -0.9, 0.5), (2.1, -0.4, 0.3)),
]
_MC_RATES = [(0.15, 0.3), (0.65, 0.8)]
_MC_N = 80_000


def _mc_rates() -> list[float]:
    """The drop rates of the cases of :func:`check_mc_jensen_gap` (drawn by its seeded generator)."""
    return _drawn_rates(_MC_RATES, seed=_SEED + 1)


def _moments_of_f(f, w, x, keep: float, scale: float) -> tuple[float, float]:
    """Exact E[f(z)] and Var[f(z)] of z = Σ w_i m_i x_i · scale, m_i ~ Bernoulli(keep), by enumeration."""
    first = second = 0.0
    for masks, probs in _mask_chunks(x.numel(), keep):
        values = f(masks @ (w * x * scale))
        first += (probs * values).sum().item()
        second += (probs * values**2).sum().item()
    return first, second - first**2


def _as_pair(out, what: str) -> tuple[float, float]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed(f"{what} should return a pair (gap, stderr), got {type(out).__name__}")
    return _real_number(out[0], "the gap"), _real_number(out[1], "the standard error")


def check_mc_jensen_gap(fn) -> None:
    r"""Check ``fn(f, w, x, p, n, generator)``, which must return a Monte-Carlo estimate of the Jensen gap
    :math:`\mathbb E[f(z)] - f(\mathbb E z)` of inverted dropout from ``n`` random masks, and its standard error.

    For two units with drop rates drawn from the checker's seeded generator (one below 0.3, one
    above 0.65), the estimate must lie within 5 standard errors of the exact gap, the standard
    error must be within 30% of the true :math:`\sqrt{\operatorname{Var}[f(z)]/n}`, and the result
    must be reproducible from the generator and change with its seed. The ``f`` it passes records its
    inputs: it must be applied to the n samples of z, and they must be independent (no mask reused).
    Names the usual mistakes: the
    standard deviation instead of the standard error, averaging :math:`z` before applying :math:`f`,
    no rescaling, a division by p, drop and keep swapped, one keep decision shared by all inputs,
    a rate typed in. Chapter 3 exercises.
    """
    what = "your Monte-Carlo estimate"
    summary = []
    rates = _mc_rates()
    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is restored afterwards
        torch.manual_seed(3)
        for case, ((f, w, x), p) in enumerate(zip(_MC_CASES, rates)):
            w_t, x_t = torch.tensor(w, dtype=torch.float64), torch.tensor(x, dtype=torch.float64)

            def run(rate, seed, f=f, w_t=w_t, x_t=x_t, activation=None):
                generator = torch.Generator().manual_seed(seed)
                return _as_pair(call_student(fn, activation or f, w_t, x_t, rate, _MC_N, generator, what=what), what)

            seen = []
            gap, se = run(p, 11, activation=_recording(f, seen))
            _check_samples(seen, what)
            summary.append(_judge_mc(f, w_t, x_t, p, gap, se, run, rates[1 - case], what))
    passed("; ".join(summary))


def _recording(f, seen: list):
    """``f``, recording the values it is applied to (in ``seen``, flattened, in call order)."""
    def activation(z):
        seen.append(torch.as_tensor(z).detach().reshape(-1).clone())
        return f(z)
    return activation


def _check_samples(seen: list, what: str) -> None:
    """The student applied the argument ``f`` to ``_MC_N`` values of z, drawn independently."""
    total = sum(v.numel() for v in seen)
    if total < _MC_N:
        raise CheckFailed(f"{what} applied the function f passed as argument to {total} values, not to the n = {_MC_N} "
                          "samples of z: apply the argument f to every sample, f(z) (averaging z first gives f(E[z]) "
                          "again, and the checker passes the activation: it need not be torch.tanh)")
    found = _reused_draws(torch.cat(seen).to(torch.float64))
    if found is not None:
        shift, _, agree, expected = found
        raise CheckFailed(f"{what}: your n samples of z are not independent: samples {shift} apart are equal in "
                          f"{agree:.1%} of the places, where independent masks give {expected:.1%}. You reused draws "
                          "(the same masks for two halves, repeated masks); draw n independent masks, e.g. "
                          "torch.rand((n, len(x)), generator=generator) >= p")


def _judge_mc(f, w, x, p, gap, se, run, other_rate, what) -> str:
    """The verdict on one case of :func:`check_mc_jensen_gap`: raise the matching message, or return the summary."""
    q = 1 - p
    deterministic = f(w @ x).item()
    mean_f, var_f = _moments_of_f(f, w, x, q, 1 / q)
    exact_gap = mean_f - deterministic
    true_se = math.sqrt(var_f / _MC_N)
    if se <= 0:
        raise CheckFailed(f"the standard error is {se:.3g}; it must be positive (did all samples use the same mask?)")
    if math.isclose(se / true_se, math.sqrt(_MC_N), rel_tol=0.3):
        raise CheckFailed(f"your standard error {se:.3g} is the standard deviation of f(z); "
                          f"the standard error of a mean of n samples divides it by √n (n = {_MC_N})")
    if math.isclose(se * math.sqrt(_MC_N), true_se, rel_tol=0.3):
        raise CheckFailed(f"your standard error {se:.3g} is √(Var[f(z)])/n, divided by n = {_MC_N} instead of √n: "
                          f"the standard error of a mean of n samples is the standard deviation over √n")
    at = f"with p = {p}, your gap {gap:.4f} ± {se:.4f}"
    if abs(gap - exact_gap) > _Z * se:
        if run(other_rate, 11) == (gap, se):
            raise CheckFailed(f"{at} does not follow p: with the same generator seed it is the same at p = {p} and "
                              f"p = {other_rate}. The rate is hard-coded; use the argument p for the mask and the scale")
        shared = q * f(w @ x / q).item() + p * f(torch.zeros((), dtype=x.dtype)).item() - deterministic
        wrong = [
            ((_moments_of_f(f, w, x, q, 1.0)[0] - deterministic, _moments_of_f(f, w, x, q, 1.0)[0] - f(q * (w @ x)).item()),
             "is the gap without rescaling; divide the survivors by 1 - p (inverted dropout), so that E[z] = Σ w_i x_i"),
            ((_moments_of_f(f, w, x, p, 1 / q)[0] - deterministic,),
             "is the gap of a mask that keeps a unit with probability p; a unit is dropped with probability p and "
             "kept with probability 1 - p"),
            ((_moments_of_f(f, w, x, q, 1 / p)[0] - deterministic, _moments_of_f(f, w, x, q, 1 / p)[0]
              - f(w @ x * q / p).item()),
             "is the gap with the survivors divided by p; divide them by the keep probability 1 - p"),
            ((shared,), "is the gap of one keep decision per sample, shared by all inputs: draw a mask of shape "
                        "(n, len(x)), one decision per input and sample"),
        ]
        for values, message in wrong:
            if any(abs(gap - v) <= _Z * se for v in values):
                raise CheckFailed(f"{at} {message}")
        if abs(gap) <= _Z * max(se, true_se) and abs(exact_gap) > 2 * _Z * true_se:
            raise CheckFailed(f"{at} is about 0, but the exact gap is {exact_gap:.4f}: did you average "
                              "z over the masks before applying f? That is f(E[z]) again; average f(z) instead")
        raise CheckFailed(f"{at} is {abs(gap - exact_gap) / se:.1f} standard errors from the exact gap {exact_gap:.4f}")
    if not 0.7 <= se / true_se <= 1.3:
        raise CheckFailed(f"your standard error {se:.3g} should be close to √(Var[f(z)]/n) = {true_se:.3g}; "
                          "use the sample standard deviation of f(z) over the n masks, divided by √n")
    if run(p, 11) != (gap, se):
        raise CheckFailed("two calls with generators of the same seed gave different results: draw every mask "
                          "with the generator argument (torch.rand(..., generator=generator))")
    if run(p, 12) == (gap, se):
        raise CheckFailed("your estimate is the same for generators of different seeds: you draw with a generator of "
                          "your own; draw every mask with the generator argument")
    return f"gap {gap:.4f} ± {se:.4f} at p = {p}, exact {exact_gap:.4f} ({(gap - exact_gap) / se:+.2f} s.e.)"
