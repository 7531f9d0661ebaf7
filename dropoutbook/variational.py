r"""Chapter 10, "Variational dropout and sparsification".

Gaussian dropout multiplies every unit by :math:`\xi \sim \mathcal N(1, \alpha)`; with
:math:`\alpha = p/(1-p)` it has the mean and the variance of inverted dropout with drop rate
:math:`p` :cite:`srivastava2014dropout`. Variational dropout :cite:`kingma2015variational` treats
:math:`\alpha` as a variational parameter of a Gaussian posterior over the weights, samples the
pre-activations directly (the *local reparameterization trick*), and sparse variational dropout
:cite:`molchanov2017variational` learns one :math:`\alpha` per weight, with a cheap approximation
of the KL divergence to the log-uniform prior. Weights whose :math:`\log\alpha` exceeds a
threshold carry only noise and are removed at evaluation.

Conventions: ``p`` is the probability of *dropping* a unit, as everywhere in the book.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ._validation import (as_float_tensor, check_bool, check_float_tensor, check_generator, check_int, check_module,
                          check_probability, check_real, check_same_dtype, check_seed, like_input)
from .data import Split

__all__ = [
    "alpha_from_drop_rate", "drop_rate_from_alpha", "gaussian_dropout", "GaussianDropout",
    "local_reparameterization", "SPARSE_VD_K", "neg_kl_approx", "neg_kl_exact",
    "KLApproximationError", "kl_approximation_error", "LinearSVDO", "sparse_vd_kl",
    "SparsityReport", "sparsity_report", "SparseVDHistory", "train_sparse_vd",
]

class SparseVDConstants(NamedTuple):
    r"""The constants :math:`(k_1, k_2, k_3)` of the KL approximation :func:`neg_kl_approx` of
    :cite:`molchanov2017variational` (chapter 10): :math:`k_1 = 0.63576`, :math:`k_2 = 1.87320`,
    :math:`k_3 = 1.48695`. Unpack them as ``k1, k2, k3 = SPARSE_VD_K``."""

    k1: float
    k2: float
    k3: float


#: The constants :math:`(k_1, k_2, k_3)` of the KL approximation of :cite:`molchanov2017variational`.
SPARSE_VD_K = SparseVDConstants(0.63576, 1.87320, 1.48695)


def alpha_from_drop_rate(p: float) -> float:
    r"""Variance :math:`\alpha` of the Gaussian dropout that matches inverted dropout with drop rate ``p``.

    .. math:: \alpha = \frac{p}{1-p}.

    Inverted dropout multiplies a unit by :math:`m/(1-p)`, :math:`m \sim \mathrm{Bernoulli}(1-p)`,
    whose mean is 1 and variance :math:`p/(1-p)`; Gaussian noise :math:`\mathcal N(1, \alpha)` has
    the same two moments exactly when :math:`\alpha = p/(1-p)` (chapter 10, section
    "Derivation"; :cite:`srivastava2014dropout`, :cite:`kingma2015variational`).

    Args:
        p: drop probability in [0, 1).

    Examples:
        >>> alpha_from_drop_rate(0.5)
        1.0
    """
    p = check_probability(p, "p", allow_one=False)
    return p / (1.0 - p)


def drop_rate_from_alpha(alpha: float) -> float:
    r"""Drop rate :math:`p = \alpha/(1+\alpha)` whose inverted dropout has the variance :math:`\alpha` of Gaussian dropout.

    The inverse of :func:`alpha_from_drop_rate` (chapter 10). For example the pruning threshold
    :math:`\log\alpha = 3` of :cite:`molchanov2017variational` is a drop rate of about 0.95.

    Args:
        alpha: non-negative, finite noise variance.

    Examples:
        >>> round(drop_rate_from_alpha(1.0), 3)
        0.5
    """
    alpha = check_real(alpha, "alpha", minimum=0)
    return alpha / (1.0 + alpha)


def gaussian_dropout(x: torch.Tensor, p: float, *, training: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Gaussian dropout: multiply every element by independent noise :math:`\xi \sim \mathcal N(1, \alpha)`.

    .. math:: \tilde h_i = h_i \xi_i, \quad \xi_i = 1 + \sqrt{\alpha}\,\varepsilon_i, \quad
              \varepsilon_i \sim \mathcal N(0, 1), \quad \alpha = \frac{p}{1-p},

    so that :math:`\mathbb E[\tilde h_i] = h_i` and :math:`\operatorname{Var}[\tilde h_i] = \frac{p}{1-p} h_i^2`,
    the moments of inverted dropout with drop rate ``p`` (chapter 10, "Variational dropout and
    sparsification"; :cite:`srivastava2014dropout`, :cite:`kingma2015variational`). In evaluation
    mode, or with ``p == 0``, it returns a copy of ``x``.

    Args:
        x: floating-point tensor of any shape; it is never modified.
        p: drop probability in [0, 1) of the Bernoulli dropout to match.
        training: add the noise if ``True``, the identity otherwise.
        generator: optional ``torch.Generator`` for reproducible noise.

    Shape:
        Output has the shape, dtype and device of ``x``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> gaussian_dropout(torch.ones(3), 0.5, generator=g).shape
        torch.Size([3])
    """
    check_float_tensor(x)
    alpha = alpha_from_drop_rate(p)
    training = check_bool(training, "training")
    check_generator(generator)
    if not training or alpha == 0.0:
        return x.clone()
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x * (1.0 + math.sqrt(alpha) * eps)


