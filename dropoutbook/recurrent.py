r"""Chapter 11, "Dropout in recurrent networks": locked dropout, DropConnect, weight drop, zoneout.

A recurrent network applies the same weights at every time step, and its state carries what it
remembers from one step to the next. Where the masks are drawn decides what dropout does to that
memory:

* :func:`locked_dropout` -- *variational* (locked) dropout of Gal and Ghahramani
  :cite:`gal2016theoretically`: one mask per sequence and feature, shared by all time steps.
* :class:`RecurrentDropout` -- runs an RNN, GRU or LSTM cell over a sequence with dropout on its
  recurrent state: one mask per sequence (``"locked"``), a fresh mask at every step
  (``"per_step"``, the form that erases memory) or zoneout (``"zoneout"``).
* :func:`drop_connect` / :class:`DropConnectLinear` -- DropConnect :cite:`wan2013regularization`:
  drop weights instead of units.
* :class:`WeightDrop` -- DropConnect on the hidden-to-hidden weights of a ``torch.nn.LSTM`` /
  ``GRU`` / ``RNN``, one mask per forward pass, as in AWD-LSTM :cite:`merity2018regularizing`.
* :func:`zoneout` -- zoneout :cite:`krueger2017zoneout`: keep the previous state with
  probability ``p``.
* :func:`delayed_recall` and :class:`RecurrentClassifier` -- the task and the model of the
  chapter's experiment.

As everywhere in the library, ``p`` is a *drop* probability (for zoneout: the probability of
keeping the previous state), and the masks are inverted (survivors scaled by :math:`1/(1-p)`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from ._validation import (
    check_bool, check_device, check_float_dtype, check_float_tensor, check_generator, check_int_in_range,
    check_positive_int, check_probability, check_same_dtype,
)
from .masks import _dropped_entirely, _keep_mask, inverted_dropout

__all__ = [
    "locked_dropout", "drop_connect", "DropConnectLinear", "WeightDrop", "zoneout",
    "RecurrentDropout", "RecurrentClassifier", "delayed_recall",
]

_MODES = ("locked", "per_step", "zoneout")
_VARIANTS = ("none", "per_step", "locked", "zoneout", "weight_drop")
_CELLS = (nn.RNNCell, nn.LSTMCell)
_RNNS = (nn.RNN, nn.GRU, nn.LSTM)
_SEED_ALLOWED = "an int >= 0 and < 2**64"


def _check_sequence(x, name: str = "x") -> torch.Tensor:
    check_float_tensor(x, name)
    if x.dim() != 3:
        raise ValueError(f"{name} must be 3-dimensional, (T, B, D) or with batch_first (B, T, D), "
                         f"got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return x


def locked_dropout(x: torch.Tensor, p: float, *, batch_first: bool = False, training: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Locked (variational) dropout: one mask per sequence and feature, shared by all time steps.

    .. math:: \tilde x_{t,b,d} = \frac{m_{b,d}}{1-p}\, x_{t,b,d}, \qquad m_{b,d} \sim \mathrm{Bernoulli}(1-p),

    the same :math:`m_{b,d}` for every time step :math:`t` (Gal and Ghahramani
    :cite:`gal2016theoretically`). Ordinary dropout applied to the whole tensor would draw a new
    mask at every step. Each feature of a sequence is kept for the whole sequence or dropped for
    the whole sequence; different sequences of the batch and different features draw
    independently. :math:`\mathbb E[\tilde x] = x` and
    :math:`\operatorname{Var}[\tilde x_{t,b,d}] = \frac{p}{1-p} x_{t,b,d}^2`, as for dropout, but
    two time steps of one feature are perfectly correlated through their shared mask.

    Args:
        x: floating tensor of shape ``(T, B, D)`` (or ``(B, T, D)`` with ``batch_first``); never
            modified.
        p: drop probability in [0, 1]; ``p = 1`` gives zeros (with a zero gradient).
        batch_first: ``x`` is ``(B, T, D)``, as for ``torch.nn.LSTM(batch_first=True)``.
        training: drop if ``True``; the identity (a copy) otherwise.
        generator: optional ``torch.Generator`` for a reproducible mask.

    Shape:
        Input ``(T, B, D)`` or ``(B, T, D)``; output of the same shape, dtype, device and layout.

    See chapter 11, "Dropout in recurrent networks", section "The mechanism".

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = locked_dropout(torch.ones(5, 2, 3), 0.5, generator=g)
        >>> bool((y == y[0]).all())  # every time step has the mask of the first
        True
    """
    _check_sequence(x)
    p = check_probability(p)
    check_bool(batch_first, "batch_first")
    check_bool(training, "training")
    check_generator(generator)
    if not training or p == 0.0:
        return x.clone()
    if p == 1.0:
        return _dropped_entirely(x)
    one_step = x[:, :1] if batch_first else x[:1]  # a view of the mask's shape, (B, 1, D) or (1, B, D)
    return x * _keep_mask(one_step, p, 1.0 / (1.0 - p), generator)


