"""Checkers of chapter 12, "Dropout on graphs": the reference passes, differently written correct
answers pass, the blank starter fails with "not written yet", and typical wrong answers fail with
their specific hint."""

from __future__ import annotations

import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook import derivations
from dropoutbook.exercises import (
    SELF_WEIGHT_EXERCISE,
    check_drop_edge,
    check_drop_node,
    check_self_weight_derivation,
    check_self_weight_prediction,
)
from helpers import assert_fails, assert_passes, starter

# --------------------------------------------------------------------------------------------
# exercise 1: DropNode


def ref_drop_node(x, p, training=True):
    if not training or p == 0:
        return x.clone()
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1)) >= p
    return x * keep / (1 - p)


def drop_node_with_where(x, p, training=True):  # correct, written differently
    if not training:
        return x.clone()
    keep = torch.rand(x.shape[0]) < 1 - p
    view = keep.view(-1, *([1] * (x.dim() - 1))).expand_as(x)
    return torch.where(view, x / (1 - p), torch.zeros_like(x))


def elementwise(x, p, training=True):
    return x * (torch.rand_like(x) >= p) / (1 - p) if training else x.clone()


def feature_mask(x, p, training=True):
    return x * (torch.rand((1,) + x.shape[1:]) >= p) / (1 - p) if training else x.clone()


def one_draw(x, p, training=True):
    return x * (torch.rand(()) >= p) / (1 - p) if training else x.clone()


def no_scaling(x, p, training=True):
    return x * (torch.rand(x.shape[0], *([1] * (x.dim() - 1))) >= p) if training else x.clone()


def keep_with_p(x, p, training=True):
    return x * (torch.rand(x.shape[0], *([1] * (x.dim() - 1))) < p) / (1 - p) if training else x.clone()


def in_place(x, p, training=True):
    return x.mul_((torch.rand(x.shape[0], *([1] * (x.dim() - 1))) >= p) / (1 - p)) if training else x


def scaled_in_eval(x, p, training=True):
    return ref_drop_node(x, p) if training else x * (1 - p)


def only_two_d(x, p, training=True):  # breaks on (N, F, T)
    return x * (torch.rand(x.shape[0], 1) >= p) / (1 - p) if training else x.clone()


def fixed_seed(x, p, training=True):
    g = torch.Generator().manual_seed(0)
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=g) >= p
    return x * keep / (1 - p) if training else x.clone()


def test_drop_node_reference_variants_and_library_pass(capsys):
    assert_passes(capsys, check_drop_node, ref_drop_node)
    assert_passes(capsys, check_drop_node, drop_node_with_where)
    assert_passes(capsys, check_drop_node, lambda x, p, training=True: db.drop_node(x, p, training=training))


def test_drop_node_starter_fails():
    assert_fails(check_drop_node, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (elementwise, ["each feature entry is dropped on its own", "ONE Bernoulli per node"]),
    (feature_mask, ["one mask over the features"]),
    (one_draw, ["one number for the whole tensor"]),
    (no_scaling, ["did you forget to divide by 1 - p"]),
    (keep_with_p, ["keep probability 1 - p"]),
    (in_place, ["changed its input x in place"]),
    (scaled_in_eval, ["training=False the output should equal the input"]),
    (only_two_d, ["raised RuntimeError"]),
    (fixed_seed, ["two calls dropped exactly the same nodes"]),
])
def test_drop_node_typical_mistakes(fn, hints):
    assert_fails(check_drop_node, fn, *hints)


def test_drop_node_checker_draws_several_rates_and_restores_the_rng():
    seen = []

    def spy(x, p, training=True):
        seen.append((p, x.dim()))
        return ref_drop_node(x, p, training)

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_drop_node(spy)
    assert torch.equal(torch.rand(3), expected)
    rates = {p for p, _ in seen if p > 0}
    assert len(rates) >= 2 and 0.5 not in rates and {d for _, d in seen} == {2, 3}


# --------------------------------------------------------------------------------------------
# exercise 2: DropEdge


