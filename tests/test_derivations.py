"""Symbolic layer: what dropoutbook.derivations computes equals what the book states.

The closed forms typed in this file are the *stated* formulas of the book (and some plausible
wrong ones); the library must *derive* the same expressions from the definitions. Every
comparison goes through ``same``, and test_same_rejects_wrong_closed_forms shows that ``same``
rejects the plausible wrong formulas, so the comparisons can fail.
"""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from dropoutbook import derivations as d
from helpers import same
from dropoutbook.derivations import (
    Bernoulli,
    Identity,
    ZeroMeanNoise,
    dropout_unit_moments,
    expectation,
    naive_predictor_decomposition,
    tidy,
    variance,
)

p, h = d.drop_rate, d.activation
q, q1, q2, q3 = sp.symbols("q q1 q2 q3", positive=True)
m, m1, m2, m3 = sp.symbols("m m1 m2 m3")
x, y = sp.symbols("x y", real=True)
e, s2 = sp.Symbol("e", real=True), sp.Symbol("s2", positive=True)


# --------------------------------------------------------------------------------------------
# stated closed forms (the book's boxed formulas)

STATED_UNIT = {
    "inverted": {"mean": h, "variance": p / (1 - p) * h**2},
    "standard": {"mean": (1 - p) * h, "variance": p * (1 - p) * h**2},
}


def stated_naive(dec):
    wx = sum(wi * xi for wi, xi in zip(dec.w, dec.x))
    sum_sq = sum((wi * xi) ** 2 for wi, xi in zip(dec.w, dec.x))
    return {
        "squared_bias": p**2 * wx**2,
        "variance": p * (1 - p) * sum_sq,
        "noise": dec.noise_variance,
        "wx": wx,
        "sum_sq": sum_sq,
    }


# --------------------------------------------------------------------------------------------
# expectation: Bernoulli moments


@pytest.mark.parametrize("k", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("method", ["moments", "enumerate", "auto"])
def test_bernoulli_power_has_expectation_q(k, method):
    assert same(expectation(m**k, {m: Bernoulli(q)}, method=method), q)


def test_bernoulli_moment_method():
    b = Bernoulli(q)
    assert b.moment(0) == 1
    assert all(b.moment(k) == q for k in (1, 2, 5))
    assert Bernoulli(sp.Rational(1, 3)).moment(2) == sp.Rational(1, 3)


@pytest.mark.parametrize("method", ["moments", "enumerate", "auto"])
def test_known_bernoulli_expectations(method):
    dists = {m1: Bernoulli(q1), m2: Bernoulli(q2)}
    assert same(expectation(sp.Integer(5), dists, method=method), 5)
    assert same(expectation(m1 * m2, dists, method=method), q1 * q2)
    assert same(expectation((m1 + m2) ** 2, dists, method=method), q1 + q2 + 2 * q1 * q2)
    assert same(expectation(x * m1 - y * m2**3 + 2, dists, method=method), x * q1 - y * q2 + 2)
    # Var[m] = q(1 - q), derived
    assert same(variance(m1, dists, method=method), q1 * (1 - q1))
    # and the comparisons are sharp: E[(m1 + m2)²] is not E[m1 + m2]²
    assert not same(expectation((m1 + m2) ** 2, dists, method=method), (q1 + q2) ** 2)


def test_expectation_docstring_example():
    assert expectation(m**3 + 2, {m: Bernoulli(q)}) == q + 2


def test_numeric_keep_probability():
    assert expectation(m1 * m2 + m1, {m1: Bernoulli(sp.Rational(1, 4)), m2: Bernoulli(sp.Rational(1, 2))}) == sp.Rational(3, 8)


# random polynomials in three Bernoulli symbols, compared across the two routes

monomials = st.tuples(
    st.integers(-3, 3),          # coefficient
    st.integers(0, 2),           # power of the fixed symbol x
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),  # powers of m1, m2, m3
)
polynomials = st.lists(monomials, min_size=1, max_size=4)
keeps = st.sampled_from([q1, 1 - p, sp.Rational(1, 3), sp.Rational(3, 4)])


