"""Checkers for the exercises of chapter 15, "Applications: medicine, biology and causal inference".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line or
raises :class:`CheckFailed` with a message that says what is wrong, for example "you refer the most
CERTAIN cases: sort by decreasing uncertainty and set aside the top".
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .. import causal as _causal
from .. import data as _data
from .. import imputation as _imputation
from .. import uncertainty as _uncertainty
from ._core import CheckFailed, _drawn_rates, _library_forbidden, _reused_draws, call_student, passed

__all__ = ["check_referral_curve", "check_zinb_sampler", "check_mc_cate", "check_masked_loss"]

_Z = 5.0


def _vector(out, n: int, what: str, *, allow_nan: bool = False) -> torch.Tensor:
    """A student's 1-D answer (tensor, array, list of numbers) as a float64 tensor of length ``n``."""
    if isinstance(out, (list, tuple)):
        if any(isinstance(v, (complex, np.complexfloating)) for v in out):
            raise CheckFailed(f"{what} should return real numbers, got complex ones")
        try:
            out = torch.tensor([float(v) for v in out], dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise CheckFailed(f"{what} should return numbers, got {out!r:.80}") from exc
    elif isinstance(out, np.ndarray):
        if np.iscomplexobj(out):
            raise CheckFailed(f"{what} should return real numbers, got an array of dtype {out.dtype}")
        if out.dtype.kind == "b":
            raise CheckFailed(f"{what} should return real numbers, got an array of dtype bool")
        if out.dtype.kind not in "iuf":
            raise CheckFailed(f"{what} should return numbers, got an array of dtype {out.dtype}")
        out = torch.from_numpy(np.asarray(out, dtype=np.float64))
    if type(out) is not torch.Tensor:
        raise CheckFailed(f"{what} should return a tensor (or a list) of numbers, got {type(out).__name__}")
    if out.dtype == torch.bool or out.is_complex():
        raise CheckFailed(f"{what} should return real numbers, got a tensor of dtype {out.dtype}")
    out = out.detach().to(torch.float64).reshape(-1) if out.numel() == n else out
    if tuple(out.shape) != (n,):
        raise CheckFailed(f"{what} should return {n} numbers (one per entry), got shape {tuple(out.shape)}")
    if torch.isnan(out).any() and not allow_nan:
        raise CheckFailed(f"{what} returned NaN: look for a division by zero (an empty set of kept cases?)")
    return out


# --------------------------------------------------------------------------------------------
# exercise 1: the referral curve


def _curve(correct: torch.Tensor, uncertainty: torch.Tensor, fractions, *, kept_of=None, descending=False,
           over_all=False, referred=False, error=False) -> torch.Tensor:
    """The referral curve and its usual variants (the mistakes the checker names)."""
    n = len(correct)
    order = torch.argsort(uncertainty, descending=descending, stable=True)
    ranked = correct[order].double()
    out = []
    for r in fractions:
        k = kept_of(n, r) if kept_of is not None else round(n * (1 - r))
        k = min(max(k, 0), n)
        if over_all:
            value = ranked.mean()
        elif referred:
            value = ranked[k:].mean() if k < n else torch.tensor(float("nan"))
        else:
            value = ranked[:k].mean() if k > 0 else torch.tensor(float("nan"))
        out.append(float(1 - value if error else value))
    return torch.tensor(out, dtype=torch.float64)


def check_referral_curve(fn) -> None:
    """Check ``fn(correct, uncertainty, fractions)``, the accuracy of the cases kept when the most uncertain are referred.

    For each referred fraction ``r`` the ``k = round(N (1 - r))`` cases of smallest uncertainty are
    kept (the nearest integer to ``N (1 - r)``) and the other ``N - k`` are referred; the accuracy of
    the kept cases is returned, one number per fraction, in the order of ``fractions``. Compared
    with :func:`~dropoutbook.referral_curve` (forbidden during the check, however it was imported)
    on several sizes ``N``, with fractions for which ``r N`` is not a whole number (nor a half, so
    that the rounding of halves does not matter) and fractions that are not in increasing order;
    the uncertainties have no ties, so any sorting works. Recognized mistakes: referring the most
    *certain* cases, the accuracy of all cases (or of the referred ones) instead of the kept ones,
    keeping a fraction ``r`` instead of referring it, the error rate instead of the accuracy, the
    number kept rounded down or up instead of to the nearest integer, an off-by-one in the number
    kept, and the values in the order of the sorted fractions. The inputs must not be modified.

    Exercise of chapter 15, "Applications".
    """
    g = torch.Generator().manual_seed(151)
    cases = [(40, [0.0, 0.1, 0.25, 0.33]), (23, [0.0, 0.17, 0.3, 0.52]), (57, [0.05, 0.2, 0.41, 0.6]),
             (31, [0.3, 0.0, 0.55, 0.12])]
    with torch.random.fork_rng(devices=[]), \
            _library_forbidden(_uncertainty, "sort the cases yourself (torch.argsort)", imported=True):
        for n, fractions in cases:
            correct = torch.rand(n, generator=g) < 0.75
            # errors tend to be uncertain, but not always, so that every variant gives another curve
            uncertainty = torch.rand(n, generator=g, dtype=torch.float64) + 0.6 * (~correct).double()
            c0, u0 = correct.clone(), uncertainty.clone()
            got = _vector(call_student(fn, correct, uncertainty, list(fractions), what="your referral_curve"),
                          len(fractions), "your referral_curve", allow_nan=True)
            if not torch.equal(correct, c0) or not torch.equal(uncertainty, u0):
                raise CheckFailed("your referral_curve changed its inputs in place (sort a copy, or use torch.argsort)")
            want = _curve(correct, uncertainty, fractions)
            if torch.isnan(got).any() or not torch.allclose(got, want, atol=1e-9):
                raise CheckFailed(_referral_hint(correct, uncertainty, fractions, got, want))
    passed("referral curves for N = " + ", ".join(str(n) for n, _ in cases)
           + ", fractions that do and do not divide N, in and out of increasing order")


def _referral_hint(correct, uncertainty, fractions, got, want) -> str:
    n = len(correct)
    i = int((got - want).abs().argmax())
    where = (f"with N = {n} cases and r = {fractions[i]} referred you return {got[i].item():.6g}, it should be "
             f"{want[i].item():.6g}")
    variants = [
        (dict(descending=True), "you refer the most CERTAIN cases: set aside those of LARGEST uncertainty and keep "
                                "the most certain ones"),
        (dict(over_all=True), "you return the accuracy of all N cases; the curve is the accuracy of the KEPT cases "
                              "only"),
        (dict(referred=True), "you return the accuracy of the referred cases; the curve is that of the cases that "
                              "are kept"),
        (dict(error=True), "you return the error rate (1 - accuracy) of the kept cases; return their accuracy"),
        (dict(kept_of=lambda m, r: round(m * r)), "you KEEP a fraction r of the cases; r is the fraction referred, "
                                                  "so round(N (1 - r)) cases are kept"),
        (dict(kept_of=lambda m, r: max(round(m * r), 1)), "you KEEP a fraction r of the cases; r is the fraction "
                                                          "referred, so round(N (1 - r)) cases are kept"),
        (dict(kept_of=lambda m, r: math.floor(m * (1 - r))), "the number kept is rounded down; round N (1 - r) "
                                                             "to the nearest integer"),
        (dict(kept_of=lambda m, r: math.ceil(m * (1 - r))), "the number kept is rounded up; round N (1 - r) to "
                                                            "the nearest integer"),
        (dict(kept_of=lambda m, r: round(m * (1 - r)) - 1), "off by one: you keep one case too few "
                                                            "(round(N (1 - r)) cases are kept)"),
        (dict(kept_of=lambda m, r: round(m * (1 - r)) + 1), "off by one: you keep one case too many "
                                                            "(round(N (1 - r)) cases are kept)"),
    ]
    if list(fractions) != sorted(fractions):
        variants.append((dict(fractions=sorted(fractions)), "your values are in the order of the sorted fractions; "
                                                            "return one value per fraction in the order given"))
    for kwargs, hint in variants:
        kwargs = dict(kwargs)
        candidate = _curve(correct, uncertainty, kwargs.pop("fractions", fractions), **kwargs)
        if torch.allclose(got, candidate, atol=1e-9, equal_nan=True):
            return f"{hint} ({where})"
    if torch.isnan(got).any():
        return f"your referral_curve returned NaN: look for a division by zero, an empty set of cases ({where})"
    return where


# --------------------------------------------------------------------------------------------
# exercise 2: a zero-inflated negative-binomial sampler


def _zinb_moments(mu, theta, pi):
    """Mean, variance, fourth central moment and zero fraction of the ZINB, in closed form
    (``theta = math.inf`` is the zero-inflated Poisson)."""
    lam = [mu**k * math.prod(1 + j / theta for j in range(k)) for k in range(5)]  # E[lambda^k], Gamma
    y = [1.0, lam[1], lam[1] + lam[2], lam[1] + 3 * lam[2] + lam[3],
         lam[1] + 7 * lam[2] + 6 * lam[3] + lam[4]]  # E[Y^k] of the Poisson mixture (Stirling numbers)
    r1, r2, r3, r4 = ((1 - pi) * v for v in y[1:])
    m2 = r2 - r1**2
    m4 = r4 - 4 * r1 * r3 + 6 * r1**2 * r2 - 3 * r1**4
    nb_zero = math.exp(-mu) if math.isinf(theta) else (theta / (theta + mu)) ** theta
    return r1, m2, m4, pi + (1 - pi) * nb_zero


def _zinb_stats(mu, theta, pi):
    mean, var, _, zero = _zinb_moments(mu, theta, pi)
    return mean, var, zero


def check_zinb_sampler(fn) -> None:
    """Check ``fn(mu, theta, pi, n)``, ``n`` independent zero-inflated negative-binomial counts.

    The counts are :math:`X = B\\,Y` with :math:`B \\sim \\mathrm{Bernoulli}(1 - \\pi)` and
    :math:`Y \\sim \\mathrm{NB}(\\mu, \\theta)` (mean :math:`\\mu`, variance :math:`\\mu + \\mu^2/\\theta`), e.g.
    as a Gamma-Poisson mixture, one :math:`B` and one :math:`Y` per count. For three settings
    100,000 draws are taken (torch's global generator is seeded first, and restored afterwards) and
    their mean, variance and fraction of zeros are compared with the chapter's derivation, within 5
    standard errors computed from the ZINB's own moments (not from the draws, so that no outlier
    widens them). The result must be a vector of shape ``(n,)``, different on every call, with the
    draws independent of their position. :func:`~dropoutbook.sample_zinb` is forbidden, however it
    was imported. Recognized mistakes, each from the moments it produces: :math:`\\pi` and
    :math:`1 - \\pi` swapped, no zero inflation (the technical zeros never added, or one Bernoulli for
    the whole vector), the NB variance :math:`\\mu + \\mu^2\\theta` (the dispersion used upside down),
    a Poisson in place of the negative binomial, the Gamma's rate and scale confused (the same
    distribution as torch's ``NegativeBinomial`` given ``probs = theta / (theta + mu)``), survivors
    rescaled by :math:`1/(1 - \\pi)`, counts that are not whole numbers, a result of the wrong shape,
    sorted counts, technical zeros at fixed positions, reused draws, and the same sample on every call.

    Exercise of chapter 15, "Applications".
    """
    pis = _drawn_rates([(0.1, 0.25), (0.3, 0.45), (0.55, 0.7)], seed=152)
    settings = [(3.0, 2.0, pis[0]), (8.0, 0.7, pis[1]), (1.5, 4.0, pis[2])]
    n = 100_000
    with torch.random.fork_rng(devices=[]), \
            _library_forbidden(_data, "draw with torch", names=["sample_zinb"], imported=True):
        for k, (mu, theta, pi) in enumerate(settings):
            torch.manual_seed(1520 + k)
            x = _zinb_draws(fn, mu, theta, pi, n)
            if k == 0:
                torch.manual_seed(1529)
                if torch.equal(x, _zinb_draws(fn, mu, theta, pi, n)):
                    raise CheckFailed("your sampler returns the same counts on every call: draw from torch's global "
                                      "generator (do not seed a generator of your own inside the function)")
            _check_zinb_independent(x)
            _check_zinb_moments(x, mu, theta, pi)
    passed("mean, variance and zero fraction as derived for " + "; ".join(
        f"mu = {mu}, theta = {theta}, pi = {pi}" for mu, theta, pi in settings))


def _zinb_draws(fn, mu, theta, pi, n):
    out = call_student(fn, mu, theta, pi, n, what="your sampler")
    if isinstance(out, (torch.Tensor, np.ndarray)) and tuple(out.shape) != (n,):
        raise CheckFailed(f"your sampler should return {n} counts, a vector of shape ({n},), got shape "
                          f"{tuple(out.shape)}")
    x = _vector(out, n, "your sampler")
    if not torch.isfinite(x).all():
        raise CheckFailed("your counts must be finite, got " + f"{x[~torch.isfinite(x)][0].item()}")
    if (x < 0).any() or not torch.equal(x, x.round()):
        bad = x[(x < 0) | (x != x.round())][0].item()
        hint = (" (did you divide the survivors by 1 - pi, as inverted dropout does? technical zeros are "
                "not rescaled)" if pi > 0 else "")
        raise CheckFailed(f"your counts must be non-negative whole numbers, got {bad:.6g}{hint}")
    if not (x == 0).all():
        return x
    raise CheckFailed("every count is 0: did you draw one Bernoulli for the whole vector? Draw one per count, "
                      "each 0 with probability pi")


def _check_zinb_independent(x):
    """The draws must not depend on their position: not sorted, no block of zeros, no reused draws."""
    if bool((x[1:] >= x[:-1]).all()) or bool((x[1:] <= x[:-1]).all()):
        raise CheckFailed("your counts are sorted: return the draws in the order they were drawn (independent "
                          "draws, not sorted ones)")
    zero = (x == 0).to(torch.int8)
    for run in (zero, zero.flip(0)):  # leading (or trailing) zeros: 60 in a row has probability below 1e-9 here
        first = int(torch.argmin(run)) if not run.all() else len(run)
        if first >= 60:
            raise CheckFailed(f"the technical zeros are at fixed positions ({first} zeros in a row at one end): set "
                              "EACH count to 0 independently, with probability pi (one Bernoulli per count)")
    found = _reused_draws(x)
    if found is not None:
        shift, _, agree, expected = found
        raise CheckFailed(f"your counts are not independent draws: counts {shift} apart are equal in {agree:.3f} of "
                          f"the places, independent ones would be in about {expected:.3f} (draws reused or tiled?)")


def _check_zinb_moments(x, mu, theta, pi):
    n = len(x)
    mean, var = x.mean().item(), x.var().item()
    zero = (x == 0).double().mean().item()
    got = (mean, var, zero)

    def fits(mu_, theta_, pi_):  # within 5 standard errors of that ZINB's own moments
        m1, m2, m4, z = _zinb_moments(mu_, theta_, pi_)
        se = (math.sqrt(m2 / n), math.sqrt(max(m4 - m2**2, 0.0) / n) + 1e-12, math.sqrt(max(z * (1 - z), 1e-12) / n))
        return all(abs(g - s) <= _Z * e for g, s, e in zip(got, (m1, m2, z), se))

    if fits(mu, theta, pi):
        return
    want = _zinb_stats(mu, theta, pi)
    where = (f" (mu = {mu}, theta = {theta}, pi = {pi}: your draws have mean {mean:.4g}, variance {var:.4g} and "
             f"{zero:.4f} zeros; the ZINB has {want[0]:.4g}, {want[1]:.4g} and {want[2]:.4f})")
    candidates = [
        ((mu, theta, 1 - pi), "pi and 1 - pi are swapped: a count is a technical zero with probability "
                              "pi, so it SURVIVES with probability 1 - pi"),
        ((mu, theta, 0.0), "there are no technical zeros: set each count to 0 with probability pi "
                           "(X = B Y with B ~ Bernoulli(1 - pi), one Bernoulli per count, not one Bernoulli for "
                           "the whole vector)"),
        ((mu, 1 / theta, pi), "your negative binomial has variance mu + mu^2 theta: the dispersion is "
                              "used upside down, the NB variance is mu + mu^2 / theta (Gamma with shape "
                              "theta and mean mu)"),
        ((mu, math.inf, pi), "your counts are Poisson, not negative binomial: draw the Poisson rate from a "
                             "Gamma(shape theta, rate theta / mu) first"),
        ((theta**2 / mu, theta, pi), "your negative binomial has mean theta^2 / mu instead of mu: the Gamma's rate "
                                     "and scale are confused (shape theta and rate theta / mu, i.e. scale mu / "
                                     "theta), or torch's NegativeBinomial got probs = theta / (theta + mu): its "
                                     "probs is the probability of a success, use probs = mu / (theta + mu) with "
                                     "total_count = theta"),
    ]
    for stats, hint in candidates:
        if fits(*stats):
            raise CheckFailed(hint + where)
    raise CheckFailed("your draws do not have the moments of the ZINB" + where)


# --------------------------------------------------------------------------------------------
# exercise 3: the MC-dropout treatment effect of a two-headed model


class _TwoHeads(nn.Module):
    """Inverted dropout on the input, then two linear heads: control (column 0) and treated (column 1)."""

    def __init__(self, w0: torch.Tensor, w1: torch.Tensor, p: float):
        super().__init__()
        self.drop = nn.Dropout(p)
        self.heads = nn.Linear(len(w0), 2, bias=False).double()
        with torch.no_grad():
            self.heads.weight.copy_(torch.stack([w0, w1]))

    def forward(self, x):
        return self.heads(self.drop(x))


def check_mc_cate(fn) -> None:
    """Check ``fn(model, x, T)``, the MC-dropout treatment effect: ``(mean, variance)`` of the sampled effects.

    ``model(x)`` returns shape ``(B, 2)``, the outcome under control (column 0) and under treatment
    (column 1); the model is given in evaluation mode (and once in training mode) and must be
    returned in the mode it was given. The answer must run ``T`` passes with dropout on, take the
    effect ``treated - control`` of each pass, and return its mean and its variance over the
    passes, one of each per row of ``x``. The checker's model is linear with dropout on its input,
    so that the expected mean :math:`(w_1 - w_0)\\cdot x`, the variance
    :math:`\\frac{p}{1-p}\\sum_j (w_{1j} - w_{0j})^2 x_j^2` and the spread of both over the passes are
    known in closed form; the average over many identical rows is compared with them within 5
    standard errors of those closed forms (not of the answer's own spread, so that no outlier
    widens them), every row must lie within the range that any pass can give, and the model counts
    the rows it sees with dropout on, so that exactly ``T`` passes must be run.
    :func:`~dropoutbook.mc_cate` is forbidden, however it was imported (:func:`~dropoutbook.mc_predict`
    is allowed). Recognized mistakes: control minus treated, dropout off (evaluation mode), the
    heads' variances summed (or the two heads from passes with independent masks), the standard
    deviation, the standard error or the variance of the mean in place of the variance, one pass
    repeated ``T`` times, another number of passes than ``T``, a mean that is not averaged over the
    passes, and a model left in another mode than the one it was given in.

    Exercise of chapter 15, "Applications".
    """
    ps = _drawn_rates([(0.15, 0.3), (0.4, 0.6)], seed=153)
    g = torch.Generator().manual_seed(153)
    shown = []
    pending = None  # the mistakes that one setting could not tell apart
    with torch.random.fork_rng(devices=[]), \
            _library_forbidden(_causal, "use dropoutbook.mc_predict or your own loop of passes", imported=True):
        for k, (p, d, T, training) in enumerate(((ps[0], 4, 40, False), (ps[1], 6, 25, False), (ps[0], 3, 20, True))):
            w0 = torch.randn(d, generator=g, dtype=torch.float64)
            w1 = w0 + 0.3 * torch.randn(d, generator=g, dtype=torch.float64)  # the heads are close: a strong covariance
            x0 = torch.randn(d, generator=g, dtype=torch.float64) + 1.0
            model = _TwoHeads(w0, w1, p).train(training)
            weights_before = model.heads.weight.detach().clone()
            rows = 300
            x = x0.expand(rows, d).clone()
            x_before = x.clone()
            seen: list[int] = []
            model.drop.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]) if mod.training else None)
            torch.manual_seed(1530 + k)
            out = call_student(fn, model, x, T, what="your mc_cate")
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise CheckFailed(f"your mc_cate should return a pair (mean, variance), got {type(out).__name__}")
            mean, var = (_vector(v, rows, f"the {name} of your mc_cate") for v, name in zip(out, ("mean", "variance")))
            if not torch.equal(x, x_before):
                raise CheckFailed("your mc_cate changed x in place")
            if not torch.equal(model.heads.weight.detach(), weights_before):
                raise CheckFailed("your mc_cate changed the model's weights: MC dropout only samples masks, it trains "
                                  "nothing (no optimizer step, no in-place change of a parameter)")
            if not training and (model.training or model.drop.training):
                raise CheckFailed("your mc_cate left the model in training mode: restore its mode (or use "
                                  "dropoutbook.mc_dropout / mc_predict, which do)")
            if training and not (model.training and model.drop.training):
                raise CheckFailed("your mc_cate changed the model's mode: it was given in training mode and comes back "
                                  "in evaluation mode. Restore the mode it had (was = model.training; ...; "
                                  "model.train(was)), or use dropoutbook.mc_dropout / mc_predict, which do")
            ambiguous = _check_cate_moments(mean, var, w0, w1, x0, p, T, sum(seen) / rows)
            if ambiguous is not None:
                if pending is not None:
                    common = [h for h in pending[0] if h in ambiguous[0]] or pending[0]
                    raise CheckFailed(common[0] + ambiguous[1])
                pending = ambiguous
            shown.append(f"p = {p}, {d} covariates, T = {T}" + (", a model in training mode" if training else ""))
    if pending is not None:
        raise CheckFailed(pending[0][0] + pending[1])
    passed("effect treated - control and the variance of the difference for " + "; ".join(shown))