def ref_drop_edge(edge_index, p):
    mask = torch.rand(edge_index.shape[1]) >= p
    return edge_index[:, mask], mask


def drop_edge_with_bernoulli(edge_index, p):  # correct, written differently
    mask = torch.bernoulli(torch.full((edge_index.shape[1],), 1 - p)).bool()
    return edge_index.T[mask].T, mask


def edge_keep_with_p(edge_index, p):
    mask = torch.rand(edge_index.shape[1]) < p
    return edge_index[:, mask], mask


def edge_returns_dropped(edge_index, p):
    mask = torch.rand(edge_index.shape[1]) >= p
    return edge_index[:, ~mask], mask


def edge_index_mask(edge_index, p):
    mask = torch.rand(edge_index.shape[1]) >= p
    return edge_index[:, mask], mask.nonzero().flatten()


def edge_pairs_together(edge_index, p):
    return db.drop_edge(edge_index, p, force_undirected=False) if False else _undirected(edge_index, p)


def _undirected(edge_index, p):
    src, dst = edge_index
    n = int(edge_index.max()) + 1
    u = torch.rand(n, n)
    u = torch.triu(u) + torch.triu(u, 1).T  # one uniform per unordered pair
    mask = u[src, dst] >= p
    return edge_index[:, mask], mask


def edge_one_draw(edge_index, p):
    mask = torch.full((edge_index.shape[1],), bool(torch.rand(()) >= p))
    return edge_index[:, mask], mask


def edge_fixed_seed(edge_index, p):
    mask = torch.rand(edge_index.shape[1], generator=torch.Generator().manual_seed(0)) >= p
    return edge_index[:, mask], mask


def edge_only_mask(edge_index, p):
    return torch.rand(edge_index.shape[1]) >= p


def test_drop_edge_reference_variants_and_library_pass(capsys):
    assert_passes(capsys, check_drop_edge, ref_drop_edge)
    assert_passes(capsys, check_drop_edge, drop_edge_with_bernoulli)
    assert_passes(capsys, check_drop_edge, lambda edge_index, p: db.drop_edge(edge_index, p))


def test_drop_edge_starter_fails():
    assert_fails(check_drop_edge, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (edge_keep_with_p, ["you keep an edge with probability p"]),
    (edge_returns_dropped, ["you returned the DROPPED edges"]),
    (edge_index_mask, ["edge_mask should be a boolean tensor"]),
    (edge_pairs_together, ["force_undirected=True"]),
    (edge_one_draw, ["one number for the whole graph"]),
    (edge_fixed_seed, ["every call returned the same mask"]),
    (edge_only_mask, ["should return a pair"]),
])
def test_drop_edge_typical_mistakes(fn, hints):
    assert_fails(check_drop_edge, fn, *hints)


def test_drop_edge_rejects_an_in_place_change():
    def in_place(edge_index, p):
        mask = torch.rand(edge_index.shape[1]) >= p
        kept = edge_index[:, mask].clone()
        edge_index[:, ~mask] = 0
        return kept, mask

    assert_fails(check_drop_edge, in_place, "changed edge_index in place")


# --------------------------------------------------------------------------------------------
# exercise 3: derive E[1/(1+K)]


def ref_self_weight(d, keep, expectation):
    masks = sp.symbols(f"m1:{d + 1}")
    return expectation(1 / (1 + sum(masks)), {m: derivations.Bernoulli(keep) for m in masks})


def self_weight_by_indicator(d, keep, expectation):  # correct, written differently
    masks = [sp.Symbol(f"e{j}") for j in range(d)]
    value = expectation(sp.Add(1, *masks) ** -1, {m: derivations.Bernoulli(keep) for m in masks},
                        method="enumerate")
    return sp.factor(value)


def typed(d, keep, expectation):
    p = derivations.drop_rate
    return (1 - p ** (d + 1)) / ((d + 1) * (1 - p))


def typed_in_keep_without_call(d, keep, expectation):
    return (1 - (1 - keep) ** (d + 1)) / ((d + 1) * keep)


def plug_in(d, keep, expectation):
    m = sp.Symbol("m")
    return 1 / (1 + d * expectation(m, {m: derivations.Bernoulli(keep)}))


