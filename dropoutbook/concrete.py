r"""Chapter 13, "Learning the dropout rate": Concrete dropout, a dropout rate trained by gradient descent.

Concrete dropout :cite:`gal2017concrete` replaces the Bernoulli keep mask of dropout by its
continuous relaxation, the *binary Concrete* (relaxed Bernoulli) distribution of Maddison et al.
and Jang et al. :cite:`maddison2017concrete,jang2017categorical`. With drop rate :math:`p`, keep
probability :math:`q = 1 - p`, temperature :math:`t > 0` and :math:`u \sim \mathrm{U}(0, 1)`,

.. math:: z = \sigma\!\left(\frac{\log q - \log(1-q) + \log u - \log(1-u)}{t}\right) \in (0, 1),

which tends in distribution to :math:`\mathrm{Bernoulli}(q)` as :math:`t \to 0` and is a
differentiable function of :math:`p` for every fixed :math:`u`, so that the rate can be learned.

* :func:`concrete_mask` -- samples of the relaxed keep mask :math:`z`.
* :class:`ConcreteDropout` -- a module with a learnable rate (a logit parameter), wrapping a layer
  or standing alone, with the regularizer that replaces the rate's prior
  (:meth:`ConcreteDropout.regularization`).

As everywhere in the library, ``p`` is a *drop* probability.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import (check_concrete_rate, check_float_dtype, check_float_tensor, check_generator, check_module,
                          check_nonnegative, check_probability, check_positive, check_same_dtype, check_shape)

__all__ = ["concrete_mask", "ConcreteDropout"]


def _uniform_logit(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    r"""Logistic noise :math:`\log u - \log(1-u)` of the shape, dtype and memory layout of ``like``.

    The uniforms are drawn in row-major order (float32, float64 for float64) and moved to the open
    interval :math:`(0, 1)` by half a grid step, so that the noise is finite.
    """
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    u = torch.rand(like.shape, generator=generator, dtype=dtype, device=like.device)
    u = u.add_(2.0 ** -(53 if dtype == torch.float64 else 24) / 2)  # rand's grid is k 2^-24 (2^-53), k < 2^24
    noise = torch.log(u) - torch.log1p(-u)
    if noise.stride() != like.stride() and like.numel():
        noise = torch.empty_like(like, dtype=dtype).copy_(noise)  # the layout of the input
    return noise


def _relaxed_keep(noise: torch.Tensor, p_logit: torch.Tensor, temperature: float) -> torch.Tensor:
    r""":math:`z = \sigma((\operatorname{logit} q + \text{noise})/t)`, with :math:`\operatorname{logit} q = -\operatorname{logit} p`."""
    return torch.sigmoid((noise - p_logit.to(noise.dtype)) / temperature)


def concrete_mask(shape, p, temperature: float = 0.1, *, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Sample a relaxed Bernoulli (binary Concrete) keep mask with drop rate ``p`` and temperature ``t``.

    .. math:: z = \sigma\!\left(\frac{\log q - \log(1-q) + \log u - \log(1-u)}{t}\right),
              \qquad q = 1 - p, \quad u \sim \mathrm{U}(0, 1),

    independently for every entry. :math:`\log u - \log(1-u)` is standard logistic noise, so
    :math:`P(z > 1/2) = q` for every temperature, and :math:`z \to \mathrm{Bernoulli}(q)` in distribution as
    :math:`t \to 0`; the mean :math:`\mathbb E[z]` is *not* :math:`q` for :math:`t > 0` (it is pulled
    towards 1/2; chapter 13, section "Derivation"). Gal et al. :cite:`gal2017concrete` write the drop
    mask :math:`1 - z` with the noise :math:`\log(1-u) - \log u`, the same distribution. When ``p`` is a
    tensor that requires a gradient, the mask is differentiable with respect to it.

    Args:
        shape: int or sequence of non-negative ints, the shape of the mask.
        p: drop probability in (0, 1): a number, or a 0-d floating tensor (differentiable).
        temperature: :math:`t > 0`, finite.
        generator: optional ``torch.Generator`` for reproducible masks.
        dtype: a floating dtype of the mask (the noise is drawn in float32, float64 for float64).

    Returns:
        Tensor of the given shape with entries in (0, 1) (rounding can give 0 or 1 exactly at small
        temperatures).

    See chapter 13, "Learning the dropout rate"; :cite:`gal2017concrete`, :cite:`maddison2017concrete`.

    Examples:
        >>> z = concrete_mask(100_000, 0.2, 0.1, generator=torch.Generator().manual_seed(0))
        >>> z.shape, round(float((z > 0.5).float().mean()), 2)
        (torch.Size([100000]), 0.8)
    """
    shape = check_shape(shape)
    p = check_concrete_rate(p)
    temperature = check_positive(temperature, "temperature")
    check_generator(generator)
    check_float_dtype(dtype)
    noise_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    logit = torch.logit(p.to(noise_dtype)) if isinstance(p, torch.Tensor) else torch.tensor(
        math.log(p) - math.log1p(-p), dtype=noise_dtype)
    noise = _uniform_logit(torch.empty(shape, dtype=noise_dtype), generator)
    return _relaxed_keep(noise, logit, temperature).to(dtype)


