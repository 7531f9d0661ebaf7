"""Checkers for the exercises of chapter 10, "Variational dropout and sparsification".

Each checker calls the student's function, prints one "Correct: ..." line when it is right, and
otherwise raises :class:`CheckFailed` with a message naming the mistake (for example "the
variance of the noise is p: alpha = p/(1-p), not p"). Random checks run with a seeded, forked
RNG, so the caller's random state is untouched and the messages are reproducible.
"""

from __future__ import annotations

import contextlib
import functools
import math

import sympy as sp
import torch

from .. import derivations, variational
from .._validation import check_probability
from ..montecarlo import estimate_mean, estimate_variance, z_score
from ..variational import SPARSE_VD_K, neg_kl_approx
from ._core import (
    _SHIFT, CheckFailed, _answer_dict, _derivation_calls, _drawn_rates, _library_forbidden, _not_following_message,
    _patched, _same_function, _shifted_masks, _student_symbols, _typed_message, call_student, passed,
)

__all__ = [
    "check_gaussian_dropout", "check_gaussian_alpha", "check_local_reparameterization",
    "check_neg_kl_approx",
]

_Z = 5.0


def _tensor_output(out, shape, what: str, dtype=None) -> torch.Tensor:
    if type(out) is not torch.Tensor:  # a subclass could redefine the comparisons a checker makes
        raise CheckFailed(f"{what} should return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise CheckFailed(f"{what} should return a tensor of shape {tuple(shape)}, got {tuple(out.shape)}")
    if not out.is_floating_point():
        raise CheckFailed(f"{what} should return a floating tensor, got dtype {out.dtype}")
    if dtype is not None and out.dtype != dtype:
        raise CheckFailed(f"{what} returned dtype {out.dtype} for an input of dtype {dtype}: keep the input's dtype")
    return out.detach().to(torch.float64)


def _close(est, value: float) -> bool:
    return abs(z_score(est, value)) <= _Z


# --------------------------------------------------------------------------------------------
# exercise 1: Gaussian dropout

#: The inputs of the Gaussian-dropout check: a vector, a batch of vectors, a batch of matrices.
_GAUSSIAN_SHAPES = ((2_000, 50), (40, 50, 50), (100_000,))


def check_gaussian_dropout(fn, *, p: float = 0.3) -> None:
    r"""Check ``fn(x, p, training=True)``, Gaussian dropout :math:`x\,(1 + \sqrt{\alpha}\,\varepsilon)`, :math:`\alpha = p/(1-p)` (chapter 10 exercises).

    It runs on a batch of vectors and of matrices with rates drawn by the checker's own seeded
    generator, and on a vector with ``p``. For each it checks the type and shape, that ``x`` is not
    modified, that the noise is independent across elements (not one value for the tensor, not
    one noise vector shared by the rows), that it is multiplicative (its spread scales with
    :math:`x`), that :math:`\mathbb E[\tilde x / x] = 1` and
    :math:`\operatorname{Var}[\tilde x / x] = p/(1-p)` within 5 standard errors (naming
    :math:`\alpha = p`, :math:`(1-p)/p`, :math:`\alpha^2`, a rate other than ``p`` and Bernoulli
    masks), that two calls differ, and that ``training=False`` and ``p = 0`` return the input. The
    statement forbids the library's :func:`~dropoutbook.gaussian_dropout`: a call fails the check.
    """
    p = check_probability(p, "p", allow_zero=False, allow_one=False)
    if math.isclose(p, 0.5):
        raise ValueError(f"p must not be 0.5 (where alpha = p/(1-p) = (1-p)/p), got {p}")
    rates = [*_drawn_rates([(0.1, 0.22), (0.36, 0.45)], seed=100), p]  # never the default 0.3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(10)
        with _library_forbidden(variational, "multiply x by 1 + sqrt(alpha)·eps yourself"):
            summaries = [_check_gaussian_dropout(fn, rate, shape) for rate, shape in zip(rates, _GAUSSIAN_SHAPES)]
    passed(summaries[-1])


def _check_gaussian_dropout(fn, p: float, shape: tuple) -> str:
    what = "your Gaussian dropout"
    g = torch.Generator().manual_seed(2024 + len(shape))
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 1.5 + 0.5  # in [0.5, 2), never 0
    before = x.clone()
    where = f"for x of shape {tuple(shape)} and p = {p}"
    out = _tensor_output(call_student(fn, x, p, training=True, what=what), x.shape, what, x.dtype)
    if not torch.equal(x, before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead")
    if not torch.isfinite(out).all():
        raise CheckFailed("the output contains NaN or infinite values")
    alpha = p / (1 - p)
    ratio = out / x
    values = torch.unique(ratio.round(decimals=9))
    if len(values) == 1:
        raise CheckFailed(f"{where} every element is multiplied by the same factor {values.item():.4g}: you drew one "
                          "noise value for the whole tensor. Draw an independent eps for every element, "
                          "e.g. torch.randn_like(x)")
    if len(values) == 2:
        raise CheckFailed(
            f"the output takes only the values {values.tolist()} times x: that is Bernoulli dropout. "
            "Gaussian dropout multiplies x by continuous noise 1 + sqrt(alpha)·eps with eps ~ N(0, 1)"
        )
    if x.dim() > 1:
        rows = ratio.reshape(-1, shape[-1])
        if torch.allclose(rows, rows[:1].expand_as(rows), rtol=1e-9, atol=0):
            raise CheckFailed(f"{where} every row gets the same noise vector: your noise has the shape of the last "
                              "dimension only. Draw an independent eps for every element, e.g. torch.randn_like(x)")
        if torch.allclose(rows, rows[:, :1].expand_as(rows), rtol=1e-9, atol=0):
            raise CheckFailed(f"{where} all elements of a row get the same noise: draw an independent eps for "
                              "every element, e.g. torch.randn_like(x)")
        half = rows.shape[0] // 2
        for name, (a, b) in {"neighbouring rows": (rows[0::2], rows[1::2]),
                             "the two halves of the batch": (rows[:half], rows[half:2 * half]),
                             "neighbouring elements": (rows[:, 0::2], rows[:, 1::2])}.items():
            corr = torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()
            if abs(corr) > _Z / math.sqrt(a.numel()):
                raise CheckFailed(f"{where} the noise of {name} is correlated ({corr:.3f}): draw an independent eps "
                                  "for every element")
    flat_x, flat_r = x.flatten(), ratio.flatten()
    low, high = flat_r[flat_x < 0.8], flat_r[flat_x > 1.6]
    v_low, v_high = estimate_variance(low), estimate_variance(high)
    if abs(v_low.value - v_high.value) > _Z * math.hypot(v_low.stderr, v_high.stderr):
        raise CheckFailed(
            "the spread of the noise does not grow with x: Var[output/x] is "
            f"{v_low.value:.3f} for small x and {v_high.value:.3f} for large x. The noise must be "
            "multiplicative, output = x·(1 + sqrt(alpha)·eps), not x + noise"
        )
    mean = estimate_mean(flat_r)
    if not _close(mean, 1.0):
        raise CheckFailed(f"E[output/x] is {mean}: the multiplier must have mean 1 (use 1 + sqrt(alpha)·eps)")
    var = estimate_variance(flat_r)
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
            (0.3 / 0.7, "the noise variance is 0.3/0.7, alpha for p = 0.3: your function uses the rate 0.3, "
                        "not the p it receives"),
        ]
        for value, message in known:
            if _close(var, value):
                raise CheckFailed(f"{where}: {message}")
        raise CheckFailed(f"Var[output/x] is {var}; with p = {p} it must be alpha = p/(1-p) = {alpha:.4f}")
    tails = ((flat_r - 1).abs() > 2 * math.sqrt(alpha)).double()  # |eps| > 2: 4.55 % for a standard normal
    normal_tails = math.erfc(2 / math.sqrt(2))
    if abs(tails.mean().item() - normal_tails) > _Z * math.sqrt(normal_tails * (1 - normal_tails) / tails.numel()):
        raise CheckFailed(f"{where} |eps| > 2 in {tails.mean().item():.2%} of the elements, but in {normal_tails:.2%} "
                          "for a standard normal: the noise has the right variance but not a normal distribution. "
                          "Draw eps with torch.randn_like(x)")
    out2 = _tensor_output(call_student(fn, x, p, training=True, what=what), x.shape, what)
    if torch.equal(out2, out):
        raise CheckFailed("two calls returned the same output: draw new noise on every call (do not reseed inside "
                          "the function)")
    evaluated = _tensor_output(call_student(fn, x, p, training=False, what=what), x.shape, what)
    if not torch.allclose(evaluated, x, rtol=1e-6, atol=0):
        raise CheckFailed("with training=False the output should equal the input (the noise has mean 1)")
    zero = _tensor_output(call_student(fn, x, 0.0, training=True, what=what), x.shape, what)
    if not torch.allclose(zero, x, rtol=1e-6, atol=0):
        raise CheckFailed("with p = 0 the noise variance alpha is 0, so the output should equal the input")
    if not torch.equal(x, before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead")
    return f"E[out/x] = {mean.value:.3f}, Var[out/x] = {var.value:.3f} (alpha = {alpha:.3f}), identity in eval"


# --------------------------------------------------------------------------------------------
# exercise 2: the mean and alpha by sympy


@functools.lru_cache(maxsize=1)
def _derived_alpha() -> sp.Expr:
    return derivations.gaussian_dropout_match().alpha


def check_gaussian_alpha(fn) -> None:
    r"""Check ``fn()``, which computes with :func:`~dropoutbook.derivations.expectation` or
    :func:`~dropoutbook.derivations.variance` the mean of the inverted-dropout unit
    :math:`\tilde h = m h/(1-p)` and the :math:`\alpha` of the Gaussian dropout matching it, and
    returns them in a dict with the keys ``"mean"`` (in ``h`` and ``p``) and ``"alpha"`` (in ``p``)
    (chapter 10 exercises).

    An answer typed in without calling those functions fails, and so does one that does not follow
    the mask distribution it passes to them (a second run draws every Bernoulli(k) mask as
    Bernoulli(k/2): a typed answer next to an irrelevant call stays put). The mean exposes a mask written as
    Bernoulli(p), whose variance gives the right :math:`\alpha`; the usual mistakes are named.
    """
    what = "your derivation"
    with _derivation_calls() as calls:
        answer = call_student(fn, what=what)
    answer = _answer_dict(answer, ("mean", "alpha"), what)
    p, h = derivations.drop_rate, derivations.activation
    mean = _student_symbols(answer["mean"], {"p": p, "h": h}, f"the mean of {what}")
    expr = _student_symbols(answer["alpha"], {"p": p}, f"the alpha of {what}")
    if not calls:
        raise CheckFailed(_typed_message(what, "derivations.expectation or derivations.variance"))
    points = [(0.1,), (0.3,), (0.8,)]
    same = lambda a, b: _same_function(sp.sympify(a), sp.sympify(b), (p,), points)  # noqa: E731
    same_mean = lambda a, b: _same_function(sp.sympify(a), sp.sympify(b), (p, h),  # noqa: E731
                                            [(0.1, 1.5), (0.3, -0.7), (0.8, 2.0)])
    if not same_mean(mean, h):
        mean_mistakes = [
            (p * h / (1 - p), "the mean of h̃ is p·h/(1-p): your mask keeps with probability p "
                              "(m ~ Bernoulli(p)). p is the drop probability: m ~ Bernoulli(1 - p). Its variance "
                              "alone would not show it"),
            ((1 - p) * h, "the mean of h̃ is (1-p)·h: that is standard dropout m·h; inverted dropout divides by "
                          "1 - p, so that E[h̃] = h"),
        ]
        for wrong, message in mean_mistakes:
            if same_mean(mean, wrong):
                raise CheckFailed(message)
        raise CheckFailed("the mean of h̃ = m·h/(1-p) should be h: inverted dropout keeps the mean")
    truth = _derived_alpha()
    if same(expr, truth):
        with _shifted_masks():
            moved = _answer_dict(call_student(fn, what=what), ("mean", "alpha"), what)
        keep = (1 - p) * _SHIFT  # the mask the shifted run draws; the scaling stays 1/(1-p)
        if not (same_mean(_student_symbols(moved["mean"], {"p": p, "h": h}, f"the mean of {what}"), keep * h / (1 - p))
                and same(_student_symbols(moved["alpha"], {"p": p}, f"the alpha of {what}"),
                         keep * (1 - keep) / (1 - p) ** 2)):
            raise CheckFailed(_not_following_message(what))
        passed(f"E[h~] = h, alpha = {derivations.tidy(expr, p)}")
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


# --------------------------------------------------------------------------------------------
# exercise 3: the local reparameterization trick


@contextlib.contextmanager
def _random_draws():
    """Record the shape of every tensor of random numbers drawn through torch's usual functions
    while the block runs (``torch.randn``, ``randn_like``, ``rand``, ``rand_like``, ``normal``,
    ``Tensor.normal_``, ``Tensor.uniform_``; ``torch.distributions`` samples through these)."""
    shapes: list[tuple] = []

    def recorder(original, method=False):
        @functools.wraps(original)
        def record(*args, **kwargs):
            out = original(*args, **kwargs)
            if isinstance(out, torch.Tensor):
                shapes.append(tuple(out.shape))
            return out
        return record

    with contextlib.ExitStack() as stack:
        for name in ("randn", "randn_like", "rand", "rand_like", "normal"):
            stack.enter_context(_patched(torch, name, recorder(getattr(torch, name))))
        for name in ("normal_", "uniform_"):
            stack.enter_context(_patched(torch.Tensor, name, recorder(getattr(torch.Tensor, name))))
        yield shapes


def check_local_reparameterization(fn) -> None:
    r"""Check ``fn(x, theta, log_sigma2)``, which samples the pre-activations :math:`b = x\,w^\top` of a layer with
    weights :math:`w \sim \mathcal N(\theta, e^{\log\sigma^2})` by the local reparameterization trick (chapter 10 exercises).

    On two layers (3 inputs and 2 outputs, 5 inputs and 4 outputs), it compares the mean
    :math:`x\theta^\top` and the variance :math:`x^2 \sigma^{2\top}` of each output with Monte-Carlo
    estimates (5 standard errors) and names the usual mistakes: :math:`x` instead of :math:`x^2`,
    :math:`\sigma` instead of :math:`\sigma^2`, one noise shared by the batch or by the outputs.
    The statement forbids sampling weights: the checker records the shapes of the random numbers
    drawn, and a draw of the weights' shape (one weight matrix, or one per example) fails.
    The inputs must not change.
    """
    g = torch.Generator().manual_seed(12)
    layers = [
        (torch.tensor([[1.0, 2.0, 0.5], [0.5, 1.5, 2.0]], dtype=torch.float64),
         torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.4]], dtype=torch.float64),
         torch.tensor([[-1.0, 0.5, -2.0], [0.2, -0.5, -1.5]], dtype=torch.float64), 200_000),
        (torch.rand(2, 5, generator=g, dtype=torch.float64) * 2 - 1,
         torch.randn(4, 5, generator=g, dtype=torch.float64),
         torch.rand(4, 5, generator=g, dtype=torch.float64) * 3 - 2, 40_000),
    ]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        for rows, theta, log_sigma2, n in layers:
            _check_local_reparameterization(fn, rows, theta, log_sigma2, n)
    passed(f"mean x·thetaᵀ, variance x²·sigma²ᵀ (within {_Z:.0f} s.e.), outputs independent, no weight sampled")