def swapped(d, keep, expectation):
    masks = sp.symbols(f"m1:{d + 1}")
    return expectation(1 / (1 + sum(masks)), {m: derivations.Bernoulli(1 - keep) for m in masks})


def full_graph(d, keep, expectation):
    m = sp.symbols(f"m1:{d + 1}")
    expectation(sum(m), {s: derivations.Bernoulli(keep) for s in m})
    return sp.Integer(1) / (1 + d)


def no_self_loop_plus_two(d, keep, expectation):
    masks = sp.symbols(f"m1:{d + 1}")
    return expectation(1 / (2 + sum(masks)), {m: derivations.Bernoulli(keep) for m in masks})


def neighbours_share(d, keep, expectation):
    masks = sp.symbols(f"m1:{d + 1}")
    return expectation(sum(masks) / (1 + sum(masks)), {m: derivations.Bernoulli(keep) for m in masks})


def plug_in_many_masks(d, keep, expectation):  # the plug-in with d masks: 1/(1 + E[K])
    masks = sp.symbols(f"m1:{d + 1}")
    return 1 / (1 + expectation(sum(masks), {m: derivations.Bernoulli(keep) for m in masks}))


def test_derivation_reference_variant_and_starter(capsys):
    assert_passes(capsys, check_self_weight_derivation, ref_self_weight)
    assert_passes(capsys, check_self_weight_derivation, self_weight_by_indicator)
    assert_fails(check_self_weight_derivation, starter, "not written yet")


@pytest.mark.parametrize("fn, hints", [
    (typed, ["never called the expectation", "typed in"]),
    (typed_in_keep_without_call, ["never called the expectation"]),
    (plug_in, ["averages over 1 mask symbol(s)"]),
    (swapped, ["drop and keep are swapped"]),
    (full_graph, ["self weight of the full graph"]),
    (no_self_loop_plus_two, ["E[1/(2 + K)]"]),
    (neighbours_share, ["E[K/(1+K)]", "total weight of the neighbours"]),
    (plug_in_many_masks, ["plug-in value 1/(1 + E[K])"]),
])
def test_derivation_typical_mistakes(fn, hints):
    assert_fails(check_self_weight_derivation, fn, *hints)


# --------------------------------------------------------------------------------------------
# exercise 4: predict the self weights


def closed_form(d, p):
    return (1 - p ** (d + 1)) / ((d + 1) * (1 - p))


def ref_predict():
    e = SELF_WEIGHT_EXERCISE
    hub = closed_form(e["d_hub"], e["p"])
    return {"hub": hub, "leaf": closed_form(e["d_leaf"], e["p"]), "hub_factor": hub * (1 + e["d_hub"])}


def predict_by_sum():  # correct, computed differently: a geometric sum and numpy/torch number types
    import numpy as np

    e = SELF_WEIGHT_EXERCISE
    factor = sum(e["p"] ** j for j in range(e["d_hub"] + 1))
    return {"hub": np.float32(factor / (1 + e["d_hub"])), "leaf": torch.tensor(1 + e["p"]) / 2,
            "hub_factor": factor}


def with_(**changes):
    return lambda: {**ref_predict(), **changes}


def test_prediction_reference_variant_and_starter(capsys):
    assert SELF_WEIGHT_EXERCISE == {"d_hub": 16, "d_leaf": 1, "p": 0.6}
    assert_passes(capsys, check_self_weight_prediction, ref_predict)
    assert_passes(capsys, check_self_weight_prediction, predict_by_sum)
    assert ref_predict()["leaf"] == pytest.approx(0.8)
    assert_fails(check_self_weight_prediction, starter, "not written yet")


p, d = 0.6, 16


