r"""Chapter 4, "Dropout as an ensemble of subnetworks": derivations.

Three results, each computed from its definition:

* :func:`linear_subnetwork_average`: the average of a linear model over all :math:`2^N`
  subnetworks, by summing over every mask, equals the weight-scaled model.
* :func:`ambiguity_terms` (a given :math:`T`) and :func:`ambiguity_constant` (symbolic :math:`T`):
  the ensemble's gain :math:`E_{\mathrm{ind}} - E_{\mathrm{ens}}` divided by the diversity
  :math:`D`, for several definitions of :math:`D`; the constant :math:`\frac{T-1}{2T}` belongs to
  one of them only.
* :func:`softmax_geometric_mean`: for one dropout layer feeding a softmax output layer, the
  normalized weighted geometric mean of the subnetworks' class distributions is the softmax of
  the weight-scaled network (Hinton et al.), summed over every mask of a small case.
* :func:`path_survival`: the probability that one input-output path survives, the expected
  number of active paths, and the probability that any path survives, as expectations over the
  masks of a small fully connected network.
"""

from __future__ import annotations

import functools
import itertools
from types import MappingProxyType
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from .._validation import check_bool, check_int

from ._core import Bernoulli, Identity, drop_rate, expectation, tidy

__all__ = [
    "LinearSubnetworkAverage", "linear_subnetwork_average",
    "AmbiguityTerms", "ambiguity_terms", "DIVERSITY_DEFINITIONS", "ambiguity_constant",
    "PathSurvival", "path_survival", "SoftmaxGeometricMean", "softmax_geometric_mean",
]

#: The input drop probability :math:`p_{\mathrm{in}}` (used when the inputs are dropped too).
input_drop_rate = sp.Symbol("p_in", positive=True)


# ---------------------------------------------------------------------------------------------
# the average over all subnetworks of a linear model


@dataclass(frozen=True)
class LinearSubnetworkAverage:
    r"""Averages of the linear model :math:`\hat y_m = \sum_i w_i m_i x_i` over its :math:`2^N` masks."""

    n: int
    w: tuple
    x: tuple
    masks: tuple
    subnetwork: sp.Expr  #: the output of the subnetwork with mask ``masks``
    average: sp.Expr  #: :math:`\sum_m P(m)\,\hat y_m`, keep probability :math:`1-p`
    uniform_average: sp.Expr  #: :math:`2^{-N} \sum_m \hat y_m`
    weight_scaled: sp.Expr  #: the full network with every weight multiplied by :math:`1-p`
    inverted_average: sp.Expr  #: :math:`\sum_m P(m)\, \hat y_m / (1-p)` (inverted dropout)

    def identities(self) -> list[Identity]:
        p = drop_rate
        return [
            Identity(r"\sum_{m} P(m)\, \hat y_m", tidy(self.average, p), "sum_m P(m) y_m"),
            Identity(r"2^{-N} \sum_{m} \hat y_m", self.uniform_average, "2^-N sum_m y_m"),
            Identity(r"\sum_{m} P(m)\, \frac{\hat y_m}{1-p}", self.inverted_average, "sum_m P(m) y_m/(1-p)"),
        ]


def linear_subnetwork_average(n: int) -> LinearSubnetworkAverage:
    r"""Average the linear model over all :math:`2^N` subnetworks, by summing over every mask.

    The subnetwork with mask :math:`m \in \{0,1\}^N` outputs :math:`\hat y_m = \sum_i w_i m_i x_i`.
    Its average under the dropout distribution, :math:`\sum_m \prod_i (1-p)^{m_i} p^{1-m_i} \hat y_m`,
    is computed as that sum, one term per mask (the definition of
    :func:`~dropoutbook.derivations.expectation` with ``method="enumerate"``); the uniform average :math:`2^{-N}\sum_m \hat y_m`
    by summing the :math:`2^N` outputs. The first comes out as :math:`(1-p)\,w^\top x`, the
    weight-scaled network, and the second as :math:`\frac12 w^\top x` (the case :math:`p = 1/2`)
    :cite:`srivastava2014dropout`. Chapter 4, "Dropout as an ensemble of subnetworks".

    Args:
        n: number of inputs :math:`N`, an int in [1, 10].

    Examples:
        >>> linear_subnetwork_average(2).uniform_average
        w1*x1/2 + w2*x2/2
    """
    return _linear_subnetwork_average(check_int(n, "n", minimum=1, maximum=10))