def build(terms):
    return sum((c * x**a * m1**k1 * m2**k2 * m3**k3 for c, a, k1, k2, k3 in terms), sp.Integer(0))


@settings(max_examples=30)
@given(first=polynomials, second=st.one_of(st.none(), polynomials), k1=keeps, k2=keeps, k3=keeps)
def test_moments_and_enumeration_agree_on_random_polynomials(first, second, k1, k2, k3):
    expr = build(first) * (build(second) if second is not None else 1)
    dists = {m1: Bernoulli(k1), m2: Bernoulli(k2), m3: Bernoulli(k3 if k3 != q1 else q3)}
    by_moments = expectation(expr, dists, method="moments")
    by_enumeration = expectation(expr, dists, method="enumerate")
    assert same(by_moments, by_enumeration), f"E[{expr}]: moments {by_moments} != enumerate {by_enumeration}"
    assert same(expectation(expr, dists), by_moments)  # auto picks the polynomial route


@settings(max_examples=15)
@given(terms=polynomials)
def test_moments_and_enumeration_agree_with_values_substituted(terms):
    # The same check at numeric keep probabilities, where simplification cannot hide anything.
    expr = build(terms)
    dists = {m1: Bernoulli(sp.Rational(1, 5)), m2: Bernoulli(sp.Rational(2, 3)), m3: Bernoulli(sp.Rational(1, 2))}
    a = expectation(expr, dists, method="moments")
    b = expectation(expr, dists, method="enumerate")
    assert sp.expand(a - b) == 0


# --------------------------------------------------------------------------------------------
# ZeroMeanNoise


def test_zero_mean_noise_moments():
    n = ZeroMeanNoise(s2)
    assert n.moment(0) == 1
    assert n.moment(1) == 0
    assert n.moment(2) == s2


@pytest.mark.parametrize("k", [3, 4, 6])
def test_zero_mean_noise_rejects_higher_moments(k):
    with pytest.raises(ValueError, match=rf"up to order 2; the expression needs order {k}"):
        ZeroMeanNoise(s2).moment(k)
    with pytest.raises(ValueError, match=rf"needs order {k}"):
        expectation(e**k + e, {e: ZeroMeanNoise(s2)}, method="moments")


@pytest.mark.parametrize("method", ["moments", "auto"])
def test_expectation_with_noise(method):
    dists = {e: ZeroMeanNoise(s2), m: Bernoulli(q)}
    assert same(expectation(e, dists, method=method), 0)
    assert same(expectation(e**2, dists, method=method), s2)
    assert same(expectation(3 + 2 * e + x * e**2, dists, method=method), 3 + s2 * x)
    assert same(expectation((m * x + e) ** 2, dists, method=method), q * x**2 + s2)
    assert same(variance(m * x + e, dists, method=method), q * (1 - q) * x**2 + s2)


def test_noise_above_order_two_is_reported_as_such_by_auto():
    """e**3 is a polynomial, so method='auto' uses the moments route (its docstring: enumeration
    only for non-polynomial expressions) and must report the real problem, the missing third
    moment -- not an error about method='enumerate', which the caller never asked for."""
    with pytest.raises(ValueError, match=r"ZeroMeanNoise knows moments up to order 2; the expression needs order 3"):
        expectation(e**3, {e: ZeroMeanNoise(s2)})
    with pytest.raises(ValueError, match=r"needs order 3"):
        expectation(m * e**3, {e: ZeroMeanNoise(s2), m: Bernoulli(q)}, method="auto")


def test_enumeration_rejects_noise():
    with pytest.raises(ValueError, match=r"needs Bernoulli symbols only; e is ZeroMeanNoise"):
        expectation(e * m, {e: ZeroMeanNoise(s2), m: Bernoulli(q)}, method="enumerate")


# --------------------------------------------------------------------------------------------
# enumeration limit and non-polynomial expressions


