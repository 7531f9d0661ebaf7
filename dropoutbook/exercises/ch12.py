"""Checkers for the exercises of chapter 12, "Dropout on graphs".

Each checker takes the student's function, calls it, and either prints one "Correct: ..." line
(and returns None) or raises :class:`CheckFailed` with a message that says what is wrong, for
example "each feature entry is dropped on its own: DropNode zeroes a node's whole row".
"""

from __future__ import annotations

import math

import sympy as sp
import torch

from .. import derivations
from ..graphs import karate_club, stochastic_block_model
from ._core import (
    CheckFailed,
    _as_output,
    _check_numbers,
    _same_function,
    _student_symbols,
    _survivor_scale_message,
    call_student,
    passed,
)

__all__ = [
    "check_drop_node", "check_drop_edge", "check_self_weight_derivation", "check_self_weight_prediction",
    "SELF_WEIGHT_EXERCISE",
]

_Z = 5.0

#: Degrees and drop probability in the "predict" exercise of chapter 12, those of the karate club's
#: node 0 (degree 16) and node 11 (degree 1), with DropEdge at p = 0.6.
SELF_WEIGHT_EXERCISE = {"d_hub": 16, "d_leaf": 1, "p": 0.6}


def _fraction_check(observed: float, expected: float, n: int, what: str, swapped: str) -> None:
    se = math.sqrt(expected * (1 - expected) / n)
    if abs(observed - expected) <= _Z * se:
        return
    if abs(observed - (1 - expected)) <= _Z * se:
        raise CheckFailed(swapped)
    raise CheckFailed(f"{observed:.1%} of the {what}; it should be {expected:.0%} (± {_Z * se:.1%})")


# --------------------------------------------------------------------------------------------
# exercise 1: implement DropNode


def check_drop_node(fn) -> None:
    """Check an implementation ``fn(x, p, training=True)`` of DropNode (chapter 12 exercises).

    ``x`` holds one row per node, of shape ``(N, F)`` or ``(N, F, T)``. Checked, for several shapes
    and several drop probabilities drawn per call (never only 0.5): output type, shape and dtype;
    ``x`` not modified; a node's whole row (all its entries) dropped or kept together; rows drawn
    independently (not one draw for the whole tensor, not a mask over the features, not a subset
    of fixed size); survivors scaled by exactly 1/(1-p); the fraction of dropped rows is p within 5
    standard errors; a new draw on every call; the identity with ``training=False`` and with ``p = 0``.
    """
    with torch.random.fork_rng(devices=[]):  # reproducible messages; the caller's RNG state is restored
        torch.manual_seed(12)
        g = torch.Generator().manual_seed(120)
        ps = [0.15 + 0.2 * torch.rand((), generator=g).item(), 0.55 + 0.25 * torch.rand((), generator=g).item()]
        shown = []
        for shape, p in zip([(6_000, 5), (3_000, 4, 3)], ps):
            shown.append(_check_drop_node(fn, shape, p, g))
    passed("; ".join(shown) + "; kept rows times 1/(1-p)")


def _node_output(fn, x: torch.Tensor, p: float, training: bool, what: str) -> torch.Tensor:
    out = call_student(fn, x, p, training=training, what=what)
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dtype != x.dtype:
        raise CheckFailed(f"{what} returned dtype {out.dtype} for an input of dtype {x.dtype}: keep the dtype of x "
                          "(multiply by a boolean or same-dtype mask instead of converting)")
    return _as_output(out, x, what)