@pytest.mark.parametrize("fn, hints", [
    (with_(hub=1 / (1 + (1 - p) * d)), ["hub = ", "plug-in value"]),
    (with_(hub=1 / (1 + d)), ["weight in the full graph"]),
    (with_(leaf=(1 - (1 - p) ** 2) / (2 * p)), ["p and 1 - p are swapped"]),
    (with_(hub=1 / (1 + p * d)), ["p read as the keep probability"]),
    (with_(hub_factor=1 / (1 - p)), ["limit for very large degrees"]),
    (with_(hub_factor=(1 + d) / (1 + (1 - p) * d)), ["factor of the plug-in value"]),
    (with_(hub_factor=closed_form(d, p)), ["the hub's expected weight itself"]),
    (with_(leaf=0.55), ["leaf = 0.55 is not right; recompute"]),
    (with_(leaf="0.8"), ["leaf should be a number"]),
    (lambda: [0.1, 0.7, 1.6], ["should be a dict"]),
])
def test_prediction_typical_mistakes(fn, hints):
    assert_fails(check_self_weight_prediction, fn, *hints)


# --------------------------------------------------------------------------------------------
# review of chapter 12: wrong answers that passed (or got a misleading hint) before, and more correct ones

def _rows(x):
    return (x.shape[0],) + (1,) * (x.dim() - 1)


def drop_node_fixed_count(x, p, training=True):  # a random subset of round(pN) nodes: passed before
    if not training:
        return x.clone()
    mask = torch.ones(_rows(x), dtype=x.dtype)
    mask[torch.randperm(x.shape[0])[:round(p * x.shape[0])]] = 0
    return x * mask / (1 - p)


def drop_node_float32(x, p, training=True):  # "kept nodes are scaled by different factors" before
    return (x * (torch.rand(_rows(x)) >= p) / (1 - p)).float() if training else x.clone()


def drop_node_by_one_over_p(x, p, training=True):
    return x * (torch.rand(_rows(x)) >= p) / p if training else x.clone()


_GLOBAL = {}


def drop_node_global_mask(x, p, training=True):  # one mask per shape, drawn once and reused
    if not training:
        return x.clone()
    if x.shape not in _GLOBAL:
        _GLOBAL[x.shape] = torch.rand(_rows(x)) >= p
    return x * _GLOBAL[x.shape] / (1 - p)


def drop_node_masked_fill(x, p, training=True):  # correct: torch.bernoulli and masked_fill
    if not training:
        return x.clone()
    drop = torch.bernoulli(torch.full((x.shape[0],), p)).bool()
    return (x / (1 - p)).masked_fill(drop.view(_rows(x)), 0.0)


def drop_node_index_assign(x, p, training=True):  # correct: rows of a scaled copy set to zero
    if not training:
        return x
    y = x / (1 - p)
    y[torch.rand(x.shape[0]) < p] = 0
    return y


def test_drop_node_review_correct_variants_pass(capsys):
    assert_passes(capsys, check_drop_node, drop_node_masked_fill)
    assert_passes(capsys, check_drop_node, drop_node_index_assign)


@pytest.mark.parametrize("fn, hints", [
    (drop_node_fixed_count, ["you drop a fixed number of nodes", "Bin(N, p)"]),
    (drop_node_float32, ["returned dtype torch.float32 for an input of dtype torch.float64"]),
    (drop_node_by_one_over_p, ["kept rows are divided by p"]),
    (drop_node_global_mask, ["two calls dropped exactly the same nodes"]),
])
def test_drop_node_review_mistakes(fn, hints):
    assert_fails(check_drop_node, fn, *hints)


def drop_edge_fixed_count(edge_index, p):  # Rong et al.'s fixed-size subset: passed before
    n_edges = edge_index.shape[1]
    mask = torch.zeros(n_edges, dtype=torch.bool)
    mask[torch.randperm(n_edges)[:round((1 - p) * n_edges)]] = True
    return edge_index[:, mask], mask


def drop_edge_float_ids(edge_index, p):  # kept_edge_index as float: passed before
    mask = torch.rand(edge_index.shape[1]) >= p
    return edge_index[:, mask].float(), mask


def drop_edge_float_mask(edge_index, p):
    mask = torch.rand(edge_index.shape[1]) >= p
    return edge_index[:, mask], mask.float()


def drop_edge_input_itself(edge_index, p):
    return edge_index, torch.rand(edge_index.shape[1]) >= p