def test_enumeration_limit_of_20_symbols():
    ms = sp.symbols("b1:22")  # 21 symbols
    dists = {s: Bernoulli(q) for s in ms}
    with pytest.raises(ValueError, match=r"n = 21 is above the limit of 20"):
        expectation(sum(ms), dists, method="enumerate")
    # the moments route has no such limit
    assert same(expectation(sum(ms), dists, method="moments"), 21 * q)
    assert same(expectation(sum(ms), dists), 21 * q)


@pytest.mark.parametrize("expr, stated", [
    (sp.Max(m * x, 0), q * sp.Max(x, 0)),
    (sp.exp(m), 1 - q + q * sp.E),
    (1 / (1 + m), 1 - q / 2),
    (sp.Abs(x * m - y), (1 - q) * sp.Abs(y) + q * sp.Abs(x - y)),
])
def test_non_polynomial_expressions(expr, stated):
    dists = {m: Bernoulli(q)}
    assert same(expectation(expr, dists, method="enumerate"), stated)
    assert same(expectation(expr, dists, method="auto"), stated)
    with pytest.raises(ValueError, match=r"method='moments' needs an expression that is a polynomial"):
        expectation(expr, dists, method="moments")


def test_relu_of_inverted_dropout_unit():
    # E[max(0, m h/(1-p))] = max(0, h): the Jensen gap of ReLU vanishes for one unit.
    # sympy only knows p > 0 (not p < 1), so compare at values of p in (0, 1) and h of both signs.
    unit = sp.Max(0, m * h / (1 - p))
    result = expectation(unit, {m: Bernoulli(1 - p)})
    for pv in (sp.Rational(1, 10), sp.Rational(1, 2), sp.Rational(9, 10)):
        for hv in (sp.Rational(-3, 2), sp.Integer(0), sp.Rational(7, 3)):
            assert result.subs({p: pv, h: hv}) == max(0, hv)
    assert result.subs({p: sp.Rational(1, 2), h: 1}) != sp.Rational(1, 2)  # not the standard-dropout value


@pytest.mark.parametrize("method", ["poly", "", None, "Moments"])
def test_bad_method(method):
    with pytest.raises(ValueError if isinstance(method, str) else TypeError, match=r"^method must be 'auto', 'moments' or 'enumerate'"):
        expectation(m, {m: Bernoulli(q)}, method=method)


@pytest.mark.parametrize("dists, match", [
    ({}, r"^distributions must be a non-empty mapping"),
    ([(m, Bernoulli(q))], r"^distributions must be a non-empty mapping"),
    (None, r"^distributions must be a non-empty mapping"),
    ({"m": Bernoulli(q)}, r"^distributions keys must be sympy Symbols"),
    ({m: 0.5}, r"^distribution of m must be Bernoulli or ZeroMeanNoise, got float"),
])
def test_bad_distributions(dists, match):
    with pytest.raises(TypeError, match=match):
        expectation(m, dists)


# --------------------------------------------------------------------------------------------
# dropout_unit_moments


@pytest.mark.parametrize("convention", ["inverted", "standard"])
def test_dropout_unit_moments_equal_stated_closed_forms(convention):
    mom = dropout_unit_moments(convention)
    assert mom.convention == convention
    assert same(mom.mean, STATED_UNIT[convention]["mean"])
    assert same(mom.variance, STATED_UNIT[convention]["variance"])


def test_dropout_unit_default_is_inverted_and_mean_is_exactly_h():
    mom = dropout_unit_moments()
    assert mom.convention == "inverted"
    assert mom.mean == h


@pytest.mark.parametrize("convention", ["inverted", "standard"])
def test_dropout_unit_moments_follow_from_the_definition_by_both_routes(convention):
    mom = dropout_unit_moments(convention)
    dists = {mom.mask: Bernoulli(1 - p)}
    scale = 1 / (1 - p) if convention == "inverted" else 1
    assert same(mom.definition, mom.mask * h * scale)
    for method in ("moments", "enumerate"):
        assert same(expectation(mom.definition, dists, method=method), mom.mean)
        assert same(variance(mom.definition, dists, method=method), mom.variance)