def _check_drop_node(fn, shape, p: float, g: torch.Generator) -> str:
    what = "your drop_node"
    n = shape[0]
    x = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5  # never zero
    before = x.clone()
    out = _node_output(fn, x, p, True, what)
    if not torch.equal(x, before):
        raise CheckFailed("your function changed its input x in place; return a new tensor instead")
    kept = (out != 0).flatten(1)
    row_kept = kept.any(1)
    mixed = row_kept & ~kept.all(1)
    if mixed.any() and bool((kept == kept[0]).all()):
        raise CheckFailed("every node has the same features dropped: you drew one mask over the features (shape "
                          "(1, F)), shared by all nodes. DropNode draws one Bernoulli per NODE and zeroes its whole row")
    if mixed.any():
        raise CheckFailed(
            f"{int(mixed.sum())} of {n} nodes have some features dropped and others kept: each feature entry is "
            "dropped on its own, as in ordinary dropout. DropNode draws ONE Bernoulli per node (a mask of shape "
            "(N, 1)) and zeroes the node's whole row")
    if row_kept.all() or not row_kept.any():
        state = "kept" if row_kept.all() else "dropped"
        raise CheckFailed(f"all {n} nodes were {state} together: you drew one number for the whole tensor; draw one per "
                          "node (row), independently")
    row_pattern = kept[:, 0]
    ratios = out[row_kept] / x[row_kept]
    if (ratios.max() - ratios.min()).item() > 1e-9 * ratios.abs().max().item():
        raise CheckFailed("kept nodes are scaled by different factors; every kept row is multiplied by 1/(1-p)")
    message = _survivor_scale_message(ratios.flatten()[0].item(), p)
    if message:
        raise CheckFailed(message.replace("survivors", "kept rows"))
    dropped = 1.0 - row_kept.double().mean().item()
    _fraction_check(dropped, p, n, f"nodes are dropped with p = {p:.3f}",
                    f"{dropped:.1%} of the nodes are dropped with p = {p:.3f}: you drop with the keep probability "
                    "1 - p. In the book's convention p is the drop probability")
    again = _node_output(fn, x, p, True, what)
    if torch.equal((again != 0).flatten(1)[:, 0], row_pattern):
        raise CheckFailed("two calls dropped exactly the same nodes: draw new random numbers on every call")
    # independent nodes: the number of dropped rows is Bin(n, p), sd ~ 30 here; five equal counts mean a fixed number
    counts = {int((~row_kept).sum()), int((again.flatten(1)[:, 0] == 0).sum())}
    for _ in range(3):
        counts.add(int((_node_output(fn, x, p, True, what).flatten(1)[:, 0] == 0).sum()))
    if len(counts) == 1:
        raise CheckFailed(f"five calls all dropped exactly {counts.pop()} of the {n} nodes: you drop a fixed number of "
                          "nodes (a random subset of fixed size). DropNode draws every node on its own, so the number "
                          f"of dropped nodes varies from call to call, Bin(N, p)")
    evaluated = _node_output(fn, x, p, False, what)
    if not torch.allclose(evaluated, x, rtol=1e-6, atol=0):
        raise CheckFailed("with training=False the output should equal the input: the factor 1/(1-p) was applied in "
                          f"training; yours is {(evaluated / x).mean().item():.4g}·x on average")
    zero = _node_output(fn, x, 0.0, True, what)
    if not torch.allclose(zero, x, rtol=1e-6, atol=0):
        raise CheckFailed("with p = 0 nothing is dropped, so the output should equal the input")
    return f"{dropped:.1%} of {n} nodes dropped (p = {p:.3f}, shape {tuple(shape)})"


# --------------------------------------------------------------------------------------------
# exercise 2: implement DropEdge


def _graphs():
    karate = karate_club().edge_index
    sbm = stochastic_block_model([40, 40, 40], 0.15, 0.02, seed=5).edge_index
    return [("the karate club", karate), ("a 120-node block model", sbm)]


