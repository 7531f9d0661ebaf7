r"""Chapter 6, "Dropout and BatchNorm: the variance shift".

Inverted dropout keeps the mean of a unit and inflates its variance. A BatchNorm layer that
follows it records the inflated variance in its running statistics during training and uses it
at test time, when dropout is off and the variance is smaller again: the *variance shift*
:cite:`li2019understanding`. This module gives the closed form for one unit
(:func:`bn_train_variance`), measures the shift of every BatchNorm layer of a network
(:func:`measure_variance_shift`) and removes it by recomputing the running statistics with
dropout off (:func:`recalibrate_batchnorm`). LayerNorm stores no statistics, but it normalizes the
noisy vector in training and the clean one at test time: :func:`layernorm_train_test_scale`
measures the resulting scale mismatch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._validation import (as_float_tensor, check_float_tensor, check_generator, check_module, check_positive_int,
                          check_probability, check_real_or_float_tensor, like_input)
from .montecarlo import Estimate, estimate_mean

__all__ = ["bn_train_variance", "VarianceShift", "measure_variance_shift", "recalibrate_batchnorm",
           "layernorm_train_test_scale"]


def bn_train_variance(mu, sigma2, keep_prob: float):
    r"""Variance of a unit after inverted dropout, as the BatchNorm layer right after it sees it in training.

    A unit :math:`x` with mean :math:`\mu` and variance :math:`\sigma^2` passes through inverted
    dropout, :math:`\tilde x = m x / q` with :math:`m \sim \mathrm{Bernoulli}(q)` independent of
    :math:`x`, straight into a BatchNorm layer (no layer in between). Then

    .. math:: \mathbb E[\tilde x] = \mu, \qquad
              \operatorname{Var}[\tilde x] = \frac{\sigma^2}{q} + \mu^2 \frac{1-q}{q},

    while at test time (dropout off) the layer sees variance :math:`\sigma^2`. The running
    variance converges to the training value, so the shift ratio is
    :math:`\operatorname{Var}[\tilde x]/\sigma^2 = 1/q + (1-q)\mu^2/(q\sigma^2) \ge 1/q`.
    Through a linear layer between dropout and BatchNorm the ratio depends on the weights
    (chapter 6, section "Derivation"). Derived by
    :func:`dropoutbook.derivations.variance_shift`; see chapter 6, "Dropout and BatchNorm:
    the variance shift", and :cite:`li2019understanding`.

    Args:
        mu: mean :math:`\mu` of the unit (a number, a floating tensor or a NumPy array; no NaN).
        sigma2: variance :math:`\sigma^2 \ge 0` of the unit (a number, a floating tensor or a
            NumPy array).
        keep_prob: keep probability :math:`q = 1 - p \in (0, 1]`.

    Returns:
        :math:`\sigma^2/q + \mu^2(1-q)/q`, a float for number inputs, otherwise a tensor
        (broadcast, in the inputs' dtype and device), or a NumPy array when the array inputs are
        NumPy arrays.

    Examples:
        >>> bn_train_variance(0.0, 1.0, 0.5)
        2.0
        >>> bn_train_variance(1.0, 1.0, 0.5)
        3.0
    """
    q = check_probability(keep_prob, "keep_prob", allow_zero=False)
    given = (mu, sigma2)
    mu = as_float_tensor(mu, "mu")[0] if isinstance(mu, np.ndarray) else mu
    sigma2 = as_float_tensor(sigma2, "sigma2")[0] if isinstance(sigma2, np.ndarray) else sigma2
    mu = check_real_or_float_tensor(mu, "mu")
    sigma2 = check_real_or_float_tensor(sigma2, "sigma2", nonnegative=True)
    result = sigma2 / q + mu**2 * (1 - q) / q
    as_numpy = any(isinstance(v, np.ndarray) for v in given) and not any(isinstance(v, torch.Tensor) for v in given)
    return like_input(result, as_numpy)


@dataclass(frozen=True)
class VarianceShift:
    r"""Test-time input statistics of one BatchNorm layer, next to its running statistics (chapter 6).

    All tensors have one entry per channel (float64). ``test_var`` is the unbiased variance
    (denominator :math:`n - 1`) of the layer's input over all ``n`` values of a channel seen in
    the measurement (batch and, for convolutions, spatial positions), the same convention as
    BatchNorm's running variance.

    Attributes:
        name: the layer's name in ``model.named_modules()``.
        running_mean, running_var: the layer's running statistics (copies).
        test_mean, test_var: mean and unbiased variance of the layer's input in evaluation mode.
        n: number of values per channel behind ``test_mean`` and ``test_var``.
    """

    name: str
    running_mean: torch.Tensor
    running_var: torch.Tensor
    test_mean: torch.Tensor
    test_var: torch.Tensor
    n: int

    @property
    def ratio(self) -> torch.Tensor:
        r"""Per channel :math:`\sigma^2_\text{running} / \sigma^2_\text{test}`; 1 means no shift, above 1 the layer over-normalizes."""
        return self.running_var / self.test_var

    @property
    def mean_ratio(self) -> float:
        """The mean of :attr:`ratio` over the channels."""
        return self.ratio.mean().item()

    @property
    def output_scale(self) -> torch.Tensor:
        r"""Per channel :math:`1/k = \sqrt{\sigma^2_\text{test}/\sigma^2_\text{running}}`: the factor by which
        the standard deviation of the normalized output (before the affine map) differs from 1 at test time
        (BatchNorm's small ``eps`` ignored)."""
        return (self.test_var / self.running_var).sqrt()


def _batchnorm_layers(model: nn.Module) -> list[tuple[str, _BatchNorm]]:
    check_module(model)
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, _BatchNorm) and m.track_running_stats and m.running_var is not None]
    if not layers:
        raise ValueError("model has no BatchNorm layer with running statistics (track_running_stats=True)")
    return layers


