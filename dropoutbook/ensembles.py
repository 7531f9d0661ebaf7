r"""Chapter 4, "Dropout as an ensemble of subnetworks".

A network with :math:`N` droppable units defines :math:`2^N` *subnetworks*, one per mask
:math:`m \in \{0,1\}^N`, and all of them share one set of weights
:cite:`srivastava2014dropout`. This module computes

* the exact average of any function over all :math:`2^N` masks (:func:`enumerate_masks`,
  :func:`subnetwork_average`) and the outputs of chosen subnetworks of a trained
  ``nn.Sequential`` (:func:`subnetwork_forward`);
* the ambiguity decomposition of an ensemble's squared error (:func:`ambiguity_decomposition`),
  with the diversity :math:`D` measured directly from the pairs of members;
* path survival: the probability that one input-output path survives
  (:func:`path_survival_probability`) and the number of active paths under sampled masks
  (:func:`count_active_paths`).

Convention: ``p`` is the probability of *dropping* a unit; a unit is kept with probability
:math:`1-p`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._validation import (as_float_tensor, as_tensor, check_device, check_float_dtype, check_float_tensor, check_int, check_module,
                          check_probability, like_input)
from .masks import InvertedDropout, StandardDropout

__all__ = [
    "enumerate_masks", "subnetwork_average", "subnetwork_forward",
    "AmbiguityDecomposition", "ambiguity_decomposition",
    "path_survival_probability", "count_active_paths",
]

#: Largest number of units :func:`subnetwork_average` enumerates (2**24 masks).
MAX_ENUMERATED_UNITS = 24


def enumerate_masks(n_units: int, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    r"""All :math:`2^N` dropout masks of ``n_units`` units, one per row.

    Row :math:`k` is the binary expansion of :math:`k` (unit 0 is the most significant bit), so
    the first row keeps nothing and the last row keeps every unit.

    Args:
        n_units: the number :math:`N` of droppable units, an int in [0, 24].
        dtype: a floating dtype or ``torch.bool`` (default ``torch.float64``).
        device: device of the result.

    Returns:
        Tensor of shape :math:`(2^N, N)` with entries 0 and 1.

    See chapter 4, "Dropout as an ensemble of subnetworks".

    Examples:
        >>> enumerate_masks(2)
        tensor([[0., 0.],
                [0., 1.],
                [1., 0.],
                [1., 1.]], dtype=torch.float64)
    """
    n = check_int(n_units, "n_units", minimum=0, maximum=MAX_ENUMERATED_UNITS)
    check_float_dtype(dtype, allow_bool=True)
    device = check_device(device)
    codes = torch.arange(2**n, device=device)
    bits = torch.arange(n - 1, -1, -1, device=device)
    masks = (codes[:, None] >> bits[None, :]) & 1
    return masks.bool() if dtype == torch.bool else masks.to(dtype)


def subnetwork_average(fn: Callable[[torch.Tensor], torch.Tensor], n_units: int, p: float, *,
                       chunk_size: int = 4096, dtype: torch.dtype = torch.float64,
                       device=None) -> torch.Tensor:
    r"""The exact average of ``fn`` over all :math:`2^N` subnetworks, weighted by their probability.

    .. math::

        \mathbb E_m[f(m)] = \sum_{m \in \{0,1\}^N} (1-p)^{|m|}\, p^{N - |m|}\, f(m),
        \qquad |m| = \textstyle\sum_i m_i .

    With :math:`p = 1/2` every subnetwork has weight :math:`2^{-N}` and this is the plain average
    over the :math:`2^N` subnetworks of :cite:`srivastava2014dropout`. For a model that is linear
    in the dropped units, for instance :math:`f(m) = w^\top (m \odot x)`, the average equals the
    weight-scaled output :math:`(1-p)\, w^\top x` exactly; for a nonlinear model it does not
    (chapter 4, "Dropout as an ensemble of subnetworks").

    The sum runs over the masks in chunks, in the order of :func:`enumerate_masks`; it is exact
    up to floating-point rounding, with no sampling.

    Args:
        fn: maps a batch of masks, a tensor of shape ``(B, n_units)`` with entries 0 and 1 in
            ``dtype``, to a floating tensor of shape ``(B, ...)``: the output of each subnetwork.
        n_units: the number :math:`N` of droppable units, an int in [0, 24].
        p: drop probability in [0, 1].
        chunk_size: number of masks passed to ``fn`` at once, a positive int.
        dtype: floating dtype of the masks and of the weights (default ``torch.float64``).
        device: device of the masks.

    Returns:
        Tensor of shape ``fn``'s output shape without its first dimension.

    Examples:
        >>> w, x = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.5, 1.0, 2.0])
        >>> avg = subnetwork_average(lambda m: (m * w * x).sum(-1), 3, p=0.25, dtype=torch.float32)
        >>> torch.isclose(avg, 0.75 * (w @ x)).item()
        True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    n = check_int(n_units, "n_units", minimum=0, maximum=MAX_ENUMERATED_UNITS)
    p = check_probability(p)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    check_float_dtype(dtype)
    device = check_device(device)
    masks = enumerate_masks(n, dtype=dtype, device=device)
    total = None
    for start in range(0, masks.shape[0], chunk_size):
        chunk = masks[start:start + chunk_size]
        kept = chunk.sum(dim=1)
        weights = torch.pow(torch.tensor(1.0 - p, dtype=dtype, device=chunk.device), kept) * \
            torch.pow(torch.tensor(p, dtype=dtype, device=chunk.device), n - kept)
        out = fn(chunk)
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            raise TypeError(f"fn must return a floating torch.Tensor, got {type(out).__name__}"
                            + (f" of dtype {out.dtype}" if isinstance(out, torch.Tensor) else ""))
        if out.ndim == 0 or out.shape[0] != chunk.shape[0]:
            raise ValueError(f"fn must return one output per mask, shape ({chunk.shape[0]}, ...), "
                             f"got shape {tuple(out.shape)}")
        part = torch.tensordot(weights.to(out.dtype), out, dims=([0], [0]))
        total = part if total is None else total + part
    return total


