r"""The Jensen bias of dropout through a nonlinearity (chapter 3, "The Jensen bias").

At test time a dropout network is evaluated once, with every unit present and the weights
scaled (or, for inverted dropout, nothing scaled). For a linear layer that deterministic pass
equals the average over all :math:`2^N` thinned subnetworks; after a nonlinearity :math:`f` it
does not, because :math:`\mathbb E[f(z)] \ne f(\mathbb E[z])` in general (Jensen's inequality
:cite:`jensen1906convexes`). This module measures the difference, the *Jensen gap*

.. math:: \Delta = \mathbb E_m[f(z)] - f(\mathbb E_m[z]),

exactly (by enumerating all masks), by Monte Carlo, by the second-order (delta-method)
approximation :math:`\tfrac12 f''(\mu)\operatorname{Var}[z]`, or by Gaussian moment matching
(fast dropout, :cite:`wang2013fast`), for one layer
(:func:`jensen_gap`) and layer by layer through a small network (:func:`layerwise_jensen_gap`).
The exact sums enumerate the masks in chunks (``_mask_chunks``) so that memory stays bounded
for up to ``MAX_ENUMERATED_UNITS = 20`` dropped units.

Conventions: ``p`` is the drop probability, ``1 - p`` the keep probability. ``scaling="inverted"``
divides the survivors by ``1 - p`` in training (``torch.nn.Dropout``); ``scaling="standard"``
does not, and multiplies by ``1 - p`` at test time. In both cases the deterministic test-time
pass computes :math:`f(\mathbb E[z])`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._validation import (check_choice, check_float_dtype, check_float_tensor, check_generator, check_int,
                          check_module, check_finite_tensor, check_probability, check_real, check_same_dtype)
from .masks import InvertedDropout, StandardDropout

__all__ = [
    "JensenGap", "jensen_gap", "LayerwiseGap", "layerwise_jensen_gap",
]

#: The largest number of dropped units that exact enumeration (:math:`2^N` masks) accepts.
MAX_ENUMERATED_UNITS = 20

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "square": torch.square,
}
_ELEMENTS_PER_CHUNK = 2**22  # bounds the memory of one chunk of masks times units (32 MiB in float64)


def _check_enumerable(n: int, what: str) -> None:
    if n > MAX_ENUMERATED_UNITS:
        raise ValueError(
            f"exact enumeration sums over 2**N masks and accepts at most N = {MAX_ENUMERATED_UNITS} "
            f"dropped units; {what} has N = {n}. Use method='mc' instead"
        )


def _mask_chunks(n: int, keep_prob: float, *, chunk_size: int = 2**16,
                    dtype: torch.dtype = torch.float64, device=None
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    r"""All :math:`2^n` masks in :math:`\{0,1\}^n` with their probabilities, in chunks.

    A mask :math:`m` with :math:`k` ones has probability :math:`q^k (1-q)^{n-k}` under independent
    :math:`m_i \sim \mathrm{Bernoulli}(q)`, so that for any function :math:`g`

    .. math:: \mathbb E[g(m)] = \sum_{m \in \{0,1\}^n} q^{|m|} (1-q)^{n-|m|}\, g(m).

    The masks are produced ``chunk_size`` at a time (mask number ``i`` holds the binary digits of
    ``i``), so memory stays bounded; the probabilities of all chunks sum to 1. (Chapter 4's
    :func:`~dropoutbook.enumerate_masks` returns all masks at once.) See chapter 3, "The Jensen
    bias", section "Check".

    Args:
        n: number of units, an int in ``[1, 20]`` (``MAX_ENUMERATED_UNITS``).
        keep_prob: probability :math:`q \in [0, 1]` that a unit is kept.
        chunk_size: masks per chunk, a positive int.
        dtype: floating dtype of masks and probabilities (default ``torch.float64``).
        device: device of the tensors.

    Yields:
        ``(masks, probs)``: a ``(c, n)`` tensor of 0/1 masks and their ``(c,)`` probabilities.

    Examples:
        >>> masks, probs = next(_mask_chunks(2, 0.75))
        >>> masks.tolist(), probs.tolist()
        ([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0625, 0.1875, 0.1875, 0.5625])
    """
    n = check_int(n, "n", minimum=1)
    _check_enumerable(n, "n")
    q = check_probability(keep_prob, "keep_prob")
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    check_float_dtype(dtype)
    bits = torch.arange(n, device=device)
    total = 2**n
    for start in range(0, total, chunk_size):
        index = torch.arange(start, min(start + chunk_size, total), device=device)
        masks = ((index[:, None] >> bits) & 1).to(dtype)
        kept = masks.sum(dim=1, dtype=torch.float64)
        probs = torch.pow(torch.tensor(q, dtype=torch.float64, device=device), kept) * torch.pow(
            torch.tensor(1.0 - q, dtype=torch.float64, device=device), n - kept)
        yield masks, probs.to(dtype)


@dataclass(frozen=True)
class JensenGap:
    r"""The result of :func:`jensen_gap` (chapter 3, "The Jensen bias").

    Attributes:
        gap: :math:`\mathbb E[f(z)] - f(\mathbb E[z])`, one value per output unit.
        ensemble_mean: :math:`\mathbb E[f(z)]`, the average over subnetworks (for
            ``method="delta"`` its approximation :math:`f(\mu) + \tfrac12 f''(\mu)\operatorname{Var}[z]`,
            for ``"gaussian"`` the mean of :math:`f` under :math:`\mathcal N(\mu, \operatorname{Var}[z])`).
        weight_scaled: :math:`f(\mathbb E[z]) = f(\mu)`, the deterministic test-time output.
        mean: :math:`\mu = \mathbb E[z]`.
        variance: :math:`\operatorname{Var}[z]` (exact, from the closed form).
        stderr: standard error of ``gap`` (zero for ``"exact"``; for ``"delta"`` and ``"gaussian"``
            zero too, although the approximations have an error that this number does not measure).
        method: ``"exact"``, ``"mc"``, ``"delta"`` or ``"gaussian"``.
        n: number of masks summed (``"exact"``: :math:`2^N`) or sampled (``"mc"``); 0 for ``"delta"``
            and ``"gaussian"``.
    """

    gap: torch.Tensor
    ensemble_mean: torch.Tensor
    weight_scaled: torch.Tensor
    mean: torch.Tensor
    variance: torch.Tensor
    stderr: torch.Tensor
    method: str
    n: int


def _resolve_activation(f) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(f, str):
        if f not in _ACTIVATIONS:
            raise ValueError(f"f must be a callable or one of {sorted(_ACTIVATIONS)}, got {f!r}")
        return _ACTIVATIONS[f]
    if not callable(f):
        raise TypeError(f"f must be a callable or one of {sorted(_ACTIVATIONS)}, got {type(f).__name__}")
    return f


def _elementwise(f, z: torch.Tensor) -> torch.Tensor:
    """``f(z)``, checked to be a floating tensor of the shape of ``z`` (an elementwise function)."""
    out = f(z)
    if not isinstance(out, torch.Tensor) or out.shape != z.shape or not out.is_floating_point():
        got = f"a tensor of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise TypeError(f"f must map a floating tensor to a floating tensor of the same shape "
                        f"(an elementwise activation), got {got} for shape {tuple(z.shape)}")
    return out


def _second_derivative(f, mu: torch.Tensor) -> torch.Tensor:
    """:math:`f''(\\mu)` elementwise by automatic differentiation (zero where autograd sees none)."""
    with torch.enable_grad():
        point = mu.detach().clone().requires_grad_(True)
        (first,) = torch.autograd.grad(f(point).sum(), point, create_graph=True)
        if not first.requires_grad:  # f' is piecewise constant (e.g. ReLU): f'' = 0
            return torch.zeros_like(mu)
        (second,) = torch.autograd.grad(first.sum(), point, allow_unused=True)
    return torch.zeros_like(mu) if second is None else second.detach()


def jensen_gap(f, w: torch.Tensor, x: torch.Tensor, p: float, *, method: str = "exact",
               bias: torch.Tensor | float | None = None, scaling: str = "inverted",
               n_samples: int = 100_000, generator: torch.Generator | None = None) -> JensenGap:
    r"""The Jensen gap of a dropout layer followed by a nonlinearity :math:`f`.

    The layer drops its inputs :math:`x \in \mathbb R^N` with probability :math:`p` and computes

    .. math:: z = \sum_{i=1}^N w_i \frac{m_i}{s} x_i + b, \qquad m_i \sim \mathrm{Bernoulli}(1-p),

    with :math:`s = 1-p` (``scaling="inverted"``) or :math:`s = 1` (``"standard"``). The
    deterministic test-time pass outputs :math:`f(\mu)`, :math:`\mu = \mathbb E[z]`; the average
    of the :math:`2^N` subnetworks is :math:`\mathbb E[f(z)]`. The gap is

    .. math:: \Delta = \mathbb E[f(z)] - f(\mu) \approx \tfrac12 f''(\mu)\operatorname{Var}[z], \qquad
              \operatorname{Var}[z] = \frac{p(1-p)}{s^2} \sum_i w_i^2 x_i^2 .

    For :math:`f(z) = z^2` the approximation is exact: :math:`\Delta = \operatorname{Var}[z]`,
    i.e. :math:`\frac{p}{1-p}\sum_i w_i^2 x_i^2` (inverted) and :math:`p(1-p)\sum_i w_i^2 x_i^2`
    (standard). For ReLU, :math:`f'' = 0` almost everywhere and the approximation is 0, although
    the true gap is not. Gaussian moment matching :cite:`wang2013fast` replaces :math:`z` by a
    normal variable with the same mean and variance; for ReLU

    .. math:: \mathbb E[\max(0, z)] \approx \mu\,\Phi(\mu/\sigma) + \sigma\,\varphi(\mu/\sigma),
              \qquad \sigma^2 = \operatorname{Var}[z],

    accurate when many inputs each contribute little (a central-limit argument) and poor for a
    few large contributions. See chapter 3, "The Jensen bias"; :cite:`srivastava2014dropout`,
    :cite:`baldi2013understanding`.

    Args:
        f: elementwise function on tensors (``torch.tanh``, ``lambda z: z**2``, ...) or one of
            ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"square"``. ``"delta"`` differentiates it
            twice with autograd.
        w: weights, shape ``(N,)`` for one output unit or ``(K, N)`` for ``K`` units; floating.
        x: the input that is dropped, shape ``(N,)``, same dtype and device as ``w``; ``w`` and ``x`` must be
            finite (NaN or infinity raises ``ValueError``).
        p: drop probability in ``[0, 1)``.
        method: ``"exact"`` (sum over all :math:`2^N` masks, :math:`N \le 20`), ``"mc"``
            (``n_samples`` random masks, with a standard error), ``"delta"`` (second order) or
            ``"gaussian"`` (moment matching: :math:`z` replaced by :math:`\mathcal N(\mu, \operatorname{Var}[z])`;
            for ReLU (``"relu"``, ``torch.relu``, ``torch.nn.functional.relu`` or a ``torch.nn.ReLU``) the
            closed form :math:`\mu\Phi(\mu/\sigma) + \sigma\varphi(\mu/\sigma)`, for other :math:`f`
            Gauss–Hermite quadrature with 64 nodes).
        bias: optional bias :math:`b`, a number or a tensor of shape ``(K,)``; never dropped.
        scaling: ``"inverted"`` (default) or ``"standard"``.
        n_samples: number of masks for ``"mc"``, an int >= 2.
        generator: optional ``torch.Generator`` for ``"mc"``.

    Returns:
        A :class:`JensenGap`; its tensors have shape ``()`` for ``w`` of shape ``(N,)`` and
        ``(K,)`` otherwise, in the dtype of ``w``.

    Examples:
        >>> w, x = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
        >>> jensen_gap("square", w, x, 0.5).gap.item()  # p/(1-p) (1 + 4)
        5.0
        >>> jensen_gap("square", w, x, 0.5, method="delta").gap.item()
        5.0
    """
    f = _resolve_activation(f)
    check_float_tensor(w, "w")
    check_float_tensor(x, "x")
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"x must be a non-empty 1-D tensor of the N dropped inputs, got shape {tuple(x.shape)}")
    if w.dim() not in (1, 2) or w.shape[-1] != x.numel():
        raise ValueError(f"w must have shape (N,) or (K, N) with N = {x.numel()} (the length of x), got {tuple(w.shape)}")
    check_same_dtype("w", w, x=x)
    check_finite_tensor(w, "w")
    check_finite_tensor(x, "x")
    p = check_probability(p, "p", allow_one=False)
    method = check_choice(method, "method", ("exact", "mc", "delta", "gaussian"))
    scaling = check_choice(scaling, "scaling", ("inverted", "standard"))
    check_generator(generator)
    n_units = x.numel()
    if method == "exact":
        _check_enumerable(n_units, "x")
    if method == "mc":
        n_samples = check_int(n_samples, "n_samples", minimum=2)

    weights = w.reshape(-1, n_units)  # (K, N)
    if bias is None:
        b = torch.zeros(weights.shape[0], dtype=w.dtype, device=w.device)
    else:
        if isinstance(bias, torch.Tensor):
            check_finite_tensor(check_float_tensor(bias, "bias"), "bias")
        else:
            bias = check_real(bias, "bias")
        b = torch.as_tensor(bias, dtype=w.dtype, device=w.device)
        if b.dim() > 1 or (b.dim() == 1 and b.numel() != weights.shape[0]):
            raise ValueError(f"bias must be a number or a tensor of shape ({weights.shape[0]},), got shape {tuple(b.shape)}")
        b = b.expand(weights.shape[0])
    q = 1.0 - p
    scale = 1.0 / q if scaling == "inverted" else 1.0
    contrib = weights * x * scale  # (K, N): unit i's contribution when kept
    mu = q * contrib.sum(dim=1) + b
    var = p * q * (contrib**2).sum(dim=1)
    with torch.no_grad():
        f_mu = _elementwise(f, mu)
        stderr = torch.zeros_like(mu)
        n = 0
        if method == "exact":
            total = torch.zeros_like(mu)
            chunk = max(1, _ELEMENTS_PER_CHUNK // max(n_units, weights.shape[0]))
            for masks, probs in _mask_chunks(n_units, q, chunk_size=chunk, dtype=w.dtype, device=w.device):
                z = masks @ contrib.T + b  # (c, K)
                total = total + probs @ f(z)
            ensemble, n = total, 2**n_units
        elif method == "mc":
            total = torch.zeros_like(mu, dtype=torch.float64)
            total_sq = torch.zeros_like(mu, dtype=torch.float64)
            chunk = max(1, _ELEMENTS_PER_CHUNK // max(n_units, weights.shape[0]))
            uniform_dtype = torch.float64 if w.dtype == torch.float64 else torch.float32
            for start in range(0, n_samples, chunk):
                c = min(chunk, n_samples - start)
                masks = (torch.rand((c, n_units), generator=generator, dtype=uniform_dtype, device=w.device) < q)
                values = f(masks.to(w.dtype) @ contrib.T + b).to(torch.float64)  # (c, K)
                total += values.sum(dim=0)
                total_sq += (values**2).sum(dim=0)
            mean_f = total / n_samples
            var_f = (total_sq - n_samples * mean_f**2).clamp(min=0) / (n_samples - 1)
            ensemble = mean_f.to(w.dtype)
            stderr = (var_f / n_samples).sqrt().to(w.dtype)
            n = n_samples
        elif method == "delta":
            ensemble = f_mu + 0.5 * _second_derivative(f, mu) * var
        else:
            ensemble = _gaussian_mean(f, mu, var)
    shape = () if w.dim() == 1 else (weights.shape[0],)
    return JensenGap(
        gap=(ensemble - f_mu).reshape(shape), ensemble_mean=ensemble.reshape(shape),
        weight_scaled=f_mu.reshape(shape), mean=mu.reshape(shape), variance=var.reshape(shape),
        stderr=stderr.reshape(shape), method=method, n=n,
    )


_HERMITE_NODES = 64  # Gauss-Hermite nodes of method="gaussian" for activations other than ReLU


def _gaussian_mean(f, mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathbb E[f(z)]` for :math:`z \sim \mathcal N(\mu, \sigma^2)`: closed form for ReLU, else Gauss–Hermite.

    For a zero variance the normal variable is the constant :math:`\mu` and the mean is :math:`f(\mu)`.
    """
    sigma = var.sqrt()
    if f is torch.relu or f is torch.nn.functional.relu or type(f) is torch.nn.ReLU:
        safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
        u = mu / safe
        normal = torch.distributions.Normal(torch.zeros_like(u), torch.ones_like(u), validate_args=False)
        closed = mu * normal.cdf(u) + sigma * normal.log_prob(u).exp()
        return torch.where(sigma > 0, closed, torch.relu(mu))
    nodes, weights = np.polynomial.hermite.hermgauss(_HERMITE_NODES)  # for the weight exp(-t^2)
    t = torch.as_tensor(nodes, dtype=mu.dtype, device=mu.device)
    wts = torch.as_tensor(weights / math.sqrt(math.pi), dtype=mu.dtype, device=mu.device)
    points = mu[..., None] + math.sqrt(2.0) * sigma[..., None] * t  # (K, nodes)
    return _elementwise(f, points) @ wts