def _inputs(batches) -> Iterable[torch.Tensor]:
    if isinstance(batches, torch.Tensor) or not isinstance(batches, Iterable):
        raise TypeError("batches must be an iterable of tensors (or of (input, target) pairs), "
                        f"got {type(batches).__name__}")
    for i, batch in enumerate(batches):
        if isinstance(batch, (tuple, list)):
            if not batch:
                raise ValueError(f"batches[{i}] is an empty tuple")
            batch = batch[0]
        if not isinstance(batch, torch.Tensor):
            raise TypeError(f"batches[{i}] must be a tensor or an (input, target) pair, got {type(batch).__name__}")
        if batch.dim() < 2 or batch.shape[0] < 2:
            raise ValueError(f"batches[{i}] must have shape (N, C, ...) with N >= 2 samples, got {tuple(batch.shape)}")
        yield batch


def _warn_unreached(names: list[str], what: str) -> None:
    if names:
        listed = ", ".join(repr(n) for n in names)
        warnings.warn(f"BatchNorm layer(s) {listed} never ran during the forward passes over batches; "
                      f"{what}", UserWarning, stacklevel=3)


def _training_flags(model: nn.Module) -> dict[nn.Module, bool]:
    return {m: m.training for m in model.modules()}


def _restore_flags(flags: dict[nn.Module, bool]) -> None:
    for m, training in flags.items():
        m.training = training


