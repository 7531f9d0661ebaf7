r"""Treatment effects with MC dropout: a two-headed network, its uncertainty, and where overlap fails (chapter 15).

An individual (conditional average) treatment effect is :math:`\tau(x) = \mu_1(x) - \mu_0(x)`, the
difference of the expected outcomes under treatment and under control. Each case is observed under
one arm only, so an estimate of :math:`\tau(x)` needs cases of *both* arms near :math:`x`: the
*overlap* (positivity) condition :math:`0 < e(x) < 1` on the propensity
:math:`e(x) = P(T = 1 \mid x)`. Where it fails, one arm's outcome is extrapolated. Jesson et al.
:cite:`jesson2020identifying` show that the epistemic uncertainty of a Bayesian (here: MC-dropout)
estimate grows there, and use it to *defer* recommendations. This module provides

* :func:`simulate_weak_overlap`, synthetic data with known potential outcomes and a region where
  the propensity is near 0 or 1;
* :class:`TARNet`, a shared trunk with one outcome head per arm :cite:`shalit2017estimating`,
  with dropout, trained on the factual outcomes by :func:`train_tarnet` (:func:`factual_loss`);
* :func:`mc_cate`, the MC-dropout estimate of :math:`\tau(x)` and its variance over the masks.

The deferral curve of the estimates is :func:`~dropoutbook.deferral_curve`. See chapter 15,
"Applications", section "Causal inference".
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ._validation import (check_covariates, check_factual_triple, check_float_dtype, check_float_tensor, check_generator,
                          check_input_dtype, check_int, check_module, check_outcomes, check_positive_dropout,
                          check_probability, check_real, check_seed, check_treatment, check_two_column_output)
from .uncertainty import dropout_modules, mc_predict

__all__ = ["CausalData", "simulate_weak_overlap", "TARNet", "factual_loss", "train_tarnet", "CATEPrediction",
           "mc_cate"]


class CausalData(NamedTuple):
    """Result of :func:`simulate_weak_overlap` (chapter 15, "Applications").

    Attributes:
        x: covariates, shape ``(n, 2)``.
        t: treatment indicators, bool, shape ``(n,)``.
        y: factual outcomes, :math:`y = \\mu_t(x) + \\varepsilon`, shape ``(n,)``.
        mu0: expected outcome under control, :math:`\\mu_0(x)`.
        mu1: expected outcome under treatment, :math:`\\mu_1(x)`.
        tau: the true effect :math:`\\tau(x) = \\mu_1(x) - \\mu_0(x)`.
        propensity: :math:`e(x) = P(T = 1 \\mid x)`.

    Examples:
        >>> data = simulate_weak_overlap(1000, seed=3)
        >>> bool(data.t[data.propensity > 0.99].all()), bool((~data.t[data.propensity < 0.01]).all())
        (True, True)
    """

    x: torch.Tensor
    t: torch.Tensor
    y: torch.Tensor
    mu0: torch.Tensor
    mu1: torch.Tensor
    tau: torch.Tensor
    propensity: torch.Tensor


def simulate_weak_overlap(n: int = 1000, *, overlap: float = 3.0, noise: float = 0.5, seed: int = 0,
                          dtype: torch.dtype = torch.float32) -> CausalData:
    r"""Synthetic observational data with known treatment effects and weak overlap at the edges.

    Two covariates :math:`x_1, x_2 \sim \mathcal N(0, 1)`; treatment with propensity
    :math:`e(x) = \sigma(\kappa x_1)` (``overlap`` is :math:`\kappa`): for :math:`|x_1|` beyond
    about :math:`4/\kappa`, nearly every case is treated (large :math:`x_1`) or untreated (small
    :math:`x_1`), so one arm is never seen there. The outcomes are

    .. math::
        \mu_0(x) = \sin(2 x_1) + \tfrac12 x_2, \qquad
        \tau(x) = 1 + \tfrac12 x_1^2, \qquad \mu_1 = \mu_0 + \tau, \qquad
        y = \mu_t(x) + \varepsilon,\ \varepsilon \sim \mathcal N(0, \sigma^2),

    with :math:`\sigma` = ``noise``: the control outcome bends and the effect grows exactly where
    overlap fails, so an estimate that extrapolates is wrong there. In the spirit of the
    weak-overlap simulations of :cite:`jesson2020identifying`, not a copy of them. See chapter 15,
    "Applications", section "Causal inference".

    Args:
        n: number of cases, a positive int.
        overlap: :math:`\kappa > 0`; larger means a wider region of weak overlap.
        noise: the outcome noise :math:`\sigma \ge 0`.
        seed: seed of the draws.
        dtype: floating dtype of the results (``t`` is bool).

    Examples:
        >>> data = simulate_weak_overlap(500, seed=0)
        >>> data.x.shape, data.t.dtype, bool(torch.allclose(data.tau, data.mu1 - data.mu0))
        (torch.Size([500, 2]), torch.bool, True)
    """
    n = check_int(n, "n", minimum=1)
    kappa = check_real(overlap, "overlap", positive=True)
    sigma = check_real(noise, "noise", minimum=0)
    check_float_dtype(dtype)
    rng = np.random.default_rng(check_seed(seed))
    x = rng.normal(size=(n, 2))
    e = 1 / (1 + np.exp(-kappa * x[:, 0]))
    t = rng.random(n) < e
    mu0 = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1]
    tau = 1 + 0.5 * x[:, 0] ** 2
    mu1 = mu0 + tau
    y = np.where(t, mu1, mu0) + sigma * rng.normal(size=n)
    as_t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    return CausalData(as_t(x), torch.as_tensor(t), as_t(y), as_t(mu0), as_t(mu1), as_t(mu1 - mu0), as_t(e))


class TARNet(nn.Module):
    r"""A two-headed outcome network: a shared trunk and one head per treatment arm, with dropout.

    .. math::
        \Phi(x) = \text{trunk}(x), \qquad \hat\mu_0(x) = h_0(\Phi(x)), \qquad \hat\mu_1(x) = h_1(\Phi(x)),

    the "treatment-agnostic representation network" of Shalit et al. :cite:`shalit2017estimating`
    (without its balancing penalty). The trunk has ``depth`` ReLU layers of width ``hidden``, each
    followed by dropout with rate ``p``; each head is a ReLU layer with dropout and a linear
    output. Both heads are computed in every forward pass from the *same* trunk output, so under MC
    dropout one mask gives both potential outcomes and their difference (:func:`mc_cate`). Trained
    on factual outcomes only (:func:`factual_loss`). See chapter 15, "Applications", section
    "Causal inference".

    Args:
        n_features: number of covariates, a positive int.
        hidden: width of every hidden layer, a positive int.
        p: drop probability in :math:`[0, 1)` after every hidden layer.
        depth: number of trunk layers, a positive int.

    Shape:
        input :math:`(B, \text{n\_features})`; output :math:`(B, 2)`, column 0 the outcome under
        control, column 1 under treatment.

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> TARNet(2, hidden=16, p=0.1)(torch.randn(5, 2)).shape
        torch.Size([5, 2])
    """

    def __init__(self, n_features: int, hidden: int = 64, *, p: float = 0.1, depth: int = 2):
        super().__init__()
        n_features = check_int(n_features, "n_features", minimum=1)
        hidden = check_int(hidden, "hidden", minimum=1)
        depth = check_int(depth, "depth", minimum=1)
        self.n_features = n_features
        self.p = check_probability(p, "p", allow_one=False)
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(n_features if i == 0 else hidden, hidden), nn.ReLU(), nn.Dropout(self.p)]
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(self.p), nn.Linear(hidden, 1))
            for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "x")
        if x.dim() != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x must have shape (B, {self.n_features}), one row of covariates per case, "
                             f"got {tuple(x.shape)}")
        check_input_dtype(self, x)
        phi = self.trunk(x)
        return torch.cat([head(phi) for head in self.heads], dim=1)


def factual_loss(outputs: torch.Tensor, t, y) -> torch.Tensor:
    r"""Mean squared error of the factual outcomes: :math:`\frac1N \sum_i (\hat\mu_{t_i}(x_i) - y_i)^2`.

    Only the head of the arm each case received is trained on it; the other potential outcome is
    never observed. See chapter 15, "Applications", section "Causal inference";
    :cite:`shalit2017estimating`.

    Args:
        outputs: floating tensor of shape :math:`(N, 2)`, the two heads' outputs.
        t: treatment indicators of shape :math:`(N,)` (bools or 0/1).
        y: factual outcomes, floating, shape :math:`(N,)`, finite (a NaN outcome is refused, not
            propagated into the loss).

    Returns:
        0-d tensor, differentiable with respect to ``outputs``.

    Examples:
        >>> factual_loss(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([True, False]), torch.tensor([1.0, 0.0]))
        tensor(2.)
    """
    check_float_tensor(outputs, "outputs")
    check_two_column_output(outputs, "outputs (the model)")
    t = check_treatment(t, "t", n=outputs.shape[0])
    y = check_outcomes(y, "y", n=outputs.shape[0], per="row of outputs")
    factual = outputs.gather(1, t.long().to(outputs.device)[:, None])[:, 0]
    return ((factual - y.to(outputs)) ** 2).mean()


def train_tarnet(model: nn.Module, x: torch.Tensor, t, y, *, epochs: int = 100, lr: float = 1e-3,
                 batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0, validation=None) -> list[float]:
    """Train a two-headed model with Adam on the factual loss; keep the epoch best on a validation split.

    Mini-batches are drawn with a generator seeded by ``seed``; dropout masks and initialization
    come from torch's global generator, which the caller seeds. With ``validation = (x_val, t_val,
    y_val)``, the factual loss on it is recorded after every epoch (in evaluation mode) and the
    weights of the epoch with the smallest one are restored at the end (early stopping on
    factual outcomes: the true effects are never looked at). Every argument, the validation data
    included, is checked before the model is touched; the model is returned in the mode it was
    given in (it trains in training mode and is validated in evaluation mode). See chapter 15,
    "Applications", section "Causal inference".

    Args:
        model: a module mapping ``x`` to outputs of shape ``(B, 2)``, e.g. :class:`TARNet`.
        x: covariates, a finite floating tensor of shape ``(N, d)``, of the model's dtype.
        t: treatment indicators, shape ``(N,)``.
        y: factual outcomes, finite, shape ``(N,)``.
        epochs: passes over the data, a positive int.
        lr: Adam's learning rate, > 0.
        batch_size: mini-batch size, a positive int.
        weight_decay: Adam's L2 penalty, >= 0.
        seed: seed of the mini-batch order.
        validation: ``None`` or a tuple ``(x_val, t_val, y_val)`` of ``M`` cases, checked as ``x``,
            ``t`` and ``y`` are (``x_val`` of shape ``(M, d)``); an error names ``validation[i]``.

    Returns:
        The validation loss after each epoch (an empty list without validation data).

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> data = simulate_weak_overlap(200, seed=1)
        >>> losses = train_tarnet(TARNet(2, 16), data.x, data.t, data.y, epochs=3,
        ...                       validation=(data.x[:50], data.t[:50], data.y[:50]))
        >>> len(losses)
        3
    """
    check_module(model)
    check_input_dtype(model, check_covariates(x, "x"), "x")
    t = check_treatment(t, "t", n=x.shape[0])
    y = check_outcomes(y, "y", n=x.shape[0])
    epochs, batch_size = check_int(epochs, "epochs", minimum=1), check_int(batch_size, "batch_size", minimum=1)
    lr = check_real(lr, "lr", positive=True)
    weight_decay = check_real(weight_decay, "weight_decay", minimum=0)
    g = torch.Generator().manual_seed(check_seed(seed))
    validation = check_factual_triple(validation, "validation", n_features=x.shape[1])
    if validation is not None:
        check_input_dtype(model, validation[0], "validation[0]")
    modes = [(m, m.training) for m in model.modules()]
    try:
        return _train_factual(model, x, t, y, epochs, lr, batch_size, weight_decay, g, validation)
    finally:
        for m, mode in modes:
            m.training = mode


def _train_factual(model, x, t, y, epochs, lr, batch_size, weight_decay, g, validation) -> list[float]:
    """The loop of :func:`train_tarnet` on checked arguments; leaves the model in training mode."""
    if validation is not None:
        xv, tv, yv = validation
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    best, best_state = float("inf"), None
    n = x.shape[0]
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=g)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            factual_loss(model(x[idx]), t[idx], y[idx]).backward()
            opt.step()
        if validation is not None:
            model.eval()
            with torch.no_grad():
                loss = factual_loss(check_two_column_output(model(xv), "model"), tv, yv).item()
            losses.append(loss)
            if loss < best:
                best, best_state = loss, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return losses


class CATEPrediction(NamedTuple):
    """Result of :func:`mc_cate` (chapter 15, "Applications").

    Attributes:
        mean: the MC estimate of :math:`\\tau(x)`, shape ``(B,)``.
        variance: the variance of the sampled effects over the masks (divisor T - 1), shape ``(B,)``.
        samples: the ``T`` sampled effects, shape ``(T, B)``.

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> pred = mc_cate(TARNet(2, 8, p=0.3), torch.zeros(3, 2), T=10, generator=torch.Generator().manual_seed(1))
        >>> bool(torch.allclose(pred.variance, pred.samples.var(dim=0)))
        True
    """

    mean: torch.Tensor
    variance: torch.Tensor
    samples: torch.Tensor


def mc_cate(model: nn.Module, x: torch.Tensor, T: int, *, chunk_size: int | None = None,
            generator: torch.Generator | None = None) -> CATEPrediction:
    r"""MC-dropout estimate of the treatment effect and its epistemic variance.

    .. math::
        \hat\tau_t(x) = \hat\mu_1^{(t)}(x) - \hat\mu_0^{(t)}(x), \qquad
        \hat\tau(x) = \frac1T \sum_t \hat\tau_t(x), \qquad
        \hat\sigma^2_\tau(x) = \frac{1}{T-1} \sum_t \bigl(\hat\tau_t(x) - \hat\tau(x)\bigr)^2,

    where both heads of pass :math:`t` come from the *same* dropout mask, so the variance is that of
    the difference, :math:`\operatorname{Var}\hat\mu_1 + \operatorname{Var}\hat\mu_0 -
    2\operatorname{Cov}(\hat\mu_0, \hat\mu_1)`, not the sum of the heads' variances. Jesson et al.
    :cite:`jesson2020identifying` defer the recommendation for the cases of largest
    :math:`\hat\sigma^2_\tau`. The passes run with :func:`~dropoutbook.mc_predict` (batched,
    modes restored). A model whose dropout modules all have rate 0 is refused: its variance would
    be 0. See chapter 15, "Applications", section "Causal inference".

    Args:
        model: a module with dropout (some rate > 0) mapping ``x`` to ``(B, 2)`` outputs (control, treated), e.g. :class:`TARNet`.
        x: covariates, a floating tensor of shape ``(B, d)``; not modified.
        T: number of passes, an int >= 2.
        chunk_size: passes per batched forward (see :func:`~dropoutbook.mc_predict`).
        generator: optional ``torch.Generator`` that makes the passes reproducible.

    Returns:
        :class:`CATEPrediction`.

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> pred = mc_cate(TARNet(2, 16, p=0.2), torch.randn(4, 2), T=20, generator=torch.Generator().manual_seed(0))
        >>> pred.mean.shape, pred.samples.shape, bool((pred.variance > 0).all())
        (torch.Size([4]), torch.Size([20, 4]), True)
    """
    check_module(model)
    check_generator(generator)
    check_positive_dropout(dropout_modules(model))
    samples = mc_predict(model, x, T, chunk_size=chunk_size, generator=generator, return_samples=True).samples
    check_two_column_output(samples[0], "model")
    tau = samples[..., 1] - samples[..., 0]
    return CATEPrediction(tau.mean(dim=0), tau.var(dim=0, correction=1), tau)