class ConcreteDropout(nn.Module):
    r"""Concrete dropout :cite:`gal2017concrete`: inverted dropout with a relaxed mask and a learned rate.

    In training mode the input is multiplied by :math:`z / (1 - p)`, with :math:`z` a fresh
    :func:`concrete_mask` for every entry, and passed to the wrapped ``layer`` (if any):

    .. math:: y = \mathrm{layer}\!\left(\frac{z \odot x}{1 - p}\right), \qquad
              z = \sigma\!\left(\frac{\operatorname{logit}(1-p) + \log u - \log(1-u)}{t}\right).

    The rate is :math:`p = \sigma(\theta)` with :math:`\theta` the parameter ``p_logit``; the mask is
    a differentiable function of :math:`\theta`, so the training loss has a gradient with respect to
    the rate. In evaluation mode the module is ``layer(x)`` (a copy of ``x`` without a layer), with
    no scaling. It is found by :func:`~dropoutbook.dropout_modules`, so :func:`~dropoutbook.mc_dropout`
    and :func:`~dropoutbook.mc_predict` sample its masks.

    The loss to minimize is the data term plus :meth:`regularization`,

    .. math:: \frac{\lambda_w \lVert W \rVert^2}{1 - p}
              + \lambda_p K \bigl(p \log p + (1-p) \log(1-p)\bigr),

    the KL term of Gal et al. that replaces the prior on the weights and the rate: :math:`\lambda_w`
    is ``weight_regularizer`` (the prior length scale :math:`l^2/(2N)` for :math:`N` training examples in
    the paper's derivation), :math:`W` the parameters of the wrapped layer, :math:`\lambda_p` is
    ``dropout_regularizer`` (:math:`1/N` in the derivation; the authors' code uses :math:`2/N` with a
    loss that is twice theirs), and :math:`K` the number of units dropped per example, the size
    of one example of the input. The second term is :math:`-\lambda_p K` times the entropy of a
    Bernoulli(:math:`p`): minimizing it pulls :math:`p` towards 1/2, against the data term and the
    weight term, which pull it towards 0. With little data (:math:`\lambda_p = 1/N` large) the
    learned rate is larger.

    Args:
        layer: optional ``torch.nn.Module`` applied to the dropped-out input (its parameters make the
            weight term); ``None`` for a stand-alone dropout (no weight term).
        p_init: initial drop rate, in (0, 1).
        temperature: temperature :math:`t > 0` of the relaxation (0.1 in the paper).
        weight_regularizer: :math:`\lambda_w \ge 0`.
        dropout_regularizer: :math:`\lambda_p \ge 0`.
        generator: optional ``torch.Generator`` for every mask.

    Attributes:
        p_logit: the learnable parameter :math:`\theta = \operatorname{logit} p` (0-d); ``p`` is
            :math:`\sigma(\theta)` as a float (read-only).
        num_units: :math:`K`, the size of one example of the last input (``None`` before the first forward).

    Shape:
        Input :math:`(B, *)` with :math:`B \ge 1`; output: that of ``layer`` (the input's shape without a layer).
        The input must have the dtype of ``p_logit`` (convert the module with ``.to(dtype)``).

    See chapter 13, "Learning the dropout rate".

    Examples:
        >>> torch.manual_seed(0) is not None
        True
        >>> layer = ConcreteDropout(nn.Linear(4, 2), p_init=0.1, weight_regularizer=1e-6, dropout_regularizer=1e-3)
        >>> y = layer(torch.randn(8, 4))
        >>> round(layer.p, 3), layer.num_units, y.shape
        (0.1, 4, torch.Size([8, 2]))
        >>> layer.regularization().backward()
        >>> bool(layer.p_logit.grad != 0)
        True
    """

    def __init__(self, layer: torch.nn.Module | None = None, *, p_init: float = 0.1, temperature: float = 0.1,
                 weight_regularizer: float = 1e-6, dropout_regularizer: float = 1e-5,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if layer is not None:
            check_module(layer, "layer")
        p_init = check_probability(p_init, "p_init", allow_zero=False, allow_one=False)
        self.temperature = check_positive(temperature, "temperature")
        self.weight_regularizer = check_nonnegative(weight_regularizer, "weight_regularizer")
        self.dropout_regularizer = check_nonnegative(dropout_regularizer, "dropout_regularizer")
        self.generator = check_generator(generator)
        self.layer = layer
        self.p_logit = nn.Parameter(torch.tensor(math.log(p_init) - math.log1p(-p_init)))
        self.num_units: int | None = None

    @property
    def p(self) -> float:
        r"""The drop rate :math:`p = \sigma(\theta)` as a float; read-only (``torch.sigmoid(p_logit)`` is the differentiable form)."""
        return float(torch.sigmoid(self.p_logit.detach()))

    @p.setter
    def p(self, value) -> None:
        raise AttributeError("ConcreteDropout.p is learned and read-only: it is sigmoid(p_logit); set p_logit "
                             "(e.g. with torch.no_grad(): layer.p_logit.fill_(math.log(p / (1 - p)))) to change it")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        if x.dim() < 1 or x.shape[0] == 0:
            raise ValueError(f"x must have a non-empty first (batch) dimension, got shape {tuple(x.shape)}")
        check_same_dtype("p_logit", self.p_logit, x=x)
        self.num_units = int(x[0].numel())
        if self.training:
            z = _relaxed_keep(_uniform_logit(x, self.generator), self.p_logit, self.temperature)
            scale = 1.0 + torch.exp(self.p_logit.to(z.dtype))  # 1 / (1 - p), exact for every logit
            x = x * (z * scale).to(x.dtype)
        elif self.layer is None:
            x = x.clone()
        return x if self.layer is None else self.layer(x)

    def regularization(self) -> torch.Tensor:
        r"""The term to add to the loss: :math:`\lambda_w \lVert W\rVert^2/(1-p) + \lambda_p K (p\log p + (1-p)\log(1-p))`.

        :math:`\lVert W\rVert^2` is the sum of squares of all parameters of the wrapped layer (0 without
        one), :math:`K` = :attr:`num_units`. Computed from the logit, so it is finite for every
        :math:`\theta`: :math:`1/(1-p) = 1 + e^\theta`, :math:`\log p = -\operatorname{softplus}(-\theta)`,
        :math:`\log(1-p) = -\operatorname{softplus}(\theta)`. Differentiable with respect to ``p_logit``
        and the layer's parameters. Raises ``RuntimeError`` before the first forward (:math:`K` unknown).
        """
        if self.num_units is None:
            raise RuntimeError("regularization() needs the number of units K, known after the first forward: "
                               "call the module on a batch first")
        theta = self.p_logit
        p = torch.sigmoid(theta)
        neg_entropy = -p * nn.functional.softplus(-theta) - (1 - p) * nn.functional.softplus(theta)
        total = self.dropout_regularizer * self.num_units * neg_entropy
        if self.layer is not None:
            squares = [w.pow(2).sum() for w in self.layer.parameters()]
            if squares:
                total = total + self.weight_regularizer * torch.stack(squares).sum().to(theta.dtype) * (1 + theta.exp())
        return total

    def extra_repr(self) -> str:
        return (f"p={self.p:.4g}, temperature={self.temperature}, weight_regularizer={self.weight_regularizer}, "
                f"dropout_regularizer={self.dropout_regularizer}")