def drop_connect(weight: torch.Tensor, p: float, *, training: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""DropConnect: zero each *weight* with probability ``p`` and scale the survivors by :math:`1/(1-p)`.

    .. math:: \tilde W_{ji} = \frac{M_{ji}}{1-p} W_{ji}, \qquad M_{ji} \sim \mathrm{Bernoulli}(1-p),

    (Wan et al. :cite:`wan2013regularization`; they leave the survivors unscaled and rescale at
    inference, the inverted form here moves the factor into training). Used in a layer
    :math:`y = \tilde W x`, it gives each output unit the mean and variance of dropout on the
    inputs, :math:`\mathbb E[y_j] = \sum_i W_{ji} x_i` and
    :math:`\operatorname{Var}[y_j] = \frac{p}{1-p}\sum_i W_{ji}^2 x_i^2`, but no covariance between
    two units, because they no longer share a mask (chapter 11, section "Derivation"). The mask
    has the weight's shape; applied to a layer, one draw serves a whole forward pass.

    Args:
        weight: floating tensor with at least one dimension, e.g. ``(out_features, in_features)``;
            never modified.
        p: drop probability in [0, 1]; ``p = 1`` gives zeros (with a zero gradient).
        training: drop if ``True``; the identity (a copy) otherwise.
        generator: optional ``torch.Generator`` for a reproducible mask.

    Shape:
        Output has the shape, dtype and device of ``weight``.

    See chapter 11, "Dropout in recurrent networks".

    Examples:
        >>> w = drop_connect(torch.ones(2, 3), 0.5, generator=torch.Generator().manual_seed(0))
        >>> sorted(set(w.flatten().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
    """
    check_float_tensor(weight, "weight")
    if weight.dim() == 0:
        raise ValueError("weight must have at least one dimension, got a 0-dimensional tensor")
    if weight.numel() == 0:
        raise ValueError(f"weight must not be empty, got shape {tuple(weight.shape)}")
    check_bool(training, "training")
    return inverted_dropout(weight, p, training=training, generator=generator)


class DropConnectLinear(nn.Linear):
    r"""A ``torch.nn.Linear`` layer whose weight is dropped by :func:`drop_connect` in training.

    .. math:: y = \tilde W x + b, \qquad \tilde W = \frac{M \odot W}{1-p},

    with one mask :math:`M` per forward pass, shared by the rows of the mini-batch (Wan et al.
    :cite:`wan2013regularization` draw one per example, which costs a weight matrix per example).
    The bias is not dropped. In evaluation mode it is the plain linear layer. See chapter 11,
    "Dropout in recurrent networks".

    Args:
        in_features, out_features: sizes, as for ``torch.nn.Linear``.
        p: drop probability of a weight, in [0, 1]. Default: 0.5.
        bias: learn an additive bias.
        generator: optional ``torch.Generator`` used for every mask.

    Shape:
        Input ``(*, in_features)``, output ``(*, out_features)``.

    Examples:
        >>> layer = DropConnectLinear(3, 2, p=0.3).eval()
        >>> torch.equal(layer(torch.ones(1, 3)), nn.functional.linear(torch.ones(1, 3), layer.weight, layer.bias))
        True
    """

    #: One weight mask per forward pass, shared by every row: ``mc_predict`` then runs its passes one by one.
    shares_draw_across_rows = True

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, *, bias: bool = True,
                 generator: torch.Generator | None = None, device=None, dtype=None) -> None:
        check_positive_int(in_features, "in_features")
        check_positive_int(out_features, "out_features")
        check_bool(bias, "bias")
        device = check_device(device)
        if dtype is not None:
            check_float_dtype(dtype)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.p = check_probability(p)
        self.generator = check_generator(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (*, in_features) = (*, {self.in_features}), got {tuple(x.shape)}")
        check_same_dtype("the layer's parameters", self.weight, x=x)
        weight = drop_connect(self.weight, self.p, training=self.training, generator=self.generator)
        return nn.functional.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class WeightDrop(nn.Module):
    r"""Weight drop: DropConnect on the hidden-to-hidden weights of a recurrent module, one mask per forward pass.

    In training, every forward pass draws one DropConnect mask (:func:`drop_connect`) for each
    named weight, by default every ``weight_hh_l*`` of a ``torch.nn.LSTM``, ``GRU`` or ``RNN``, and
    runs the module with the dropped weights (``torch.func.functional_call``). The same dropped
    matrix serves every time step and every sequence of the batch, as in AWD-LSTM
    :cite:`merity2018regularizing`; the recurrent connection is regularized without a fresh mask
    per step, and the fused ``nn.LSTM`` kernel still runs. The module's own parameters are never
    replaced or changed: ``parameters()`` and ``state_dict()`` are those of the wrapped module,
    and the gradient reaches them through the mask. In evaluation mode the plain module runs.

    Under :func:`~dropoutbook.mc_dropout` pass ``dropout_types=(WeightDrop,)``; every pass then
    draws new weights. Do not use it with :func:`~dropoutbook.mc_predict`: its batched copies of
    the input would share one weight mask.

    Args:
        module: a ``torch.nn.LSTM``, ``torch.nn.GRU`` or ``torch.nn.RNN``.
        p: drop probability of a weight, in [0, 1].
        weights: names of the parameters to drop (default: all ``weight_hh_l*``).
        generator: optional ``torch.Generator`` used for every mask.

    Shape:
        Those of the wrapped module; ``forward`` takes and returns what it does.

    See chapter 11, "Dropout in recurrent networks".

    Examples:
        >>> lstm = WeightDrop(nn.LSTM(3, 4), 0.5)
        >>> [name for name, _ in lstm.named_parameters()][:2]
        ['module.weight_ih_l0', 'module.weight_hh_l0']
        >>> out, (h, c) = lstm(torch.randn(6, 2, 3))
        >>> out.shape
        torch.Size([6, 2, 4])
    """

    #: One weight mask per forward pass, shared by every row: ``mc_predict`` then runs its passes one by one.
    shares_draw_across_rows = True

    def __init__(self, module: torch.nn.Module, p: float, *, weights=None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(module, _RNNS):
            raise TypeError(f"module must be a torch.nn.LSTM, GRU or RNN, got {type(module).__name__}")
        names = dict(module.named_parameters())
        if weights is None:
            weights = [n for n in names if n.startswith("weight_hh")]
        if isinstance(weights, str) or not isinstance(weights, Sequence) or not all(isinstance(w, str) for w in weights):
            raise TypeError(f"weights must be a sequence of parameter names, e.g. ['weight_hh_l0'], got {weights!r}")
        weights = tuple(weights)
        if not weights:
            raise ValueError("weights must name at least one parameter")
        unknown = [w for w in weights if w not in names]
        if unknown:
            raise ValueError(f"weights must be parameters of the module ({', '.join(names)}), got {unknown}")
        self.module = module
        self.p = check_probability(p)
        self.weights = weights
        self.generator = check_generator(generator)

    def forward(self, input: torch.Tensor, *args, **kwargs):
        check_float_tensor(input, "input")
        if input.dim() not in (2, 3) or input.shape[-1] != self.module.input_size:
            raise ValueError(f"input must have shape (T, B, input_size), (B, T, input_size) with batch_first, or "
                             f"(T, input_size), with input_size = {self.module.input_size}, got {tuple(input.shape)}")
        check_same_dtype("the module's parameters", self.module.weight_ih_l0, input=input)
        if not self.training or self.p == 0.0:
            return self.module(input, *args, **kwargs)
        dropped = {name: drop_connect(getattr(self.module, name), self.p, generator=self.generator)
                   for name in self.weights}
        return functional_call(self.module, dropped, (input, *args), kwargs)

    def extra_repr(self) -> str:
        return f"p={self.p}, weights={list(self.weights)}"


def zoneout(h_prev: torch.Tensor, h_new: torch.Tensor, p: float, *, training: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Zoneout: each unit keeps its previous state with probability ``p`` instead of taking the new one.

    .. math:: h_t = d \odot h_{t-1} + (1 - d) \odot \hat h_t, \qquad d_i \sim \mathrm{Bernoulli}(p),

    where :math:`\hat h_t` is what the cell computed (Krueger et al. :cite:`krueger2017zoneout`).
    A unit that "zones out" passes its value on unchanged, so nothing is set to zero and the
    identity path through time is kept. At test time (``training=False``) the expectation
    :math:`p\, h_{t-1} + (1-p)\, \hat h_t` is used, derived in chapter 11, "Dropout in recurrent
    networks". Here ``p`` is the *zoneout* probability, the probability of keeping the old value.

    Args:
        h_prev: floating tensor, the previous state :math:`h_{t-1}`; never modified.
        h_new: floating tensor of the same shape and dtype, the cell's new state :math:`\hat h_t`.
        p: zoneout probability in [0, 1] (0: the plain cell; 1: the state never changes).
        training: sample the zoneout mask if ``True``; the expectation otherwise.
        generator: optional ``torch.Generator`` for a reproducible mask.

    Shape:
        Both inputs ``(*)``, the same shape; the output has that shape, dtype and device, and the
        memory layout of the inputs when they share one.

    Examples:
        >>> zoneout(torch.zeros(3), torch.ones(3), 0.25, training=False)
        tensor([0.7500, 0.7500, 0.7500])
    """
    check_float_tensor(h_prev, "h_prev")
    check_float_tensor(h_new, "h_new")
    if h_prev.shape != h_new.shape:
        raise ValueError(f"h_prev and h_new must have the same shape, got {tuple(h_prev.shape)} and "
                         f"{tuple(h_new.shape)}")
    if h_prev.dtype != h_new.dtype or h_prev.device != h_new.device:
        raise TypeError(f"h_prev and h_new must have the same dtype and device, got {h_prev.dtype} on "
                        f"{h_prev.device} and {h_new.dtype} on {h_new.device}")
    p = check_probability(p)
    check_bool(training, "training")
    check_generator(generator)
    if not training:
        return p * h_prev + (1.0 - p) * h_new
    if p in (0.0, 1.0):  # no draw; the unused input stays in the graph with a zero gradient
        change = torch.full_like(h_new, p == 0.0, dtype=torch.bool)
    else:
        # True with probability 1 - p; drawn in row-major order, stored in h_new's memory layout
        change = torch.empty_like(h_new, dtype=torch.bool).copy_(_keep_mask(h_new, p, 1.0, generator))
    return torch.where(change, h_new, h_prev)


class RecurrentDropout(nn.Module):
    r"""Run a recurrent cell over a sequence with dropout on its recurrent state.

    At each step :math:`t` the cell computes :math:`s_t = \mathrm{cell}(x_t, \tilde s_{t-1})` from
    the previous state :math:`s_{t-1}` (``h`` for an ``RNNCell``, ``(h, c)`` for an ``LSTMCell``),
    and ``mode`` decides what it receives:

    * ``"locked"``: :math:`\tilde s_{t-1} = m \odot s_{t-1} / (1-p)` with *one* mask :math:`m` per
      sequence and unit, shared by all steps (Gal and Ghahramani :cite:`gal2016theoretically`);
    * ``"per_step"``: the same with a fresh mask :math:`m_t` at every step; a unit's value then
      survives :math:`k` steps with probability :math:`(1-p)^k`, and the memory is erased;
    * ``"zoneout"``: no mask on the input of the cell; instead each unit keeps its previous value
      with probability ``p``, :math:`s_t = d_t \odot s_{t-1} + (1 - d_t) \odot \mathrm{cell}(\dots)`
      (:func:`zoneout`, Krueger et al. :cite:`krueger2017zoneout`), and at test time
      :math:`s_t = p\, s_{t-1} + (1-p)\,\mathrm{cell}(\dots)`.

    For an LSTM cell, ``drop_cell_state`` decides whether the memory cell ``c``, the state that
    carries the memory from step to step, is dropped (or zoned out) too, with its own mask. By
    default it is not: Gal and Ghahramani drop ``h`` only, where it enters the recurrent weights
    of the gates. A ``GRUCell`` is refused: it feeds ``h`` both to its recurrent weights and to
    its carry :math:`z \odot h_{t-1}`, so a mask on its input would always drop the carry too.
    The outputs are the cell's states :math:`h_t` themselves (drop them with
    :func:`locked_dropout` if wanted). In evaluation mode no mask is drawn.

    Args:
        cell: a ``torch.nn.RNNCell`` or ``torch.nn.LSTMCell``.
        p: drop probability (zoneout probability for ``"zoneout"``), in [0, 1].
        mode: ``"locked"``, ``"per_step"`` or ``"zoneout"``.
        batch_first: inputs and outputs are ``(B, T, D)`` instead of ``(T, B, D)``.
        drop_cell_state: also drop (zone out) the memory cell ``c`` of an ``LSTMCell``
            (default ``False``).
        generator: optional ``torch.Generator`` used for every mask.

    Shape:
        ``forward(x, state=None)`` takes ``x`` of shape ``(T, B, input_size)`` and an optional
        initial state (``h`` or ``(h, c)``, each ``(B, hidden_size)``), and returns the outputs
        ``(T, B, hidden_size)`` and the final state.

    See chapter 11, "Dropout in recurrent networks", section "The mechanism".

    Examples:
        >>> rnn = RecurrentDropout(nn.LSTMCell(3, 4), 0.25, mode="locked")
        >>> out, (h, c) = rnn(torch.randn(7, 2, 3))
        >>> out.shape, h.shape
        (torch.Size([7, 2, 4]), torch.Size([2, 4]))
    """

    def __init__(self, cell: torch.nn.Module, p: float, *, mode: str = "locked", batch_first: bool = False,
                 drop_cell_state: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(cell, nn.GRUCell):
            raise TypeError("cell must be a torch.nn.RNNCell or LSTMCell, got GRUCell: a GRU cell feeds h to its "
                            "carry z*h as well as to its recurrent weights, so a mask on h would drop the carry "
                            "too; regularize a GRU with WeightDrop(nn.GRU(...)) instead")
        if not isinstance(cell, _CELLS):
            raise TypeError(f"cell must be a torch.nn.RNNCell or LSTMCell, got {type(cell).__name__}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.cell = cell
        self.p = check_probability(p)
        self.mode = mode
        self.batch_first = check_bool(batch_first, "batch_first")
        self.drop_cell_state = check_bool(drop_cell_state, "drop_cell_state")
        self.generator = check_generator(generator)

    def _initial_state(self, x: torch.Tensor, state):
        batch, hidden = x.shape[1], self.cell.hidden_size
        lstm = isinstance(self.cell, nn.LSTMCell)
        if state is None:
            h = x.new_zeros(batch, hidden)
            return [h, h.clone()] if lstm else [h]
        if lstm and not isinstance(state, (tuple, list)):
            raise TypeError(f"state of an LSTMCell must be None or a pair (h, c), got {type(state).__name__}")
        parts = list(state) if lstm else [state]
        if lstm and len(parts) != 2:
            raise ValueError(f"state of an LSTMCell must be a pair (h, c), got {len(parts)} entries")
        for name, s in zip(("h", "c"), parts):
            check_float_tensor(s, f"state {name}")
            if s.dtype != x.dtype:
                raise TypeError(f"state {name} must have the dtype of x ({x.dtype}), got {s.dtype}")
            if tuple(s.shape) != (batch, hidden):
                raise ValueError(f"state {name} must have shape (B, hidden_size) = ({batch}, {hidden}), "
                                 f"got {tuple(s.shape)}")
        return parts

    def forward(self, x: torch.Tensor, state=None):
        _check_sequence(x)
        if self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[-1] != self.cell.input_size:
            raise ValueError(f"x must have input_size = {self.cell.input_size} features, got {x.shape[-1]}")
        s = self._initial_state(x, state)
        dropped = [True, self.drop_cell_state][:len(s)]  # which state parts the mask touches
        active = self.training and self.p > 0.0
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        masks = None
        if active and self.mode == "locked":
            masks = [_keep_mask(part, self.p, scale, self.generator) if d else None for part, d in zip(s, dropped)]
        outputs = []
        for x_t in x:
            fed = s
            if active and self.mode in ("locked", "per_step"):
                step = masks if self.mode == "locked" else [
                    _keep_mask(part, self.p, scale, self.generator) if d else None for part, d in zip(s, dropped)]
                fed = [part * m if m is not None else part for part, m in zip(s, step)]
            new = self.cell(x_t, tuple(fed) if len(fed) == 2 else fed[0])
            new = list(new) if isinstance(new, tuple) else [new]
            if self.mode == "zoneout" and self.p > 0.0:
                new = [zoneout(old, part, self.p, training=self.training, generator=self.generator) if d else part
                       for old, part, d in zip(s, new, dropped)]
            s = new
            outputs.append(s[0])
        out = torch.stack(outputs)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, (tuple(s) if len(s) == 2 else s[0])

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}, batch_first={self.batch_first}, drop_cell_state={self.drop_cell_state}"


class RecurrentClassifier(nn.Module):
    r"""A one-layer LSTM that reads a token sequence and classifies it from its last state.

    ``Embedding(n_tokens, embed)`` then an LSTM of ``hidden_size`` units, then
    ``Linear(hidden_size, n_classes)`` on the output of the last time step. ``variant`` chooses how
    the recurrent connection is regularized with probability ``p``:

    * ``"none"``: a plain ``torch.nn.LSTM``;
    * ``"per_step"``, ``"locked"``, ``"zoneout"``: an ``LSTMCell`` run by :class:`RecurrentDropout`
      in that mode; by default (``drop_cell_state=None``) the per-step mask and zoneout act on
      ``h`` and ``c`` (the naive form and Krueger et al.'s), the locked mask on ``h`` only (Gal and
      Ghahramani);
    * ``"weight_drop"``: a ``torch.nn.LSTM`` wrapped in :class:`WeightDrop`.

    All variants have the same parameters, initialized in the same order, so that a seed gives
    the same initial network. Used in chapter 11, "Dropout in recurrent networks", section
    "Experiment".

    Args:
        n_tokens: vocabulary size; hidden_size: LSTM units; n_classes: number of classes;
        embed: embedding width (positive ints).
        variant: one of ``"none"``, ``"per_step"``, ``"locked"``, ``"zoneout"``, ``"weight_drop"``.
        p: drop (zoneout) probability in [0, 1]; ignored by ``"none"``.
        drop_cell_state: ``None`` (the placement above), or a bool passed to :class:`RecurrentDropout`.
        generator: optional ``torch.Generator`` for the masks.

    Shape:
        Input: int64 tokens ``(B, T)``; output: logits ``(B, n_classes)``.

    Examples:
        >>> model = RecurrentClassifier(8, 16, 4, variant="locked", p=0.25)
        >>> model(torch.randint(0, 8, (5, 10))).shape
        torch.Size([5, 4])
    """

    def __init__(self, n_tokens: int, hidden_size: int, n_classes: int, *, embed: int = 8,
                 variant: str = "none", p: float = 0.0, drop_cell_state: bool | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        for name, value in (("n_tokens", n_tokens), ("hidden_size", hidden_size), ("n_classes", n_classes),
                            ("embed", embed)):
            check_positive_int(value, name)
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
        p = check_probability(p)
        if drop_cell_state is None:
            drop_cell_state = variant != "locked"
        check_bool(drop_cell_state, "drop_cell_state")
        check_generator(generator)  # also for "none", which draws no mask
        self.variant = variant
        self.embedding = nn.Embedding(n_tokens, embed)
        if variant in ("none", "weight_drop"):
            lstm = nn.LSTM(embed, hidden_size, batch_first=True)
            self.core = lstm if variant == "none" else WeightDrop(lstm, p, generator=generator)
        else:
            self.core = RecurrentDropout(nn.LSTMCell(embed, hidden_size), p, mode=variant, batch_first=True,
                                         drop_cell_state=drop_cell_state, generator=generator)
        self.head = nn.Linear(hidden_size, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64 or tokens.dim() != 2:
            raise TypeError("tokens must be an int64 tensor of shape (B, T)")
        if tokens.numel() == 0:
            raise ValueError(f"tokens must not be empty, got shape {tuple(tokens.shape)}")
        n_tokens = self.embedding.num_embeddings
        if int(tokens.min()) < 0 or int(tokens.max()) >= n_tokens:
            raise ValueError(f"tokens must hold ids in [0, n_tokens) = [0, {n_tokens}), got ids from "
                             f"{int(tokens.min())} to {int(tokens.max())}")
        out, _ = self.core(self.embedding(tokens))
        return self.head(out[:, -1])


def delayed_recall(n: int, *, length: int = 20, n_symbols: int = 4, n_noise: int = 4, delay=None,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""A sequence task that needs memory: recall the one symbol shown ``delay`` steps before the end.

    Each sequence has ``length`` tokens. All are noise tokens, drawn uniformly from
    ``{n_symbols, ..., n_symbols + n_noise - 1}``, except one: at position
    ``length - 1 - delay`` a symbol from ``{0, ..., n_symbols - 1}`` is shown, and the label is that
    symbol. A network that reads the sequence and answers at the last step must carry the symbol
    through ``delay`` steps of noise; guessing gives :math:`1/\text{n\_symbols}`. Used in chapter
    11, "Dropout in recurrent networks", section "Experiment".

    Args:
        n: number of sequences, a positive int.
        length: sequence length, at least 2.
        n_symbols: number of symbols to recall (classes), at least 2; n_noise: number of noise
            tokens, a positive int.
        delay: ``None`` (each sequence draws its delay uniformly from ``0, ..., length - 1``) or an
            int in that range (every sequence has that delay).
        seed: seed of the draw, an int >= 0 and < 2**64.

    Returns:
        ``(tokens, labels, delays)``: int64 tensors of shapes ``(n, length)``, ``(n,)`` and ``(n,)``.

    Examples:
        >>> x, y, d = delayed_recall(3, length=6, delay=2, seed=0)
        >>> bool((x[:, 3] == y).all()), d.tolist()
        (True, [2, 2, 2])
    """
    n = check_positive_int(n, "n")
    length = check_int_in_range(length, "length", 2)
    if check_positive_int(n_symbols, "n_symbols") < 2:
        raise ValueError(f"n_symbols must be an int >= 2, got {n_symbols!r}")
    n_noise = check_positive_int(n_noise, "n_noise")
    if delay is not None:
        delay = check_int_in_range(delay, "delay", 0, length - 1,
                                   allowed=f"None or an int from 0 to length - 1 = {length - 1}")
    g = torch.Generator().manual_seed(check_int_in_range(seed, "seed", 0, 2**64 - 1, allowed=_SEED_ALLOWED))
    tokens = torch.randint(n_symbols, n_symbols + n_noise, (n, length), generator=g)
    labels = torch.randint(0, n_symbols, (n,), generator=g)
    if delay is None:
        delays = torch.randint(0, length, (n,), generator=g)
    else:
        delays = torch.full((n,), int(delay), dtype=torch.int64)
    tokens[torch.arange(n), length - 1 - delays] = labels
    return tokens, labels, delays
