r"""Chapter 2, "Dropout as implicit L2 regularization".

Inverted dropout on the inputs of a linear model, :math:`\tilde x_{ij} = m_{ij} x_{ij}/(1-p)` with
:math:`m_{ij} \sim \mathrm{Bernoulli}(1-p)`, leaves the prediction unbiased and adds variance. Averaged
over the masks, the loss becomes the plain loss plus a data-dependent L2 penalty. This module computes
that penalty, the minimiser of the expected loss (a ridge regression with one penalty per feature),
and, for logistic regression, the quadratic approximation of the penalty of :cite:`wager2013dropout`
together with its exact value.

Conventions: ``X`` has shape ``(n, d)`` (one example per row), ``w`` shape ``(d,)``, ``y`` shape
``(n,)``; ``p`` is the drop probability, in :math:`[0, 1)`. The data may be torch tensors or NumPy
arrays of one floating dtype; the result is a NumPy value when every data argument is a NumPy
array, a tensor otherwise. The squared loss of the book is
:math:`L(w) = \frac{1}{2n}\sum_i (y_i - w^\top x_i)^2`; the logistic loss follows
:cite:`wager2013dropout` and is the *sum* of the negative log-likelihoods.
"""

from __future__ import annotations

import itertools

import torch

from ._validation import as_float_tensor, check_probability, check_same_dtype, like_input

__all__ = [
    "dropout_penalty", "dropout_ridge_solution", "logistic_dropout_penalty",
    "exact_logistic_dropout_penalty",
]

_MAX_ENUMERATED_FEATURES = 16


def _check_design(X, name: str = "X") -> tuple[torch.Tensor, bool]:
    """The design matrix as a tensor, and whether it was given as a NumPy array."""
    X, was_numpy = as_float_tensor(X, name)
    if X.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor of shape (n, d), got shape {tuple(X.shape)}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {tuple(X.shape)}")
    if not torch.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return X, was_numpy