def _dropout_scale(module: nn.Module) -> float | None:
    """The factor a dropout module applies to survivors in training, or None for other modules."""
    if isinstance(module, StandardDropout):
        return 1.0
    if isinstance(module, (InvertedDropout, nn.Dropout)):
        return 1.0 / (1.0 - module.p) if module.p < 1 else 0.0
    return None


def subnetwork_forward(model: nn.Sequential, x: torch.Tensor, masks: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Outputs of chosen subnetworks of an ``nn.Sequential``: each dropout layer uses a *fixed* mask.

    The :math:`k`-th dropout layer of ``model`` (``torch.nn.Dropout``,
    :class:`~dropoutbook.InvertedDropout` or :class:`~dropoutbook.StandardDropout`) is replaced by
    multiplication with ``masks[k]`` and by the survivor scale that layer uses in training
    (:math:`1/(1-p)` for inverted dropout, 1 for standard dropout). Row :math:`t` of every mask
    belongs to subnetwork :math:`t`, and the same mask is applied to every example of ``x``, so the
    result is the output of :math:`T` fixed subnetworks, in one batched pass. The model's modes,
    parameters and buffers are not changed (its other modules are called as they are; batch norm in
    training mode is refused because it would update its running statistics). An evaluation-mode
    ``BatchNorm1d`` normalizes the features of the :math:`T \cdot N` rows, as it does for the
    ``(N, d)`` input of the model itself; ``BatchNorm2d``/``3d`` (images) are refused.

    Chapter 4, "Dropout as an ensemble of subnetworks" (:cite:`srivastava2014dropout`).

    Args:
        model: an ``nn.Sequential`` whose modules act on the last dimension (``Linear``,
            activations, ``LayerNorm``, dropout) or are an evaluation-mode ``BatchNorm1d``.
        x: floating input of shape ``(N, d)``.
        masks: one tensor per dropout layer of ``model``, in order, each of shape ``(T, n_k)``
            with entries 0 and 1 (``n_k`` the width at that layer; ``T`` the same for all).

    Shape:
        Output: ``(T, N, out)``.

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.5), nn.Linear(3, 1))
        >>> keep_all = torch.ones(1, 3)
        >>> out = subnetwork_forward(net, torch.randn(4, 2), [keep_all])
        >>> out.shape
        torch.Size([1, 4, 1])
    """
    check_module(model, "model", nn.Sequential)
    check_float_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, d), got shape {tuple(x.shape)}")
    if isinstance(masks, torch.Tensor) or not isinstance(masks, Sequence):
        raise TypeError("masks must be a list of tensors, one per dropout layer of the model")
    dropouts = [m for m in model if _dropout_scale(m) is not None]
    if len(masks) != len(dropouts):
        raise ValueError(f"masks must hold one tensor per dropout layer: the model has {len(dropouts)}, "
                         f"got {len(masks)}")
    sizes = set()
    for k, mask in enumerate(masks):
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"masks[{k}] must be a tensor of shape (T, n_units), got {type(mask).__name__}")
        if mask.ndim != 2:
            raise ValueError(f"masks[{k}] must be a tensor of shape (T, n_units), got shape {tuple(mask.shape)}")
        sizes.add(mask.shape[0])
        if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"masks[{k}] must contain only 0 and 1")
    if len(sizes) > 1:
        raise ValueError(f"every mask must have the same number of rows T, got {sorted(sizes)}")
    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.training:
            raise ValueError("model has a batch-norm layer in training mode; call model.eval() first "
                             "(its running statistics would change)")
        if isinstance(module, _BatchNorm) and not isinstance(module, nn.BatchNorm1d):
            raise ValueError(f"subnetwork_forward runs models on inputs of shape (N, d); "
                             f"{type(module).__name__} needs images or volumes (use BatchNorm1d)")
    t = sizes.pop() if sizes else 1
    h = x.unsqueeze(0).expand(t, *x.shape)
    k = 0
    for module in model:
        scale = _dropout_scale(module)
        if isinstance(module, nn.BatchNorm1d):
            # BatchNorm1d reads dimension 1 of a 3-d input as its channels: give it the T * N
            # examples as rows, (T * N, d), so that it normalizes the d features
            h = module(h.reshape(-1, h.shape[-1])).reshape(h.shape)
            continue
        if scale is None:
            h = module(h)
            continue
        mask = masks[k]
        if mask.shape[1] != h.shape[-1]:
            raise ValueError(f"masks[{k}] has {mask.shape[1]} units but dropout layer {k} acts on "
                             f"{h.shape[-1]} features")
        h = h * (mask.to(h.dtype) * scale)[:, None, :]
        k += 1
    return h


@dataclass(frozen=True)
class AmbiguityDecomposition:
    r"""The three terms of the ambiguity decomposition, as measured by :func:`ambiguity_decomposition`.

    Attributes:
        individual_error: :math:`E_{\mathrm{ind}}`, the mean over members of each member's squared error.
        ensemble_error: :math:`E_{\mathrm{ens}}`, the squared error of the members' mean.
        diversity: :math:`D`, the mean over ordered pairs :math:`i \ne j` of the squared difference
            of the two members' predictions.
        n_members: the number :math:`T` of members.

    Chapter 4, "Dropout as an ensemble of subnetworks".
    """

    individual_error: torch.Tensor
    ensemble_error: torch.Tensor
    diversity: torch.Tensor
    n_members: int


def ambiguity_decomposition(preds, target, *, event_dims: int = 0) -> AmbiguityDecomposition:
    r"""Individual error, ensemble error and diversity of :math:`T` predictions under squared error.

    With members' predictions :math:`f_1, \dots, f_T`, their mean :math:`\bar f` and target :math:`y`,

    .. math::

        E_{\mathrm{ind}} = \frac1T \sum_{i=1}^T \lVert f_i - y \rVert^2, \qquad
        E_{\mathrm{ens}} = \lVert \bar f - y \rVert^2, \qquad
        D = \frac{1}{T(T-1)} \sum_{i \ne j} \lVert f_i - f_j \rVert^2 ,

    each averaged over the examples. :math:`D` is computed from the pairs themselves, not from the
    identity it satisfies, :math:`E_{\mathrm{ind}} - E_{\mathrm{ens}} = \frac{T-1}{2T} D`
    (the ambiguity decomposition of :cite:`krogh1995neural`), which chapter 4, "Dropout as an
    ensemble of subnetworks", derives with sympy. Mean over ordered and over unordered distinct pairs
    is the same number; including the pairs :math:`i = j` would change the constant to 1/2.

    Args:
        preds: predictions of shape ``(T, *S)`` with :math:`T \ge 2`: a floating tensor or
            NumPy array.
        target: tensor or NumPy array broadcastable to ``S``.
        event_dims: the number of trailing dimensions of ``S`` that form one prediction (their
            squared differences are summed, e.g. 1 for class-probability vectors); the other
            dimensions of ``S`` index examples and are averaged.

    Returns:
        :class:`AmbiguityDecomposition` of 0-dimensional tensors in the dtype of ``preds``
        (NumPy scalars when ``preds`` and ``target`` are NumPy arrays).

    Examples:
        >>> preds = torch.tensor([[1.0], [2.0], [4.0]])
        >>> terms = ambiguity_decomposition(preds, torch.tensor([2.0]))
        >>> [round(float(v), 4) for v in (terms.individual_error, terms.ensemble_error, terms.diversity)]
        [1.6667, 0.1111, 4.6667]
    """
    preds, numpy_preds = as_float_tensor(preds, "preds")
    target, numpy_target = as_tensor(target, "target")
    if target.is_complex():
        raise TypeError(f"target must be real, got dtype {target.dtype}")
    if preds.ndim < 1 or preds.shape[0] < 2:
        raise ValueError(f"preds must have shape (T, ...) with T >= 2 members (D needs a pair), "
                         f"got shape {tuple(preds.shape)}")
    event_dims = check_int(event_dims, "event_dims", minimum=0, maximum=preds.ndim - 1)
    if preds[0].numel() == 0:
        raise ValueError("preds has no examples (an empty dimension)")
    try:
        target = torch.broadcast_to(target.to(preds.dtype), preds.shape[1:])
    except RuntimeError as exc:
        raise ValueError(f"target of shape {tuple(target.shape)} does not broadcast to the prediction "
                         f"shape {tuple(preds.shape[1:])}") from exc
    t = preds.shape[0]

    def squared(diff: torch.Tensor) -> torch.Tensor:
        """Squared norm over the event dimensions, averaged over the example dimensions."""
        sq = diff**2
        if event_dims:
            sq = sq.sum(dim=tuple(range(-event_dims, 0)))
        return sq.mean()

    individual = torch.stack([squared(preds[i] - target) for i in range(t)]).mean()
    ensemble = squared(preds.mean(dim=0) - target)
    # every ordered pair i != j; the pair (i, j) gives the same value as (j, i)
    pairs = [squared(preds[i] - preds[j]) for i in range(t) for j in range(t) if i != j]
    diversity = torch.stack(pairs).mean()
    as_given = numpy_preds and numpy_target
    return AmbiguityDecomposition(like_input(individual, as_given), like_input(ensemble, as_given),
                                  like_input(diversity, as_given), t)


def path_survival_probability(p: float, depth: int, *, input_p: float = 0.0) -> float:
    r"""Probability that one given input-output path of a dropout network is fully active.

    A path from an input feature to an output passes through one unit of each of the ``depth``
    hidden layers. With dropout of rate ``p`` on the hidden units and rate ``input_p`` on the
    input features (the output is never dropped), the path is active when all its droppable units
    are kept, independently:

    .. math:: P(\text{path active}) = (1 - p_{\mathrm{in}})\,(1-p)^{L}.

    With no input dropout this is the familiar :math:`(1-p)^L` :cite:`srivastava2014dropout`;
    chapter 4, "Dropout as an ensemble of subnetworks", derives it with sympy and checks it by
    simulation.

    Args:
        p: drop probability of the hidden units, in [0, 1].
        depth: number :math:`L` of hidden layers with dropout on the path, an int >= 0.
        input_p: drop probability of the input features, in [0, 1] (default 0: no input dropout).

    Examples:
        >>> path_survival_probability(0.5, 3)
        0.125
        >>> path_survival_probability(0.5, 3, input_p=0.2)
        0.1
    """
    p = check_probability(p)
    input_p = check_probability(input_p, "input_p")
    depth = check_int(depth, "depth", minimum=0)
    return (1.0 - input_p) * (1.0 - p) ** depth


def count_active_paths(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Number of input-output paths that run through kept units only, for a batch of sampled masks.

    In a fully connected network every choice of one unit per layer is a path, so under masks
    :math:`m^{(1)}, \dots, m^{(K)}` (one per layer on the way, a layer without dropout given as a
    mask of ones) the number of active paths is

    .. math:: \prod_{k=1}^{K} \sum_i m^{(k)}_i .

    Chapter 4, "Dropout as an ensemble of subnetworks", uses it to check the expected number of
    active paths by simulation.

    Args:
        masks: one tensor per layer, each of shape ``(..., n_k)`` with entries 0 and 1 and the same
            leading (batch) shape.

    Returns:
        float64 tensor of the batch shape (counts can exceed the range of int32).

    Examples:
        >>> count_active_paths([torch.ones(3), torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.ones(2)])
        tensor(18., dtype=torch.float64)
    """
    if isinstance(masks, torch.Tensor) or not isinstance(masks, Sequence) or len(masks) == 0:
        raise TypeError("masks must be a non-empty list of tensors, one per layer")
    total = None
    for k, mask in enumerate(masks):
        if not isinstance(mask, torch.Tensor) or mask.ndim < 1:
            raise TypeError(f"masks[{k}] must be a tensor of shape (..., n_units)")
        if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"masks[{k}] must contain only 0 and 1")
        kept = mask.to(torch.float64).sum(dim=-1)
        if total is not None and kept.shape != total.shape:
            raise ValueError(f"masks[{k}] has batch shape {tuple(kept.shape)}, expected {tuple(total.shape)}")
        total = kept if total is None else total * kept
    return total