@functools.lru_cache(maxsize=None)
def _linear_subnetwork_average(n: int) -> LinearSubnetworkAverage:
    p = drop_rate
    w = sp.symbols(f"w1:{n + 1}", real=True)
    x = sp.symbols(f"x1:{n + 1}", real=True)
    m = sp.symbols(f"m1:{n + 1}")
    y_m = sum(wi * mi * xi for wi, mi, xi in zip(w, m, x))
    # the definition of the average: one term per mask, weighted by its probability
    masks = list(itertools.product((0, 1), repeat=n))
    outputs = [y_m.subs(dict(zip(m, bits))) for bits in masks]
    weights = [sp.Mul(*[(1 - p) if b else p for b in bits]) for bits in masks]
    average = sp.factor(sp.expand(sp.Add(*[wt * out for wt, out in zip(weights, outputs)])))
    uniform = sp.expand(sp.Add(*outputs) / 2**n)
    weight_scaled = sum(((1 - p) * wi) * xi for wi, xi in zip(w, x))
    inverted = sp.expand(sp.cancel(average / (1 - p)))
    return LinearSubnetworkAverage(n, w, x, m, y_m, average, uniform, sp.expand(weight_scaled), inverted)


# ---------------------------------------------------------------------------------------------
# the ambiguity decomposition

#: The definitions of the diversity :math:`D` that :func:`~dropoutbook.derivations.ambiguity_terms` compares.
DIVERSITY_DEFINITIONS = {
    "mean over pairs i != j": "mean of (f_i - f_j)^2 over the T(T-1) pairs i != j",
    "mean over pairs i < j": "mean of (f_i - f_j)^2 over the T(T-1)/2 pairs i < j",
    "mean over all pairs": "mean of (f_i - f_j)^2 over all T^2 pairs, i = j too",
    "sum over pairs i < j": "sum (not mean) of (f_i - f_j)^2 over the pairs i < j",
}


@dataclass(frozen=True)
class AmbiguityTerms:
    r"""Errors and diversities of :math:`T` scalar predictions :math:`f_1, \dots, f_T` of a target :math:`y`."""

    T: int
    predictions: tuple
    target: sp.Symbol
    individual_error: sp.Expr  #: :math:`\frac1T \sum_i (f_i - y)^2`
    ensemble_error: sp.Expr  #: :math:`(\bar f - y)^2`
    gain: sp.Expr  #: :math:`E_{\mathrm{ind}} - E_{\mathrm{ens}}`, simplified
    ambiguity: sp.Expr  #: :math:`\frac1T \sum_i (f_i - \bar f)^2`
    diversity: Mapping  #: definition name -> :math:`D` under that definition
    constant: Mapping  #: definition name -> :math:`(E_{\mathrm{ind}} - E_{\mathrm{ens}}) / D`, simplified

    def identities(self) -> list[Identity]:
        return [Identity(rf"\frac{{E_{{\mathrm{{ind}}}} - E_{{\mathrm{{ens}}}}}}{{D}}\ \text{{({name})}}",
                         c, f"(E_ind - E_ens)/D ({name})") for name, c in self.constant.items()]


def ambiguity_terms(T: int) -> AmbiguityTerms:
    r"""Derive :math:`E_{\mathrm{ind}} - E_{\mathrm{ens}}` and its ratio to :math:`D` for :math:`T` members.

    With scalar predictions :math:`f_1, \dots, f_T` (a vector prediction is a sum of such terms,
    one per coordinate), :math:`\bar f = \frac1T\sum_i f_i` and target :math:`y`, it builds
    :math:`E_{\mathrm{ind}} = \frac1T\sum_i (f_i-y)^2`, :math:`E_{\mathrm{ens}} = (\bar f - y)^2`,
    the ambiguity :math:`\frac1T\sum_i (f_i-\bar f)^2` :cite:`krogh1995neural` and the diversity
    :math:`D` under each definition of
    :data:`~dropoutbook.derivations.ensembles.DIVERSITY_DEFINITIONS`, and lets sympy simplify
    :math:`(E_{\mathrm{ind}} - E_{\mathrm{ens}})/D`. Only for :math:`D` = the mean over pairs
    :math:`i \ne j` (ordered or not) is the ratio :math:`\frac{T-1}{2T}`. Chapter 4, "Dropout as
    an ensemble of subnetworks".

    Args:
        T: number of members, an int in [2, 12].

    Examples:
        >>> ambiguity_terms(3).constant["mean over pairs i != j"]
        1/3
    """
    T = check_int(T, "T", minimum=2, maximum=12)
    return _ambiguity_terms(int(T))