class _ChannelMoments:
    """Per-channel mean and sum of squared deviations, merged batch by batch (Chan et al.), in float64."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().to(torch.float64).transpose(0, 1).reshape(x.shape[1], -1)
        nb = x.shape[1]
        mb = x.mean(dim=1)
        m2b = ((x - mb[:, None]) ** 2).sum(dim=1)
        if self.mean is None:
            self.n, self.mean, self.m2 = nb, mb, m2b
            return
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * nb / n
        self.m2 = self.m2 + m2b + delta**2 * self.n * nb / n
        self.n = n


@torch.no_grad()
def measure_variance_shift(model: nn.Module, batches) -> dict[str, VarianceShift]:
    r"""Compare each BatchNorm layer's test-time input variance with its running variance (chapter 6).

    The model runs in evaluation mode (dropout off, BatchNorm using its running statistics) on
    ``batches``, without gradients; a forward pre-hook on every BatchNorm layer with running
    statistics records the per-channel mean and unbiased variance of the layer's input,
    pooled over all batches. The returned :attr:`VarianceShift.ratio` is

    .. math:: \frac{\sigma^2_\text{running}}{\sigma^2_\text{test}},

    the square of the scale error :math:`k` of :cite:`li2019understanding`: a ratio above 1 means
    the layer divides its test-time input by too large a standard deviation. Nothing in the model
    changes: modes are restored and the hooks removed, also when an exception is raised. A layer
    that the forward never reaches (an unused head, say) has no test-time statistics: it is left
    out of the result with a warning, and ``ValueError`` is raised when no layer is reached.

    Args:
        model: a module with at least one BatchNorm layer that tracks running statistics.
        batches: an iterable of input tensors, or of ``(input, target)`` pairs (the target is
            ignored); each batch holds at least two samples.

    Returns:
        ``{layer name: VarianceShift}``, in the order of ``model.named_modules()``.

    Examples:
        >>> torch.manual_seed(0) and None
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        >>> shift = measure_variance_shift(net, [torch.randn(64, 4)])
        >>> list(shift), tuple(shift["1"].ratio.shape)
        (['1'], (3,))
    """
    layers = _batchnorm_layers(model)
    moments = {name: _ChannelMoments() for name, _ in layers}
    flags = _training_flags(model)
    handles = []
    seen = 0
    try:
        for name, layer in layers:
            handles.append(layer.register_forward_pre_hook(
                lambda module, args, _m=moments[name]: _m.add(args[0])))
        model.eval()
        for x in _inputs(batches):
            model(x)
            seen += 1
    finally:
        for h in handles:
            h.remove()
        _restore_flags(flags)
    if seen == 0:
        raise ValueError("batches is empty: pass at least one batch")
    unreached = [name for name, _ in layers if moments[name].n == 0]
    if len(unreached) == len(layers):
        raise ValueError(f"no BatchNorm layer of the model ran during the forward passes (layers "
                         f"{', '.join(repr(n) for n in unreached)}): there is nothing to measure")
    _warn_unreached(unreached, "they are left out of the result")
    out = {}
    for name, layer in layers:
        m = moments[name]
        if m.n == 0:
            continue
        out[name] = VarianceShift(
            name=name,
            running_mean=layer.running_mean.detach().to(torch.float64).clone(),
            running_var=layer.running_var.detach().to(torch.float64).clone(),
            test_mean=m.mean,
            test_var=m.m2 / (m.n - 1),
            n=m.n,
        )
    return out


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches) -> nn.Module:
    r"""Recompute every BatchNorm layer's running statistics with dropout off (chapter 6).

    This removes the variance shift :cite:`li2019understanding`: the running statistics are
    reset and then estimated again from ``batches`` with every other module in evaluation mode
    (so dropout is off) and the BatchNorm layers in training mode, without gradients. The
    BatchNorm layers use ``momentum=None`` during the pass, so the result is the plain average of
    the per-batch statistics (each batch counts equally),

    .. math:: \hat\mu = \frac1B \sum_{b=1}^B \bar x_b, \qquad
              \hat\sigma^2 = \frac1B \sum_{b=1}^B \frac{n_b}{n_b - 1} s_b^2,

    with :math:`s_b^2` the biased variance of batch :math:`b` (BatchNorm stores the unbiased one),
    rather than an exponential average dominated by the last batches. As in
    ``torch.optim.swa_utils.update_bn``, each layer normalizes with its batch statistics during
    the pass, so a later layer sees inputs normalized by batch rather than running statistics, a
    difference of order :math:`1/n_b`: use batches of a hundred samples or more.

    The running statistics (``running_mean``, ``running_var``, ``num_batches_tracked``) are
    changed in place; that is the purpose of the function. Nothing else changes: momenta and
    every module's training flag are restored afterwards, also when an exception is raised, and
    parameters are not touched. A BatchNorm layer that the forward never reaches keeps its
    statistics, with a warning (``torch.optim.swa_utils.update_bn`` resets such a layer to mean 0
    and variance 1). Note that a pass in *training* mode (dropout on) would reproduce the shifted
    statistics.

    Args:
        model: a module with at least one BatchNorm layer that tracks running statistics.
        batches: an iterable of input tensors, or of ``(input, target)`` pairs; each batch holds
            at least two samples.

    Returns:
        ``model`` itself.

    Examples:
        >>> torch.manual_seed(0) and None
        >>> net = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2, momentum=None))
        >>> _ = net.train()(torch.randn(4096, 2) + 1)  # statistics of a training pass: dropout on
        >>> round(measure_variance_shift(net, [torch.randn(4096, 2) + 1])["1"].mean_ratio, 1)
        3.0
        >>> _ = recalibrate_batchnorm(net, [torch.randn(4096, 2) + 1])
        >>> net.training, round(measure_variance_shift(net, [torch.randn(4096, 2) + 1])["1"].mean_ratio, 1)
        (True, 1.0)
    """
    layers = _batchnorm_layers(model)
    flags = _training_flags(model)
    momenta = {layer: layer.momentum for _, layer in layers}
    batches = _inputs(batches)
    seen = 0
    saved = {layer: (layer.running_mean.clone(), layer.running_var.clone(), layer.num_batches_tracked.clone())
             for _, layer in layers}

    def restore(layer: _BatchNorm) -> None:
        mean, var, count = saved[layer]
        layer.running_mean.copy_(mean)
        layer.running_var.copy_(var)
        layer.num_batches_tracked.copy_(count)

    reached: set[_BatchNorm] = set()
    handles = [layer.register_forward_pre_hook(lambda module, args: reached.add(module)) for _, layer in layers]
    try:
        model.eval()
        for _, layer in layers:
            layer.reset_running_stats()
            layer.momentum = None
            layer.train()
        for x in batches:
            model(x)
            seen += 1
        if seen == 0:
            raise ValueError("batches is empty: pass at least one batch")
    except BaseException:
        for layer in saved:  # leave the model as it was
            restore(layer)
        raise
    finally:
        for h in handles:
            h.remove()
        for layer, momentum in momenta.items():
            layer.momentum = momentum
        _restore_flags(flags)
    unreached = [name for name, layer in layers if layer not in reached]
    for name, layer in layers:
        if layer not in reached:  # no data reached it: keep its statistics rather than reset them to 0 and 1
            restore(layer)
    _warn_unreached(unreached, "their running statistics are left unchanged")
    return model


def _layer_norm(z: torch.Tensor) -> torch.Tensor:
    """Normalize the last dimension to mean 0 and (biased) variance 1, as ``nn.LayerNorm`` without affine and eps."""
    centred = z - z.mean(-1, keepdim=True)
    return centred / centred.pow(2).mean(-1, keepdim=True).sqrt()


@torch.no_grad()
def layernorm_train_test_scale(h: torch.Tensor, weight: torch.Tensor, p: float, *, bias: torch.Tensor | None = None,
                               samples: int = 2000, generator: torch.Generator | None = None) -> Estimate:
    r"""How much larger LayerNorm's test-time output is than its training-time mean, behind dropout (chapter 6).

    A linear layer :math:`z = W\tilde h + c` follows inverted dropout :math:`\tilde h = m \odot h/(1-p)`
    and feeds LayerNorm, :math:`\operatorname{LN}(z) = (z - \bar z)/s(z)` over the features (mean and biased
    standard deviation of the vector itself; LayerNorm's affine map and :math:`\epsilon` left out). In training
    LayerNorm divides by the standard deviation of the *noisy* vector, at test time by that of the clean one,
    so although :math:`\mathbb E_m[z] = Wh + c`, the training-time mean of the output is a shrunken copy of the
    test-time output. This function estimates the factor, the least-squares slope

    .. math:: \kappa = \frac{\langle \mathbb E_m[\operatorname{LN}(\tilde z)],\, \operatorname{LN}(z)\rangle}
                             {\langle \operatorname{LN}(z),\, \operatorname{LN}(z)\rangle},

    averaged over the rows of ``h``, by Monte Carlo: ``samples`` masks per row, each giving one value of the
    projection; the standard error is that of the mean of all these values (conservative when the rows
    differ). :math:`\kappa = 1` means no mismatch; :math:`\kappa < 1` means the test-time output is
    :math:`1/\kappa` times larger than its training mean. BatchNorm with fixed statistics is affine, so for it
    the same slope is exactly 1; chapter 6, "Pitfalls and errata". The variance shift of BatchNorm is
    :cite:`li2019understanding`; this measurement is the book's.

    Args:
        h: the input of dropout, a floating tensor of shape ``(d_in,)`` or ``(N, d_in)``; never modified.
        weight: the linear layer's weight, shape ``(d_out, d_in)`` with ``d_out >= 2``, same dtype as ``h``.
        p: drop probability in :math:`[0, 1)`.
        bias: optional bias of shape ``(d_out,)``.
        samples: number of masks per row of ``h``, an int >= 2.
        generator: optional ``torch.Generator`` for reproducible masks.

    Returns:
        An :class:`~dropoutbook.Estimate` of :math:`\kappa` (exactly 1 with standard error 0 at ``p = 0``).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> h, w = torch.rand(16, dtype=torch.float64), torch.randn(8, 16, dtype=torch.float64, generator=g)
        >>> layernorm_train_test_scale(h, w, 0.0).value
        1.0
        >>> layernorm_train_test_scale(h, w, 0.5, generator=g).value < 1
        True
    """
    check_float_tensor(h, "h")
    check_float_tensor(weight, "weight")
    if h.dim() not in (1, 2):
        raise ValueError(f"h must have shape (d_in,) or (N, d_in), got {tuple(h.shape)}")
    rows = h if h.dim() == 2 else h[None]
    if rows.shape[0] == 0:
        raise ValueError("h must hold at least one row, got an empty batch")
    if weight.dim() != 2 or weight.shape[1] != rows.shape[1] or weight.shape[0] < 2:
        raise ValueError(f"weight must have shape (d_out, {rows.shape[1]}) with d_out >= 2 (LayerNorm over one "
                         f"feature is constant), got {tuple(weight.shape)}")
    if weight.dtype != h.dtype:
        raise TypeError(f"weight must have the dtype of h ({h.dtype}), got {weight.dtype}")
    if bias is not None:
        check_float_tensor(bias, "bias")
        if bias.shape != (weight.shape[0],) or bias.dtype != h.dtype:
            raise ValueError(f"bias must have shape ({weight.shape[0]},) and dtype {h.dtype}, "
                             f"got {tuple(bias.shape)} and {bias.dtype}")
    p = check_probability(p, allow_one=False)
    samples = check_positive_int(samples, "samples")
    if samples < 2:
        raise ValueError(f"samples must be at least 2 (a standard error needs two values), got {samples}")
    check_generator(generator)
    shift = bias if bias is not None else torch.zeros(weight.shape[0], dtype=h.dtype, device=h.device)
    test = _layer_norm(rows @ weight.T + shift)  # (N, d_out)
    norm2 = (test * test).sum(-1)
    if not bool((norm2 > 0).all()):
        raise ValueError("the test-time vector W h + bias is constant over the features for some row: "
                         "LayerNorm of it is undefined")
    if p == 0.0:
        return Estimate(1.0, 0.0, samples * rows.shape[0])
    values = []
    chunk = max(1, 2**20 // max(1, rows.numel()))
    for start in range(0, samples, chunk):
        k = min(chunk, samples - start)
        keep = torch.rand((k, *rows.shape), generator=generator, dtype=rows.dtype, device=rows.device) >= p
        z = (keep * rows / (1.0 - p)) @ weight.T + shift  # (k, N, d_out)
        values.append(((_layer_norm(z) * test).sum(-1) / norm2).reshape(-1))
    return estimate_mean(torch.cat(values))