def check_drop_edge(fn) -> None:
    """Check an implementation ``fn(edge_index, p)`` of DropEdge returning ``(kept_edge_index, edge_mask)`` (chapter 12 exercises).

    With the conventions of ``torch_geometric.utils.dropout_edge``: ``edge_mask`` is a boolean
    tensor with one entry per column of ``edge_index`` (``True`` = kept) and ``kept_edge_index`` is
    ``edge_index[:, edge_mask]``. Checked on two graphs with drop probabilities drawn per call:
    the input is not modified; ``kept_edge_index`` keeps the integer dtype; every column is kept
    with probability 1 - p (5 standard errors), on its own (the number kept varies from call to call,
    unlike a subset of fixed size); the two directions of an edge are drawn independently (each pair
    is kept whole with probability (1 - p)²); a new mask on every call.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(13)
        g = torch.Generator().manual_seed(130)
        ps = [0.1 + 0.3 * torch.rand((), generator=g).item(), 0.55 + 0.3 * torch.rand((), generator=g).item()]
        shown = [_check_drop_edge(fn, name, edge_index, p) for (name, edge_index), p in zip(_graphs(), ps)]
    passed("; ".join(shown))


def _check_drop_edge(fn, name: str, edge_index: torch.Tensor, p: float) -> str:
    what = "your drop_edge"
    before = edge_index.clone()
    draws = 300
    masks = []
    for _ in range(draws):
        out = call_student(fn, edge_index, p, what=what)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise CheckFailed(f"{what} should return a pair (kept_edge_index, edge_mask), got {type(out).__name__}")
        kept, mask = out
        if not torch.equal(edge_index, before):
            raise CheckFailed("your function changed edge_index in place; return new tensors instead")
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            kind = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise CheckFailed(f"edge_mask should be a boolean tensor with one entry per edge (True = kept), got {kind}; "
                              "indices of the kept edges are the convention of force_undirected=True only")
        if mask.shape != (edge_index.shape[1],):
            raise CheckFailed(f"edge_mask should have one entry per column of edge_index, shape ({edge_index.shape[1]},), "
                              f"got {tuple(mask.shape)}")
        if not isinstance(kept, torch.Tensor) or kept.dim() != 2 or kept.shape[0] != 2:
            raise CheckFailed("kept_edge_index should be a tensor of shape (2, E'), the kept columns of edge_index")
        if kept.dtype != edge_index.dtype:
            raise CheckFailed(f"kept_edge_index has dtype {kept.dtype}; it should keep the integer dtype of edge_index "
                              f"({edge_index.dtype}): node ids are indices, and a GCN layer refuses float ones")
        if kept.shape[1] == int((~mask).sum()) and torch.equal(kept, edge_index[:, ~mask]) and bool((~mask).any()):
            raise CheckFailed("you returned the DROPPED edges: kept_edge_index is edge_index[:, edge_mask], the columns "
                              "whose mask is True")
        if not torch.equal(kept, edge_index[:, mask]):
            raise CheckFailed("kept_edge_index should be edge_index[:, edge_mask]: the kept columns, in their order")
        masks.append(mask)
    uniform = sum(bool(mask.all()) or not bool(mask.any()) for mask in masks)
    if uniform > draws // 10:
        raise CheckFailed(f"in {uniform} of {draws} calls all edges of {name} were kept or all dropped together: you drew "
                          "one number for the whole graph; draw one per edge (column of edge_index)")
    m = torch.stack(masks).double()
    if torch.equal(m[0], m[1]) and torch.equal(m[1], m[2]):
        raise CheckFailed("every call returned the same mask: draw new random numbers on every call")
    counts = m.sum(1)
    if bool((counts == counts[0]).all()):
        raise CheckFailed(f"all {draws} calls kept exactly {int(counts[0])} of the {edge_index.shape[1]} edges of {name}: "
                          "you keep a random subset of fixed size (as Rong et al.'s sampler does). Here every column "
                          "is kept on its own with probability 1 - p, so the number kept varies, Bin(E, 1 - p)")
    kept_fraction = m.mean().item()
    n = m.numel()
    _fraction_check(kept_fraction, 1 - p, n, f"edges of {name} are kept with p = {p:.3f}",
                    f"{kept_fraction:.1%} of the edges of {name} are kept with p = {p:.3f}: you keep an edge with "
                    "probability p. p is the DROP probability; keep an edge when a uniform is >= p")
    src, dst = edge_index
    n_nodes = int(edge_index.max()) + 1
    code = src * n_nodes + dst
    reverse = torch.argsort(code)[torch.searchsorted(code.sort().values, dst * n_nodes + src)]
    upper = (src < dst).nonzero().flatten()
    both = (m[:, upper] * m[:, reverse[upper]]).mean().item()
    k = m[:, upper].numel()
    se = math.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / k)
    if abs(both - (1 - p)) <= _Z * math.sqrt(p * (1 - p) / k) and abs(both - (1 - p) ** 2) > _Z * se:
        raise CheckFailed(f"the two directions of every edge of {name} are kept or dropped together: that is "
                          "force_undirected=True. DropEdge as asked draws every column of edge_index on its own")
    if abs(both - (1 - p) ** 2) > _Z * se:
        raise CheckFailed(f"both directions of an edge are kept together in {both:.1%} of the draws; with independent "
                          f"columns it is (1 - p)² = {(1 - p) ** 2:.1%}")
    return f"{name}: {kept_fraction:.1%} of the edges kept with p = {p:.3f}"


# --------------------------------------------------------------------------------------------
# exercise 3: derive the expected self-loop weight by summing over the edge masks


def _expected_over_masks(d: int, keep, numerator, offset: int) -> sp.Expr:
    r""":math:`\mathbb E[\text{numerator}(K) / (\text{offset} + K)]` over ``d`` Bernoulli(``keep``) masks (enumeration)."""
    masks = sp.symbols(f"m1:{d + 1}")
    k = sum(masks)
    return derivations.expectation(numerator(k) / (offset + k), {m: derivations.Bernoulli(keep) for m in masks},
                                   method="enumerate")


def _self_weight_mistakes(d: int, keep):
    one = lambda k: sp.Integer(1)  # noqa: E731
    return [
        (1 / (1 + keep * d), "that is the plug-in value 1/(1 + E[K]) at the mean degree; the expectation of 1/(1 + K) "
                             "is larger (1/(1+K) is convex in K). Average 1/(1 + m_1 + ... + m_d) over the masks"),
        (sp.Integer(1) / (1 + d), "that is the self weight of the full graph, 1/(1+d); after DropEdge the degree K is "
                                  "random and smaller"),
        (_expected_over_masks(d, 1 - keep, one, 1), "drop and keep are swapped: a mask m_j ~ Bernoulli(keep) is 1 (the "
                                                    "edge is kept) with probability keep"),
        (_expected_over_masks(d, keep, lambda k: k, 1), "that is E[K/(1+K)], the total weight of the neighbours in "
                                                         "D^-1 (A + I); the self weight is 1/(1 + K)"),
        (_expected_over_masks(d, keep, one, 2), "that is E[1/(2 + K)]: the self-loop adds 1 to the degree, once, so "
                                                "the self weight is 1/(1 + K)"),
    ]


def check_self_weight_derivation(fn) -> None:
    r"""Check ``fn(d, keep, expectation)``, which derives :math:`\mathbb E[1/(1+K)]` for a node of degree ``d`` (chapter 12 exercises).

    :math:`K = m_1 + \dots + m_d` with independent :math:`m_j \sim \mathrm{Bernoulli}(\text{keep})`.
    ``fn`` must build the expression from ``d`` mask symbols and take its expectation with the
    ``expectation`` it is given (the library's, wrapped so that the checker sees the calls). It is
    called for several ``d`` and with ``keep`` = :math:`1 - p` and = a fresh symbol :math:`q`: an
    answer typed in (no call, or written in ``p`` when ``keep = q``) is refused, and so is a shortcut
    that averages over fewer than ``d`` masks. Finally ``fn`` runs once more with an expectation
    that halves the keep probability of every mask: a derived answer follows (it becomes the truth
    at ``q/2``), a formula typed in beside an irrelevant call does not. The truth is
    :func:`~dropoutbook.derivations.self_weight_by_enumeration`.
    """
    what = "your derivation"
    p = derivations.drop_rate
    q = sp.Symbol("q", positive=True)
    shown = ""
    for d, keep, allowed in [(2, 1 - p, {"p": p}), (3, q, {"q": q}), (4, 1 - p, {"p": p}), (1, q, {"q": q})]:
        calls = []

        def recorded(expr, distributions, **kwargs):
            calls.append(dict(distributions))
            return derivations.expectation(expr, distributions, **kwargs)

        answer = call_student(fn, d, keep, recorded, what=what)
        if not calls:
            raise CheckFailed(f"{what} never called the expectation it was given: the answer was typed in. Derive it: "
                              f"make d mask symbols distributed as derivations.Bernoulli(keep) and take the expectation "
                              "of 1/(1 + their sum)")
        if isinstance(answer, sp.Expr) and keep == q and any(s.name == "p" for s in answer.free_symbols):
            raise CheckFailed("for keep = q your answer is written in p: it was typed in, not derived from the keep "
                              "probability your function was given")
        n_masks = max(len(c) for c in calls)
        if n_masks < d:
            raise CheckFailed(f"for d = {d} your expectation averages over {n_masks} mask symbol(s): each of the d edges "
                              "has its own mask, and 1/(1 + K) must be averaged over all of them (K is not d times one mask)")
        got = _student_symbols(answer, allowed, "your answer")
        keep_of_masks = {sp.simplify(dist.keep) for c in calls for dist in c.values() if hasattr(dist, "keep")}
        if keep_of_masks and all(sp.simplify(k - (1 - keep)) == 0 for k in keep_of_masks):
            raise CheckFailed("your masks are Bernoulli(1 - keep): drop and keep are swapped. A mask is 1 (the edge is "
                              "kept) with probability keep")
        symbol = q if keep == q else p
        truth = derivations.self_weight_by_enumeration(d)[0]
        if keep == q:
            truth = truth.subs(p, 1 - q)
        points = [0.2, 0.55, 0.85]
        if _same(got, truth, symbol, points):
            if d == 3:
                shown = sp.sstr(sp.factor(got))
            continue
        for wrong, message in _self_weight_mistakes(d, keep):
            if _same(got, wrong, symbol, points):
                raise CheckFailed(f"for d = {d}, keep = {sp.sstr(keep)}: {message}")
        value, expected = (float(e.subs(symbol, sp.Rational(1, 4))) for e in (got, truth))
        raise CheckFailed(f"for d = {d}, keep = {sp.sstr(keep)} your answer is {value:.4g} at {symbol} = 1/4; it should "
                          f"be {expected:.4g} there")
    _check_follows_from_expectations(fn, q, what)
    passed(f"for d = 3, keep = q: E[1/(1+K)] = {shown}")


def _check_follows_from_expectations(fn, q: sp.Symbol, what: str) -> None:
    """Run ``fn(3, q, ...)`` with an expectation that halves the keep probability of every Bernoulli mask.

    A derived answer follows the change (it becomes the truth at ``q/2``); an answer typed in
    beside a call on something else does not.
    """
    def halved(expr, distributions, **kwargs):
        changed = {s: derivations.Bernoulli(dist.keep / 2) if isinstance(dist, derivations.Bernoulli) else dist
                   for s, dist in distributions.items()}
        return derivations.expectation(expr, changed, **kwargs)

    answer = _student_symbols(call_student(fn, 3, q, halved, what=what), {"q": q}, "your answer")
    truth = derivations.self_weight_by_enumeration(3)[0].subs(derivations.drop_rate, 1 - q)
    points = [0.2, 0.55, 0.85]
    if _same(answer, truth.subs(q, q / 2), q, points):
        return
    if _same(answer, truth, q, points):
        raise CheckFailed("your answer does not come from the expectation you computed: when the checker's expectation "
                          "is changed (every mask kept with half the probability), your answer stays the same. It was "
                          "typed in beside a call on something else; return the expectation of 1/(1 + m_1 + ... + m_d)")
    raise CheckFailed("your answer does not follow from the expectations you computed: with every mask kept with half "
                      "the probability, it should become E[1/(1+K)] at keep/2. Build it from the expectation's result, "
                      "not from keep directly")


def _same(a: sp.Expr, b: sp.Expr, symbol: sp.Symbol, points) -> bool:
    """``a`` and ``b`` agree as functions of ``symbol``; an expression that cannot be evaluated agrees with nothing."""
    try:
        return bool(_same_function(a, sp.sympify(b), [symbol], [(v,) for v in points]))
    except (TypeError, ValueError, ZeroDivisionError):
        return False


# --------------------------------------------------------------------------------------------
# exercise 4: predict the self weights of two karate-club nodes


def check_self_weight_prediction(fn) -> None:
    """Check ``fn()``, which returns the predicted ``hub``, ``leaf`` and ``hub_factor`` for
    :data:`~dropoutbook.exercises.ch12.SELF_WEIGHT_EXERCISE` (chapter 12 exercises).

    ``hub`` and ``leaf`` are the expected self-loop weights :math:`\\mathbb E[1/(1+K)]` of a node of
    degree ``d_hub`` and one of degree ``d_leaf`` after DropEdge with drop probability ``p``;
    ``hub_factor`` is the hub's expected weight divided by its weight in the full graph. Any real
    number type is accepted; the truth is :func:`~dropoutbook.derivations.dropedge_self_weight`.
    """
    what = "your prediction"
    answer = call_student(fn, what=what)
    keys = ("hub", "leaf", "hub_factor")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise CheckFailed(f"{what} should be a dict with exactly the keys {list(keys)}")
    w = derivations.dropedge_self_weight()
    ex = SELF_WEIGHT_EXERCISE
    p = ex["p"]

    def value(expr, d):
        return float(expr.subs({w.degree: d, w.p: sp.nsimplify(p)}))

    hub, leaf = value(w.mean, ex["d_hub"]), value(w.mean, ex["d_leaf"])
    truth = {"hub": hub, "leaf": leaf, "hub_factor": value(w.ratio, ex["d_hub"])}

    def swapped(d):
        return (1 - (1 - p) ** (d + 1)) / ((d + 1) * p)

    mistakes = {}
    for key, d in (("hub", ex["d_hub"]), ("leaf", ex["d_leaf"])):
        mistakes[key] = [
            (1 / (1 + (1 - p) * d), "that is the plug-in value 1/(1 + (1-p)d) at the mean degree; E[1/(1+K)] is larger "
                                    "(Jensen): use (1 - p^(d+1))/((d+1)(1-p))"),
            (1 / (1 + d), "that is the weight in the full graph, 1/(1+d), before any edge is dropped"),
            (swapped(d), "p and 1 - p are swapped: the edges are KEPT with probability 1 - p = "
                         f"{1 - p:.2g}, so K ~ Bin(d, {1 - p:.2g})"),
            (1 / (1 + p * d), "that is a plug-in value with p read as the keep probability; and E[1/(1+K)] is not "
                              "the plug-in value anyway: use (1 - p^(d+1))/((d+1)(1-p))"),
            ((1 - p ** d) / ((d + 1) * (1 - p)), "the exponent is off by one: the sum over k = 0, ..., d of "
                                                 "Bin(d, 1-p) gives 1 - p^(d+1) in the numerator"),
            ((1 - p ** (d + 1)) / (d * (1 - p)), "the denominator is off by one: the self-loop makes it (d+1)(1-p), "
                                                 "not d(1-p)"),
        ]
    mistakes["hub_factor"] = [
        (1 / (1 - p), "1/(1-p) is the limit for very large degrees; for d = 16 the factor is 1 + p + ... + p^16"),
        ((1 + ex["d_hub"]) / (1 + (1 - p) * ex["d_hub"]), "that is the factor of the plug-in value; use the expected "
                                                          "weight, (1 - p^(d+1))/(1-p)"),
        (hub, "that is the hub's expected weight itself; divide it by the full graph's 1/(1+d)"),
    ]
    _check_numbers(answer, truth, keys, mistakes, retry="recompute it from the derived closed form")
    passed(", ".join(f"{k} = {truth[k]:.4g}" for k in keys))