@functools.lru_cache(maxsize=None)
def _ambiguity_terms(T: int) -> AmbiguityTerms:
    f = sp.symbols(f"f1:{T + 1}", real=True)
    y = sp.Symbol("y", real=True)
    mean = sp.Add(*f) / T
    individual = sp.Add(*[(fi - y) ** 2 for fi in f]) / T
    ensemble = (mean - y) ** 2
    gain = sp.expand(individual - ensemble)
    ambiguity = sp.expand(sp.Add(*[(fi - mean) ** 2 for fi in f]) / T)
    ordered = [(i, j) for i in range(T) for j in range(T) if i != j]
    unordered = [(i, j) for i in range(T) for j in range(i + 1, T)]
    every = [(i, j) for i in range(T) for j in range(T)]

    def squared_differences(pairs):
        return sp.Add(*[(f[i] - f[j]) ** 2 for i, j in pairs])

    diversity = {
        "mean over pairs i != j": squared_differences(ordered) / len(ordered),
        "mean over pairs i < j": squared_differences(unordered) / len(unordered),
        "mean over all pairs": squared_differences(every) / len(every),
        "sum over pairs i < j": squared_differences(unordered),
    }
    diversity = {k: sp.expand(v) for k, v in diversity.items()}
    constant = {k: sp.simplify(sp.cancel(gain / d)) for k, d in diversity.items()}
    return AmbiguityTerms(T, f, y, sp.expand(individual), sp.expand(ensemble), gain, ambiguity,
                          MappingProxyType(diversity), MappingProxyType(constant))


def _power_sums(expr: sp.Expr, f: sp.IndexedBase, count: sp.Symbol, sums: dict) -> sp.Expr:
    r"""Rewrite sums over independent indices :math:`1..T` in terms of power sums.

    Each ``Sum`` of a monomial is a product of factors, one per summation index; with independent
    ranges the sum of a product is the product of the sums, :math:`\sum_{i,j} a_i b_j =
    (\sum_i a_i)(\sum_j b_j)`, an index with no factor contributes :math:`T`, and
    :math:`\sum_i f_i^k` is replaced by the symbol ``sums[k]``.
    """
    def reduce(s: sp.Sum) -> sp.Expr:
        indices = [lim[0] for lim in s.limits]
        for lim in s.limits:
            if lim[1] != 1 or lim[2] != count:
                raise ValueError("only sums over 1..T are reduced")
        total = sp.Integer(0)
        for term in sp.Add.make_args(sp.expand(s.function)):
            coeff, per_index = sp.Integer(1), {i: 0 for i in indices}
            for factor in sp.Mul.make_args(term):
                base, exp = factor.as_base_exp()
                if isinstance(base, sp.Indexed) and base.base == f and base.indices[0] in per_index:
                    per_index[base.indices[0]] += exp
                elif factor.free_symbols & set(indices):
                    raise ValueError(f"cannot reduce the factor {factor}")
                else:
                    coeff *= factor
            for k in per_index.values():
                coeff *= count if k == 0 else sums[k]
            total += coeff
        return total

    return sp.expand(sp.expand(expr).replace(lambda e: isinstance(e, sp.Sum), reduce))


def ambiguity_constant() -> sp.Expr:
    r"""Derive :math:`(E_{\mathrm{ind}} - E_{\mathrm{ens}})/D` for a symbolic number of members :math:`T`.

    :math:`E_{\mathrm{ind}}`, :math:`E_{\mathrm{ens}}` and :math:`D` (the mean of
    :math:`(f_i - f_j)^2` over the :math:`T(T-1)` ordered pairs :math:`i \ne j`; the pairs
    :math:`i = j` add zero to the sum over all pairs) are written as sympy ``Sum`` objects over
    :math:`1..T`, expanded, and reduced to the power sums :math:`S_1 = \sum_i f_i` and
    :math:`S_2 = \sum_i f_i^2`; the ratio then simplifies to a function of :math:`T` alone,
    :math:`\frac{T-1}{2T}` :cite:`krogh1995neural`. Chapter 4, "Dropout as an ensemble of subnetworks".

    Examples:
        >>> ambiguity_constant()
        (T - 1)/(2*T)
    """
    T = sp.Symbol("T", integer=True, positive=True)
    i, j = sp.symbols("i j", integer=True, positive=True)
    f = sp.IndexedBase("f", real=True)
    y = sp.Symbol("y", real=True)
    sums = {1: sp.Symbol("S1", real=True), 2: sp.Symbol("S2", real=True)}
    individual = sp.Sum((f[i] - y) ** 2, (i, 1, T)) / T
    ensemble = (sp.Sum(f[i], (i, 1, T)) / T - y) ** 2
    all_pairs = sp.Sum((f[i] - f[j]) ** 2, (i, 1, T), (j, 1, T))
    gain = _power_sums(individual - ensemble, f, T, sums)
    diversity = _power_sums(all_pairs, f, T, sums) / (T * (T - 1))
    return sp.factor(sp.simplify(gain / diversity))


