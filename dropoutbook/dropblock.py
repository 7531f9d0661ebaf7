r"""DropBlock: dropping square regions of a feature map instead of single activations (chapter 7).

DropBlock :cite:`ghiasi2018dropblock` samples *seeds* at rate :math:`\gamma` on the positions
where a :math:`b \times b` block fits inside the map, and zeroes the block of every seed. A
position :math:`(i, j)` lies in the blocks of :math:`c(i, j)` possible seeds (its *coverage
count*), so it is dropped with probability

.. math:: \pi_{ij}(\gamma) = 1 - (1 - \gamma)^{c(i, j)}.

This module chooses :math:`\gamma` so that the *expected fraction of dropped activations*,
:math:`D(\gamma) = \frac{1}{HW}\sum_{ij} \pi_{ij}(\gamma)`, equals the requested drop rate
:math:`p` exactly, for every map size (:func:`seed_rate`); the paper's formula
(:func:`paper_seed_rate`) only matches it to first order in :math:`\gamma`. Survivors are
divided by :math:`1 - p`, the expected kept fraction, which preserves the mean of the map but not
of each position (a position is kept with probability
:func:`position_keep_probability`, below :math:`1 - p` in the middle and above it at the border);
``normalize="position"`` divides each position by its own keep probability instead.

See chapter 7 of the book, "DropBlock".
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (check_bool, check_choice, check_device, check_float_dtype, check_float_tensor, check_generator, check_int,
                          check_probability, check_shape)
from .masks import _apply_mask, _dropped_entirely

__all__ = [
    "coverage_counts", "block_drop_fraction", "seed_rate", "paper_seed_rate",
    "position_keep_probability",
    "dropblock_mask", "drop_block2d", "DropBlock2d", "LinearSchedule", "neighbour_fill",
]


#: The two rescalings of :func:`drop_block2d`: by the map's expected kept fraction :math:`1 - p`
#: (``"expected"``), or by each position's own keep probability (``"position"``).
NORMALIZATIONS = ("expected", "position")


def _check_block_size(block_size) -> int:
    return check_int(block_size, "block_size", minimum=1, odd=True, why="a block is centred on its seed")


def _clipped(height: int, width: int, block_size: int) -> tuple[int, int]:
    """The block's height and width after clipping to the map: ``min(b, H)`` and ``min(b, W)``."""
    return min(block_size, height), min(block_size, width)


def _axis_counts(n: int, b: int) -> np.ndarray:
    """Along one axis of length ``n``: how many of the ``n - b + 1`` block positions cover index i."""
    i = np.arange(n)
    return np.minimum.reduce([i + 1, np.full(n, b), np.full(n, n - b + 1), n - i])


def coverage_counts(height: int, width: int, block_size: int) -> torch.Tensor:
    r"""Coverage count :math:`c(i, j)`: the number of possible seeds whose block covers :math:`(i, j)`.

    Seeds lie where a whole block fits in the map (the paper's rule), so along an axis of length
    :math:`n` with block length :math:`b` there are :math:`n - b + 1` block positions and index
    :math:`i` (from 0) is covered by

    .. math:: r_n(i) = \min(i + 1,\; b,\; n - b + 1,\; n - i)

    of them; :math:`c(i, j) = r_H(i)\, r_W(j)`. The block size is clipped to the map first
    (``min(block_size, height)`` rows, ``min(block_size, width)`` columns). Summed over the map,
    :math:`\sum_{ij} c(i,j) = b_H b_W (H - b_H + 1)(W - b_W + 1)`: every seed covers one block.

    Args:
        height: map height :math:`H`, a positive int.
        width: map width :math:`W`, a positive int.
        block_size: odd positive int :math:`b`.

    Returns:
        int64 tensor of shape ``(height, width)``.

    See chapter 7, "DropBlock", section "Derivation"; :cite:`ghiasi2018dropblock`.

    Examples:
        >>> coverage_counts(4, 4, 3)
        tensor([[1, 2, 2, 1],
                [2, 4, 4, 2],
                [2, 4, 4, 2],
                [1, 2, 2, 1]])
    """
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    bh, bw = _clipped(height, width, _check_block_size(block_size))
    rows, cols = _axis_counts(height, bh), _axis_counts(width, bw)
    return torch.from_numpy(np.outer(rows, cols)).to(torch.int64)