class GaussianDropout(nn.Module):
    r"""Module form of :func:`gaussian_dropout` (chapter 10): :math:`h \xi`, :math:`\xi \sim \mathcal N(1, p/(1-p))`.

    Args:
        p: drop probability in [0, 1) of the Bernoulli dropout whose moments it matches.
        generator: optional ``torch.Generator`` used for every noise draw.

    Shape:
        Input: any shape. Output: same shape as input.

    Examples:
        >>> layer = GaussianDropout(0.3).eval()
        >>> torch.equal(layer(torch.ones(2)), torch.ones(2))
        True
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = check_probability(p, "p", allow_one=False)
        self.generator = check_generator(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_dropout(x, self.p, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def local_reparameterization(x: torch.Tensor, weight: torch.Tensor, weight_variance: torch.Tensor,
                             bias: torch.Tensor | None = None, *,
                             generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Sample the pre-activations of a linear layer with independent Gaussian weights, without sampling the weights.

    With :math:`w_{ji} \sim \mathcal N(\theta_{ji}, \sigma^2_{ji})` independent, the pre-activation
    :math:`b_j = \sum_i x_i w_{ji} + c_j` of one input row is Gaussian with

    .. math:: \mathbb E[b_j] = \sum_i x_i \theta_{ji} + c_j, \qquad
              \operatorname{Var}[b_j] = \sum_i x_i^2 \sigma^2_{ji},

    and the :math:`b_j` are independent of each other and across rows. The *local
    reparameterization trick* :cite:`kingma2015variational` samples :math:`b = \mu + \sqrt{v}\,\varepsilon`
    directly: one noise draw per pre-activation instead of one weight matrix per example, and a
    gradient of lower variance. Chapter 10, section "The mechanism".

    Args:
        x: input of shape ``(batch, in_features)``, floating; never modified.
        weight: means :math:`\theta`, shape ``(out_features, in_features)``.
        weight_variance: variances :math:`\sigma^2 \ge 0`, same shape as ``weight``.
        bias: optional deterministic bias of shape ``(out_features,)``.
        generator: optional ``torch.Generator`` for reproducible noise.

    Returns:
        Tensor ``(batch, out_features)`` in the dtype and on the device of ``x``.

    Examples:
        >>> x, w = torch.ones(2, 3), torch.ones(4, 3)
        >>> local_reparameterization(x, w, torch.zeros(4, 3)).tolist()[0]
        [3.0, 3.0, 3.0, 3.0]
    """
    check_float_tensor(x, "x")
    check_float_tensor(weight, "weight")
    check_float_tensor(weight_variance, "weight_variance")
    if bias is not None:
        check_float_tensor(bias, "bias")
    check_same_dtype("x", x, weight=weight, weight_variance=weight_variance, bias=bias)
    check_generator(generator)
    if x.dim() != 2:
        raise ValueError(f"x must have shape (batch, in_features), got {tuple(x.shape)}")
    if weight.dim() != 2 or weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight must have shape (out_features, {x.shape[1]}) to match x of shape "
                         f"{tuple(x.shape)}, got {tuple(weight.shape)}")
    if weight_variance.shape != weight.shape:
        raise ValueError(f"weight_variance must have the shape of weight {tuple(weight.shape)}, "
                         f"got {tuple(weight_variance.shape)}")
    if bool((weight_variance < 0).any()) or bool(torch.isnan(weight_variance).any()):
        raise ValueError("weight_variance must be >= 0 everywhere (it is a variance)")
    if bias is not None:
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    mean = nn.functional.linear(x, weight, bias)
    var = nn.functional.linear(x * x, weight_variance)
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    # sqrt has an infinite derivative at 0 (e.g. an input row of zeros after a ReLU): keep the
    # value exact and the gradient finite by never taking the square root of a zero variance
    positive = var > 0
    std = torch.where(positive, torch.where(positive, var, torch.ones_like(var)).sqrt(), torch.zeros_like(var))
    return mean + std * eps