def _check_local_reparameterization(fn, rows, theta, log_sigma2, n: int) -> None:
    what = "your local reparameterization"
    x = rows.repeat(n // 2, 1)  # rows alternate
    n_out = theta.shape[0]
    inputs = [t.clone() for t in (x, theta, log_sigma2)]
    with _random_draws() as shapes:
        raw = call_student(fn, x, theta, log_sigma2, what=what)
    weights = [s for s in shapes if tuple(s[-2:]) in (tuple(theta.shape), tuple(theta.shape)[::-1])
               or math.prod(s) in (theta.numel(), n * theta.numel())]
    if weights:
        kind = "one weight matrix" if math.prod(weights[0]) == theta.numel() else "a weight matrix for every example"
        raise CheckFailed(f"you sampled a weight: random numbers of shape {weights[0]} ({kind}). The local "
                          "reparameterization trick works without sampling any weight: compute the mean and the "
                          "variance of every pre-activation and draw one standard normal per example and output, "
                          "eps of shape (batch, out_features)")
    out = _tensor_output(raw, (n, n_out), what, x.dtype)
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
        for j in range(n_out):
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
        corr = torch.corrcoef(centred.T)
        off = (corr - torch.diag(torch.diag(corr))).abs().max().item()
        if off > _Z / math.sqrt(len(sample)):
            raise CheckFailed(f"two outputs are correlated ({off:.3f}): draw an independent eps for every output, "
                              "not one per example")
    z = (out - mean_truth.repeat(n // 2, 1)) / var_truth.sqrt().repeat(n // 2, 1)  # standard normals if right
    pairs = {"neighbouring examples": (z[0::4], z[1::4]), "the two halves of the batch": (z[: n // 2], z[n // 2:])}
    for name, (a, b) in pairs.items():
        corr = torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()
        if abs(corr) > _Z / math.sqrt(a.numel()):
            raise CheckFailed(f"the noise of {name} is correlated ({corr:.3f}): draw an independent eps for every "
                              "example and output, eps of shape (batch, out_features)")
    first = out[0::2, 0]
    if abs(torch.corrcoef(torch.stack([first[:-1], first[1:]]))[0, 1].item()) > _Z / math.sqrt(len(first)):
        raise CheckFailed("consecutive examples have correlated noise: draw independent eps for every example")


#: log alpha values of the stability check, in float32: below about -88, exp(-log alpha) overflows
#: and exp(log alpha) underflows to 0, so a formula that forms alpha gives inf or NaN there.
_WIDE_LOG_ALPHA = (-120.0, -100.0, -90.0, -88.5, -50.0, -20.0, 0.0, 20.0, 50.0, 90.0, 100.0, 120.0)


def check_neg_kl_approx(fn) -> None:
    r"""Check ``fn(log_alpha)``, the approximation of :cite:`molchanov2017variational` to :math:`-\mathrm{KL}` with :math:`C = -k_1` (chapter 10 exercises).

    Compares it with :func:`~dropoutbook.neg_kl_approx` on a grid of :math:`\log\alpha` in [-8, 8]
    (float64, as a vector and as a matrix) and names the usual mistakes: the constant left out,
    :math:`\log(1+\alpha)` instead of :math:`\log(1 + 1/\alpha)`, :math:`\alpha` instead of
    :math:`\log\alpha` in the sigmoid, a sign. Then on :math:`\log\alpha` from -120 to 120 in float32:
    a formula that forms :math:`\alpha` (``torch.log1p(1 / torch.exp(log_alpha))``,
    ``torch.log1p(torch.exp(-log_alpha))``), which the statement forbids, gives inf or NaN below
    about -88 and fails. The input must not change.
    """
    what = "your KL approximation"
    grid = torch.linspace(-8.0, 8.0, 33, dtype=torch.float64)
    out = _kl_output(fn, grid, what)
    truth = neg_kl_approx(grid)
    k1, k2, k3 = SPARSE_VD_K
    if not torch.allclose(out, truth, rtol=0, atol=1e-6):
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
    matrix = grid[:32].reshape(4, 8).flip(0)
    if not torch.allclose(_kl_output(fn, matrix, what), neg_kl_approx(matrix), rtol=0, atol=1e-6):
        raise CheckFailed("on a 4 x 8 matrix of log alpha values your function gives other values than element "
                          "by element: apply the formula elementwise, keeping the shape")
    wide = torch.tensor(_WIDE_LOG_ALPHA, dtype=torch.float32)
    got = _kl_output(fn, wide, what)
    exact = neg_kl_approx(wide.double())
    bad = ~torch.isfinite(got)
    if bad.any():
        i = _WIDE_LOG_ALPHA.index(-100.0) if bad[_WIDE_LOG_ALPHA.index(-100.0)] else int(bad.nonzero()[0])
        raise CheckFailed(f"at log alpha = {_WIDE_LOG_ALPHA[i]:g} (float32) your value is {got[i].item()}: alpha = "
                          "exp(log_alpha) underflows to 0 and exp(-log_alpha) overflows below log alpha ≈ -88, so a "
                          "formula that forms alpha breaks there. Compute log(1 + 1/alpha) from log alpha, as "
                          "torch.nn.functional.softplus(-log_alpha)")
    if not torch.allclose(got, exact, rtol=1e-5, atol=1e-4):
        i = int((got - exact).abs().argmax())
        raise CheckFailed(f"at log alpha = {_WIDE_LOG_ALPHA[i]:g} (float32) your value is {got[i].item():.4f}, "
                          f"the approximation gives {exact[i].item():.4f}: the formula must hold for any log alpha")
    passed(f"-KL(log alpha = 0) = {truth[16].item():.4f}, -> 0 as alpha -> infinity")


def _kl_output(fn, log_alpha: torch.Tensor, what: str) -> torch.Tensor:
    before = log_alpha.clone()
    out = _tensor_output(call_student(fn, log_alpha, what=what), log_alpha.shape, what, log_alpha.dtype)
    if not torch.equal(log_alpha, before):
        raise CheckFailed("your function changed its input in place; return a new tensor instead")
    return out
