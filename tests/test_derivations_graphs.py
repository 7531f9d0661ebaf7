"""Chapter 12, "Dropout on graphs": what dropoutbook.derivations derives equals what the chapter states.

The closed forms typed in here are the chapter's stated formulas and some plausible wrong ones; the
library derives its expressions from the definitions (a binomial sum by sympy.summation, and the
expectation over all 2**d edge masks). Every comparison goes through helpers.same, and each test
also shows that a plausible wrong formula is told apart.
"""

from __future__ import annotations

import pytest
import sympy as sp

from dropoutbook.derivations import dropedge_self_weight, drop_rate, node_degree, self_weight_by_enumeration
from helpers import same

p, d = drop_rate, node_degree
W = dropedge_self_weight()
STATED = (1 - p ** (d + 1)) / ((d + 1) * (1 - p))


def test_self_weight_is_the_stated_closed_form():
    assert same(W.mean, STATED)
    assert W.mean.free_symbols == {p, d}
    assert not same(W.mean, 1 / (1 + d))  # the full graph's weight
    assert not same(W.mean, 1 / (1 + (1 - p) * d))  # the plug-in at the mean degree
    assert not same(W.mean, (1 - p**d) / ((d + 1) * (1 - p)))  # an off-by-one in the exponent
    assert not same(W.mean, (1 - p ** (d + 1)) / (d * (1 - p)))  # d instead of d + 1


@pytest.mark.parametrize("degree", [1, 2, 3, 5])
def test_binomial_sum_agrees_with_the_enumeration_over_all_edge_masks(degree):
    self_weight, neighbour = self_weight_by_enumeration(degree)
    assert same(self_weight, W.mean.subs(d, degree))
    assert same(neighbour, W.neighbour_mean.subs(d, degree))
    assert not same(self_weight, W.plug_in.subs(d, degree))
    # the rows of the random-walk propagation sum to one: self weight + d neighbour weights
    assert same(self_weight + degree * neighbour, 1)


def test_inflation_factor_and_its_limit():
    assert same(W.ratio, (1 - p ** (d + 1)) / (1 - p))
    for degree in (1, 2, 5):  # the geometric sum 1 + p + ... + p^d
        assert same(W.ratio.subs(d, degree), sum(p**j for j in range(degree + 1)))
    assert same(W.ratio_limit, 1 / (1 - p))
    assert not same(W.ratio_limit, 1)  # not unbiased, even for large degrees
    assert W.ratio.subs({d: 2, p: sp.Rational(1, 2)}) == sp.Rational(7, 4)


def test_self_weight_lies_between_the_plug_in_and_one():
    # Jensen: E[1/(1+K)] >= 1/(1+E K), with equality only for p = 0; and it exceeds 1/(1+d)
    for degree in (1, 3, 17):
        for value in (sp.Rational(1, 10), sp.Rational(1, 2), sp.Rational(9, 10)):
            subs = {d: degree, p: value}
            mean = W.mean.subs(subs)
            assert W.plug_in.subs(subs) < mean < 1
            assert W.undropped.subs(subs) < mean
    assert sp.limit(W.mean.subs(d, 4), p, 0) == sp.Rational(1, 5)


def test_neighbour_weight_and_degree_moments():
    assert same(W.neighbour_mean, (1 - STATED) / d)
    assert not same(W.neighbour_mean, (1 - p) / (1 + (1 - p) * d))
    assert same(W.degree_mean, (1 - p) * d)
    assert same(W.degree_variance, p * (1 - p) * d)
    assert not same(W.degree_variance, (1 - p) * d)


def test_identities_and_errors():
    texts = [repr(i) for i in W.identities()]
    assert texts[0] == "E[1/(1+K)] = (1 - p**(d + 1))/((1 - p)*(d + 1))"
    assert texts[2] == "lim (1+d) E[1/(1+K)] = 1/(1 - p)"
    assert all("\\displaystyle" in i._repr_latex_() for i in W.identities())
    assert dropedge_self_weight() is W  # cached
    for bad, error in ((0, ValueError), (11, ValueError), (2.0, TypeError), (True, TypeError), ("3", TypeError)):
        with pytest.raises(error, match=r"^d must be an int from 1 to 10"):
            self_weight_by_enumeration(bad)