def _as_log_alpha(log_alpha, name: str = "log_alpha") -> tuple[torch.Tensor, bool]:
    """``log_alpha`` as a tensor (a number as a float64 0-d tensor), and whether it was a NumPy array."""
    if not isinstance(log_alpha, (torch.Tensor, np.ndarray)):
        log_alpha = torch.tensor(check_real(log_alpha, name, finite=False), dtype=torch.float64)
    log_alpha, was_numpy = as_float_tensor(log_alpha, name)
    if bool(torch.isnan(log_alpha).any()):
        raise ValueError(f"{name} must not contain NaN")
    return log_alpha, was_numpy


def neg_kl_approx(log_alpha) -> torch.Tensor:
    r"""The approximation of :cite:`molchanov2017variational` to :math:`-\mathrm{KL}` per weight, with :math:`C = -k_1`.

    .. math:: -\mathrm{KL}\bigl(q(w \mid \theta, \alpha)\,\|\,p(w)\bigr) \approx
              k_1\,\sigma(k_2 + k_3 \log\alpha) - \tfrac12 \log\bigl(1 + \alpha^{-1}\bigr) - k_1,

    with :math:`(k_1, k_2, k_3)` = :data:`SPARSE_VD_K` and :math:`\sigma` the logistic function.
    The constant :math:`C = -k_1` makes the approximation vanish as :math:`\alpha \to \infty`.
    It is differentiable, keeps dtype and device, and does not modify its input (chapter 10,
    section "Derivation"; compare :func:`neg_kl_exact`).

    Args:
        log_alpha: floating tensor (or a number / NumPy array) of :math:`\log\alpha` values.

    Returns:
        A tensor of the shape and dtype of ``log_alpha`` (float64 for a number; a NumPy array for
        a NumPy array).

    Examples:
        >>> round(float(neg_kl_approx(20.0)), 6)
        -0.0
    """
    la, was_numpy = _as_log_alpha(log_alpha)
    k1, k2, k3 = SPARSE_VD_K
    return like_input(k1 * torch.sigmoid(k2 + k3 * la) - 0.5 * nn.functional.softplus(-la) - k1, was_numpy)


