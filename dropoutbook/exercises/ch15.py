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
from ._core import CheckFailed, _drawn_rates, _forbidden, _library_forbidden, _patched, call_student, passed

__all__ = ["check_referral_curve", "check_zinb_sampler", "check_mc_cate", "check_masked_loss"]

_Z = 5.0


def _vector(out, n: int, what: str, *, allow_nan: bool = False) -> torch.Tensor:
    """A student's 1-D answer (tensor, array, list of numbers) as a float64 tensor of length ``n``."""
    if isinstance(out, (list, tuple)):
        try:
            out = torch.tensor([float(v) for v in out], dtype=torch.float64)
        except (TypeError, ValueError) as exc:
            raise CheckFailed(f"{what} should return numbers, got {out!r:.80}") from exc
    elif isinstance(out, np.ndarray):
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

    For each referred fraction ``r`` the ``round(N (1 - r))`` cases of smallest uncertainty are kept
    and their accuracy is returned (one number per fraction). Compared with
    :func:`~dropoutbook.referral_curve` (forbidden during the check) on several sizes ``N``, with
    fractions for which ``r N`` is not a whole number; the uncertainties have no ties, so any
    sorting works. Recognized mistakes: referring the most *certain* cases, the accuracy of all cases
    (or of the referred ones) instead of the kept ones, keeping a fraction ``r`` instead of referring
    it, the error rate instead of the accuracy, the number kept rounded down or up instead of to the
    nearest integer, and an off-by-one in the number kept. The inputs must not be modified.

    Exercise of chapter 15, "Applications".
    """
    g = torch.Generator().manual_seed(151)
    cases = [(40, [0.0, 0.1, 0.25, 0.33]), (23, [0.0, 0.17, 0.3, 0.52]), (57, [0.05, 0.2, 0.41, 0.6])]
    with _library_forbidden(_uncertainty, "sort the cases yourself (torch.argsort)"):
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
           + ", fractions that do and do not divide N")


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
    for kwargs, hint in variants:
        candidate = _curve(correct, uncertainty, fractions, **kwargs)
        if torch.allclose(got, candidate, atol=1e-9, equal_nan=True):
            return f"{hint} ({where})"
    if torch.isnan(got).any():
        return f"your referral_curve returned NaN: look for a division by zero, an empty set of cases ({where})"
    return where


# --------------------------------------------------------------------------------------------
# exercise 2: a zero-inflated negative-binomial sampler


def _zinb_stats(mu, theta, pi):
    nb_zero = (theta / (theta + mu)) ** theta
    var = (1 - pi) * mu * (1 + mu / theta) + pi * (1 - pi) * mu**2
    return (1 - pi) * mu, var, pi + (1 - pi) * nb_zero


def check_zinb_sampler(fn) -> None:
    """Check ``fn(mu, theta, pi, n)``, ``n`` independent zero-inflated negative-binomial counts.

    The counts are :math:`X = B\\,Y` with :math:`B \\sim \\mathrm{Bernoulli}(1 - \\pi)` and
    :math:`Y \\sim \\mathrm{NB}(\\mu, \\theta)` (mean :math:`\\mu`, variance :math:`\\mu + \\mu^2/\\theta`), e.g.
    as a Gamma-Poisson mixture. For three settings 100,000 draws are taken (torch's global
    generator is seeded first) and their mean, variance and fraction of zeros are compared with the
    chapter's derivation, within 5 standard errors. :func:`~dropoutbook.sample_zinb` is forbidden.
    Recognized mistakes, each from the moments it produces: :math:`\\pi` and :math:`1 - \\pi` swapped,
    no zero inflation (the technical zeros never added), the NB variance :math:`\\mu + \\mu^2\\theta`
    (the dispersion used upside down), a Poisson in place of the negative binomial, the Gamma's
    rate and scale confused, survivors rescaled by :math:`1/(1 - \\pi)`, counts that are not whole
    numbers, and a result of the wrong shape.

    Exercise of chapter 15, "Applications".
    """
    pis = _drawn_rates([(0.1, 0.25), (0.3, 0.45), (0.55, 0.7)], seed=152)
    settings = [(3.0, 2.0, pis[0]), (8.0, 0.7, pis[1]), (1.5, 4.0, pis[2])]
    n = 100_000
    with _patched(_data, "sample_zinb", _forbidden("dropoutbook.sample_zinb", "draw with torch")), \
            _patched(__import__("dropoutbook"), "sample_zinb", _forbidden("dropoutbook.sample_zinb", "draw with torch")):
        for k, (mu, theta, pi) in enumerate(settings):
            torch.manual_seed(1520 + k)
            x = _vector(call_student(fn, mu, theta, pi, n, what="your sampler"), n, "your sampler")
            if (x < 0).any() or not torch.equal(x, x.round()):
                bad = x[(x < 0) | (x != x.round())][0].item()
                hint = (" (did you divide the survivors by 1 - pi, as inverted dropout does? technical zeros are "
                        "not rescaled)" if pi > 0 else "")
                raise CheckFailed(f"your counts must be non-negative whole numbers, got {bad:.6g}{hint}")
            _check_zinb_moments(x, mu, theta, pi)
    passed("mean, variance and zero fraction as derived for " + "; ".join(
        f"mu = {mu}, theta = {theta}, pi = {pi}" for mu, theta, pi in settings))


def _check_zinb_moments(x, mu, theta, pi):
    n = len(x)
    mean, var = x.mean().item(), x.var().item()
    zero = (x == 0).double().mean().item()
    se = (math.sqrt(var / n), var * math.sqrt(2 / (n - 1)) + ((x - mean) ** 4).mean().sqrt().item() / math.sqrt(n),
          math.sqrt(max(zero * (1 - zero), 1e-12) / n))
    got = (mean, var, zero)

    def fits(stats):
        return all(abs(g - s) <= _Z * e for g, s, e in zip(got, stats, se))

    if fits(_zinb_stats(mu, theta, pi)):
        return
    where = (f" (mu = {mu}, theta = {theta}, pi = {pi}: your draws have mean {mean:.4g}, variance {var:.4g} and "
             f"{zero:.4f} zeros; the ZINB has {_zinb_stats(mu, theta, pi)[0]:.4g}, {_zinb_stats(mu, theta, pi)[1]:.4g} "
             f"and {_zinb_stats(mu, theta, pi)[2]:.4f})")
    candidates = [
        (_zinb_stats(mu, theta, 1 - pi), "pi and 1 - pi are swapped: a count is a technical zero with probability "
                                         "pi, so it SURVIVES with probability 1 - pi"),
        (_zinb_stats(mu, theta, 0.0), "there are no technical zeros: set each count to 0 with probability pi "
                                      "(X = B Y with B ~ Bernoulli(1 - pi))"),
        (_zinb_stats(mu, 1 / theta, pi), "your negative binomial has variance mu + mu^2 theta: the dispersion is "
                                         "used upside down, the NB variance is mu + mu^2 / theta (Gamma with shape "
                                         "theta and mean mu)"),
        (_zinb_stats(mu, 1e12, pi), "your counts are Poisson, not negative binomial: draw the Poisson rate from a "
                                    "Gamma(shape theta, rate theta / mu) first"),
        (_zinb_stats(theta**2 / mu, theta, pi), "the Gamma's rate and scale are confused: the rate lambda must have "
                                                "mean mu, so shape theta and rate theta / mu (scale mu / theta)"),
    ]
    for stats, hint in candidates:
        if fits(stats):
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
    (column 1); the model is given in evaluation mode and must be returned in it. The answer must
    run ``T`` passes with dropout on, take the effect ``treated - control`` of each pass, and return
    its mean and its variance over the passes, one of each per row of ``x``. The checker's model
    is linear with dropout on its input, so that the expected mean :math:`(w_1 - w_0)\\cdot x` and
    variance :math:`\\frac{p}{1-p}\\sum_j (w_{1j} - w_{0j})^2 x_j^2` are known; the average over many
    identical rows is compared with them within 5 standard errors. :func:`~dropoutbook.mc_cate` is
    forbidden (:func:`~dropoutbook.mc_predict` is allowed). Recognized mistakes: control minus
    treated, dropout off (evaluation mode), the heads' variances summed (or the two heads from passes
    with independent masks), the standard deviation or the variance of the mean in place of the
    variance, one pass repeated ``T`` times, and a model left in training mode.

    Exercise of chapter 15, "Applications".
    """
    ps = _drawn_rates([(0.15, 0.3), (0.4, 0.6)], seed=153)
    g = torch.Generator().manual_seed(153)
    shown = []
    with _library_forbidden(_causal, "use dropoutbook.mc_predict or your own loop of passes"):
        for k, (p, d, T) in enumerate(((ps[0], 4, 40), (ps[1], 6, 25))):
            w0 = torch.randn(d, generator=g, dtype=torch.float64)
            w1 = w0 + 0.3 * torch.randn(d, generator=g, dtype=torch.float64)  # the heads are close: a strong covariance
            x0 = torch.randn(d, generator=g, dtype=torch.float64) + 1.0
            model = _TwoHeads(w0, w1, p).eval()
            rows = 300
            x = x0.expand(rows, d).clone()
            x_before = x.clone()
            torch.manual_seed(1530 + k)
            out = call_student(fn, model, x, T, what="your mc_cate")
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise CheckFailed(f"your mc_cate should return a pair (mean, variance), got {type(out).__name__}")
            mean, var = (_vector(v, rows, f"the {name} of your mc_cate") for v, name in zip(out, ("mean", "variance")))
            if not torch.equal(x, x_before):
                raise CheckFailed("your mc_cate changed x in place")
            if model.training or model.drop.training:
                raise CheckFailed("your mc_cate left the model in training mode: restore its mode (or use "
                                  "dropoutbook.mc_dropout / mc_predict, which do)")
            _check_cate_moments(mean, var, w0, w1, x0, p, T)
            shown.append(f"p = {p}, {d} covariates, T = {T}")
    passed("effect treated - control and the variance of the difference for " + "; ".join(shown))