def _check_vector(v, length: int, name: str, what: str, X: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A weight or target vector as a tensor, and whether it was given as a NumPy array."""
    v, was_numpy = as_float_tensor(v, name)
    if v.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), {what}, got shape {tuple(v.shape)}")
    check_same_dtype("X", X, **{name: v})
    if not torch.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return v, was_numpy


def _check_drop_rate(p) -> float:
    return check_probability(p, "p", allow_one=False)


def dropout_penalty(w: torch.Tensor, X: torch.Tensor, p: float) -> torch.Tensor:
    r"""The penalty that inverted input dropout adds to the expected squared loss of a linear model.

    .. math::

        \mathbb E_m\Big[\tfrac{1}{2n}\textstyle\sum_i (y_i - w^\top \tilde x_i)^2\Big]
        = \tfrac{1}{2n}\sum_i (y_i - w^\top x_i)^2
        + \underbrace{\frac{p}{2n(1-p)} \sum_{i=1}^n \sum_{j=1}^d w_j^2 x_{ij}^2}_{\text{this function}}

    with :math:`\tilde x_{ij} = m_{ij} x_{ij}/(1-p)`, :math:`m_{ij} \sim \mathrm{Bernoulli}(1-p)`.
    The penalty does not depend on ``y``. With the loss :math:`\frac1n\sum_i(\cdot)^2` instead of
    :math:`\frac1{2n}\sum_i(\cdot)^2` it doubles; the minimiser is the same.

    See chapter 2, "Dropout as implicit L2 regularization"; :cite:`srivastava2014dropout`,
    :cite:`wager2013dropout`.

    Args:
        w: weights, floating tensor (or NumPy array) of shape ``(d,)``, same dtype and device as ``X``.
        X: inputs, floating tensor (or NumPy array) of shape ``(n, d)``.
        p: drop probability in :math:`[0, 1)`.

    Returns:
        A 0-dim tensor of the dtype and device of ``X`` (a NumPy scalar for NumPy ``w`` and ``X``).

    Examples:
        >>> X = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
        >>> dropout_penalty(torch.tensor([1.0, -1.0]), X, 0.5)  # (1+4+9+0)/(2*2)
        tensor(3.5000)
    """
    X, numpy_X = _check_design(X)
    w, numpy_w = _check_vector(w, X.shape[1], "w", "one weight per column of X", X)
    p = _check_drop_rate(p)
    as_given = numpy_X and numpy_w
    n = X.shape[0]
    return like_input((p / (2 * n * (1 - p))) * ((X * w) ** 2).sum(), as_given)


def dropout_ridge_solution(X: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    r"""Minimiser of the expected squared loss under inverted input dropout: a ridge regression with one penalty per feature.

    .. math::

        w^\star = \Big(X^\top X + \frac{p}{1-p}\,\operatorname{diag}(X^\top X)\Big)^{-1} X^\top y .

    Equivalently, ridge regression with penalty :math:`\lambda_j = \frac{p}{1-p}\sum_i x_{ij}^2` on
    :math:`w_j`: the penalty follows the scale of each feature, so rescaling column :math:`j` by
    :math:`c` rescales :math:`w^\star_j` by :math:`1/c` and leaves the predictions unchanged
    (plain ridge, :math:`(X^\top X + \lambda I)^{-1}X^\top y`, does not have this property). The
    normalisation of the loss does not matter: both the data term and the penalty carry it.
    With ``p = 0`` it is least squares.

    See chapter 2, "Dropout as implicit L2 regularization"; :cite:`srivastava2014dropout`.

    Args:
        X: inputs, floating tensor (or NumPy array) of shape ``(n, d)``.
        y: targets, floating tensor (or NumPy array) of shape ``(n,)``, same dtype and device as ``X``.
        p: drop probability in :math:`[0, 1)`.

    Returns:
        Tensor of shape ``(d,)``, dtype and device of ``X`` (a NumPy array for NumPy ``X`` and
        ``y``). float16 and bfloat16 systems, which ``torch.linalg`` cannot solve, are solved in
        float32 and the solution returned in the dtype of ``X``.

    Raises:
        ValueError: if the matrix is singular (a column of ``X`` is zero, or ``p = 0`` with
            linearly dependent columns).

    Examples:
        >>> X = torch.tensor([[1.0], [2.0]]); y = torch.tensor([1.0, 2.0])
        >>> dropout_ridge_solution(X, y, 0.5)  # one feature: (1 - p) times least squares
        tensor([0.5000])
    """
    X, numpy_X = _check_design(X)
    y, numpy_y = _check_vector(y, X.shape[0], "y", "one target per row of X", X)
    p = _check_drop_rate(p)
    # torch.linalg has no float16/bfloat16 kernels: solve those in float32, return in X's dtype
    work = X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float32
    Xw, yw = X.to(work), y.to(work)
    gram = Xw.T @ Xw
    matrix = gram + (p / (1 - p)) * torch.diag(torch.diagonal(gram))
    try:
        return like_input(torch.linalg.solve(matrix, Xw.T @ yw).to(X.dtype), numpy_X and numpy_y)
    except torch.linalg.LinAlgError as exc:
        raise ValueError(
            "X^T X + p/(1-p) diag(X^T X) is singular: X has a column of zeros, or p = 0 and the columns "
            "of X are linearly dependent"
        ) from exc


def logistic_dropout_penalty(w: torch.Tensor, X: torch.Tensor, p: float) -> torch.Tensor:
    r"""Quadratic approximation of the dropout penalty of logistic regression (:cite:`wager2013dropout`).

    .. math::

        R^{q}(w) = \frac{p}{2(1-p)} \sum_{j=1}^d w_j^2 \sum_{i=1}^n \pi_i (1 - \pi_i)\, x_{ij}^2,
        \qquad \pi_i = \sigma(w^\top x_i),

    the second-order Taylor approximation of the exact penalty
    :math:`\sum_i \big(\mathbb E_m[A(w^\top \tilde x_i)] - A(w^\top x_i)\big)`, :math:`A(z) = \log(1 + e^z)`
    (see :func:`exact_logistic_dropout_penalty`). The loss is the *sum* over examples of the negative
    log-likelihood, as in :cite:`wager2013dropout`; divide by :math:`n` for the mean. The factor
    :math:`\pi_i(1-\pi_i)` is the curvature :math:`A''`: examples the model is sure about contribute
    little. The approximation is accurate for small ``p`` and small margins and degrades as either
    grows (chapter 2, section "Check").

    See chapter 2, "Dropout as implicit L2 regularization".

    Args:
        w: weights, floating tensor (or NumPy array) of shape ``(d,)``, same dtype and device as ``X``.
        X: inputs, floating tensor (or NumPy array) of shape ``(n, d)``.
        p: drop probability in :math:`[0, 1)`.

    Returns:
        A 0-dim tensor of the dtype and device of ``X`` (a NumPy scalar for NumPy ``w`` and ``X``).

    Examples:
        >>> X = torch.tensor([[1.0, 2.0]])
        >>> logistic_dropout_penalty(torch.zeros(2), X, 0.5)  # w = 0: no penalty
        tensor(0.)
    """
    X, numpy_X = _check_design(X)
    w, numpy_w = _check_vector(w, X.shape[1], "w", "one weight per column of X", X)
    p = _check_drop_rate(p)
    as_given = numpy_X and numpy_w
    prob = torch.sigmoid(X @ w)
    curvature = prob * (1 - prob)
    return like_input((p / (2 * (1 - p))) * (w**2 * (curvature[:, None] * X**2).sum(0)).sum(), as_given)


def exact_logistic_dropout_penalty(w: torch.Tensor, X: torch.Tensor, p: float) -> torch.Tensor:
    r"""The exact expected dropout penalty of logistic regression, by enumerating all :math:`2^d` masks.

    .. math::

        R(w) = \sum_{i=1}^n \Big(\mathbb E_m\big[A(w^\top \tilde x_i)\big] - A(w^\top x_i)\Big),
        \qquad A(z) = \log(1 + e^z), \quad \tilde x_{ij} = \frac{m_{ij} x_{ij}}{1-p},

    where the expectation is the sum over every mask :math:`m \in \{0,1\}^d` weighted by
    :math:`(1-p)^{|m|} p^{d - |m|}`. The labels drop out: the logistic loss is :math:`A(z) - yz`,
    and :math:`\mathbb E[\tilde z] = z`. By Jensen's inequality (:math:`A` is convex) the result is
    non-negative. :func:`logistic_dropout_penalty` is its quadratic approximation
    :cite:`wager2013dropout`.

    See chapter 2, "Dropout as implicit L2 regularization", section "Check".

    Args:
        w: weights, floating tensor (or NumPy array) of shape ``(d,)`` with ``d <= 16``, same dtype
            and device as ``X``.
        X: inputs, floating tensor (or NumPy array) of shape ``(n, d)``.
        p: drop probability in :math:`[0, 1)`.

    Returns:
        A 0-dim tensor of the dtype and device of ``X`` (a NumPy scalar for NumPy ``w`` and ``X``).

    Examples:
        >>> X = torch.tensor([[1.0]]); w = torch.tensor([2.0])
        >>> # one feature, p = 0.5: z~ is 0 or 4 with equal probability, and z = 2
        >>> exact_logistic_dropout_penalty(w, X, 0.5)
        tensor(0.2287)
    """
    X, numpy_X = _check_design(X)
    w, numpy_w = _check_vector(w, X.shape[1], "w", "one weight per column of X", X)
    p = _check_drop_rate(p)
    as_given = numpy_X and numpy_w
    d = X.shape[1]
    if d > _MAX_ENUMERATED_FEATURES:
        raise ValueError(
            f"exact_logistic_dropout_penalty enumerates 2**d masks; d = {d} is above the limit of "
            f"{_MAX_ENUMERATED_FEATURES} (estimate it by Monte Carlo instead)"
        )
    plain = torch.nn.functional.softplus(X @ w).sum()
    if p == 0.0:
        return like_input(plain - plain, as_given)
    masks = torch.tensor(list(itertools.product((0.0, 1.0), repeat=d)), dtype=X.dtype, device=X.device)
    kept = masks.sum(1)
    probs = (1 - p) ** kept * p ** (d - kept)
    expected = X.new_zeros(())
    for start in range(0, masks.shape[0], 4096):  # bounded memory: n x 4096 logits at a time
        block = masks[start:start + 4096]
        logits = X @ (block * w / (1 - p)).T  # (n, masks)
        expected = expected + (torch.nn.functional.softplus(logits).sum(0) * probs[start:start + 4096]).sum()
    return like_input(expected - plain, as_given)