@dataclass(frozen=True)
class LayerwiseGap:
    r"""The result of :func:`layerwise_jensen_gap` (chapter 3, "The Jensen bias", section "Experiment").

    Attributes:
        names: one name per recorded stage, e.g. ``"1: ReLU"`` (index in the ``Sequential``).
        ensemble: per stage, :math:`\mathbb E_m[h_\ell]`, the average over subnetworks, shape ``(B, width)``.
        weight_scaled: per stage, :math:`h_\ell` of the deterministic (evaluation-mode) network.
        stderr: per stage, the Monte-Carlo standard error of ``ensemble`` (zeros for ``"exact"``).
        n_dropped: the number :math:`N` of dropped units per input (all dropout layers together).
        method: ``"exact"`` or ``"mc"``.
        n: number of masks summed (:math:`2^N`) or sampled per input.
    """

    names: list[str]
    ensemble: list[torch.Tensor]
    weight_scaled: list[torch.Tensor]
    stderr: list[torch.Tensor]
    n_dropped: int
    method: str
    n: int

    def gaps(self) -> list[torch.Tensor]:
        """Per stage, :math:`\\mathbb E_m[h_\\ell] - h_\\ell`, shape ``(B, width)``."""
        return [e - d for e, d in zip(self.ensemble, self.weight_scaled)]


