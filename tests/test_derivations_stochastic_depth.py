"""Chapter 8, "Stochastic depth": what dropoutbook.derivations derives equals what the chapter states.

The closed forms typed in here are the chapter's stated formulas and some plausible wrong ones;
the library derives its expressions from the definitions (expectation over the block masks,
sympy.solve, sympy.summation). Every comparison goes through helpers.same, and each test also
shows that a plausible wrong formula is told apart.
"""

from __future__ import annotations

import pytest
import sympy as sp

from dropoutbook.derivations import (
    Bernoulli,
    block_index,
    expectation,
    linear_survival_schedule,
    n_blocks,
    residual_block_moments,
    sampled_depth,
    survival_last,
    variance,
)
from helpers import same

l, L, p_L = block_index, n_blocks, survival_last
STATED_SCHEDULE = 1 - (l / L) * (1 - p_L)


def test_linear_schedule_is_huang_et_al():
    derived = linear_survival_schedule()
    assert same(derived, STATED_SCHEDULE)
    assert not same(derived, 1 - (l / L) * p_L)  # the seed's drop rate read as 1 - survival
    assert not same(derived, (l / L) * p_L)
    assert derived.free_symbols == {l, L, p_L}


@pytest.mark.parametrize("convention, mean, var, test_time_coefficient", [
    ("original", "x + s*f", "s*(1 - s)*f**2", "s"),
    ("inverted", "x + f", "(1 - s)/s*f**2", "1"),
])
def test_residual_block_moments(convention, mean, var, test_time_coefficient):
    m = residual_block_moments(convention)
    x, f = sp.symbols("x f", real=True)
    s = m.survival
    ns = {"x": x, "f": f, "s": s}
    assert same(m.mean, sp.sympify(mean, locals=ns))
    assert same(m.variance, sp.sympify(var, locals=ns))
    assert same(m.test_time, x + sp.sympify(test_time_coefficient, locals=ns) * f)
    # a wrong convention is told apart: scaling by the drop probability 1 - s at test time
    assert not same(m.test_time, x + (1 - s) * f)
    assert [i.lhs_text for i in m.identities()] == ["E[y]", "Var[y]"]
    with pytest.raises(ValueError, match="convention must be"):
        residual_block_moments("standard")


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_sampled_depth_general_survival(n):
    d = sampled_depth(n)
    s = d.survival
    assert same(d.mean, sum(s))
    assert same(d.variance, sum(si * (1 - si) for si in s))
    if n > 1:  # a binomial with the average survival is told apart (for one block it is the same)
        assert not same(d.variance, sum(s) * (1 - sum(s) / n))
    z = d.pgf_variable
    assert same(d.pgf, sp.prod([1 - si + si * z for si in s]))
    assert len(d.pmf) == n + 1
    assert same(sum(d.pmf), 1)
    assert same(d.pmf[n], sp.prod(s)) and same(d.pmf[0], sp.prod([1 - si for si in s]))
    assert same(sum(k * pk for k, pk in enumerate(d.pmf)), d.mean)


def test_sampled_depth_linear_schedule_closed_forms():
    d = sampled_depth(3)
    stated_mean = L - (1 - p_L) * (L + 1) / 2
    stated_var = sp.summation(STATED_SCHEDULE * (1 - STATED_SCHEDULE), (l, 1, L))
    assert same(d.linear_mean, stated_mean)
    assert same(d.linear_variance, stated_var)
    assert same(d.linear_variance, (1 - p_L) * (L + 1) * ((1 + 2 * p_L) * L - (1 - p_L)) / (6 * L))
    assert same(d.skipped_fraction, (1 - p_L) * (L + 1) / (2 * L))
    assert not same(d.skipped_fraction, (1 - p_L) / 2)  # the large-L limit is not exact
    assert not same(d.linear_mean, L * (1 + p_L) / 2)
    # Huang et al.'s 110-layer ResNet: 54 blocks, p_L = 1/2 -> 40.25 blocks on average
    assert d.linear_mean.subs({L: 54, p_L: sp.Rational(1, 2)}) == sp.Rational(161, 4)
    # the closed forms for any L agree with the enumeration over all masks for L = 1..4
    for n in range(1, 5):
        e = sampled_depth(n)
        subs = {si: STATED_SCHEDULE.subs({l: k, L: n}) for k, si in enumerate(e.survival, start=1)}
        assert same(e.mean.subs(subs), d.linear_mean.subs(L, n))
        assert same(e.variance.subs(subs), d.linear_variance.subs(L, n))


def test_sampled_depth_identities_and_errors():
    d = sampled_depth(2)
    texts = [repr(i) for i in d.identities()]
    assert texts[1] == "Var[D] = s1*(1 - s1) + s2*(1 - s2)"
    assert [i.lhs_text for i in d.linear_identities()] == ["p_l", "E[D]", "Var[D]", "1 - E[D]/L"]
    for identity in d.linear_identities():
        assert "\\displaystyle" in identity._repr_latex_()
    for bad in (0, 11, 2.0, True):
        with pytest.raises(TypeError if isinstance(bad, (bool, float)) else ValueError,
                           match=r"L must be an int in \[1, 10\]"):
            sampled_depth(bad)


def test_one_block_moments_by_the_machinery():
    # the per-block terms summed in sampled_depth are the Bernoulli moments of the machinery
    b = sp.Symbol("b")
    assert same(expectation(b, {b: Bernoulli(STATED_SCHEDULE)}), STATED_SCHEDULE)
    assert same(variance(b, {b: Bernoulli(STATED_SCHEDULE)}), STATED_SCHEDULE * (1 - STATED_SCHEDULE))
