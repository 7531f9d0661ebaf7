r"""Monte Carlo dropout: sampling at test time, batched predictions, and uncertainty scores (chapter 5).

MC dropout keeps dropout *on* at test time and averages :math:`T` stochastic forward passes
:cite:`gal2016dropout`. This module provides

* :func:`mc_dropout`, a context manager under which every dropout module samples while every other
  module (BatchNorm above all) stays in evaluation mode, with every mode restored on exit;
* :func:`mc_predict`, which runs the :math:`T` passes as a few batched forwards over replicated
  inputs and returns the predictive mean and variance (and, on request, the samples);
* :func:`predictive_entropy`, :func:`expected_entropy` and :func:`mutual_information` (BALD)
  computed from stacked class probabilities;
* :func:`ensemble_predict`, a deep ensemble's predictions in the same layout as :func:`mc_predict`'s;
* :func:`referral_curve`, the accuracy of the predictions that are kept when the most uncertain
  ones are referred to a human, and :func:`referral_curves` for several scores at once;
* :func:`deferral_curve` and :func:`random_deferral_curve`, the same idea for estimates with a
  numerical error (the root mean squared error of the estimates kept), used for treatment effects
  in chapter 15.

See chapter 5, "Monte Carlo dropout", and chapter 15, "Applications".
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ._validation import (as_float_tensor, as_tensor, check_bool, check_finite_tensor, check_float_vector,
                          check_fractions, check_generator, check_int, check_module,
                          check_score_dict, like_input)
from .masks import InvertedDropout

__all__ = [
    "dropout_modules", "mc_dropout", "MCPrediction", "mc_predict", "ensemble_predict",
    "predictive_entropy", "expected_entropy", "mutual_information", "referral_curve",
    "referral_curves", "deferral_curve", "random_deferral_curve",
]

#: Module classes that :func:`~dropoutbook.mc_dropout` switches to sampling: every dropout class of
#: ``torch.nn`` (``Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``, ``FeatureAlphaDropout``, all
#: subclasses of ``torch.nn.modules.dropout._DropoutNd``) and the library's
#: :class:`~dropoutbook.InvertedDropout` and :class:`~dropoutbook.StandardDropout` (chapter 5).
DROPOUT_MODULE_TYPES: tuple[type, ...] = (nn.modules.dropout._DropoutNd, InvertedDropout)

# Dropout modules of later chapters, looked up when needed (their modules import after this one):
# DropPath (chapter 8) and GaussianDropout (chapter 10) draw independent noise for every row. Not
# included: DropBlock2d, whose schedule counts training passes (MC passes would advance it), and
# StochasticDepth, whose default mode shares one draw across the batch (mc_predict's copies would
# not be independent); pass them in ``dropout_types`` if that is what you want.
_LIBRARY_DROPOUT = (("stochastic_depth", "DropPath"), ("variational", "GaussianDropout"),
                    ("concrete", "ConcreteDropout"))  # chapter 13: a fresh relaxed mask for every row


def _library_dropout_types() -> tuple[type, ...]:
    found = []
    for module, name in _LIBRARY_DROPOUT:
        cls = getattr(importlib.import_module(f"{__package__}.{module}"), name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            found.append(cls)
    return tuple(found)


def _check_types(dropout_types) -> tuple[type, ...]:
    if dropout_types is not None and (isinstance(dropout_types, (type, str, bytes))
                                      or not isinstance(dropout_types, Iterable)):
        hint = f" (write ({dropout_types.__name__},) for one class)" if isinstance(dropout_types, type) else ""
        raise TypeError(f"dropout_types must be None or a sequence of torch.nn.Module subclasses{hint}, "
                        f"got {dropout_types!r}")
    extra = () if dropout_types is None else tuple(dropout_types)
    for t in extra:
        if not (isinstance(t, type) and issubclass(t, nn.Module)):
            raise TypeError(f"dropout_types must hold torch.nn.Module subclasses, got {t!r}")
    return DROPOUT_MODULE_TYPES + _library_dropout_types() + extra


def dropout_modules(model: nn.Module, *, dropout_types=None) -> list[nn.Module]:
    """The dropout-like modules of ``model`` (itself included), in the order of ``model.modules()``.

    A module counts when it is an instance of :data:`~dropoutbook.uncertainty.DROPOUT_MODULE_TYPES`
    (``torch.nn``'s dropout classes, :class:`~dropoutbook.InvertedDropout`,
    :class:`~dropoutbook.StandardDropout`), of the library's row-wise dropout modules of later
    chapters (``DropPath``, ``GaussianDropout``, ``ConcreteDropout``), or of one of the extra ``dropout_types``.
    ``DropBlock2d`` (its schedule counts training passes) and ``StochasticDepth`` (its default
    mode draws once per batch, so replicated copies would share the draw) are not included by
    default. See chapter 5, "Monte Carlo dropout".

    Args:
        model: a ``torch.nn.Module``.
        dropout_types: optional extra module classes to treat as dropout (e.g. a DropBlock or
            DropPath module), added to :data:`~dropoutbook.uncertainty.DROPOUT_MODULE_TYPES`.

    Examples:
        >>> model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2), nn.BatchNorm1d(3))
        >>> dropout_modules(model)
        [Dropout(p=0.2, inplace=False)]
    """
    types = _check_types(dropout_types)
    return [m for m in check_module(model).modules() if isinstance(m, types)]


@contextlib.contextmanager
def mc_dropout(model: nn.Module, *, dropout_types=None) -> Iterator[nn.Module]:
    r"""Context manager for Monte Carlo dropout: dropout modules sample, everything else evaluates.

    Inside the ``with`` block every dropout-like module of ``model`` (see :func:`dropout_modules`)
    is in training mode, so that it draws a fresh mask on every forward pass, and every other
    module is in evaluation mode: BatchNorm normalizes with its running statistics and does not
    update them. Each forward pass then computes :math:`f_{\hat\omega_t}(x)`, the network with one
    sampled mask :math:`\hat\omega_t`, as in :cite:`gal2016dropout`. On exit, also when an
    exception is raised inside the block, every module's ``training`` flag is restored to what it
    was on entry. The context changes no parameter and no buffer.

    Calling ``model.train()`` instead would also put BatchNorm in training mode: it would normalize
    each batch with the batch's own statistics and overwrite its running averages.

    Args:
        model: the network; it must contain at least one dropout-like module.
        dropout_types: optional extra module classes to treat as dropout.

    Yields:
        ``model`` itself.

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``.
        ValueError: ``model`` has no dropout-like module (the passes would all be identical).

    See chapter 5, "Monte Carlo dropout", section "The mechanism".

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Dropout(0.5)).eval()
        >>> with mc_dropout(model):
        ...     [m.training for m in model]
        [False, False, True]
        >>> [m.training for m in model]
        [False, False, False]
    """
    found = dropout_modules(model, dropout_types=dropout_types)
    if not found:
        raise ValueError(
            f"model has no dropout module (looked for instances of "
            f"{', '.join(t.__name__ for t in _check_types(dropout_types))}); MC dropout needs at least "
            "one, otherwise every pass gives the same output. Pass dropout_types=(...) for custom modules"
        )
    modes = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in modes:
            m.training = False
        for m in found:
            m.training = True
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


class MCPrediction(NamedTuple):
    """Result of :func:`mc_predict` (chapter 5, "Monte Carlo dropout").

    Attributes:
        mean: predictive mean over the T passes, shape of one model output.
        variance: unbiased sample variance over the T passes (divisor T - 1), same shape.
        samples: the T outputs stacked along a new first dimension, or ``None`` unless requested.
    """

    mean: torch.Tensor
    variance: torch.Tensor
    samples: torch.Tensor | None


def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


def mc_predict(model: nn.Module, x: torch.Tensor, T: int, *, chunk_size: int | None = None,
               generator: torch.Generator | None = None, return_samples: bool = False,
               dropout_types=None) -> MCPrediction:
    r"""Monte Carlo dropout prediction: mean and variance of ``T`` stochastic forward passes.

    .. math::
        \hat\mu(x) = \frac1T \sum_{t=1}^T f_{\hat\omega_t}(x), \qquad
        \hat\sigma^2(x) = \frac{1}{T-1} \sum_{t=1}^T \bigl(f_{\hat\omega_t}(x) - \hat\mu(x)\bigr)^2,

    with an independent mask :math:`\hat\omega_t` per pass :cite:`gal2016dropout`. The variance
    uses the divisor :math:`T - 1`, so that it is unbiased for the variance of one pass (the plug-in
    divisor :math:`T` underestimates it by the factor :math:`(T-1)/T`).

    The passes run under :func:`mc_dropout` (BatchNorm in evaluation mode, modes restored on exit)
    and without autograd. Instead of a Python loop of ``T`` forwards, the batch of ``B`` inputs is
    replicated ``T`` times and sent through the model in forwards of ``chunk_size`` copies
    (``chunk_size · B`` rows). Element-wise and channel-wise dropout draw an independent mask for
    every row, so the copies get independent masks and the result has the distribution of the plain
    loop. This needs a model that treats the rows of a batch independently in evaluation mode (true
    of MLPs, CNNs, transformers without cross-sample operations). A dropout module that draws one
    mask for the whole batch (one that sets ``shares_draw_across_rows = True``: the weight masks of
    chapter 11's ``DropConnectLinear`` and ``WeightDrop``, ``StochasticDepth`` in ``mode="batch"``)
    would give every copy of a forward the same draw; when one is among the dropout modules, the
    passes run one at a time (``chunk_size=1``), whatever ``chunk_size`` says.

    Determinism: ``torch.nn`` dropout modules draw from torch's global generator. When
    ``generator`` is given, the passes run inside ``torch.random.fork_rng`` with the global
    generator seeded from ``generator``; the same generator state then gives the same result, and
    the caller's global RNG state is left untouched. Library modules constructed with their own
    ``generator`` keep using it. With ``generator=None`` the global generator is used (and advanced).

    Args:
        model: a network with at least one dropout-like module (see :func:`dropout_modules`) that
            its forward reaches (otherwise every pass is the same, and ``ValueError`` is raised).
        x: batch of inputs, a tensor whose first dimension is the batch (``B >= 1``): floating
            features, or token ids for a model such as :class:`~dropoutbook.TinyTransformer`; not modified.
        T: number of stochastic passes, an int >= 2.
        chunk_size: passes per batched forward, an int >= 1 (default: all ``T`` at once). Memory
            grows with ``chunk_size · B``; ``chunk_size=1`` is the plain loop.
        generator: optional ``torch.Generator`` that makes the passes reproducible.
        return_samples: also return the ``T`` outputs.
        dropout_types: optional sequence of extra module classes to treat as dropout.

    Shape:
        x: :math:`(B, *)`. mean, variance: the shape of ``model(x)``, :math:`(B, *)`.
        samples: :math:`(T, B, *)`. Dtype and device are those of the model's output.

    See chapter 5, "Monte Carlo dropout".

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
        >>> g = torch.Generator().manual_seed(1)
        >>> pred = mc_predict(model, torch.randn(5, 3), T=50, generator=g)
        >>> pred.mean.shape, pred.variance.shape, pred.samples is None
        (torch.Size([5, 2]), torch.Size([5, 2]), True)
    """
    check_module(model)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (the model's input), got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"x must have a non-empty first (batch) dimension, got shape {tuple(x.shape)}")
    T = check_int(T, "T", minimum=2)
    chunk = T if chunk_size is None else min(check_int(chunk_size, "chunk_size", minimum=1), T)
    check_generator(generator)
    return_samples = check_bool(return_samples, "return_samples")
    batch = x.shape[0]

    ran: list[nn.Module] = []
    modules = dropout_modules(model, dropout_types=dropout_types)
    if any(getattr(m, "shares_draw_across_rows", False) for m in modules):
        chunk = 1  # copies in one forward would share the module's single draw
    handles = [m.register_forward_hook(lambda module, args, out: ran.append(module)) for m in modules]

    def run() -> torch.Tensor:
        outputs = []
        with mc_dropout(model, dropout_types=dropout_types), torch.no_grad():
            for start in range(0, T, chunk):
                n = min(chunk, T - start)
                rows = x.unsqueeze(0).expand(n, *x.shape).reshape(n * batch, *x.shape[1:])
                try:
                    out = model(rows)
                except RuntimeError as exc:
                    if x.is_floating_point():
                        raise ValueError(f"x must fit the model: on x of shape {tuple(x.shape)} (its {n} copies "
                                         f"stacked to {tuple(rows.shape)}) the model raised: {exc}") from exc
                    raise TypeError(f"x must have a floating dtype, or hold token ids for a model that embeds "
                                    f"them; the model failed on x of dtype {x.dtype} ({exc})") from exc
                if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != n * batch:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise ValueError(
                        f"the model must return one tensor with a row per input row; for {n * batch} rows "
                        f"it returned {got}"
                    )
                outputs.append(out.reshape(n, batch, *out.shape[1:]))
        return torch.cat(outputs) if len(outputs) > 1 else outputs[0]

    try:
        if generator is None:
            samples = run()
        else:
            devices = [x.device.index or 0] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                seed = _seed_from(generator)
                torch.manual_seed(seed)
                samples = run()
    finally:
        for h in handles:
            h.remove()
    if not ran:
        raise ValueError("none of the model's dropout modules ran in the forward passes (they are not reached "
                         "by its forward), so every pass gives the same output")
    mean = samples.mean(dim=0)
    var = samples.var(dim=0, correction=1)
    return MCPrediction(mean, var, samples if return_samples else None)


def ensemble_predict(models, x: torch.Tensor) -> MCPrediction:
    r"""Predictions of a deep ensemble, stacked like MC-dropout passes: mean, variance and samples.

    .. math::
        \hat\mu(x) = \frac1M \sum_{m=1}^M f_{\theta_m}(x), \qquad
        \hat\sigma^2(x) = \frac{1}{M-1} \sum_{m=1}^M \bigl(f_{\theta_m}(x) - \hat\mu(x)\bigr)^2,

    for ``M`` separately trained networks :math:`f_{\theta_m}` (different initializations, data
    orders, ...), each evaluated deterministically :cite:`lakshminarayanan2017simple`. The result
    has the layout of :func:`mc_predict` with ``return_samples=True``: ``samples`` is
    :math:`(M, B, *)`, the members in place of the ``T`` passes, so that
    ``samples.softmax(-1)`` goes unchanged into :func:`predictive_entropy`,
    :func:`expected_entropy`, :func:`mutual_information` and the calibration metrics of
    ``dropoutbook.calibration`` (after averaging over the first dimension). Each member runs in
    evaluation mode (dropout off, BatchNorm with its running statistics) without autograd; every
    module's mode is restored afterwards. For an ensemble of MC-dropout members, stack the members'
    ``mc_predict(...).samples`` with ``torch.cat`` instead. See chapter 5, "Monte Carlo dropout",
    section "A deep ensemble".

    Args:
        models: a sequence of at least two ``torch.nn.Module`` networks with the same output shape.
        x: batch of inputs, first dimension the batch (``B >= 1``); not modified.

    Returns:
        :class:`MCPrediction` with ``mean`` and ``variance`` of shape :math:`(B, *)` and
        ``samples`` of shape :math:`(M, B, *)` (never ``None``).

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> members = [nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)) for _ in range(4)]
        >>> pred = ensemble_predict(members, torch.randn(5, 3))
        >>> pred.samples.shape, pred.variance.shape
        (torch.Size([4, 5, 2]), torch.Size([5, 2]))
    """
    if isinstance(models, nn.Module) or isinstance(models, (str, bytes)) or not isinstance(models, Iterable):
        raise TypeError(f"models must be a sequence of torch.nn.Module networks (at least two), "
                        f"got {type(models).__name__}")
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"models must hold at least two networks (the variance needs M >= 2), got {len(models)}")
    for i, m in enumerate(models):
        check_module(m, f"models[{i}]")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (the models' input), got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"x must have a non-empty first (batch) dimension, got shape {tuple(x.shape)}")
    outputs = []
    for i, member in enumerate(models):
        modes = [(m, m.training) for m in member.modules()]
        try:
            member.eval()
            with torch.no_grad():
                out = member(x)
        except RuntimeError as exc:
            raise ValueError(f"x must fit every member: on x of shape {tuple(x.shape)} models[{i}] raised: {exc}") from exc
        finally:
            for m, mode in modes:
                m.training = mode
        if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != x.shape[0]:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"models[{i}] must return one tensor with a row per input row, got {got}")
        if outputs and out.shape != outputs[0].shape:
            raise ValueError(f"models must all return the same shape: models[0] gave {tuple(outputs[0].shape)}, "
                             f"models[{i}] {tuple(out.shape)}")
        outputs.append(out)
    samples = torch.stack(outputs)
    return MCPrediction(samples.mean(dim=0), samples.var(dim=0, correction=1), samples)


def _check_probs(probs, name: str = "probs") -> tuple[torch.Tensor, bool]:
    """The stacked probabilities as a tensor, and whether they were given as a NumPy array."""
    probs, was_numpy = as_float_tensor(probs, name)
    if probs.dim() < 2:
        raise ValueError(
            f"{name} must have shape (T, ..., C): T samples first, C classes last; got shape {tuple(probs.shape)}"
        )
    if probs.shape[0] == 0 or probs.shape[-1] == 0:
        raise ValueError(f"{name} must hold at least one sample and one class, got shape {tuple(probs.shape)}")
    if torch.isnan(probs).any():
        raise ValueError(f"{name} contains NaN")
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError(f"{name} must be probabilities in [0, 1]; got values from "
                         f"{probs.min().item():.4g} to {probs.max().item():.4g}")
    tol = {torch.float64: 1e-8, torch.float32: 1e-4}.get(probs.dtype, 1e-2)
    sums = probs.sum(dim=-1)
    if ((sums - 1).abs() > tol).any():
        worst = sums.flatten()[(sums - 1).abs().flatten().argmax()].item()
        raise ValueError(f"{name} must sum to 1 over the last (class) dimension; one row sums to {worst:.6g}. "
                         "Pass probabilities (softmax of the logits), not logits")
    return probs, was_numpy


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -torch.special.xlogy(p, p).sum(dim=-1)


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    r"""Entropy of the MC-averaged prediction, :math:`\mathbb H\bigl[\bar p\bigr] = -\sum_c \bar p_c \log \bar p_c`.

    Here :math:`\bar p_c = \frac1T \sum_t p_{tc}` is the mean of the ``T`` stacked class
    probabilities. It is the *total* uncertainty of the MC-dropout prediction, in nats; it is large
    both when the passes agree on a flat distribution (noise in the data) and when they disagree
    (uncertainty about the model). Terms with :math:`\bar p_c = 0` contribute 0 (``xlogy``), so
    probabilities 0 and 1 are safe. See chapter 5, "Monte Carlo dropout";
    :cite:`gal2017deep`.

    Args:
        probs: class probabilities of shape :math:`(T, *, C)`, samples first and classes last,
            each row summing to 1 (a tensor or NumPy array); not modified.

    Returns:
        Tensor of shape :math:`(*)` (a NumPy array for NumPy ``probs``).

    Examples:
        >>> predictive_entropy(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))
        tensor([0.6931])
    """
    probs, was_numpy = _check_probs(probs)
    return like_input(_entropy(probs.mean(dim=0)), was_numpy)


def expected_entropy(probs: torch.Tensor) -> torch.Tensor:
    r"""Mean entropy of the individual passes, :math:`\frac1T \sum_t \mathbb H[p_t]` (aleatoric part).

    The average over the ``T`` masks of each pass's own entropy, in nats. It is small when every
    pass is confident, even if the passes are confident about different classes. See chapter 5,
    "Monte Carlo dropout"; :cite:`houlsby2011bayesian`.

    Args:
        probs: class probabilities of shape :math:`(T, *, C)` (a tensor or NumPy array); not modified.

    Returns:
        Tensor of shape :math:`(*)` (a NumPy array for NumPy ``probs``).

    Examples:
        >>> expected_entropy(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))
        tensor([0.])
    """
    probs, was_numpy = _check_probs(probs)
    return like_input(_entropy(probs).mean(dim=0), was_numpy)


def mutual_information(probs: torch.Tensor) -> torch.Tensor:
    r"""BALD score: mutual information between the prediction and the mask, in nats.

    .. math::
        I = \mathbb H\bigl[\bar p\bigr] - \frac1T \sum_t \mathbb H[p_t]
          = \frac1T \sum_t \sum_c p_{tc} \log \frac{p_{tc}}{\bar p_c},

    the difference between :func:`predictive_entropy` and :func:`expected_entropy`. It is large
    only when the passes *disagree*: the model-uncertainty part of the total uncertainty, used by
    Bayesian active learning by disagreement (BALD) :cite:`houlsby2011bayesian,gal2017deep`. It is
    computed in the second form, an average of Kullback-Leibler divergences, which avoids
    subtracting two nearly equal entropies; it is 0 when all passes agree and is :math:`\ge 0` up
    to rounding (nothing is clamped). Terms with :math:`p_{tc} = 0` contribute 0. See chapter 5,
    "Monte Carlo dropout".

    Args:
        probs: class probabilities of shape :math:`(T, *, C)` (a tensor or NumPy array); not modified.

    Returns:
        Tensor of shape :math:`(*)` (a NumPy array for NumPy ``probs``).

    Examples:
        >>> mutual_information(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))
        tensor([0.6931])
    """
    probs, was_numpy = _check_probs(probs)
    mean = probs.mean(dim=0, keepdim=True)
    mi = (torch.special.xlogy(probs, probs) - torch.special.xlogy(probs, mean)).sum(dim=-1).mean(dim=0)
    return like_input(mi, was_numpy)


def referral_curve(correct: torch.Tensor, uncertainty: torch.Tensor, fractions) -> torch.Tensor:
    r"""Accuracy of the retained predictions when the most uncertain fraction is referred to a human.

    For each referred fraction :math:`r`, the :math:`k = \operatorname{round}(N(1 - r))`
    predictions with the smallest ``uncertainty`` are kept (the nearest integer to :math:`N(1 - r)`,
    a half rounded to the even neighbour, as ``torch.round`` and Python's ``round`` do), the other
    :math:`N - k` are referred, and the accuracy of the kept ones is returned. A useful uncertainty gives a curve that rises with :math:`r`; a random ordering gives
    a flat curve at the overall accuracy. Ties are broken by the order of the inputs (stable sort).
    See chapter 5, "Monte Carlo dropout", section "Experiment".

    Args:
        correct: bool (or 0/1) tensor or NumPy array of shape :math:`(N,)`, whether each
            prediction is right.
        uncertainty: floating tensor or NumPy array of shape :math:`(N,)`; larger means less
            certain (use ``-confidence`` for a confidence score).
        fractions: referred fractions in :math:`[0, 1)`, a sequence or 1-D tensor (or array), in
            any order; each must leave at least one prediction. A set, a dict or a single number
            is refused.

    Returns:
        float64 tensor of accuracies, one per fraction (a NumPy array when ``correct`` and
        ``uncertainty`` are NumPy arrays).

    Examples:
        >>> correct = torch.tensor([True, True, False, True])
        >>> uncertainty = torch.tensor([0.1, 0.2, 0.9, 0.3])
        >>> referral_curve(correct, uncertainty, [0.0, 0.25])
        tensor([0.7500, 1.0000], dtype=torch.float64)
    """
    correct, uncertainty, was_numpy = _check_correct_uncertainty(correct, uncertainty)
    fr = check_fractions(fractions)
    n = correct.numel()
    order = torch.sort(uncertainty.detach().cpu(), stable=True).indices  # most certain first
    ranked = correct.detach().cpu()[order].double()
    cumulative = torch.cumsum(ranked, 0)
    kept = torch.round(n * (1 - fr)).long()
    if (kept < 1).any():
        raise ValueError(f"fractions must leave at least one of the {n} predictions; the largest is {fr.max().item():.4g}")
    return like_input(cumulative[kept - 1] / kept.double(), was_numpy)


def _check_correct_uncertainty(correct, uncertainty):
    """``correct`` as a 1-D bool tensor and ``uncertainty`` as a float tensor of its shape, and
    whether both were given as NumPy arrays (shared by :func:`referral_curve` and
    :func:`~dropoutbook.error_detection_auroc`)."""
    correct, numpy_correct = as_tensor(correct, "correct")
    if correct.dim() != 1 or correct.numel() == 0:
        raise ValueError(f"correct must be a non-empty 1-D tensor of bools or 0/1 values, got shape "
                         f"{tuple(correct.shape)}")
    if correct.dtype != torch.bool:
        if correct.is_complex() or not ((correct == 0) | (correct == 1)).all():
            raise ValueError("correct must hold only bools or 0/1 values")
        correct = correct.bool()
    uncertainty, numpy_uncertainty = as_float_tensor(uncertainty, "uncertainty")
    if uncertainty.shape != correct.shape:
        raise ValueError(f"uncertainty must have the shape of correct {tuple(correct.shape)}, got {tuple(uncertainty.shape)}")
    if torch.isnan(uncertainty).any():
        raise ValueError("uncertainty contains NaN")
    return correct, uncertainty, numpy_correct and numpy_uncertainty


def referral_curves(correct, scores: dict, fractions) -> dict:
    r"""Referral curves of several uncertainty scores for the same predictions.

    :func:`referral_curve` for each entry of ``scores``: for each referred fraction :math:`r`, the
    accuracy of the :math:`k = \operatorname{round}(N(1 - r))` predictions kept (the other
    :math:`N - k`, the most uncertain by that score, are referred). The scores compete on the same cases, so their curves can be compared
    case for case (chapter 15 compares the softmax confidence, MC-dropout entropy and mutual
    information, and a deep ensemble's entropy) :cite:`leibig2017leveraging`. A random referral
    keeps the overall accuracy in expectation, the first value of every curve. See chapter 15,
    "Applications", section "Medicine: deciding when to refer".

    Args:
        correct: bool (or 0/1) tensor or NumPy array of shape :math:`(N,)`.
        scores: a non-empty dict from a name to an uncertainty of shape :math:`(N,)` (larger means
            less certain; use ``-confidence`` for a confidence).
        fractions: referred fractions in :math:`[0, 1)`, a sequence or 1-D tensor (read once, so
            an iterator works).

    Returns:
        dict from each name to its curve (as :func:`referral_curve` returns it), in the order of ``scores``.

    Examples:
        >>> correct = torch.tensor([True, True, False, True])
        >>> curves = referral_curves(correct, {"good": torch.tensor([0.1, 0.2, 0.9, 0.3]),
        ...                                    "bad": torch.tensor([0.9, 0.2, 0.1, 0.3])}, [0.0, 0.25])
        >>> curves["good"], curves["bad"]
        (tensor([0.7500, 1.0000], dtype=torch.float64), tensor([0.7500, 0.6667], dtype=torch.float64))
    """
    scores = check_score_dict(scores)
    fractions = check_fractions(fractions)  # once: an iterator is read once
    return {name: _referral_named(correct, u, fractions, name) for name, u in scores.items()}


def _referral_named(correct, uncertainty, fractions, name):
    try:
        return referral_curve(correct, uncertainty, fractions)
    except (TypeError, ValueError) as exc:
        text = str(exc)
        if text.startswith("uncertainty"):
            raise type(exc)(f"scores[{name!r}]" + text[len("uncertainty"):]) from exc
        raise


def _kept_counts(n: int, fractions) -> torch.Tensor:
    fr = check_fractions(fractions)
    kept = torch.round(n * (1 - fr)).long()
    if (kept < 1).any():
        raise ValueError(f"fractions must leave at least one of the {n} cases; the largest is {fr.max().item():.4g}")
    return kept


def deferral_curve(errors, uncertainty, fractions) -> torch.Tensor:
    r"""Root mean squared error of the estimates that are kept when the most uncertain fraction is deferred.

    For each deferred fraction :math:`r`, the :math:`k = \operatorname{round}(N(1 - r))` cases with
    the smallest ``uncertainty`` are kept (the number kept as in :func:`referral_curve`) and

    .. math::
        \mathrm{RMSE}(r) = \Bigl(\frac1k \sum_{i \text{ kept}} e_i^2\Bigr)^{1/2}

    is returned, with :math:`e_i` the error of case :math:`i`. With :math:`e_i = \hat\tau(x_i) -
    \tau(x_i)`, the error of an estimated treatment effect, this is the :math:`\sqrt{\mathrm{PEHE}}`
    of the recommendations that are made, the deferral curve of Jesson et al.
    :cite:`jesson2020identifying`. A useful uncertainty gives a curve that falls with :math:`r`;
    compare it with :func:`random_deferral_curve`. Ties are broken by the order of the cases
    (stable sort), as in :func:`referral_curve`. See chapter 15, "Applications", section "Causal
    inference".

    Args:
        errors: floating tensor or NumPy array of shape :math:`(N,)`, the error of each estimate
            (its sign does not matter), finite.
        uncertainty: floating tensor or NumPy array of shape :math:`(N,)`; larger means less certain.
        fractions: deferred fractions in :math:`[0, 1)`, a sequence or 1-D tensor.

    Returns:
        float64 tensor of RMSEs, one per fraction (a NumPy array when ``errors`` and
        ``uncertainty`` are NumPy arrays).

    Examples:
        >>> deferral_curve(torch.tensor([0.1, -2.0, 0.2, 0.1]), torch.tensor([0.1, 0.9, 0.3, 0.2]), [0.0, 0.25])
        tensor([1.0075, 0.1414], dtype=torch.float64)
    """
    errors, numpy_errors = check_float_vector(errors, "errors")
    check_finite_tensor(errors, "errors")
    uncertainty, numpy_uncertainty = check_float_vector(uncertainty, "uncertainty", n=errors.numel(), like="errors")
    kept = _kept_counts(errors.numel(), fractions)
    order = torch.sort(uncertainty.detach().cpu(), stable=True).indices  # most certain first
    squared = errors.detach().cpu().double()[order] ** 2
    cumulative = torch.cumsum(squared, 0)
    return like_input(torch.sqrt(cumulative[kept - 1] / kept.double()), numpy_errors and numpy_uncertainty)


def random_deferral_curve(errors, fractions, *, n_draws: int = 1000,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The deferral curve of a random ordering: the mean, over random deferrals, of the kept cases' RMSE.

    For each of ``n_draws`` random permutations the first :math:`k = \operatorname{round}(N(1 - r))`
    cases are kept (as in :func:`deferral_curve`) and their RMSE is computed as in :func:`deferral_curve`; the mean over the draws is
    returned. The mean *squared* error of a random subset equals the overall one in expectation,
    so this curve is flat up to the draws and a small Jensen term: the RMSE of a subset is on
    average slightly below the square root of its expected MSE, the more so the smaller the subset.
    It is the baseline that an uncertainty score must beat :cite:`jesson2020identifying`. See
    chapter 15, "Applications", section "Causal inference".

    Args:
        errors: floating tensor or NumPy array of shape :math:`(N,)`, finite.
        fractions: deferred fractions in :math:`[0, 1)`, a sequence or 1-D tensor.
        n_draws: number of random orderings, a positive int (drawn in chunks, so that memory stays
            bounded for any ``n_draws`` and :math:`N`).
        generator: optional ``torch.Generator`` for the permutations.

    Returns:
        float64 tensor, one mean RMSE per fraction (a NumPy array for NumPy ``errors``).

    Examples:
        >>> errors = torch.tensor([1.0, -1.0, 1.0, 1.0])
        >>> random_deferral_curve(errors, [0.0, 0.5], n_draws=10, generator=torch.Generator().manual_seed(0))
        tensor([1., 1.], dtype=torch.float64)
    """
    errors, was_numpy = check_float_vector(errors, "errors")
    check_finite_tensor(errors, "errors")
    kept = _kept_counts(errors.numel(), fractions)
    n_draws = check_int(n_draws, "n_draws", minimum=1)
    check_generator(generator)
    n = errors.numel()
    squared = errors.detach().cpu().double() ** 2
    total = torch.zeros(len(kept), dtype=torch.float64)
    chunk = max(1, _DRAW_ELEMENTS // n)  # rows of draws at a time: the same draws as all at once, in bounded memory
    for start in range(0, n_draws, chunk):
        rows = min(chunk, n_draws - start)
        orders = torch.argsort(torch.rand(rows, n, generator=generator, dtype=torch.float64), dim=1)
        cumulative = torch.cumsum(squared[orders], dim=1)
        total += torch.sqrt(cumulative[:, kept - 1] / kept.double()).sum(dim=0)
    return like_input(total / n_draws, was_numpy)


#: How many random numbers random_deferral_curve draws at a time (a few tens of MB with the sort).
_DRAW_ELEMENTS = 2**21