def test_dropout_unit_moments_bad_convention():
    with pytest.raises(ValueError, match=r"^convention must be 'inverted' or 'standard', got 'keep'"):
        dropout_unit_moments("keep")


def test_dropout_unit_identities():
    ids = dropout_unit_moments("inverted").identities()
    assert [repr(i) for i in ids] == ["E[h~] = h", "Var[h~] = h**2*p/(1 - p)"]
    assert ids[1]._repr_latex_() == r"$\displaystyle \operatorname{Var}[\tilde h] = \frac{h^{2} p}{1 - p}$"
    std = dropout_unit_moments("standard").identities()
    assert repr(std[1]) == "Var[h~] = h**2*p*(1 - p)"
    assert "(p - 1)" not in repr(std[0]) + repr(std[1])


# --------------------------------------------------------------------------------------------
# naive_predictor_decomposition


@pytest.fixture(scope="module", params=[1, 2, 3, 4])
def naive(request):
    return naive_predictor_decomposition(request.param)


def test_naive_predictor_shapes(naive):
    dec = naive
    assert len(dec.w) == len(dec.x) == len(dec.masks) == dec.d


def test_naive_predictor_squared_bias(naive):
    assert same(naive.squared_bias, stated_naive(naive)["squared_bias"])


def test_naive_predictor_variance(naive):
    assert same(naive.variance, stated_naive(naive)["variance"])


def test_naive_predictor_noise(naive):
    assert same(naive.noise, naive.noise_variance)


def test_naive_predictor_mean_is_one_minus_p_times_the_full_output(naive):
    p = d.drop_rate
    full = sum(wi * xi for wi, xi in zip(naive.w, naive.x))
    assert same(naive.prediction_mean, (1 - p) * full)
    assert not same(naive.prediction_mean, full)  # the comparison can fail: the naive predictor is biased


def test_naive_predictor_error_is_sum_of_three_terms(naive):
    stated = stated_naive(naive)
    assert same(naive.expected_squared_error, naive.squared_bias + naive.variance + naive.noise)
    assert same(naive.expected_squared_error, stated["squared_bias"] + stated["variance"] + stated["noise"])


def test_naive_predictor_identities_print_one_minus_p(naive):
    ids = naive.identities()
    assert [i.lhs_text for i in ids] == ["Bias^2", "Var[y^]", "Var[y]"]
    for identity, expr in zip(ids, (naive.squared_bias, naive.variance, naive.noise)):
        assert same(identity.rhs, expr)
    assert "(1 - p)" in repr(ids[1])
    assert "(p - 1)" not in repr(ids[1])


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3", None])
def test_naive_predictor_bad_d(bad):
    error = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    with pytest.raises(error, match=r"^d must be a positive int"):
        naive_predictor_decomposition(bad)


# --------------------------------------------------------------------------------------------
# the comparison can fail: plausible wrong closed forms are rejected


def _wrong_cases():
    inv, std = dropout_unit_moments("inverted"), dropout_unit_moments("standard")
    cases = [
        ("inverted Var without 1/(1-p)", inv.variance, p * (1 - p) * h**2),
        ("inverted Var with drop/keep swapped", inv.variance, (1 - p) / p * h**2),
        ("inverted Var = E[h~²]", inv.variance, h**2 / (1 - p)),
        ("inverted Var without cancellation", inv.variance, p * h**2 / (1 - p) ** 2),
        ("inverted mean (1-p)h", inv.mean, (1 - p) * h),
        ("standard mean h", std.mean, h),
        ("standard Var p/(1-p)h²", std.variance, p / (1 - p) * h**2),
        ("standard Var p h²", std.variance, p * h**2),
    ]
    for dim in (1, 2, 3):
        dec = naive_predictor_decomposition(dim)
        st_ = stated_naive(dec)
        cases += [
            (f"d={dim} bias (1-p)²(wᵀx)²", dec.squared_bias, (1 - p) ** 2 * st_["wx"] ** 2),
            (f"d={dim} bias p(wᵀx)²", dec.squared_bias, p * st_["wx"] ** 2),
            (f"d={dim} variance with inverted scaling", dec.variance, p / (1 - p) * st_["sum_sq"]),
            (f"d={dim} error without noise", dec.expected_squared_error, st_["squared_bias"] + st_["variance"]),
        ]
        if dim > 1:  # for d = 1, Σ(w_i x_i)² and (Σ w_i x_i)² coincide
            cases.append((f"d={dim} variance p(1-p)(wᵀx)²", dec.variance, p * (1 - p) * st_["wx"] ** 2))
    return cases


