r"""Monte-Carlo estimates with standard errors, and "exact vs simulated" comparisons.

A Monte-Carlo estimate is only as good as its standard error. This module returns both, and
:func:`~dropoutbook.z_score` says how many standard errors an estimate lies from an exact value. The book's
tests accept an estimate when :math:`|z| \le 5` with a fixed seed: a correct sampler then fails
with probability below :math:`10^{-6}`, and the sample sizes are chosen so that a plausible wrong
formula lands many standard errors away.

See chapter 1, "Inverted dropout", section "Check".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import check_int, check_real

__all__ = ["Estimate", "estimate_mean", "estimate_variance", "z_score", "agrees"]


@dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo estimate (chapter 1, section "Check").

    Attributes:
        value: the estimate, a finite real number.
        stderr: its standard error, a finite number >= 0.
        n: the number of samples it was computed from, a positive int.

    The fields are checked (and stored as ``float``, ``float``, ``int``) on construction, so that
    :func:`z_score` never works on a malformed estimate.
    """

    value: float
    stderr: float
    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_real(self.value, "value"))
        object.__setattr__(self, "stderr", check_real(self.stderr, "stderr", minimum=0))
        object.__setattr__(self, "n", check_int(self.n, "n", minimum=1))

    def __str__(self) -> str:
        return f"{self.value:#.4g} ± {self.stderr:.2g}"


def _as_float64_array(samples, name: str = "samples") -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        if samples.is_complex():
            raise TypeError(f"{name} must be real numbers, got a tensor of dtype {samples.dtype}")
        samples = samples.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(samples)
    if arr.dtype == object or np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric (a tensor, array or sequence of numbers), got dtype {arr.dtype}")
    arr = arr.astype(np.float64).ravel()
    if arr.size < 2:
        raise ValueError(f"{name} must hold at least 2 values to estimate a standard error, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def estimate_mean(samples) -> Estimate:
    r"""Sample mean with standard error :math:`s/\sqrt n` (``s`` the sample standard deviation).

    Used by every "closed form against Monte Carlo" check of the book (chapter 1, section "Check").

    Args:
        samples: independent draws, as a tensor, array or sequence (flattened).

    Examples:
        >>> estimate_mean([1.0, 2.0, 3.0, 4.0]).value
        2.5
    """
    arr = _as_float64_array(samples)
    return Estimate(float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(arr.size)), int(arr.size))


def estimate_variance(samples) -> Estimate:
    r"""Unbiased sample variance :math:`s^2` with its standard error (chapter 1, section "Check").

    The standard error comes from the exact variance of the sample variance,
    :math:`\operatorname{Var}[s^2] = \frac{1}{n}\left(\mu_4 - \frac{n-3}{n-1}\sigma^4\right)`,
    with the fourth central moment :math:`\mu_4` and :math:`\sigma^4` replaced by their sample
    values. Unlike the first-order (delta-method) error :math:`\sqrt{(\mu_4 - \sigma^4)/n}`, it
    stays positive for two-point distributions such as a dropped unit with :math:`p = 0.5`, where
    :math:`\mu_4 = \sigma^4`.
    """
    arr = _as_float64_array(samples)
    n = arr.size
    dev = arr - arr.mean()
    m2 = float((dev**2).mean())  # plug-in (biased) moments, as the formula expects
    mu4 = float((dev**4).mean())
    s2 = m2 * n / (n - 1)
    var_s2 = max((mu4 - (n - 3) / (n - 1) * m2**2) / n, 0.0)
    return Estimate(s2, math.sqrt(var_s2), int(n))


def z_score(estimate: Estimate, exact: float) -> float:
    r"""How many standard errors ``estimate`` lies from ``exact``: :math:`(\hat\theta - \theta)/\operatorname{se}`.

    See chapter 1, section "Check".

    A zero standard error gives 0 when the values are equal and an infinite score otherwise.
    """
    if not isinstance(estimate, Estimate):
        raise TypeError(f"estimate must be an Estimate, got {type(estimate).__name__}")
    exact = check_real(exact, "exact", finite=False)
    diff = estimate.value - exact
    if estimate.stderr == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / estimate.stderr


def agrees(estimate: Estimate, exact: float, *, z: float = 5.0) -> bool:
    """True when ``estimate`` lies within ``z`` standard errors of ``exact`` (``z`` at least 5 in the book's tests).

    See chapter 1, section "Check".
    """
    z = check_real(z, "z", positive=True)
    return abs(z_score(estimate, exact)) <= z
