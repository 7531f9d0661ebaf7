r"""Chapter 8, "Stochastic depth": DropPath, the survival schedule of Huang et al., residual blocks.

Conventions. As everywhere in the library, ``p`` is a *drop* probability. Huang et al.
:cite:`huang2016deep` write :math:`p_l` for the *survival* probability of residual block
:math:`l`; the two are related by :math:`p = 1 - p_l`. Functions that take a survival
probability say so in the argument's name (``p_L``, ``survival``).

* :func:`stochastic_depth_survival` -- the linear schedule :math:`p_l = 1 - \frac{l}{L}(1 - p_L)`.
* :func:`drop_path` / :class:`DropPath` -- per-sample DropPath of a residual branch.
* :class:`StochasticDepth` -- a residual block :math:`x + b\,f(x)` whose branch is dropped per
  mini-batch (Huang et al.; the branch is then not computed at all) or per sample (DropPath).
* :func:`residual_mlp` -- a small residual MLP with that schedule, for the chapter's experiment.
* :func:`depth_distribution` -- the distribution of the number of surviving blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import (check_bool, check_choice, check_float_tensor, check_generator, check_int, check_module,
                          check_probability)
from .masks import _dropped_entirely

__all__ = [
    "stochastic_depth_survival", "drop_path", "DropPath", "StochasticDepth", "residual_mlp",
    "depth_distribution",
]

_MODES = ("batch", "sample")


def stochastic_depth_survival(L: int, p_L: float = 0.5) -> list[float]:
    r"""Survival probabilities of the linear decay rule of stochastic depth.

    .. math:: p_l = 1 - \frac{l}{L}\,(1 - p_L), \qquad l = 1, \dots, L,

    so that the input (:math:`l = 0`) always survives, :math:`p_l` falls linearly with depth, and
    the last block survives with probability :math:`p_L` (0.5 in :cite:`huang2016deep`). These
    are *survival* probabilities; the drop probability of block :math:`l`, in the book's
    convention, is :math:`1 - p_l = \frac{l}{L}(1 - p_L)`.

    Args:
        L: number of residual blocks, a positive int.
        p_L: survival probability of the last block, in [0, 1]; 1 turns stochastic depth off.

    Returns:
        A list of ``L`` floats, :math:`[p_1, \dots, p_L]`.

    See chapter 8, "Stochastic depth", section "The mechanism".

    Examples:
        >>> stochastic_depth_survival(4, 0.5)
        [0.875, 0.75, 0.625, 0.5]
    """
    L = check_int(L, "L", minimum=1)
    p_L = check_probability(p_L, "p_L")
    return [1.0 - (l / L) * (1.0 - p_L) for l in range(1, L + 1)]


def drop_path(x: torch.Tensor, p: float, *, training: bool = True, inverted: bool = True,
              generator: torch.Generator | None = None) -> torch.Tensor:
    r"""DropPath: zero the whole of each sample's tensor with probability ``p`` (one draw per sample).

    Applied to the output :math:`f(x)` of a residual branch, it drops the branch for some
    samples of the mini-batch and keeps it for the others. With ``inverted=True`` (the default,
    as in modern libraries):

    .. math:: \text{training: } \frac{b_n}{1-p} f(x)_n, \qquad \text{test: } f(x)_n,

    and with ``inverted=False`` (the original form of :cite:`huang2016deep`, with survival
    probability :math:`1 - p`):

    .. math:: \text{training: } b_n f(x)_n, \qquad \text{test: } (1-p) f(x)_n,

    where :math:`b_n \sim \mathrm{Bernoulli}(1-p)` independently for every sample :math:`n`
    (index 0 of ``x``). Both keep the mean: :math:`\mathbb E` of the training output equals the
    test output. Unlike element-wise dropout, all elements of one sample share one draw. With
    ``p = 1`` in training the output is zero and stays connected to autograd (the branch's weights
    get a zero gradient, as with ``torch.nn.functional.dropout``).

    Args:
        x: floating-point tensor of shape ``(N, ...)``, the branch output; it is never modified.
        p: drop probability of the branch, in [0, 1] (survival probability ``1 - p``).
        training: a bool: sample the per-sample draws if ``True``; otherwise apply the test-time rule.
        inverted: a bool: scale survivors by :math:`1/(1-p)` in training (``True``) or scale by
            :math:`1-p` at test time (``False``).
        generator: optional ``torch.Generator`` for reproducible draws.

    Shape:
        Input ``(N, *)`` with at least one dimension; output of the same shape, dtype and device.

    See chapter 8, "Stochastic depth"; :cite:`huang2016deep`.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = drop_path(torch.ones(4, 3), 0.5, generator=g)
        >>> [sorted(set(row.tolist())) in ([0.0], [2.0]) for row in y]
        [True, True, True, True]
    """
    check_float_tensor(x)
    p = check_probability(p)
    training = check_bool(training, "training")
    inverted = check_bool(inverted, "inverted")
    check_generator(generator)
    if x.dim() == 0:
        raise ValueError("x must have a batch dimension (at least one dimension), got a 0-dimensional tensor")
    if not training:
        return x.clone() if inverted else x * (1.0 - p)
    if p == 0.0:
        return x.clone()
    if p == 1.0:
        return _dropped_entirely(x)  # zero, with a zero gradient (F.dropout at p = 1 gives x * 0)
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    u_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    keep = torch.rand(shape, generator=generator, dtype=u_dtype, device=x.device).ge_(p)
    mask = keep.to(x.dtype)
    if inverted:
        mask = mask.mul_(1.0 / (1.0 - p))
    return x * mask


class DropPath(nn.Module):
    r"""Module form of :func:`drop_path` (per-sample DropPath of a residual branch).

    Use it on the branch of a residual block, ``x + DropPath(p)(f(x))``. See chapter 8,
    "Stochastic depth"; :cite:`huang2016deep`.

    Args:
        p: drop probability in [0, 1]. Default: 0.1.
        inverted: scale by :math:`1/(1-p)` in training (default) or by :math:`1-p` at test time.
        generator: optional ``torch.Generator`` used for every draw of this module.

    Shape:
        Input ``(N, *)``. Output: same shape as input.

    Examples:
        >>> layer = DropPath(0.2).eval()
        >>> torch.equal(layer(torch.ones(2, 3)), torch.ones(2, 3))
        True
    """

    def __init__(self, p: float = 0.1, *, inverted: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = check_probability(p)
        self.inverted = check_bool(inverted, "inverted")
        self.generator = check_generator(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, training=self.training, inverted=self.inverted, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, inverted={self.inverted}"


class StochasticDepth(nn.Module):
    r"""A residual block :math:`y = x + b\, f(x)` whose branch :math:`f` survives with probability ``1 - p``.

    With ``mode="batch"`` (Huang et al. :cite:`huang2016deep`) one draw
    :math:`b \sim \mathrm{Bernoulli}(1-p)` decides for the whole mini-batch; a dropped branch is
    *not computed*, which is where the training time is saved. With ``mode="sample"`` every
    sample has its own draw (:func:`drop_path`); the branch is always computed. With
    ``inverted=True`` a surviving branch is scaled by :math:`1/(1-p)` in training and the test
    block is :math:`x + f(x)`; with ``inverted=False`` training uses :math:`x + b f(x)` and the test
    block is :math:`x + (1-p) f(x)`, the original rule "scale by the survival probability".

    Args:
        branch: the residual branch :math:`f`, a module whose output has the shape of its input.
        p: drop probability of the branch in [0, 1] (Huang et al.'s survival is :math:`p_l = 1 - p`).
        mode: ``"batch"`` or ``"sample"``.
        inverted: where the scaling lives, as above.
        generator: optional ``torch.Generator`` for the draws.

    The forward checks its input (a floating tensor) and the attributes ``p``, ``mode`` and
    ``inverted`` again, so a rate changed after construction is validated too.

    See chapter 8, "Stochastic depth", section "The mechanism".

    Examples:
        >>> block = StochasticDepth(nn.Linear(3, 3), 0.5).eval()
        >>> block(torch.zeros(2, 3)).shape
        torch.Size([2, 3])
    """

    @property
    def shares_draw_across_rows(self) -> bool:
        """True in ``mode="batch"`` (one draw for the whole batch): ``mc_predict`` then runs its passes one by one."""
        return self.mode == "batch"

    def __init__(self, branch: torch.nn.Module, p: float, *, mode: str = "batch", inverted: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.branch = check_module(branch, "branch")
        self.p = check_probability(p)
        self.mode = check_choice(mode, "mode", _MODES)
        self.inverted = check_bool(inverted, "inverted")
        self.generator = check_generator(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        p = check_probability(self.p)  # attributes may have been changed since construction
        mode = check_choice(self.mode, "mode", _MODES)
        inverted = check_bool(self.inverted, "inverted")
        generator = check_generator(self.generator)
        keep = 1.0 - p
        if not self.training:
            return x + self.branch(x) if inverted else x + keep * self.branch(x)
        if mode == "sample":
            return x + drop_path(self.branch(x), p, inverted=inverted, generator=generator)
        survives = torch.rand((), generator=generator).item() >= p  # P = 1 - p
        if not survives:
            return x.clone()  # the branch is skipped: no computation, no gradient
        out = self.branch(x)
        return x + out / keep if inverted else x + out

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}, inverted={self.inverted}"


def residual_mlp(n_features: int, width: int, n_blocks: int, n_classes: int, *, p_L: float = 1.0,
                 mode: str = "batch", inverted: bool = True,
                 generator: torch.Generator | None = None) -> torch.nn.Sequential:
    r"""A residual MLP whose blocks follow the linear survival schedule of stochastic depth.

    ``Linear(n_features, width)``, then ``n_blocks`` blocks
    :math:`x + b_l f_l(x)` with :math:`f_l = \mathrm{Linear}\circ\mathrm{ReLU}\circ\mathrm{Linear}
    \circ\mathrm{LayerNorm}` (pre-norm), each a :class:`StochasticDepth` with drop probability
    :math:`1 - p_l` from :func:`stochastic_depth_survival`, then ``LayerNorm`` and
    ``Linear(width, n_classes)``. ``p_L = 1`` gives the plain residual network.

    Args:
        n_features, width, n_blocks, n_classes: positive ints.
        p_L: survival probability of the last block, in [0, 1].
        mode, inverted, generator: passed to every :class:`StochasticDepth` block.

    See chapter 8, "Stochastic depth", section "Experiment".

    Examples:
        >>> model = residual_mlp(64, 32, 4, 10, p_L=0.5)
        >>> [round(block.p, 3) for block in model[1:5]]
        [0.125, 0.25, 0.375, 0.5]
    """
    n_features, width, n_blocks, n_classes = (
        check_int(value, name, minimum=1) for name, value in (
            ("n_features", n_features), ("width", width), ("n_blocks", n_blocks), ("n_classes", n_classes)))
    survival = stochastic_depth_survival(n_blocks, p_L)
    blocks = [
        StochasticDepth(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)),
            1.0 - s, mode=mode, inverted=inverted, generator=generator,
        )
        for s in survival
    ]
    return nn.Sequential(nn.Linear(n_features, width), *blocks, nn.LayerNorm(width), nn.Linear(width, n_classes))


def depth_distribution(survival) -> torch.Tensor:
    r"""Distribution of the number of surviving blocks :math:`D = \sum_l b_l`, :math:`b_l \sim \mathrm{Bernoulli}(p_l)` independent.

    :math:`P(D = k)` is the coefficient of :math:`z^k` in the probability generating function
    :math:`\mathbb E[z^D] = \prod_{l=1}^{L} (1 - p_l + p_l z)` (a Poisson-binomial distribution),
    computed by multiplying the factors one at a time. Its mean is :math:`\sum_l p_l` and its
    variance :math:`\sum_l p_l (1 - p_l)`, as derived in chapter 8, "Stochastic depth".

    Args:
        survival: the survival probabilities :math:`p_1, \dots, p_L` (a sequence or 1-d tensor,
            each in [0, 1], at least one).

    Returns:
        A float64 tensor of length :math:`L + 1`, :math:`[P(D = 0), \dots, P(D = L)]`.

    Examples:
        >>> depth_distribution([0.5, 0.5]).tolist()
        [0.25, 0.5, 0.25]
    """
    if isinstance(survival, torch.Tensor):
        if survival.dim() != 1:
            raise ValueError(f"survival must be one-dimensional, got shape {tuple(survival.shape)}")
        survival = survival.tolist()
    if isinstance(survival, (str, bytes)) or not hasattr(survival, "__len__"):
        raise TypeError(f"survival must be a sequence of probabilities, got {type(survival).__name__}")
    if len(survival) == 0:
        raise ValueError("survival must hold at least one probability, got an empty sequence")
    probs = [check_probability(s, f"survival[{i}]") for i, s in enumerate(survival)]
    pmf = torch.ones(1, dtype=torch.float64)
    for s in probs:
        nxt = torch.zeros(len(pmf) + 1, dtype=torch.float64)
        nxt[:-1] += (1.0 - s) * pmf
        nxt[1:] += s * pmf
        pmf = nxt
    return pmf