def neg_kl_exact(log_alpha, *, step: float = 4e-3) -> torch.Tensor:
    r""":math:`-\mathrm{KL}` per weight of the sparse-VD posterior to the log-uniform prior, by quadrature, with :math:`C = -k_1`.

    For :math:`q(w) = \mathcal N(\theta, \alpha\theta^2)` and the log-uniform prior
    :math:`p(|w|) \propto 1/|w|`, :cite:`molchanov2017variational` show that

    .. math:: -\mathrm{KL} = \tfrac12 \log\alpha - \mathbb E_{\varepsilon \sim \mathcal N(1, \alpha)} \log|\varepsilon| + C
              = -\mathbb E_{z \sim \mathcal N(0,1)} \log\bigl|\alpha^{-1/2} + z\bigr| + C,

    up to the constant :math:`C` of the improper prior. This function computes the expectation
    numerically and uses the same constant as :func:`neg_kl_approx`, :math:`C = -k_1`, so that the two
    can be compared directly. Writing :math:`\mu = \alpha^{-1/2}`,
    :math:`\mathbb E \log|\mu + z| = \int_0^\infty \log x\,[\phi(x-\mu) + \phi(x+\mu)]\,dx`, and the
    substitution :math:`x = e^t` turns it into the integral of a smooth function that decays
    exponentially on both sides; the trapezoid rule on that integral converges geometrically
    (errors below :math:`10^{-9}` at the default step). Only numpy, in float64. As :math:`\alpha \to \infty` the result tends
    to :math:`\tfrac12(\gamma + \log 2) - k_1 \approx -5.8\cdot 10^{-4}`, not to 0 (chapter 10,
    section "Derivation").

    Args:
        log_alpha: floating tensor (or number / numpy array) of :math:`\log\alpha` values in [-30, 30].
        step: the trapezoid step in :math:`t = \log x`, in (0, 0.05].

    Returns:
        A float64 tensor of the shape of ``log_alpha`` (on the CPU; the computation is not
        differentiable), or a NumPy array for a NumPy ``log_alpha``.

    Examples:
        >>> round(float(neg_kl_exact(0.0) - neg_kl_approx(0.0)), 4)
        0.004
    """
    la, was_numpy = _as_log_alpha(log_alpha)
    step = check_real(step, "step", positive=True)
    if step > 0.05:
        raise ValueError(f"step must be in (0, 0.05], got {step}")
    values = la.detach().to("cpu", torch.float64).numpy().ravel()
    if values.size and (values.min() < -30 or values.max() > 30):
        raise ValueError(f"log_alpha must lie in [-30, 30], got values from {values.min()} to {values.max()}")
    out = np.empty_like(values)
    for i, mu in enumerate(np.exp(-0.5 * values)):
        out[i] = -_expected_log_abs_shifted_normal(float(mu), step) - SPARSE_VD_K[0]
    return like_input(torch.from_numpy(out.reshape(tuple(la.shape))), was_numpy)


def _expected_log_abs_shifted_normal(mu: float, step: float) -> float:
    r""":math:`\mathbb E\log|\mu + z|`, :math:`z \sim \mathcal N(0, 1)`, by the trapezoid rule in :math:`t = \log x`.

    The integrand :math:`t e^t [\phi(e^t - \mu) + \phi(e^t + \mu)]` is smooth and decays
    exponentially at both ends; near :math:`x = \mu` its width in :math:`t` is about :math:`1/\mu`, so
    the step is at most :math:`0.5/\mu`. For :math:`\mu > 40` the probability of :math:`z < -\mu` is below
    :math:`10^{-300}`, and :math:`\log\mu + \mathbb E\log(1 + z/\mu)` is integrated in :math:`z` instead.
    """
    if mu > 40.0:  # log(mu + z) is smooth on |z| < 40: integrate in z itself
        z = np.arange(-40.0, 40.0 + 0.05, 0.05)
        weights = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) * 0.05
        return math.log(mu) + float((np.log1p(z / mu) * weights).sum())
    h = min(step, 0.5 / mu)
    t = np.arange(-40.0, math.log(mu + 40.0) + h, h)
    x = np.exp(t)
    density = (np.exp(-0.5 * (x - mu) ** 2) + np.exp(-0.5 * (x + mu) ** 2)) / math.sqrt(2.0 * math.pi)
    return float((t * x * density).sum() * h)