def _count_histogram(height: int, width: int, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct coverage counts and the fraction of positions that have each (float64)."""
    bh, bw = _clipped(height, width, block_size)
    rv, rn = np.unique(_axis_counts(height, bh), return_counts=True)
    cv, cn = np.unique(_axis_counts(width, bw), return_counts=True)
    counts = np.outer(rv, cv).ravel().astype(np.float64)
    weights = np.outer(rn, cn).ravel().astype(np.float64) / (height * width)
    return counts, weights


def _check_gamma(gamma) -> float:
    return check_probability(gamma, "gamma")


def block_drop_fraction(gamma: float, height: int, width: int, block_size: int) -> float:
    r"""Expected fraction of dropped positions of one map for seed rate :math:`\gamma`.

    .. math:: D(\gamma) = \frac{1}{HW} \sum_{i,j} \left[1 - (1 - \gamma)^{c(i, j)}\right],

    with the coverage counts :math:`c(i, j)` of :func:`coverage_counts`. :math:`D` increases from
    :math:`D(0) = 0` to :math:`D(1) = 1` and is concave.

    Args:
        gamma: seed rate in [0, 1].
        height, width: map size, positive ints.
        block_size: odd positive int (clipped to the map).

    See chapter 7, "DropBlock", section "Derivation"; :cite:`ghiasi2018dropblock`.

    Examples:
        >>> round(block_drop_fraction(paper_seed_rate(0.1, 14, 14, 7), 14, 14, 7), 4)
        0.0929
    """
    gamma = _check_gamma(gamma)
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    counts, weights = _count_histogram(height, width, _check_block_size(block_size))
    return float(np.sum(weights * -np.expm1(counts * np.log1p(-gamma)))) if gamma < 1 else 1.0


def paper_seed_rate(p: float, height: int, width: int, block_size: int) -> float:
    r"""The seed rate of Ghiasi et al. :cite:`ghiasi2018dropblock`, which ignores overlapping blocks.

    .. math:: \gamma_{\text{paper}} = \frac{p}{b^2} \, \frac{H W}{(H - b + 1)(W - b + 1)}

    (with the block clipped to the map, :math:`b^2` becomes :math:`b_H b_W`). It solves the
    first-order equation :math:`\gamma \cdot \overline{c} = p` (mean coverage count
    :math:`\overline{c}`), so the achieved drop fraction :math:`D(\gamma_{\text{paper}})` is below
    ``p`` whenever blocks can overlap; chapter 7 measures by how much. It may exceed 1 for large
    ``p`` on small maps; it is returned as computed, not clipped.

    Args:
        p: target drop rate in [0, 1].
        height, width: map size, positive ints.
        block_size: odd positive int (clipped to the map).

    See chapter 7, "DropBlock", section "Pitfalls and errata".

    Examples:
        >>> paper_seed_rate(0.1, 7, 7, 7)
        0.1
    """
    p = check_probability(p)
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    bh, bw = _clipped(height, width, _check_block_size(block_size))
    return p * height * width / (bh * bw * (height - bh + 1) * (width - bw + 1))


@functools.lru_cache(maxsize=256)
def _solve_seed_rate(p: float, height: int, width: int, block_size: int) -> float:
    counts, weights = _count_histogram(height, width, block_size)

    def fraction(g: float) -> float:
        return float(np.sum(weights * -np.expm1(counts * np.log1p(-g))))

    if p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    # Newton from gamma = 0. D is increasing and concave, so every iterate stays below the root
    # and the sequence increases to it; the first step is the paper's gamma.
    g = 0.0
    for _ in range(100):
        residual = p - fraction(g)
        if residual <= 0.0:
            break
        slope = float(np.sum(weights * counts * np.exp((counts - 1) * np.log1p(-g))))
        g_new = g + residual / slope
        if not g < g_new < 1.0:  # no progress in float64: converged
            break
        g = g_new
    if abs(fraction(g) - p) > 1e-13:  # safeguard: bisection on [0, 1]
        lo, hi = 0.0, 1.0
        for _ in range(200):
            g = 0.5 * (lo + hi)
            lo, hi = (g, hi) if fraction(g) < p else (lo, g)
    return g


def seed_rate(p: float, height: int, width: int, block_size: int) -> float:
    r"""The seed rate :math:`\gamma` whose expected dropped fraction is exactly ``p``.

    Solves :math:`D(\gamma) = p` for :math:`D` of :func:`block_drop_fraction` in float64 by
    Newton's method from :math:`\gamma_0 = 0` (whose first step is :func:`paper_seed_rate`;
    :math:`D` is concave, so the iterates increase monotonically to the root), finished by
    bisection. Results are cached by argument.

    Args:
        p: target drop rate in [0, 1].
        height, width: map size, positive ints.
        block_size: odd positive int (clipped to the map).

    Returns:
        :math:`\gamma \in [0, 1]` with :math:`|D(\gamma) - p|` at the level of float64 rounding.

    See chapter 7, "DropBlock", section "The mechanism"; :cite:`ghiasi2018dropblock`.

    Examples:
        >>> g = seed_rate(0.1, 14, 14, 7)
        >>> round(g, 6), round(block_drop_fraction(g, 14, 14, 7), 12)
        (0.006764, 0.1)
    """
    p = check_probability(p)
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    return _solve_seed_rate(p, height, width, _check_block_size(block_size))


def position_keep_probability(p: float, height: int, width: int, block_size: int) -> torch.Tensor:
    r"""Probability that each position of an :math:`H \times W` map is kept by DropBlock at rate ``p``.

    A position is kept when none of the :math:`c(i, j)` seeds whose block covers it is drawn, so

    .. math:: \kappa_{ij} = (1 - \gamma)^{c(i, j)}, \qquad \gamma = \texttt{seed\_rate}(p, H, W, b),

    whose mean over the map is :math:`1 - p`. With the rescaling :math:`1/(1 - p)` of
    :func:`drop_block2d` the expected output at :math:`(i, j)` is :math:`x_{ij}\,\kappa_{ij}/(1 - p)`:
    below :math:`x_{ij}` in the middle of the map, above it at the border. ``normalize="position"``
    divides by :math:`\kappa_{ij}` instead, which makes every position unbiased.

    Args:
        p: drop rate in [0, 1].
        height, width: map size, positive ints.
        block_size: odd positive int (clipped to the map).

    Returns:
        float64 tensor of shape ``(height, width)``.

    See chapter 7, "DropBlock", section "Rescaling, position by position"; :cite:`ghiasi2018dropblock`.

    Examples:
        >>> kappa = position_keep_probability(0.1, 14, 14, 7)
        >>> round(kappa.mean().item(), 12), round(kappa[7, 7].item() / 0.9, 3), round(kappa[0, 0].item() / 0.9, 3)
        (0.9, 0.797, 1.104)
    """
    p = check_probability(p)
    height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
    block_size = _check_block_size(block_size)
    gamma = _solve_seed_rate(p, height, width, block_size)
    counts = coverage_counts(height, width, block_size).to(torch.float64)
    if gamma == 1.0:
        return torch.zeros(height, width, dtype=torch.float64)
    return torch.exp(counts * math.log1p(-gamma))


def _dropped_map(shape: tuple[int, ...], gamma: float, bh: int, bw: int, device,
                 dtype: torch.dtype, generator: torch.Generator | None) -> torch.Tensor:
    """1 where a position is dropped, 0 elsewhere; one independent mask per leading index.

    Seeds are drawn on the (H - bh + 1) x (W - bw + 1) positions where a block fits and dilated
    into blocks by a separable max pool over zero-padded rows, then columns. Both passes are 1-D
    max pools along the last (contiguous) dimension, which on CPU is faster than ``max_pool2d``
    with a ``b x 1`` kernel; the rows pass runs on the transposed seed map.
    """
    *lead, height, width = shape
    seeds = torch.rand((math.prod(lead), height - bh + 1, width - bw + 1), generator=generator,
                       device=device, dtype=dtype).lt_(gamma).to(dtype)
    if bh > 1:  # rows: (L, w', h') -> pad and pool the last dim -> (L, w', H) -> (L, H, w')
        seeds = F.max_pool1d(F.pad(seeds.transpose(1, 2), (bh - 1, bh - 1)), bh, stride=1).transpose(1, 2)
    if bw > 1:  # columns: (L, H, w') -> (L, H, W)
        seeds = F.max_pool1d(F.pad(seeds, (bw - 1, bw - 1)), bw, stride=1)
    return seeds.reshape(shape).contiguous()


def dropblock_mask(shape, gamma: float, block_size: int, *, generator: torch.Generator | None = None,
                   device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""A DropBlock keep-mask for a given seed rate: 1 where kept, 0 inside a dropped block.

    Every map (each index of the leading dimensions) gets its own seeds
    :math:`s_k \sim \mathrm{Bernoulli}(\gamma)`, one per position where a block fits; the block of
    every seed is zeroed, so position :math:`(i, j)` is kept with probability
    :math:`(1 - \gamma)^{c(i, j)}`. Use it to study any seed rate, e.g. :func:`paper_seed_rate`;
    :func:`drop_block2d` uses it with :func:`seed_rate`.

    Args:
        shape: ``(..., H, W)``, at least two non-negative ints.
        gamma: seed rate in [0, 1].
        block_size: odd positive int (clipped to the map).
        generator: optional ``torch.Generator`` for a reproducible mask.
        device: device of the mask (default: the current default device).
        dtype: floating dtype of the mask (default ``torch.float32``).

    See chapter 7, "DropBlock", section "The mechanism"; :cite:`ghiasi2018dropblock`.

    Examples:
        >>> g = torch.Generator().manual_seed(1)
        >>> dropblock_mask((5, 5), 0.2, 3, generator=g)
        tensor([[1., 1., 1., 1., 1.],
                [1., 0., 0., 0., 1.],
                [1., 0., 0., 0., 1.],
                [1., 0., 0., 0., 1.],
                [1., 1., 1., 1., 1.]])
    """
    shape = check_shape(shape)
    if len(shape) < 2:
        raise ValueError(f"shape must have at least two dimensions (..., H, W), got {shape}")
    gamma = _check_gamma(gamma)
    block_size = _check_block_size(block_size)
    check_generator(generator)
    device = check_device(device)
    check_float_dtype(dtype)
    if math.prod(shape) == 0:
        return torch.ones(shape, device=device, dtype=dtype)
    bh, bw = _clipped(shape[-2], shape[-1], block_size)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    dropped = _dropped_map(shape, gamma, bh, bw, device, work, generator)
    return dropped.mul_(-1).add_(1).to(dtype)