def _dropout_kind(module: nn.Module) -> str | None:
    if isinstance(module, StandardDropout):
        return "standard"
    if isinstance(module, (InvertedDropout, nn.Dropout)):
        return "inverted"
    if isinstance(module, nn.modules.dropout._DropoutNd):
        raise TypeError(f"model must use element-wise dropout only (nn.Dropout, InvertedDropout, "
                        f"StandardDropout), got {type(module).__name__}")
    return None


def layerwise_jensen_gap(model: nn.Sequential, x: torch.Tensor, *, method: str = "mc",
                       n_samples: int = 1000, generator: torch.Generator | None = None
                       ) -> LayerwiseGap:
    r"""Layer by layer, the average over dropout subnetworks against the weight-scaled network.

    For a network :math:`h_\ell = g_\ell(h_{\ell-1})` with dropout layers between its stages, let
    :math:`h_\ell(m)` be stage :math:`\ell` of the thinned network with mask :math:`m` (all dropout
    layers together) and :math:`\bar h_\ell` the same stage of the deterministic network in
    evaluation mode (inverted dropout: no scaling; standard dropout: activations times
    :math:`1-p`). It returns both

    .. math:: \mathbb E_m[h_\ell(m)] = \sum_m P(m)\, h_\ell(m) \quad\text{and}\quad \bar h_\ell

    for the output of every module that is not a dropout layer. They agree for a linear network
    and differ after nonlinearities (the Jensen gap, chapter 3, "The Jensen bias";
    :cite:`srivastava2014dropout` compare weight scaling with Monte-Carlo averaging).

    The model is run in evaluation mode, its masks applied by hand; its modes are restored and
    no parameter changes. Modules other than dropout must act on each example independently
    (``nn.Linear``, activations, ...).

    Args:
        model: an ``nn.Sequential`` with at least one ``nn.Dropout``, :class:`~dropoutbook.InvertedDropout`
            or :class:`~dropoutbook.StandardDropout` layer.
        x: a batch of inputs, shape ``(B, ...)``, floating.
        method: ``"exact"`` (all :math:`2^N` masks; :math:`N \le 20` dropped units per example)
            or ``"mc"`` (``n_samples`` independent masks per example).
        n_samples: number of masks for ``"mc"``, an int >= 2.
        generator: optional ``torch.Generator`` for ``"mc"``.

    Returns:
        A :class:`LayerwiseGap`.

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5), nn.Linear(2, 1)).double()
        >>> avg = layerwise_jensen_gap(net, torch.ones(1, 3, dtype=torch.float64), method="exact")
        >>> avg.names, avg.n_dropped, avg.n
        (['0: Linear', '2: Linear'], 2, 4)
        >>> torch.allclose(avg.ensemble[-1], avg.weight_scaled[-1])  # linear: no gap
        True
    """
    check_module(model, "model", nn.Sequential)
    check_float_tensor(x)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch of shape (B, ...), got shape {tuple(x.shape)}")
    method = check_choice(method, "method", ("exact", "mc"))
    check_generator(generator)
    if method == "mc":
        n_samples = check_int(n_samples, "n_samples", minimum=2)
    kinds = [_dropout_kind(module) for module in model]
    if all(k is None for k in kinds):
        raise ValueError("model has no dropout layer (nn.Dropout, InvertedDropout or StandardDropout)")
    for module, kind in zip(model, kinds):
        if kind is not None and not 0.0 <= module.p < 1.0:
            raise ValueError(f"the dropout layers' p must be in [0, 1), got {module.p} in {module}")
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            return _layerwise_jensen_gap(model, kinds, x, method, n_samples, generator)
    finally:
        for module, mode in zip(model.modules(), modes):
            module.training = mode