WRONG_CASES = _wrong_cases()


@pytest.mark.parametrize("name, derived, wrong", WRONG_CASES, ids=[c[0] for c in WRONG_CASES])
def test_same_rejects_wrong_closed_forms(name, derived, wrong):
    assert not same(derived, wrong), f"the comparison accepted the wrong closed form: {name}"


# --------------------------------------------------------------------------------------------
# tidy and Identity


TIDY_CASES = [
    p / (1 - p) * h**2,
    p * (1 - p) * h**2,
    -h**2 * p / (p - 1),
    h * (p - 1) ** 2,
    1 / (1 - p),
    h**2 / (1 - p) ** 2,
    p**2 * (1 - p) / (1 - p / 2),
    (1 - p) * (1 - q) * x,
    h * (p - 1),
]


@pytest.mark.parametrize("expr", TIDY_CASES)
def test_tidy_changes_only_the_printed_form(expr):
    t = tidy(expr, p, q)
    assert sp.simplify(t - expr) == 0
    assert "(p - 1)" not in str(t)
    assert "(q - 1)" not in str(t)
    assert "(1 - p)" in str(t)


@pytest.mark.parametrize("expr, printed", [
    (-h**2 * p / (p - 1), "h**2*p/(1 - p)"),
    (-h**2 * p * (p - 1), "h**2*p*(1 - p)"),
    (h * (p - 1) ** 2, "h*(1 - p)**2"),
    (-1 / (p - 1), "1/(1 - p)"),
    (h * (p - 1), "-h*(1 - p)"),
])
def test_tidy_printed_form(expr, printed):
    assert str(tidy(expr, p)) == printed


def test_tidy_only_flips_the_named_probabilities():
    expr = h * (q - 1) * (p - 1)
    t = tidy(expr, p)
    assert sp.simplify(t - expr) == 0
    assert "(1 - p)" in str(t)
    assert "(q - 1)" in str(t)


@settings(max_examples=25)
@given(a=st.integers(-2, 2), b=st.integers(0, 2), c=st.integers(0, 2), sign=st.sampled_from([1, -1]))
def test_tidy_preserves_value_of_random_products(a, b, c, sign):
    expr = sign * (p - 1) ** a * p**b * h**c
    t = tidy(expr, p)
    assert sp.simplify(t - expr) == 0
    if a != 0 and (b or c or a != 1):  # a bare ±(p - 1) cannot print as a product with (1 - p)
        assert "(p - 1)" not in str(t)


def test_identity_repr_and_latex():
    ident = Identity(r"\operatorname{Var}[\tilde h]", p * h**2 / (1 - p), "Var[h~]")
    assert repr(ident) == "Var[h~] = h**2*p/(1 - p)"
    assert ident._repr_latex_() == r"$\displaystyle \operatorname{Var}[\tilde h] = \frac{h^{2} p}{1 - p}$"
    plain = Identity("y", x**2)
    assert repr(plain) == "y = x**2"
    assert plain._repr_latex_() == r"$\displaystyle y = x^{2}$"


def test_variance_helper_matches_definition():
    dists = {m1: Bernoulli(q1), m2: Bernoulli(q2)}
    expr = x * m1 + y * m2
    assert same(variance(expr, dists), q1 * (1 - q1) * x**2 + q2 * (1 - q2) * y**2)
    assert not same(variance(expr, dists), q1 * (1 - q1) * x**2)