@dataclass(frozen=True)
class KLApproximationError:
    """The error of :func:`neg_kl_approx` against :func:`neg_kl_exact` on a grid of :math:`\\log\\alpha` (chapter 10)."""

    log_alpha: torch.Tensor  #: the grid
    exact: torch.Tensor  #: :func:`neg_kl_exact` on the grid
    approx: torch.Tensor  #: :func:`neg_kl_approx` on the grid
    max_abs_error: float  #: :math:`\max |\text{approx} - \text{exact}|`
    argmax: float  #: the :math:`\log\alpha` where it is reached

    @property
    def error(self) -> torch.Tensor:
        """approx − exact on the grid."""
        return self.approx - self.exact


def kl_approximation_error(low: float = -8.0, high: float = 8.0, n: int = 1601) -> KLApproximationError:
    r"""Measure the maximum error of the KL approximation of :cite:`molchanov2017variational` over :math:`\log\alpha \in [\text{low}, \text{high}]`.

    Both sides use the constant :math:`C = -k_1`; the grid has ``n`` equally spaced points
    (chapter 10, section "Check").

    Args:
        low, high: the interval of :math:`\log\alpha`, with ``-30 <= low < high <= 30``.
        n: number of grid points, an int >= 2.

    Examples:
        >>> result = kl_approximation_error(-2.0, 2.0, 5)
        >>> result.log_alpha.tolist()
        [-2.0, -1.0, 0.0, 1.0, 2.0]
    """
    low, high = check_real(low, "low"), check_real(high, "high")
    if not -30 <= low < high <= 30:
        raise ValueError(f"low and high must satisfy -30 <= low < high <= 30, got low={low}, high={high}")
    n = check_int(n, "n", minimum=2)
    grid = torch.linspace(low, high, n, dtype=torch.float64)
    exact = neg_kl_exact(grid)
    approx = neg_kl_approx(grid)
    err = (approx - exact).abs()
    i = int(err.argmax())
    return KLApproximationError(grid, exact, approx, float(err[i]), float(grid[i]))