def _check_cate_moments(mean, var, w0, w1, x0, p, T):
    diff = w1 - w0
    tau = float(diff @ x0)
    want = p / (1 - p) * float((diff**2 * x0**2).sum())
    summed = p / (1 - p) * float(((w0**2 + w1**2) * x0**2).sum())
    rows = len(mean)
    m, m_se = mean.mean().item(), mean.std().item() / math.sqrt(rows)
    v, v_se = var.mean().item(), var.std().item() / math.sqrt(rows)
    where = (f" (p = {p}, T = {T}: your mean effect is {m:.4g} and variance {v:.4g}; expected {tau:.4g} and "
             f"{want:.4g})")
    if var.abs().max().item() == 0:
        if abs(m - tau) < 1e-9:
            raise CheckFailed("your variance is 0 and your effect is the deterministic one: dropout is off. Run the "
                              "passes with dropout ON (dropoutbook.mc_dropout(model) or dropoutbook.mc_predict)" + where)
        raise CheckFailed("your variance is 0 but your effect is not the deterministic one: every pass uses the "
                          "same mask. Draw a fresh mask in each of the T passes" + where)
    if abs(m + tau) <= _Z * max(m_se, 1e-12) and abs(m - tau) > _Z * max(m_se, 1e-12):
        raise CheckFailed("your effect has the wrong sign: the effect is treated (column 1) minus control (column 0)"
                          + where)
    if abs(m - tau) > _Z * max(m_se, 1e-12):
        raise CheckFailed("your mean effect is not the average over the passes of treated - control" + where)
    if abs(v - want) <= _Z * v_se or abs(v - want * (T - 1) / T) <= _Z * v_se:  # divisor T - 1 or T
        return
    candidates = [
        (summed, "you add the variances of the two heads (or take them from passes with independent masks): the "
                 "heads of one pass share the mask, so take the variance of the DIFFERENCE of the two heads, pass "
                 "by pass, which includes their covariance"),
        (want / T, "you return the variance of the MEAN (divided by T); return the variance of the sampled effects"),
        (summed / T, "you return the variance of the mean of the summed head variances; take the variance of the "
                     "sampled effects treated - control, pass by pass"),
    ]
    for value, hint in candidates:
        if abs(v - value) <= _Z * v_se:
            raise CheckFailed(hint + where)
    if abs(v - math.sqrt(want)) <= _Z * (v_se + 0.05 * math.sqrt(want)) or abs((var**2).mean().item() - want) < 0.1 * want:
        raise CheckFailed("you return the standard deviation; return the variance of the sampled effects" + where)
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
    recomputed from the student's own mask, and several rates are used.
    :func:`~dropoutbook.masked_reconstruction_loss` is forbidden. Recognized mistakes: keep and drop
    swapped, survivors not rescaled, one mask shared by every row (cell) of the batch, whole rows or
    columns hidden, the model applied to the clean input, the loss on all entries or on the visible
    ones, the corrupted input as the target, a sum in place of the mean, no gradient, and more than
    one call of the model.

    Exercise of chapter 15, "Applications".
    """
    ps = _drawn_rates([(0.15, 0.35), (0.6, 0.8)], seed=154)
    g = torch.Generator().manual_seed(154)
    with _library_forbidden(_imputation, "write the mask and the loss with torch"):
        for k, (p, shape) in enumerate(((ps[0], (200, 30)), (ps[1], (120, 50)))):
            x = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5  # no zeros: a hidden entry shows as 0
            model = _Recorder(torch.randn(shape[1], shape[1], generator=g, dtype=torch.float64) / shape[1] ** 0.5)
            x_before = x.clone()
            torch.manual_seed(1540 + k)
            loss = call_student(fn, model, x, p, what="your masked_loss")
            if not torch.equal(x, x_before):
                raise CheckFailed("your masked_loss changed x in place: corrupt a copy (x * mask / (1 - p))")
            _check_masked_once(loss, model, x, p)
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
    ]
    for candidate, hint in mistakes:
        if math.isclose(value, candidate, rel_tol=1e-6):
            raise CheckFailed(hint + where)
    raise CheckFailed(f"your loss is {value:.6g}, the mean squared error on the hidden entries is {truth:.6g}" + where)
