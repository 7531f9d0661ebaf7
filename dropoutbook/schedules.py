r"""Chapter 14, "Dropout in modern training": a schedule of the dropout rate over training steps.

Liu et al. :cite:`liu2023dropout` turn dropout on for the first part of training only (*early
dropout*), which they report to lower the final training loss of models that underfit, or on for
the last part only (*late dropout*), for models that overfit. :class:`DropoutSchedule` sets the
rate of every dropout module of a model, step by step, to one of four schedules.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from ._validation import (check_choice, check_int, check_module, check_module_rate, check_module_types,
                          check_probability)
from .concrete import ConcreteDropout
from .uncertainty import dropout_modules

__all__ = ["DropoutSchedule"]

_KINDS = ("constant", "early", "late", "linear")

# Library modules that hold a rate but are not dropout modules in the sense of dropout_modules
# (their rate is not a per-unit mask rate, or a schedule of their own owns it). A model containing
# one is refused unless its class is passed in dropout_types (then its p is scheduled too) or in
# ignore_types (then it is left alone): a schedule must not silently miss a rate.
_LIBRARY_RATED = (("stochastic_depth", "StochasticDepth"), ("dropblock", "DropBlock2d"),
                  ("recurrent", "DropConnectLinear"), ("recurrent", "WeightDrop"),
                  ("recurrent", "RecurrentDropout"), ("layerdrop", "LayerDrop"))


def _library_rated_types() -> tuple[type, ...]:
    found = []
    for module, name in _LIBRARY_RATED:
        cls = getattr(importlib.import_module(f"{__package__}.{module}"), name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def _unsettable(module: nn.Module) -> str | None:
    """Why a module that drops something cannot be scheduled through a ``p`` attribute, or None."""
    # refused whatever their current rate: at 0 they would silently stay at 0 while the schedule raises the rest
    if isinstance(module, nn.MultiheadAttention):
        return f"applies its attention dropout functionally from its attribute 'dropout' (now {module.dropout})"
    if isinstance(module, nn.RNNBase) and module.num_layers > 1:
        return (f"applies dropout between its layers inside its fused kernel (attribute 'dropout', now "
                f"{module.dropout})")
    return None


class DropoutSchedule:
    r"""Set the drop rate of every dropout module of a model, step by step: constant, early, late or linear.

    With peak rate :math:`p`, switch step :math:`s` and step :math:`t = 0, 1, \dots, T`
    (``total_steps`` :math:`= T`), the rate at step :math:`t` is

    .. math::
        r_{\text{constant}}(t) = p, \qquad
        r_{\text{early}}(t) = p\,[t < s], \qquad
        r_{\text{late}}(t) = p\,[t \ge s], \qquad
        r_{\text{linear}}(t) = p \max\left(0, 1 - \frac{t}{s}\right).

    *Early dropout* (dropout during the first :math:`s` steps, then none) is Liu et al.'s
    remedy for underfitting :cite:`liu2023dropout`; ``"linear"`` is their linearly decreasing
    variant of it (from :math:`p` at step 0 to 0 at step :math:`s`); *late dropout* (none during
    the first :math:`s` steps) their variant for overfitting models. See chapter 14, "Dropout in
    modern training", section "Early and late dropout".

    Like a learning-rate scheduler, the object is created before training and sets the rates
    of step 0 at once; call :meth:`step` after every optimizer step, so that the mini-batch of
    step :math:`t` is trained with the rate :math:`r(t)`. :meth:`step` past ``total_steps`` raises
    an error (nothing is clamped).

    Which modules: those that :func:`~dropoutbook.dropout_modules` finds (``torch.nn``'s dropout
    classes, :class:`~dropoutbook.InvertedDropout`, :class:`~dropoutbook.DropPath`,
    :class:`~dropoutbook.GaussianDropout`, nested at any depth, and the classes in
    ``dropout_types``); the schedule sets their attribute ``p`` and nothing else: no mode
    (``train``/``eval``), no parameter, buffer or other attribute is touched. A model that holds
    a rate the schedule cannot set is refused with an error rather than half scheduled:
    ``torch.nn.MultiheadAttention`` (also inside ``torch.nn.TransformerEncoderLayer``) or a
    multi-layer ``torch.nn`` RNN, whatever their current ``dropout`` (their rate is not a module's
    ``p``, and one left at 0 would stay at 0 while the schedule raises the others), and the library's modules with a rate of another kind
    (:class:`~dropoutbook.StochasticDepth`, :class:`~dropoutbook.DropBlock2d`,
    :class:`~dropoutbook.LayerDrop`, the recurrent ones of chapter 11) unless their class is
    listed in ``dropout_types`` (schedule it) or ``ignore_types`` (leave it alone).
    :meth:`restore` sets every scheduled module back to the rate it had on construction.

    Args:
        model: the ``torch.nn.Module`` whose dropout rates are scheduled.
        p: the peak drop rate, in [0, 1] (in [0, 1) when a :class:`~dropoutbook.GaussianDropout`
            is scheduled).
        kind: ``"constant"``, ``"early"``, ``"late"`` or ``"linear"``.
        total_steps: number of training steps :math:`T`, a positive int.
        switch_step: :math:`s`, an int in [0, T]; required for ``"early"`` and ``"late"``; for
            ``"linear"`` it defaults to :math:`T`; must be ``None`` for ``"constant"``.
        dropout_types: extra module classes whose ``p`` is to be scheduled.
        ignore_types: module classes to leave alone.

    Attributes:
        modules: the scheduled modules, in the order of ``model.modules()``.
        step_count: the current step :math:`t`.

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 2))
        >>> schedule = DropoutSchedule(model, p=0.1, kind="early", total_steps=10, switch_step=3)
        >>> [schedule.rate_at(t) for t in range(5)]
        [0.1, 0.1, 0.1, 0.0, 0.0]
        >>> model[1].p, schedule.step(), schedule.step(), schedule.step(), model[1].p
        (0.1, 0.1, 0.1, 0.0, 0.0)
    """

    def __init__(self, model: torch.nn.Module, p: float, *, kind: str = "early", total_steps: int,
                 switch_step: int | None = None, dropout_types=None, ignore_types=None) -> None:
        check_module(model)
        self.p = check_probability(p)
        self.kind = check_choice(kind, "kind", _KINDS)
        self.total_steps = check_int(total_steps, "total_steps", minimum=1)
        if self.kind == "constant":
            if switch_step is not None:
                raise ValueError(f"switch_step must be None for kind='constant', got {switch_step!r}")
        elif switch_step is None and self.kind == "linear":
            switch_step = self.total_steps
        elif switch_step is None:
            raise ValueError(f"switch_step must be an int in [0, total_steps] for kind={self.kind!r}, got None")
        self.switch_step = None if switch_step is None else check_int(
            switch_step, "switch_step", minimum=0, maximum=self.total_steps)
        extra = check_module_types(dropout_types, "dropout_types")
        ignore = check_module_types(ignore_types, "ignore_types")
        modules = [m for m in dropout_modules(model, dropout_types=extra) if not isinstance(m, ignore)]
        chosen = {id(m) for m in modules}
        rated = _library_rated_types()
        for name, m in model.named_modules():
            if id(m) in chosen or isinstance(m, ignore):
                continue
            why = _unsettable(m) or (f"holds a rate of another kind than a dropout mask's"
                                     if isinstance(m, rated) else None)
            if why:
                raise TypeError(
                    f"model contains {type(m).__name__} (at {name or 'the top'!r}), which {why}; DropoutSchedule "
                    f"cannot set its rate: pass its class in ignore_types to leave it alone"
                    + ("" if _unsettable(m) else ", or in dropout_types to schedule its attribute p"))
        if not modules:
            raise ValueError("model has no dropout module whose rate DropoutSchedule could set")
        for m in modules:
            if isinstance(m, ConcreteDropout):
                where = next(n for n, sub in model.named_modules() if sub is m) or "the top"
                raise TypeError(
                    f"model contains {type(m).__name__} (at {where!r}), whose rate is learned (sigmoid of its "
                    "parameter p_logit, trained with the model): DropoutSchedule cannot set it; pass "
                    "ignore_types=(db.ConcreteDropout,) to leave it alone")
            check_module_rate(m, "DropoutSchedule sets a module's rate through its attribute p")
            if getattr(m, "schedule", None) is not None:
                raise TypeError(f"{type(m).__name__} follows a schedule of its own (attribute 'schedule'); "
                                f"DropoutSchedule cannot set its rate")
            if self.p >= 1.0 and _needs_open(m):
                check_probability(self.p, "p", allow_one=False)
        self.modules: tuple[nn.Module, ...] = tuple(modules)
        self._initial = tuple(m.p for m in modules)
        self.step_count = 0
        self._apply(self.rate_at(0))

    def rate_at(self, step: int) -> float:
        """The drop rate :math:`r(t)` of step ``step``, an int in [0, total_steps]."""
        t = check_int(step, "step", minimum=0, maximum=self.total_steps)
        p, s = self.p, self.switch_step
        if self.kind == "constant":
            return p
        if self.kind == "early":
            return p if t < s else 0.0
        if self.kind == "late":
            return 0.0 if t < s else p
        return p * max(0.0, 1.0 - t / s) if s > 0 else 0.0

    @property
    def rate(self) -> float:
        """The rate of the current step."""
        return self.rate_at(self.step_count)

    def step(self) -> float:
        """Advance to the next step, set its rate in every scheduled module, and return it."""
        if self.step_count >= self.total_steps:
            raise ValueError(f"step() was called more than total_steps = {self.total_steps} times")
        self.step_count += 1
        rate = self.rate_at(self.step_count)
        self._apply(rate)
        return rate

    def restore(self) -> None:
        """Set every scheduled module back to the rate it had when the schedule was created."""
        for m, rate in zip(self.modules, self._initial):
            m.p = rate

    def _apply(self, rate: float) -> None:
        for m in self.modules:
            m.p = rate

    def __repr__(self) -> str:
        return (f"DropoutSchedule(kind={self.kind!r}, p={self.p}, total_steps={self.total_steps}, "
                f"switch_step={self.switch_step}, step_count={self.step_count}, modules={len(self.modules)})")


def _needs_open(module: nn.Module) -> bool:
    """Gaussian dropout's variance p/(1-p) is infinite at p = 1."""
    cls = getattr(importlib.import_module(f"{__package__}.variational"), "GaussianDropout", None)
    return isinstance(cls, type) and isinstance(module, cls)