# ---------------------------------------------------------------------------------------------
# paths


@dataclass(frozen=True)
class PathSurvival:
    r"""Path statistics of a fully connected network with widths :math:`(d, n_1, \dots, n_L, k)`."""

    widths: tuple
    input_dropout: bool
    survival: sp.Expr  #: P(one given input-output path is active)
    total_paths: int  #: :math:`d \, n_1 \cdots n_L \, k`
    expected_active_paths: sp.Expr  #: :math:`\mathbb E[\text{number of active paths}]`
    any_path: sp.Expr  #: P(at least one input-output path is active)

    def identities(self) -> list[Identity]:
        return [
            Identity(r"P(\text{path active})", self.survival, "P(path active)"),
            Identity(r"\mathbb{E}[\#\text{active paths}]", self.expected_active_paths, "E[#active paths]"),
            Identity(r"P(\text{some path active})", self.any_path, "P(some path active)"),
        ]


def path_survival(widths: Sequence[int], *, input_dropout: bool = False) -> PathSurvival:
    r"""Derive path statistics of a small fully connected network from its masks.

    The network has ``widths`` :math:`(d, n_1, \dots, n_L, k)`: :math:`d` inputs, :math:`L` hidden
    layers and :math:`k` outputs. Every hidden unit has its own mask
    :math:`m_{l,i} \sim \mathrm{Bernoulli}(1-p)`; with ``input_dropout`` the inputs have masks of
    keep probability :math:`1 - p_{\mathrm{in}}`; outputs are never dropped. A path (one unit per
    layer) is active when the product of its masks is 1, so the number of active paths is
    :math:`d\,k \prod_l \sum_i m_{l,i}` (inputs counted through their masks when dropped). Computed
    by :func:`~dropoutbook.derivations.expectation`:

    * ``survival``: the expectation of the product of the masks on one path, :math:`(1-p)^L`
      (times :math:`1-p_{\mathrm{in}}` with input dropout);
    * ``expected_active_paths``: the expectation of the count;
    * ``any_path``: the expectation of :math:`\prod_l \bigl(1 - \prod_i (1 - m_{l,i})\bigr)`,
      the indicator that every dropped layer keeps at least one unit.

    Chapter 4, "Dropout as an ensemble of subnetworks"; the path view is from :cite:`srivastava2014dropout`.

    Args:
        widths: a sequence of at least two positive ints, at most 12 droppable units in total.
        input_dropout: drop the inputs too, with rate :math:`p_{\mathrm{in}}`.

    Examples:
        >>> path_survival((2, 2, 2, 1)).survival
        (1 - p)**2
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) < 2:
        raise ValueError(f"widths must be a sequence of at least two positive ints, got {widths!r}")
    widths = tuple(check_int(w, "every width", minimum=1, maximum=10**6) for w in widths)
    return _path_survival(widths, check_bool(input_dropout, "input_dropout"))


@functools.lru_cache(maxsize=None)
def _path_survival(widths: tuple, input_dropout: bool) -> PathSurvival:
    p, p_in = drop_rate, input_drop_rate
    dropped_layers = list(range(1, len(widths) - 1)) + ([0] if input_dropout else [])
    n_symbols = sum(widths[l] for l in dropped_layers)
    if n_symbols > 12:
        raise ValueError(f"widths has {n_symbols} droppable units; at most 12 keep the derivation fast")
    masks = {l: sp.symbols(f"m{l}_1:{widths[l] + 1}") for l in sorted(dropped_layers)}
    dists = {}
    for l, symbols in masks.items():
        keep = 1 - (p_in if l == 0 else p)
        dists.update({s: Bernoulli(keep) for s in symbols})
    one_path = sp.Mul(*[symbols[0] for symbols in masks.values()])
    count = sp.Integer(1)
    for l, width in enumerate(widths):
        count *= sp.Add(*masks[l]) if l in masks else width
    any_path = sp.Mul(*[1 - sp.Mul(*[1 - s for s in symbols]) for symbols in masks.values()])
    total = 1
    for width in widths:
        total *= width
    return PathSurvival(
        widths, input_dropout,
        survival=tidy(expectation(one_path, dists, method="enumerate"), p, p_in),
        total_paths=total,
        expected_active_paths=tidy(expectation(count, dists, method="moments"), p, p_in),
        any_path=tidy(expectation(any_path, dists, method="moments"), p, p_in),
    )


# ---------------------------------------------------------------------------------------------
# the softmax output layer: the weight-scaled network is the normalized geometric mean


@dataclass(frozen=True)
class SoftmaxGeometricMean:
    r"""The geometric-mean identity for a softmax output layer, derived by :func:`softmax_geometric_mean`."""

    n: int  #: number of dropped units :math:`N`
    k: int  #: number of classes :math:`K`
    h: tuple  #: the dropped activations :math:`h_1, \dots, h_N`
    W: sp.Matrix  #: the output weights, :math:`K \times N`
    b: tuple  #: the output biases
    masks: tuple  #: the mask symbols
    logits: tuple  #: :math:`z_k(m) = \sum_i W_{ki} m_i h_i / (1-p) + b_k`, inverted dropout
    full_logits: tuple  #: :math:`z_k` of the weight-scaled (evaluation-mode) network
    log_geometric_mean: tuple  #: :math:`G_k = \sum_m P(m) \log \operatorname{softmax}_k(z(m))`, summed over every mask
    differences: tuple  #: :math:`(G_k - G_1) - (z_k - z_1)` for every class :math:`k`, simplified


def softmax_geometric_mean(n: int = 2, k: int = 3) -> SoftmaxGeometricMean:
    r"""Derive that the softmax of the weight-scaled network is the normalized weighted geometric mean of the subnetworks.

    One dropout layer (inverted, rate :math:`p`) on :math:`N` activations :math:`h_i` feeds a
    linear layer with :math:`K` outputs and a softmax. The subnetwork with mask :math:`m` has
    class distribution :math:`\pi(m) = \operatorname{softmax}(z(m))`. The normalized weighted
    geometric mean (NWGM) is

    .. math:: \mathrm{NWGM}_k = \frac{\prod_m \pi_k(m)^{P(m)}}{\sum_j \prod_m \pi_j(m)^{P(m)}},
              \qquad \log \mathrm{NWGM}_k - \log \mathrm{NWGM}_j = G_k - G_j,
              \quad G_k = \sum_m P(m) \log \pi_k(m).

    This function writes :math:`G_k` as the sum over all :math:`2^N` masks
    (:func:`~dropoutbook.derivations.expectation`, ``method="enumerate"``) with symbolic weights,
    biases, activations and :math:`p`, and simplifies :math:`(G_k - G_1) - (z_k - z_1)`, with
    :math:`z` the logits of the weight-scaled network. Every difference is 0: the log-sum-exp
    term of :math:`\log\pi_k(m)` is the same for all classes and cancels, and what remains is
    linear in the mask. So :math:`\mathrm{NWGM} = \operatorname{softmax}(z)` exactly, for every
    :math:`p` :cite:`hinton2012improving`, whereas the arithmetic mean of the :math:`\pi(m)` is
    not. Chapter 4, "Dropout as an ensemble of subnetworks", section "Derivation".

    Args:
        n: number of dropped units :math:`N`, an int in [1, 4].
        k: number of classes :math:`K`, an int in [2, 4].

    Examples:
        >>> softmax_geometric_mean(1, 2).differences
        (0, 0)
    """
    return _softmax_geometric_mean(check_int(n, "n", minimum=1, maximum=4), check_int(k, "k", minimum=2, maximum=4))


@functools.lru_cache(maxsize=None)
def _softmax_geometric_mean(n: int, k: int) -> SoftmaxGeometricMean:
    p = drop_rate
    keep = 1 - p
    h = sp.symbols(f"h1:{n + 1}", real=True)
    W = sp.Matrix(k, n, lambda row, col: sp.Symbol(f"w{row + 1}{col + 1}", real=True))
    b = sp.symbols(f"b1:{k + 1}", real=True)
    m = sp.symbols(f"m1:{n + 1}")
    logits = tuple(sum(W[c, i] * m[i] * h[i] / keep for i in range(n)) + b[c] for c in range(k))
    full = tuple(sum(W[c, i] * h[i] for i in range(n)) + b[c] for c in range(k))
    log_norm = sp.log(sum(sp.exp(z) for z in logits))
    dists = {mi: Bernoulli(keep) for mi in m}
    # log softmax_k(z(m)) = z_k(m) - log sum_j exp z_j(m), averaged over every mask
    G = tuple(expectation(z - log_norm, dists, method="enumerate") for z in logits)
    differences = tuple(sp.simplify((G[c] - G[0]) - (full[c] - full[0])) for c in range(k))
    return SoftmaxGeometricMean(n, k, h, W, b, m, logits, full, G, differences)