def _layerwise_jensen_gap(model, kinds, x, method, n_samples, generator) -> LayerwiseGap:
    names, deterministic, widths = [], [], []
    h = x
    for i, (module, kind) in enumerate(zip(model, kinds)):
        if kind is None:
            h = module(h)
            names.append(f"{i}: {type(module).__name__}")
            deterministic.append(h)
        else:
            widths.append(h[0].numel())
            h = module(h)  # evaluation mode: identity (inverted) or times 1 - p (standard)
    n_dropped = sum(widths)
    batch = x.shape[0]
    widest = max([x[0].numel()] + [d[0].numel() for d in deterministic])
    chunk = max(1, _ELEMENTS_PER_CHUNK // (batch * widest))

    def run(masks: torch.Tensor) -> list[torch.Tensor]:
        """Stages of the thinned networks for a chunk of masks of shape (c, B, n_dropped)."""
        c = masks.shape[0]
        h = x.unsqueeze(0).expand(c, *x.shape).reshape(c * batch, *x.shape[1:])
        out, start = [], 0
        for module, kind in zip(model, kinds):
            if kind is None:
                h = module(h)
                out.append(h.reshape(c, batch, -1))
            else:
                width = h[0].numel()
                m = masks[:, :, start:start + width].reshape(c * batch, *h.shape[1:])
                start += width
                h = h * m / (1.0 - module.p) if kind == "inverted" else h * m
        return out

    totals = [torch.zeros(batch, d[0].numel(), dtype=torch.float64, device=x.device) for d in deterministic]
    squares = [t.clone() for t in totals]
    if method == "exact":
        _check_enumerable(n_dropped, "the model (all dropout layers together)")
        keep = _keep_probabilities(model, kinds, widths, x)
        n = 2**n_dropped
        for bits, _ in _mask_chunks(n_dropped, 0.5, chunk_size=chunk, dtype=torch.float64, device=x.device):
            probs = torch.where(bits > 0, keep, 1 - keep).prod(dim=1)  # (c,)
            masks = bits.to(x.dtype).unsqueeze(1).expand(-1, batch, -1)
            for total, stage in zip(totals, run(masks)):
                total += torch.einsum("c,cbd->bd", probs, stage.to(torch.float64))
        ensemble = [t.to(x.dtype) for t in totals]
        stderr = [torch.zeros_like(e) for e in ensemble]
    else:
        keep = _keep_probabilities(model, kinds, widths, x)
        uniform_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        for start in range(0, n_samples, chunk):
            c = min(chunk, n_samples - start)
            u = torch.rand((c, batch, n_dropped), generator=generator, dtype=uniform_dtype, device=x.device)
            masks = (u < keep.to(uniform_dtype)).to(x.dtype)
            for total, square, stage in zip(totals, squares, run(masks)):
                stage = stage.to(torch.float64)
                total += stage.sum(dim=0)
                square += (stage**2).sum(dim=0)
        n = n_samples
        means = [t / n for t in totals]
        ensemble = [m.to(x.dtype) for m in means]
        stderr = [((s - n * m**2).clamp(min=0) / (n - 1) / n).sqrt().to(x.dtype) for s, m in zip(squares, means)]
    return LayerwiseGap(names, ensemble, [d.reshape(batch, -1) for d in deterministic], stderr,
                             n_dropped, method, n)


def _keep_probabilities(model, kinds, widths, x) -> torch.Tensor:
    """The keep probability of each of the N dropped units, in mask order."""
    rates = [module.p for module, kind in zip(model, kinds) if kind is not None]
    return torch.cat([torch.full((w,), 1.0 - float(r), dtype=torch.float64, device=x.device)
                      for w, r in zip(widths, rates)])