class LinearSVDO(nn.Module):
    r"""A linear layer trained with sparse variational dropout :cite:`molchanov2017variational`.

    Every weight has a Gaussian posterior :math:`w_{ji} \sim \mathcal N(\theta_{ji}, \sigma^2_{ji})`
    with its own :math:`\alpha_{ji} = \sigma^2_{ji}/\theta^2_{ji}`. The parameters are ``weight``
    (:math:`\theta`), ``log_sigma2`` (:math:`\log\sigma^2`) and ``bias``. In training mode the
    forward pass samples the pre-activations with the local reparameterization trick
    (:func:`local_reparameterization`). In evaluation mode it is deterministic and uses the mean weights with every
    weight whose :math:`\log\alpha` is at least ``threshold`` set to zero; such a weight's noise
    dwarfs its mean (:math:`\log\alpha = 3` is a signal-to-noise ratio
    :math:`|\theta|/\sigma = e^{-1.5} \approx 0.22`). :meth:`kl` is the approximate KL term of the
    variational objective, :meth:`sparsity` the fraction of weights removed. Chapter 10,
    "Variational dropout and sparsification".

    :math:`\log\alpha` is computed as :math:`\log\sigma^2 - \log(\theta^2 + 10^{-16})` and clipped
    to :math:`[-10, 10]`, as in the reference implementation of the paper: a weight whose mean is
    exactly 0 would otherwise have :math:`\log\alpha = \infty`.

    Args:
        in_features: size of each input sample, a positive int.
        out_features: size of each output sample, a positive int.
        bias: whether to learn an additive (deterministic) bias. Default: ``True``.
        threshold: weights with :math:`\log\alpha \ge` ``threshold`` are zero at evaluation. Default: 3.
        init_log_sigma2: initial value of every :math:`\log\sigma^2`. Default: -10.
        generator: optional ``torch.Generator`` for the noise of every training-mode forward pass.

    Shape:
        Input ``(batch, in_features)``; output ``(batch, out_features)``.

    Examples:
        >>> torch.manual_seed(0) is not None
        True
        >>> layer = LinearSVDO(4, 3)
        >>> layer.eval()(torch.ones(2, 4)).shape, layer.sparsity()
        (torch.Size([2, 3]), 0.0)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, threshold: float = 3.0,
                 init_log_sigma2: float = -10.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        in_features = check_int(in_features, "in_features", minimum=1)
        out_features = check_int(out_features, "out_features", minimum=1)
        bias = check_bool(bias, "bias")
        self.in_features, self.out_features = in_features, out_features
        self.threshold = check_real(threshold, "threshold")
        init_log_sigma2 = check_real(init_log_sigma2, "init_log_sigma2")
        self.generator = check_generator(generator)
        reference = nn.Linear(in_features, out_features, bias=bias)  # torch's default initialization
        self.weight = nn.Parameter(reference.weight.detach().clone())
        self.log_sigma2 = nn.Parameter(torch.full((out_features, in_features), init_log_sigma2))
        self.bias = nn.Parameter(reference.bias.detach().clone()) if bias else None

    @property
    def log_alpha(self) -> torch.Tensor:
        r""":math:`\log\alpha = \log\sigma^2 - \log\theta^2`, clipped to [-10, 10] (differentiable)."""
        return (self.log_sigma2 - torch.log(self.weight**2 + 1e-16)).clamp(-10.0, 10.0)

    def mask(self) -> torch.Tensor:
        """Boolean tensor of the weights kept at evaluation (:math:`\\log\\alpha <` threshold)."""
        return self.log_alpha.detach() < self.threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "x")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (batch, {self.in_features}), got {tuple(x.shape)}")
        check_same_dtype("the layer's parameters", self.weight, x=x)
        if self.training:
            return local_reparameterization(x, self.weight, self.log_sigma2.exp(), self.bias,
                                            generator=self.generator)
        return nn.functional.linear(x, self.weight * self.mask().to(self.weight.dtype), self.bias)

    def kl(self) -> torch.Tensor:
        r"""Approximate :math:`\mathrm{KL}(q \,\|\, p)` summed over the weights: :math:`-\sum` :func:`neg_kl_approx` (:math:`\log\alpha`)."""
        return -neg_kl_approx(self.log_alpha).sum()

    def sparsity(self) -> float:
        """Fraction of the weights removed at evaluation (:math:`\\log\\alpha \\ge` threshold); biases are not counted."""
        return 1.0 - self.mask().double().mean().item()

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, threshold={self.threshold}")


def _svdo_layers(model: nn.Module) -> list[LinearSVDO]:
    layers = [m for m in check_module(model).modules() if isinstance(m, LinearSVDO)]
    if not layers:
        raise ValueError("model has no LinearSVDO layer")
    return layers


def sparse_vd_kl(model: nn.Module) -> torch.Tensor:
    """The KL term of sparse variational dropout: the sum of :meth:`LinearSVDO.kl` over every layer of ``model`` (chapter 10).

    Raises ``ValueError`` when the model has no :class:`LinearSVDO` layer.
    """
    return sum(layer.kl() for layer in _svdo_layers(model))


@dataclass(frozen=True)
class SparsityReport:
    """How many weights each :class:`LinearSVDO` layer removes at evaluation (chapter 10)."""

    removed: tuple[int, ...]  #: weights removed, per layer
    total: tuple[int, ...]  #: weights, per layer

    @property
    def fraction(self) -> float:
        """Fraction of all weights removed."""
        return sum(self.removed) / sum(self.total)

    @property
    def compression(self) -> float:
        """Weights before over weights kept (``inf`` if all are removed)."""
        kept = sum(self.total) - sum(self.removed)
        return math.inf if kept == 0 else sum(self.total) / kept

    def __str__(self) -> str:
        layers = ", ".join(f"{r}/{t}" for r, t in zip(self.removed, self.total))
        return f"removed {self.fraction:.1%} of the weights (per layer: {layers}), compression {self.compression:.1f}x"


def sparsity_report(model: nn.Module) -> SparsityReport:
    """Count the weights removed by every :class:`LinearSVDO` layer of ``model`` (chapter 10).

    Examples:
        >>> print(sparsity_report(nn.Sequential(LinearSVDO(2, 3), nn.ReLU(), LinearSVDO(3, 1))))
        removed 0.0% of the weights (per layer: 0/6, 0/3), compression 1.0x
    """
    layers = _svdo_layers(model)
    return SparsityReport(tuple(int((~layer.mask()).sum()) for layer in layers),
                          tuple(layer.weight.numel() for layer in layers))


@dataclass
class SparseVDHistory:
    """Per-epoch records of :func:`train_sparse_vd` (chapter 10)."""

    data_loss: list[float] = field(default_factory=list)  #: mean cross-entropy per example
    kl: list[float] = field(default_factory=list)  #: KL term divided by the number of training examples
    kl_weight: list[float] = field(default_factory=list)
    sparsity: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


def train_sparse_vd(model: nn.Module, data: Split, *, epochs: int = 60, lr: float = 1e-2,
                    batch_size: int = 100, warmup_epochs: int = 20, seed: int = 0) -> SparseVDHistory:
    r"""Train ``model`` by maximizing the variational lower bound of sparse variational dropout.

    Each step minimizes :math:`\frac1B \sum_{b} \mathrm{CE}(f(x_b), y_b) + \beta\,\mathrm{KL}/N`,
    the negative evidence lower bound per training example (:math:`N` training examples, batch
    size :math:`B`), with Adam. The KL weight :math:`\beta` grows linearly from 0 to 1 over the
    first ``warmup_epochs`` epochs, as in :cite:`molchanov2017variational`, so that the network
    first learns to fit the data. The mini-batch order comes from a generator seeded with
    ``seed``; the noise of the layers from torch's global generator (or the layers' own).
    Chapter 10, section "Experiment".

    Args:
        model: a classifier returning logits with at least one :class:`LinearSVDO` layer.
        data: the :class:`~dropoutbook.data.Split` to train on and evaluate.
        epochs: a positive int.
        lr: Adam's learning rate, positive.
        batch_size: a positive int.
        warmup_epochs: epochs over which :math:`\beta` rises to 1 (a non-negative int; 0 means :math:`\beta = 1`).
        seed: seed of the mini-batch order.
    """
    from .training import accuracy

    _svdo_layers(model)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a dropoutbook.data.Split, got {type(data).__name__}")
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    warmup_epochs = check_int(warmup_epochs, "warmup_epochs", minimum=0)
    seed = check_seed(seed)
    lr = check_real(lr, "lr", positive=True)
    n = len(data.y_train)
    if n == 0:
        raise ValueError("data has an empty training set")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    history = SparseVDHistory()
    for epoch in range(epochs):
        beta = 1.0 if warmup_epochs == 0 else min(1.0, epoch / warmup_epochs)
        model.train()
        order = torch.randperm(n, generator=g)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            data_loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            loss = data_loss + beta * sparse_vd_kl(model) / n
            loss.backward()
            opt.step()
            total += data_loss.item() * len(idx)
        history.data_loss.append(total / n)
        with torch.no_grad():
            history.kl.append(sparse_vd_kl(model).item() / n)
        history.kl_weight.append(beta)
        history.sparsity.append(sparsity_report(model).fraction)
        history.train_accuracy.append(accuracy(model, data.x_train, data.y_train))
        history.test_accuracy.append(accuracy(model, data.x_test, data.y_test))
    return history