def drop_edge_index_select(edge_index, p):  # correct: torch.where and index_select
    mask = torch.where(torch.rand(edge_index.shape[1]) < p, False, True)
    return edge_index.index_select(1, mask.nonzero().flatten()), mask


def drop_edge_reseeded_numpy(edge_index, p):  # numpy's generator, re-seeded on every call
    import numpy as np

    mask = torch.from_numpy(np.random.default_rng(7).random(edge_index.shape[1]) >= p)
    return edge_index[:, mask], mask


def test_drop_edge_review_correct_variant_passes(capsys):
    assert_passes(capsys, check_drop_edge, drop_edge_index_select)


@pytest.mark.parametrize("fn, hints", [
    (drop_edge_fixed_count, ["you keep a random subset of fixed size", "Bin(E, 1 - p)"]),
    (drop_edge_float_ids, ["kept_edge_index has dtype torch.float32", "integer dtype"]),
    (drop_edge_float_mask, ["edge_mask should be a boolean tensor", "got torch.float32"]),
    (drop_edge_input_itself, ["kept_edge_index should be edge_index[:, edge_mask]"]),
    (drop_edge_reseeded_numpy, ["every call returned the same mask"]),
])
def test_drop_edge_review_mistakes(fn, hints):
    assert_fails(check_drop_edge, fn, *hints)


def irrelevant_call_then_typed(d, keep, expectation):  # passed before: a call on E[K], the answer typed in keep
    masks = sp.symbols(f"m1:{d + 1}")
    expectation(sum(masks), {m: derivations.Bernoulli(keep) for m in masks})
    return (1 - (1 - keep) ** (d + 1)) / ((d + 1) * keep)


def typed_then_mixed(d, keep, expectation):  # a derived value mixed with one typed in keep
    masks = sp.symbols(f"m1:{d + 1}")
    derived = expectation(1 / (1 + sum(masks)), {m: derivations.Bernoulli(keep) for m in masks})
    typed_in = (1 - (1 - keep) ** (d + 1)) / ((d + 1) * keep)
    return (derived + typed_in) / 2


def one_minus_neighbours(d, keep, expectation):  # correct: 1 - E[K/(1+K)]
    masks = sp.symbols(f"m1:{d + 1}")
    return sp.simplify(1 - expectation(sum(masks) / (1 + sum(masks)), {m: derivations.Bernoulli(keep) for m in masks}))


def own_symbol_then_substituted(d, keep, expectation):  # correct: derived in a symbol of its own, then keep put in
    k = sp.Symbol("k")
    masks = sp.symbols(f"x0:{d}")
    return expectation(1 / (1 + sum(masks)), {m: derivations.Bernoulli(k) for m in masks}).subs(k, keep)


def test_derivation_review_correct_variants_pass(capsys):
    assert_passes(capsys, check_self_weight_derivation, one_minus_neighbours)
    assert_passes(capsys, check_self_weight_derivation, own_symbol_then_substituted)


@pytest.mark.parametrize("fn, hints", [
    (irrelevant_call_then_typed, ["does not come from the expectation you computed", "typed in"]),
    (typed_then_mixed, ["does not follow from the expectations you computed"]),
])
def test_derivation_review_mistakes(fn, hints):
    assert_fails(check_self_weight_derivation, fn, *hints)


def test_prediction_review_answers(capsys):
    assert_passes(capsys, check_self_weight_prediction, with_(leaf=sp.Rational(4, 5)))  # a sympy number is real
    for answer, hints in [
        (with_(hub=(1 - p**d) / ((d + 1) * (1 - p))), ["hub = ", "exponent is off by one"]),
        (with_(hub=(1 - p ** (d + 1)) / (d * (1 - p))), ["hub = ", "denominator is off by one"]),
        (with_(leaf=float("nan")), ["leaf = nan is not right"]),
        (with_(leaf=None), ["leaf should be a number, got NoneType"]),
        (with_(hub=True), ["hub should be a number, got bool"]),
    ]:
        assert_fails(check_self_weight_prediction, answer, *hints)