def _cate_closed_form(diff, x0, p, T):
    """The effect, its variance over passes, and the standard errors (over one row) of a row's mean and
    variance (divisor T - 1) for the checker's linear model with input dropout."""
    a = diff * x0
    e2, e4 = p / (1 - p), p**4 / (1 - p) ** 3 + p  # moments of m / (1 - p) - 1, m ~ Bernoulli(1 - p)
    var = e2 * float((a**2).sum())
    mu4 = float((a**4).sum()) * (e4 - 3 * e2**2) + 3 * var**2
    var_of_var = mu4 / T - var**2 * (T - 3) / (T * (T - 1))
    return float(a.sum()), var, math.sqrt(var / T), math.sqrt(max(var_of_var, 0.0)), mu4


def _check_cate_moments(mean, var, w0, w1, x0, p, T, passes):
    diff = w1 - w0
    tau, want, m_row, v_row, mu4 = _cate_closed_form(diff, x0, p, T)
    summed = p / (1 - p) * float(((w0**2 + w1**2) * x0**2).sum())
    rows = len(mean)
    m_se, v_se = m_row / math.sqrt(rows), v_row / math.sqrt(rows)
    m, v = mean.mean().item(), var.mean().item()
    where = (f" (p = {p}, T = {T}: your mean effect is {m:.4g} and variance {v:.4g}; expected {tau:.4g} and "
             f"{want:.4g})")
    if var.abs().max().item() == 0:
        if abs(m - tau) < 1e-9:
            raise CheckFailed("your variance is 0 and your effect is the deterministic one: dropout is off. Run the "
                              "passes with dropout ON (dropoutbook.mc_dropout(model) or dropoutbook.mc_predict)" + where)
        raise CheckFailed("your variance is 0 but your effect is not the deterministic one: every pass uses the "
                          "same mask. Draw a fresh mask in each of the T passes" + where)
    if not math.isclose(passes, T):
        hint = (": did you take each head from its own passes, with independent masks? The two heads of one pass "
                "share its mask, so take both from the same pass" if math.isclose(passes, 2 * T) else
                ": run exactly T passes")
        raise CheckFailed(f"your mc_cate ran {passes:g} passes with dropout on (the model saw {passes:g} times the "
                          f"rows of x in training mode), T = {T} were asked{hint}" + where)
    if abs(m + tau) <= _Z * m_se and abs(m - tau) > _Z * m_se:
        raise CheckFailed("your effect has the wrong sign: the effect is treated (column 1) minus control (column 0)"
                          + where)
    a = diff * x0
    lo, hi = (float(a.clamp(max=0).sum()) / (1 - p), float(a.clamp(min=0).sum()) / (1 - p))
    slack = 1e-9 * (hi - lo)
    bad = ((mean < lo - slack) | (mean > hi + slack)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise CheckFailed(f"row {i} of your mean effect is {mean[i].item():.4g}, outside [{lo:.4g}, {hi:.4g}], the range "
                          "of the effects that any pass can give: the mean of T effects lies within it" + where)
    if abs(m - tau) > _Z * m_se:
        raise CheckFailed("your mean effect is not the average over the passes of treated - control" + where)
    spread = mean.var().item()  # the row means of T passes vary by want / T
    spread_se = math.sqrt(max((mu4 / T**3 + 3 * (T - 1) * want**2 / T**3) - (want / T) ** 2, 0.0) / rows) \
        + want / T * math.sqrt(2 / (rows - 1))
    if abs(spread - want / T) > _Z * spread_se:
        raise CheckFailed(f"across identical rows your mean effects vary by {spread:.4g}, the average of T passes "
                          f"would vary by about var / T = {want / T:.4g}: average the effect over the T passes" + where)
    if abs(v - want) <= _Z * v_se or abs(v - want * (T - 1) / T) <= _Z * v_se:  # divisor T - 1 or T
        return
    squares = (var**2).mean().item()
    candidates = [
        (v, summed, "you add the variances of the two heads (or take them from passes with independent masks): the "
                    "heads of one pass share the mask, so take the variance of the DIFFERENCE of the two heads, pass "
                    "by pass, which includes their covariance"),
        (v, want / T, "you return the variance of the MEAN (divided by T); return the variance of the sampled effects"),
        (v, summed / T, "you return the variance of the mean of the summed head variances; take the variance of the "
                        "sampled effects treated - control, pass by pass"),
        (squares, want, "you return the standard deviation; return the variance of the sampled effects"),
        (squares, want / T, "you return the standard error sqrt(var / T) of the mean effect; return the variance of "
                            "the sampled effects"),
    ]
    matches = [hint for got, value, hint in candidates
               if abs(got - value) <= _Z * v_se * value / want or abs(got - value * (T - 1) / T) <= _Z * v_se * value / want]
    if len(matches) == 1:
        raise CheckFailed(matches[0] + where)
    if matches:  # two mistakes give about the same numbers here: the next setting tells them apart
        return matches, where
    top = (hi - lo) ** 2 / 4 * T / (T - 1) * (1 + 1e-9)
    bad = ((var < 0) | (var > top)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise CheckFailed(f"your variance is not that of the sampled effects treated - control: its row {i} is "
                          f"{var[i].item():.4g}, outside [0, {top:.4g}], the range of the variances that T effects "
                          "within the range of a pass can have" + where)
    raise CheckFailed("your variance is not that of the sampled effects treated - control" + where)


# --------------------------------------------------------------------------------------------
# exercise 4: the masked reconstruction loss of a denoising autoencoder


class _Recorder(nn.Module):
    """A linear autoencoder that records every input it sees."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x @ self.weight


def check_masked_loss(fn) -> None:
    """Check ``fn(model, x, p)``, the training loss of a denoising autoencoder with input dropout.

    Each entry of ``x`` (cells by genes) is hidden with probability ``p``, independently of every
    other entry; the survivors are divided by ``1 - p``; the model is applied once to the corrupted
    input; the loss is the mean squared error between the model's output and the *clean* ``x``
    over the hidden entries only. The checker's model records what it sees, so the loss is
    recomputed from the student's own mask, and several rates are used; the function is called
    twice for each batch, and each call must draw a fresh mask, independent across rows and columns.
    :func:`~dropoutbook.masked_reconstruction_loss` is forbidden, however it was imported.
    Recognized mistakes: keep and drop swapped, survivors not rescaled, one mask shared by every row
    (cell) of the batch, whole rows or columns hidden, the same mask on every call (a generator
    seeded inside the function, a mask kept from an earlier call), a mask that reuses its draws
    (e.g. half of the rows copying the other half), a fixed number of hidden entries (per row or in
    all), the model applied to the clean input, the loss
    on all entries or on the visible ones, a mean over every entry of masked tensors (e.g.
    ``F.mse_loss(out * hidden, x * hidden)``) or over the expected number ``p N`` of hidden entries,
    the corrupted input as the target, a sum in place of the mean, no gradient, and more than one
    call of the model.

    Exercise of chapter 15, "Applications".
    """
    ps = _drawn_rates([(0.15, 0.35), (0.6, 0.8)], seed=154)
    g = torch.Generator().manual_seed(154)
    with torch.random.fork_rng(devices=[]), \
            _library_forbidden(_imputation, "write the mask and the loss with torch", imported=True):
        for k, (p, shape) in enumerate(((ps[0], (200, 30)), (ps[1], (120, 50)))):
            x = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5  # no zeros: a hidden entry shows as 0
            weight = torch.randn(shape[1], shape[1], generator=g, dtype=torch.float64) / shape[1] ** 0.5
            x_before = x.clone()
            torch.manual_seed(1540 + k)
            masks = []
            for _ in range(2):  # two calls on the same batch: each draws its own mask
                model = _Recorder(weight)
                loss = call_student(fn, model, x, p, what="your masked_loss")
                if not torch.equal(x, x_before):
                    raise CheckFailed("your masked_loss changed x in place: corrupt a copy (x * mask / (1 - p))")
                _check_masked_once(loss, model, x, p)
                masks.append(model.seen[0] == 0)
            where = f" (x of shape {tuple(x.shape)}, p = {p})"
            per_row = [m.sum(dim=1) for m in masks]
            if all(bool((r == r[0]).all()) for r in per_row):
                raise CheckFailed(f"every row (cell) of your mask hides exactly {int(per_row[0][0])} entries: with an "
                                  "independent draw per entry the count varies from row to row (a binomial). Hide each "
                                  "entry with probability p, e.g. torch.rand(x.shape) < p, not a fixed number of them"
                                  + where)
            counts = [int(m.sum()) for m in masks]
            if counts[0] == counts[1] and abs(counts[0] - p * x.numel()) <= 1:
                raise CheckFailed(f"your mask hides exactly {counts[0]} entries (p N rounded) on every call: with an "
                                  "independent draw per entry the number hidden varies (a binomial). Hide each entry "
                                  "with probability p, e.g. torch.rand(x.shape) < p, not a fixed number of them" + where)
            if torch.equal(masks[0], masks[1]):
                raise CheckFailed("your masked_loss hides the same entries on every call (the same mask on every call: a "
                                  "generator seeded inside the function, or a mask kept from an earlier call?): draw "
                                  "a fresh mask at each call, from torch's global generator" + where)
            found = _reused_draws(masks[0].double())
            if found is not None:
                shift, dim, agree, expected = found
                raise CheckFailed(f"your mask reuses its draws: along {dim}, entries {shift} apart agree in {agree:.3f} "
                                  f"of the places, independent draws would in about {expected:.3f} (rows copying "
                                  "other rows?). Draw one independent value per entry, e.g. torch.rand(x.shape) < p"
                                  + where)
    passed(f"hidden fractions, scaling, per-entry masks and the loss on the hidden entries for p = {ps[0]} and {ps[1]}")


def _check_masked_once(loss, model, x, p):
    where = f" (x of shape {tuple(x.shape)}, p = {p})"
    if len(model.seen) != 1:
        raise CheckFailed(f"your masked_loss called the model {len(model.seen)} times; apply it once, to the "
                          "corrupted input" + where)
    if type(loss) is not torch.Tensor or loss.numel() != 1:
        raise CheckFailed(f"your masked_loss should return a one-element tensor, got {type(loss).__name__}")
    seen = model.seen[0].to(torch.float64)
    if seen.shape != x.shape:
        raise CheckFailed(f"the model should see a batch of the shape of x {tuple(x.shape)}, got {tuple(seen.shape)}")
    hidden = seen == 0
    frac = hidden.double().mean().item()
    se = math.sqrt(p * (1 - p) / x.numel())
    if not hidden.any():
        raise CheckFailed("the model sees the clean x: hide each entry with probability p before calling it" + where)
    if (hidden == hidden[0]).all():
        raise CheckFailed("every row (cell) has the same mask: draw a fresh mask entry for every entry of the batch, "
                          "e.g. torch.rand(x.shape) < p" + where)
    if (hidden.all(dim=1) | ~hidden.any(dim=1)).all():
        raise CheckFailed("you hide whole rows (cells): hide entries (genes of a cell) independently" + where)
    if (hidden.all(dim=0) | ~hidden.any(dim=0)).all():
        raise CheckFailed("you hide whole columns (genes) for the whole batch: hide every entry independently" + where)
    if abs(frac - (1 - p)) <= _Z * se and abs(frac - p) > _Z * se:
        raise CheckFailed(f"{frac:.3f} of the entries are hidden, about 1 - p: keep and drop are swapped (an entry is "
                          "HIDDEN with probability p)" + where)
    if abs(frac - p) > _Z * se:
        raise CheckFailed(f"{frac:.3f} of the entries are hidden; each should be hidden with probability p" + where)
    kept = ~hidden
    if torch.allclose(seen[kept], x[kept]):
        raise CheckFailed("the survivors are not rescaled: divide the kept entries by 1 - p (inverted dropout), so "
                          "that the input keeps its expected size" + where)
    if not torch.allclose(seen[kept], x[kept] / (1 - p)):
        raise CheckFailed("the visible entries should be x / (1 - p)" + where)
    out = (seen @ model.weight).detach()
    value = loss.detach().double().item()
    sq = (out - x) ** 2
    truth = sq[hidden].mean().item()
    if math.isclose(value, truth, rel_tol=1e-6):
        if not loss.requires_grad:
            raise CheckFailed("your loss has no gradient: compute it from the model's output with torch operations"
                              + where)
        return
    mistakes = [
        (sq.mean().item(), "you average the error over ALL entries; the loss is on the hidden entries only (on the "
                           "visible ones the network could just copy its input)"),
        (sq[kept].mean().item(), "you score the VISIBLE entries; the loss is on the hidden ones, which the network "
                                 "must predict from the rest"),
        (((out - seen) ** 2)[hidden].mean().item(), "your target is the corrupted input (zeros where hidden); compare "
                                                    "with the clean x"),
        (((out - seen) ** 2).mean().item(), "your target is the corrupted input and the loss covers every entry: "
                                            "compare with the clean x on the hidden entries"),
        (sq[hidden].sum().item(), "you sum the squared errors; average them over the hidden entries"),
        (sq[hidden].sum().item() / x.numel(), "you divide by the number of ALL entries (F.mse_loss of masked tensors "
                                              "such as out * hidden averages over every entry, the zeros included): "
                                              "divide the sum over the hidden entries by their number"),
        (sq[hidden].sum().item() / (p * x.numel()), "you divide by the expected number p N of hidden entries; divide "
                                                    "by the number actually hidden in this mask"),
    ]
    for candidate, hint in mistakes:
        if math.isclose(value, candidate, rel_tol=1e-6):
            raise CheckFailed(hint + where)
    raise CheckFailed(f"your loss is {value:.6g}, the mean squared error on the hidden entries is {truth:.6g}" + where)
