"""Checkers for the exercises of chapter 10, "Variational dropout and sparsification".

Each checker calls the student's function, prints one "Correct: ..." line when it is right, and
otherwise raises :class:`CheckFailed` with a message naming the mistake (for example "the
variance of the noise is p: alpha = p/(1-p), not p"). Random checks run with a seeded, forked
RNG, so the caller's random state is untouched and the messages are reproducible.
"""

from __future__ import annotations

import functools
import math

import sympy as sp
import torch

from .. import derivations
from ..montecarlo import estimate_mean, estimate_variance, z_score
from ..variational import SPARSE_VD_K, neg_kl_approx
from ._core import CheckFailed, _same_function, _student_symbols, call_student, passed

__all__ = [
    "check_gaussian_dropout", "check_gaussian_alpha", "check_local_reparameterization",
    "check_neg_kl_approx",
]

_Z = 5.0


def _tensor_output(out, shape, what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"{what} should return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise CheckFailed(f"{what} should return a tensor of shape {tuple(shape)}, got {tuple(out.shape)}")
    if not out.is_floating_point():
        raise CheckFailed(f"{what} should return a floating tensor, got dtype {out.dtype}")
    return out.detach().to(torch.float64)


def _close(est, value: float) -> bool:
    return abs(z_score(est, value)) <= _Z


def check_gaussian_dropout(fn, p: float = 0.3) -> None:
    r"""Check ``fn(x, p, training=True)``, Gaussian dropout :math:`x\,(1 + \sqrt{\alpha}\,\varepsilon)`, :math:`\alpha = p/(1-p)` (chapter 10 exercises).

    It checks the type and shape, that ``x`` is not modified, that the noise is multiplicative
    (its spread scales with :math:`x`), that :math:`\mathbb E[\tilde x / x] = 1` and
    :math:`\operatorname{Var}[\tilde x / x] = p/(1-p)` within 5 standard errors (naming
    :math:`\alpha = p`, :math:`(1-p)/p`, :math:`\alpha^2` and Bernoulli masks), that two calls
    differ, and that ``training=False`` and ``p = 0`` return the input.
    """
    if not 0 < p < 1 or math.isclose(p, 0.5):
        raise ValueError(f"p must be in (0, 1) and not 0.5 (where alpha = p/(1-p) = (1-p)/p), got {p}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(10)
        passed(_check_gaussian_dropout(fn, p))


def _check_gaussian_dropout(fn, p: float) -> str:
    what = "your Gaussian dropout"
    n = 100_000
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, generator=g, dtype=torch.float64) * 1.5 + 0.5  # in [0.5, 2), never 0
    before = x.clone()
    out = _tensor_output(call_student(fn, x, p, training=True, what=what), x.shape, what)
    if not torch.equal(x, before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead")
    if not torch.isfinite(out).all():
        raise CheckFailed("the output contains NaN or infinite values")
    alpha = p / (1 - p)
    ratio = out / x
    values = torch.unique(ratio.round(decimals=9))
    if len(values) <= 2:
        raise CheckFailed(
            f"the output takes only the values {values.tolist()} times x: that is Bernoulli dropout. "
            "Gaussian dropout multiplies x by continuous noise 1 + sqrt(alpha)·eps with eps ~ N(0, 1)"
        )
    low, high = ratio[x < 0.8], ratio[x > 1.6]
    v_low, v_high = estimate_variance(low), estimate_variance(high)
    if abs(v_low.value - v_high.value) > _Z * math.hypot(v_low.stderr, v_high.stderr):
        raise CheckFailed(
            "the spread of the noise does not grow with x: Var[output/x] is "
            f"{v_low.value:.3f} for small x and {v_high.value:.3f} for large x. The noise must be "
            "multiplicative, output = x·(1 + sqrt(alpha)·eps), not x + noise"
        )
    mean = estimate_mean(ratio)
    if not _close(mean, 1.0):
        raise CheckFailed(f"E[output/x] is {mean}: the multiplier must have mean 1 (use 1 + sqrt(alpha)·eps)")
    var = estimate_variance(ratio)
    if not _close(var, alpha):
        known = [
            (p, "the noise variance is p; it must be alpha = p/(1-p), the variance of the inverted-dropout "
                "multiplier m/(1-p)"),
            ((1 - p) / p, "the noise variance is (1-p)/p: that treats p as the keep probability; "
                          "here p is the drop probability and alpha = p/(1-p)"),
            (alpha**2, "the noise variance is alpha²: multiply eps by sqrt(alpha) (the standard deviation), "
                       "not by alpha"),
            (math.sqrt(alpha), "the noise variance is sqrt(alpha): multiply eps by sqrt(alpha), not alpha**0.25"),
            (p * (1 - p), "the noise variance is p(1-p), the variance of an unscaled mask; "
                          "it must be p/(1-p)"),
        ]
        for value, message in known:
            if _close(var, value):
                raise CheckFailed(message)
        raise CheckFailed(f"Var[output/x] is {var}; with p = {p} it must be alpha = p/(1-p) = {alpha:.4f}")
    out2 = _tensor_output(call_student(fn, x, p, training=True, what=what), x.shape, what)
    if torch.equal(out2, out):
        raise CheckFailed("two calls returned the same output: draw new noise on every call")
    evaluated = _tensor_output(call_student(fn, x, p, training=False, what=what), x.shape, what)
    if not torch.allclose(evaluated, x, rtol=1e-6, atol=0):
        raise CheckFailed("with training=False the output should equal the input (the noise has mean 1)")
    zero = _tensor_output(call_student(fn, x, 0.0, training=True, what=what), x.shape, what)
    if not torch.allclose(zero, x, rtol=1e-6, atol=0):
        raise CheckFailed("with p = 0 the noise variance alpha is 0, so the output should equal the input")
    return f"E[out/x] = {mean.value:.3f}, Var[out/x] = {var.value:.3f} (alpha = {alpha:.3f}), identity in eval"


@functools.lru_cache(maxsize=1)
def _derived_alpha() -> sp.Expr:
    return derivations.gaussian_dropout_match().alpha


def check_gaussian_alpha(fn) -> None:
    r"""Check ``fn()``, which must return the derived :math:`\alpha` (a sympy expression in ``p``) of the Gaussian dropout matching inverted dropout (chapter 10 exercises)."""
    what = "your derivation"
    expr = call_student(fn, what=what)
    p = derivations.drop_rate
    expr = _student_symbols(expr, {"p": p}, what)
    truth = _derived_alpha()
    points = [(0.1,), (0.3,), (0.8,)]
    same = lambda a, b: _same_function(sp.sympify(a), sp.sympify(b), (p,), points)  # noqa: E731
    if same(expr, truth):
        passed(f"alpha = {derivations.tidy(expr, p)}")
        return
    mistakes = [
        (p, "alpha = p equates the noise variance with the drop rate; match it with the variance of the "
            "inverted-dropout multiplier m/(1-p), which is p/(1-p)"),
        ((1 - p) / p, "that treats p as the keep probability; here m ~ Bernoulli(1-p)"),
        (p * (1 - p), "p(1-p) is the variance of the unscaled mask m; the inverted-dropout multiplier is m/(1-p)"),
        (1 / (1 - p), "that is E[(m/(1-p))²] only; subtract the squared mean, which is 1"),
        (sp.sqrt(p / (1 - p)), "that is the standard deviation of the multiplier; alpha is its variance"),
    ]
    for wrong, message in mistakes:
        if same(expr, wrong):
            raise CheckFailed(message)
    value = float(expr.subs(p, sp.Rational(1, 2)))
    raise CheckFailed(f"at p = 0.5 your expression gives {value:.4g}, but alpha is 1 there")


def check_local_reparameterization(fn) -> None:
    r"""Check ``fn(x, theta, log_sigma2)``, which samples the pre-activations :math:`b = x\,w^\top` of a layer with
    weights :math:`w \sim \mathcal N(\theta, e^{\log\sigma^2})` by the local reparameterization trick (chapter 10 exercises).

    Compares the mean :math:`x\theta^\top` and the variance :math:`x^2 \sigma^{2\top}` of each output with
    Monte-Carlo estimates (5 standard errors) and names the usual mistakes: :math:`x` instead of
    :math:`x^2`, :math:`\sigma` instead of :math:`\sigma^2`, one noise shared by the batch or by the
    outputs.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        passed(_check_local_reparameterization(fn))


def _check_local_reparameterization(fn) -> str:
    what = "your local reparameterization"
    n = 200_000
    rows = torch.tensor([[1.0, 2.0, 0.5], [0.5, 1.5, 2.0]], dtype=torch.float64)
    x = rows.repeat(n // 2, 1)  # rows alternate
    theta = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.4]], dtype=torch.float64)
    log_sigma2 = torch.tensor([[-1.0, 0.5, -2.0], [0.2, -0.5, -1.5]], dtype=torch.float64)
    inputs = [t.clone() for t in (x, theta, log_sigma2)]
    out = _tensor_output(call_student(fn, x, theta, log_sigma2, what=what), (n, 2), what)
    if not all(torch.equal(a, b) for a, b in zip((x, theta, log_sigma2), inputs)):
        raise CheckFailed("your function changed one of its inputs in place; return a new tensor instead")
    if not torch.isfinite(out).all():
        raise CheckFailed("the output contains NaN or infinite values (a square root of something negative?)")
    sigma2 = log_sigma2.exp()
    mean_truth = rows @ theta.T
    var_truth = (rows**2) @ sigma2.T
    wrong = {
        "x instead of x²": (rows @ sigma2.T, "the variance of x_i·w_ji is x_i²·sigma²_ji: square x"),
        "sigma instead of sigma²": ((rows**2) @ sigma2.sqrt().T,
                                    "exp(log_sigma2) is already the variance sigma²; do not take its square root "
                                    "before the sum"),
        "standard deviations added": (((rows @ sigma2.sqrt().T)) ** 2,
                                      "the variances of independent terms add, not their standard deviations: "
                                      "var = x² @ sigma²ᵀ, then take one square root"),
        "log_sigma2 as variance": ((rows**2) @ log_sigma2.T, "log_sigma2 is the log of the variance: use exp(log_sigma2)"),
    }
    for r in range(2):
        sample = out[r::2]
        for j in range(2):
            var = estimate_variance(sample[:, j])
            if var.value < 1e-12:
                raise CheckFailed("identical inputs gave identical outputs: draw one noise per example "
                                  "and output, eps of shape (batch, out_features)")
            est = estimate_mean(sample[:, j])
            if not _close(est, mean_truth[r, j].item()):
                raise CheckFailed(f"the mean of output {j} is {est}, expected x·thetaᵀ = {mean_truth[r, j].item():.4f}")
            if not _close(var, var_truth[r, j].item()):
                for _, (table, message) in wrong.items():
                    if _close(var, table[r, j].item()):
                        raise CheckFailed(message)
                raise CheckFailed(f"the variance of output {j} is {var}, expected x²·sigma²ᵀ = {var_truth[r, j].item():.4f}")
        centred = sample - mean_truth[r]
        corr = torch.corrcoef(centred.T)[0, 1].item()
        if abs(corr) > _Z / math.sqrt(len(sample)):
            raise CheckFailed(f"the two outputs are correlated ({corr:.3f}): draw an independent eps for every output, "
                              "not one per example")
    first = out[0::2, 0]
    if abs(torch.corrcoef(torch.stack([first[:-1], first[1:]]))[0, 1].item()) > _Z / math.sqrt(len(first)):
        raise CheckFailed("consecutive examples have correlated noise: draw independent eps for every example")
    return f"mean x·thetaᵀ, variance x²·sigma²ᵀ (within {_Z:.0f} s.e.), outputs independent"


def check_neg_kl_approx(fn) -> None:
    r"""Check ``fn(log_alpha)``, the approximation of :cite:`molchanov2017variational` to :math:`-\mathrm{KL}` with :math:`C = -k_1` (chapter 10 exercises).

    Compares it with :func:`~dropoutbook.neg_kl_approx` on a grid of :math:`\log\alpha` in [-8, 8]
    and names the usual mistakes: the constant left out, :math:`\log(1+\alpha)` instead of
    :math:`\log(1 + 1/\alpha)`, :math:`\alpha` instead of :math:`\log\alpha` in the sigmoid, a sign.
    """
    what = "your KL approximation"
    grid = torch.linspace(-8.0, 8.0, 33, dtype=torch.float64)
    before = grid.clone()
    out = _tensor_output(call_student(fn, grid, what=what), grid.shape, what)
    if not torch.equal(grid, before):
        raise CheckFailed("your function changed its input in place; return a new tensor instead")
    truth = neg_kl_approx(grid)
    if torch.allclose(out, truth, rtol=0, atol=1e-6):
        passed(f"-KL(log alpha = 0) = {truth[16].item():.4f}, -> 0 as alpha -> infinity")
        return
    k1, k2, k3 = SPARSE_VD_K
    sig = torch.sigmoid(k2 + k3 * grid)
    soft = torch.nn.functional.softplus(-grid)
    mistakes = [
        (truth + k1, "the constant C = -k1 is missing: with it the approximation tends to 0 as alpha grows"),
        (k1 * sig - 0.5 * torch.nn.functional.softplus(grid) - k1,
         "the second term is -1/2·log(1 + 1/alpha) = -1/2·log(1 + exp(-log_alpha)), not log(1 + alpha)"),
        (k1 * sig + 0.5 * soft - k1, "the sign of the log term: it is -1/2·log(1 + 1/alpha)"),
        (k1 * torch.sigmoid(k2 + k3 * grid.exp()) - 0.5 * soft - k1,
         "the sigmoid takes k2 + k3·log(alpha), the log of alpha, not alpha"),
        (-truth, "that is +KL; the function should return the negative KL"),
    ]
    for wrong, message in mistakes:
        if torch.allclose(out, wrong, rtol=0, atol=1e-6):
            raise CheckFailed(message)
    i = int((out - truth).abs().argmax())
    raise CheckFailed(f"at log alpha = {grid[i].item():.1f} your value is {out[i].item():.4f}, "
                      f"the approximation gives {truth[i].item():.4f}")