def drop_block2d(x: torch.Tensor, p: float, block_size: int, *, training: bool = True,
                 normalize: str = "expected", generator: torch.Generator | None = None) -> torch.Tensor:
    r"""DropBlock: zero square blocks of every feature map so that a fraction ``p`` is dropped on average.

    For every map (every sample and channel independently, as in the paper's algorithm), seeds
    are drawn at rate :math:`\gamma` = :func:`seed_rate` on the positions where a
    :math:`b \times b` block fits, every seed's block is zeroed, and the output is

    .. math:: \tilde x_{ij} = \frac{m_{ij}\, x_{ij}}{1 - p}, \qquad
              P(m_{ij} = 0) = 1 - (1 - \gamma)^{c(i, j)}, \qquad
              \frac{1}{HW}\sum_{ij} P(m_{ij} = 0) = p.

    The divisor :math:`1 - p` is the *expected* kept fraction, so
    :math:`\mathbb E[\sum_{ij} m_{ij}] / (1 - p) = HW`: the expected sum of a constant map is
    preserved exactly, and the scale does not depend on the other maps of the batch (the paper
    divides by the *realised* kept fraction instead). Border positions are covered by fewer
    seeds and are dropped less often than central ones (chapter 7 shows the map of
    :math:`P(m_{ij} = 0)`), so the expected output of a position is
    :math:`x_{ij}\,\kappa_{ij}/(1-p)` with :math:`\kappa_{ij}` of :func:`position_keep_probability`:
    exact on average over the map, not at each position. With ``normalize="position"`` the
    survivors are divided by :math:`\kappa_{ij}` instead, and :math:`\mathbb E[\tilde x_{ij}] = x_{ij}`
    at every position. A block larger than the map is clipped to it, axis by axis.

    Args:
        x: floating tensor ``(N, C, H, W)`` or ``(C, H, W)``; it is never modified.
        p: expected fraction of dropped activations, in [0, 1]; ``p == 1`` returns zeros (with a
            zero gradient).
        block_size: odd positive int :math:`b`; an even size raises ``ValueError``.
        training: a bool: apply DropBlock if ``True``, the identity (a copy of ``x``) otherwise.
        normalize: ``"expected"`` (default): divide the survivors by :math:`1 - p`;
            ``"position"``: divide each survivor by its position's keep probability
            :math:`\kappa_{ij}`, so that the output is unbiased at every position.
        generator: optional ``torch.Generator`` for a reproducible mask.

    Shape:
        Output has the shape, dtype, device and memory layout (e.g. channels-last) of ``x``.

    See chapter 7, "DropBlock"; :cite:`ghiasi2018dropblock`.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = drop_block2d(torch.ones(2, 3, 14, 14), 0.1, 7, generator=g)
        >>> y.shape, y.unique()
        (torch.Size([2, 3, 14, 14]), tensor([0.0000, 1.1111]))
    """
    check_float_tensor(x)
    if x.dim() not in (3, 4):
        raise ValueError(f"x must have shape (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    p = check_probability(p)
    block_size = _check_block_size(block_size)
    training = check_bool(training, "training")
    normalize = check_choice(normalize, "normalize", NORMALIZATIONS)
    check_generator(generator)
    if not training or p == 0.0 or x.numel() == 0:
        return x.clone()
    if p == 1.0:
        return _dropped_entirely(x)
    height, width = x.shape[-2:]
    bh, bw = _clipped(height, width, block_size)
    gamma = _solve_seed_rate(p, height, width, block_size)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    dropped = _dropped_map(tuple(x.shape), gamma, bh, bw, x.device, work, generator)
    if normalize == "position":
        kept = position_keep_probability(p, height, width, block_size).to(device=x.device, dtype=work)
        mask = dropped.mul_(-1).add_(1).div_(kept)  # (1 - dropped) / kappa_ij, in place
    else:
        scale = 1.0 / (1.0 - p)
        mask = dropped.mul_(-scale).add_(scale)  # (1 - dropped) / (1 - p), in place
    if mask.dtype != x.dtype:
        mask = mask.to(x.dtype)
    return _apply_mask(x, mask)


class LinearSchedule:
    r"""A drop rate that grows linearly with the training step, then stays constant.

    .. math:: p_t = p_{\text{start}} + (p_{\text{end}} - p_{\text{start}})
              \min\!\left(\frac{t}{T}, 1\right), \qquad t = 0, 1, 2, \ldots

    Ghiasi et al. :cite:`ghiasi2018dropblock` start DropBlock at :math:`p = 0` and increase it
    linearly to its final value, because a fixed rate from the first step trains worse. Pass a
    schedule as the ``p`` of :class:`DropBlock2d`, which advances it once per training forward.

    Args:
        start: drop rate at step 0, in [0, 1].
        end: drop rate from step ``steps`` on, in [0, 1].
        steps: number of steps :math:`T` of the ramp, a positive int.

    See chapter 7, "DropBlock", section "The mechanism".

    Examples:
        >>> schedule = LinearSchedule(0.0, 0.1, steps=4)
        >>> [round(schedule(t), 3) for t in range(6)]
        [0.0, 0.025, 0.05, 0.075, 0.1, 0.1]
    """

    def __init__(self, start: float, end: float, steps: int) -> None:
        self.start = check_probability(start, "start")
        self.end = check_probability(end, "end")
        self.steps = check_int(steps, "steps", minimum=1)

    def __call__(self, step: int) -> float:
        fraction = min(check_int(step, "step", minimum=0), self.steps) / self.steps
        return self.start + (self.end - self.start) * fraction

    def __repr__(self) -> str:
        return f"LinearSchedule(start={self.start}, end={self.end}, steps={self.steps})"


class DropBlock2d(nn.Module):
    r"""Module form of :func:`drop_block2d`, with an optional linear schedule of the drop rate.

    With a number ``p`` it behaves like ``torch.nn.Dropout2d`` does for channels: DropBlock in
    training mode, the identity in evaluation mode. With a :class:`LinearSchedule` the rate of the
    :math:`t`-th training forward pass (counted in ``step``, from 0) is ``p(t)``; evaluation
    passes do not advance it.

    Args:
        p: drop rate in [0, 1], or a :class:`LinearSchedule`.
        block_size: odd positive int.
        normalize: ``"expected"`` or ``"position"``, as in :func:`drop_block2d`.
        generator: optional ``torch.Generator`` used for every mask this module samples.

    Shape:
        Input: ``(N, C, H, W)`` or ``(C, H, W)``. Output: same shape as input.

    See chapter 7, "DropBlock"; :cite:`ghiasi2018dropblock`.

    Examples:
        >>> layer = DropBlock2d(LinearSchedule(0.0, 0.2, steps=10), block_size=3)
        >>> _ = layer(torch.ones(1, 1, 8, 8)); _ = layer(torch.ones(1, 1, 8, 8))
        >>> layer.step, round(layer.current_p, 3)
        (2, 0.04)
    """

    def __init__(self, p: float | LinearSchedule, block_size: int, *, normalize: str = "expected",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(p, LinearSchedule):
            self.schedule: LinearSchedule | None = p
            self.p = p.end
        else:
            self.schedule = None
            self.p = check_probability(p)
        self.block_size = _check_block_size(block_size)
        self.normalize = check_choice(normalize, "normalize", NORMALIZATIONS)
        self.generator = check_generator(generator)
        self.step = 0

    @property
    def current_p(self) -> float:
        """The drop rate the next training forward pass uses."""
        return self.schedule(self.step) if self.schedule is not None else self.p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return drop_block2d(x, self.p, self.block_size, training=False)
        out = drop_block2d(x, self.current_p, self.block_size, normalize=self.normalize,
                           generator=self.generator)
        self.step += 1
        return out

    def extra_repr(self) -> str:
        rate = repr(self.schedule) if self.schedule is not None else f"p={self.p}"
        extra = f", normalize={self.normalize!r}" if self.normalize != "expected" else ""
        return f"{rate}, block_size={self.block_size}{extra}"


def neighbour_fill(x: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Guess every dropped activation from its kept 8-neighbours: a tiny interpolation.

    .. math:: \hat x_{ij} = \frac{\sum_{(k,l) \in N(i,j)} m_{kl} x_{kl}}{\sum_{(k,l) \in N(i,j)} m_{kl}}

    over the :math:`3 \times 3` neighbourhood :math:`N(i, j)` (zero padding at the border). Kept
    positions are returned unchanged; a dropped position without a kept neighbour gets 0 and is
    marked in the second output. Chapter 7 uses it to show that an isolated dropped activation of
    a smooth feature map can be recovered and a dropped block cannot.

    Args:
        x: floating tensor ``(..., H, W)``; it is never modified.
        keep: tensor of the same shape, 1 (or ``True``) where the activation was kept, 0 elsewhere.

    Returns:
        ``(filled, isolated)``: the map with dropped positions replaced by the neighbour mean, and
        a bool tensor that is ``True`` at dropped positions with no kept neighbour. A map with a
        zero side gives empty outputs of its shape.

    See chapter 7, "DropBlock", section "The question".

    Examples:
        >>> x = torch.arange(9.0).reshape(3, 3)
        >>> keep = torch.ones(3, 3); keep[1, 1] = 0
        >>> neighbour_fill(x, keep)[0][1, 1].item()
        4.0
    """
    check_float_tensor(x)
    if not isinstance(keep, torch.Tensor):
        raise TypeError(f"keep must be a torch.Tensor of 0/1 values, got {type(keep).__name__}")
    if keep.shape != x.shape or x.dim() < 2:
        raise ValueError(f"keep must have the shape of x, (..., H, W); got {tuple(keep.shape)} and "
                         f"{tuple(x.shape)}")
    if keep.is_complex() or not bool(((keep == 0) | (keep == 1)).all()):
        raise ValueError("keep must hold only 0/1 (or False/True) values")
    if x.numel() == 0:  # a map with a zero side, or no maps: nothing to fill
        return x.clone(), torch.zeros_like(x, dtype=torch.bool)
    keep = keep.to(x.dtype)
    flat = lambda t: t.reshape(-1, 1, *x.shape[-2:])  # noqa: E731
    kernel = torch.ones(1, 1, 3, 3, dtype=x.dtype, device=x.device)
    sums = F.conv2d(flat(x * keep), kernel, padding=1).reshape(x.shape)
    counts = F.conv2d(flat(keep), kernel, padding=1).reshape(x.shape)
    dropped = keep == 0
    guess = sums / counts.clamp(min=1)
    return torch.where(dropped, guess, x), dropped & (counts == 0)
