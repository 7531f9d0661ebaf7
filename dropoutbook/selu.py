r"""Chapter 6, section "AlphaDropout": dropout for self-normalizing (SELU) networks.

Inverted dropout keeps a unit's mean and raises its variance, which a network of SELU units
:cite:`klambauer2017self` cannot absorb: their mean and variance are held near 0 and 1 by the
activation itself, with no normalization layer. AlphaDropout drops a unit to SELU's negative
saturation value :math:`\alpha' = -\lambda\alpha` and applies an affine correction so that a
standardized input keeps mean 0 and variance 1 (:func:`alpha_dropout`, :class:`AlphaDropout`,
:func:`alpha_dropout_affine`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import check_alpha_dropout_rate, check_bool, check_float_tensor, check_generator
from .masks import _keep_mask

__all__ = ["alpha_dropout_affine", "alpha_dropout", "AlphaDropout"]  # the constants: dropoutbook.selu.SELU_*

#: SELU's :math:`\alpha` :cite:`klambauer2017self` (the value ``torch.nn.SELU`` uses).
SELU_ALPHA = 1.6732632423543772848170429916717
#: SELU's scale :math:`\lambda` :cite:`klambauer2017self` (the value ``torch.nn.SELU`` uses).
SELU_SCALE = 1.0507009873554804934193349852946
#: :math:`\alpha' = -\lambda\alpha`, the limit of :math:`\operatorname{selu}(z)` as :math:`z \to -\infty`.
SELU_SATURATION = -SELU_SCALE * SELU_ALPHA


def alpha_dropout_affine(p: float) -> tuple[float, float]:
    r"""The affine correction :math:`(a, b)` of AlphaDropout with drop probability ``p`` (chapter 6).

    With :math:`q = 1 - p` and :math:`\alpha' = -\lambda\alpha` (:data:`~dropoutbook.selu.SELU_SATURATION`),

    .. math:: a = \bigl(q + \alpha'^2 q (1 - q)\bigr)^{-1/2}, \qquad b = -a (1 - q)\alpha',

    derived by :func:`dropoutbook.derivations.alpha_dropout_affine` from the condition that
    :math:`a(m x + \alpha'(1-m)) + b` has mean 0 and variance 1 when :math:`x` has;
    :cite:`klambauer2017self`.

    Args:
        p: drop probability in :math:`[0, 1)`. At :math:`p = 1` every unit takes the same value and no
            affine map gives variance 1, so ``p = 1`` raises ``ValueError``
            (``torch.nn.functional.alpha_dropout`` returns zeros there instead).

    Returns:
        ``(a, b)`` as floats; ``(1.0, 0.0)`` at ``p = 0``.

    Examples:
        >>> a, b = alpha_dropout_affine(0.1)
        >>> round(a, 4), round(b, 4)
        (0.9213, 0.162)
    """
    q = 1.0 - check_alpha_dropout_rate(p)
    a = 1.0 / math.sqrt(q + SELU_SATURATION**2 * q * (1.0 - q))
    return a, -a * (1.0 - q) * SELU_SATURATION


def alpha_dropout(x: torch.Tensor, p: float, *, training: bool = True,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    r"""AlphaDropout :cite:`klambauer2017self`: drop to SELU's saturation value, then correct mean and variance.

    .. math:: y_i = a\bigl(m_i x_i + \alpha'(1 - m_i)\bigr) + b, \qquad m_i \sim \mathrm{Bernoulli}(1-p),

    with :math:`\alpha' = -\lambda\alpha \approx -1.758` and :math:`a, b` from
    :func:`alpha_dropout_affine`. A kept unit becomes :math:`a x_i + b`, a dropped one the constant
    :math:`a\alpha' + b = a(1-p)\alpha'`. If :math:`x_i` has mean 0 and variance 1, so has
    :math:`y_i`; other inputs keep neither (chapter 6, "AlphaDropout"). The distribution is that of
    ``torch.nn.functional.alpha_dropout``; the random stream is not. In evaluation mode or at
    ``p = 0`` it is the identity (a new tensor). The gradient with respect to ``x`` is :math:`a m_i`.

    Args:
        x: floating-point tensor of any shape; it is never modified. Each entry gets its own mask.
        p: drop probability in :math:`[0, 1)`; ``p = 1`` raises ``ValueError``, where
            ``torch.nn.functional.alpha_dropout`` returns zeros (variance 0, not 1).
        training: a bool: apply AlphaDropout if ``True``, the identity otherwise.
        generator: optional ``torch.Generator`` for a reproducible mask.

    Shape:
        Output has the shape, dtype and device of ``x``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = alpha_dropout(torch.zeros(10_000), 0.2, generator=g)
        >>> sorted({round(v, 4) for v in y.tolist()})  # dropped: a*q*alpha'; kept: b
        [-1.2362, 0.309]
    """
    check_float_tensor(x)
    p = check_alpha_dropout_rate(p)
    training = check_bool(training, "training")
    check_generator(generator)
    if not training or p == 0.0:
        return x.clone()
    a, b = alpha_dropout_affine(p)
    keep = _keep_mask(x, p, 1.0, generator)  # 1 with probability 1 - p, in the dtype of x
    dropped_value = a * (1.0 - p) * SELU_SATURATION
    return x * (keep * a) + (keep * (b - dropped_value) + dropped_value)


class AlphaDropout(nn.Module):
    r"""Module form of :func:`alpha_dropout`; behaves like ``torch.nn.AlphaDropout`` (chapter 6, "AlphaDropout").

    Args:
        p: drop probability in :math:`[0, 1)`. Default: 0.5. Unlike ``torch.nn.AlphaDropout``, which
            outputs zeros at ``p = 1``, ``p = 1`` raises ``ValueError`` (no affine map gives variance 1).
        generator: optional ``torch.Generator`` used for every mask this module samples.

    Shape:
        Input: any shape. Output: same shape as input.

    Examples:
        >>> layer = AlphaDropout(0.1).eval()
        >>> torch.equal(layer(torch.ones(3)), torch.ones(3))
        True
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = check_alpha_dropout_rate(p)
        self.generator = check_generator(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return alpha_dropout(x, self.p, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
