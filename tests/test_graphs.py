"""Chapter 12, "Dropout on graphs": the library (dropoutbook.graphs) and its Monte-Carlo checks.

Deterministic contract first (conventions of torch_geometric.utils.dropout_edge, shapes, dtypes,
layouts, errors), then the statistical layer: the samplers agree with the closed forms derived by
dropoutbook.derivations (|z| <= Z) and reject plausible wrong formulas by more than Z standard
errors. PyTorch Geometric is a test dependency; the library itself does not import it.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

import dropoutbook as db
from dropoutbook import (
    Graph,
    dirichlet_energy,
    drop_edge,
    drop_node,
    karate_club,
    mean_pairwise_distance,
    normalized_adjacency,
    stochastic_block_model,
)
from dropoutbook.derivations import dropedge_self_weight, node_degree
from dropoutbook.montecarlo import estimate_mean
from helpers import check_agrees_and_rejects

pyg_utils = pytest.importorskip("torch_geometric.utils")
from torch_geometric.nn.conv.gcn_conv import gcn_norm  # noqa: E402

KARATE = karate_club()
W = dropedge_self_weight()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def path_graph(n: int = 5) -> torch.Tensor:
    a = torch.arange(n - 1)
    return torch.cat([torch.stack([a, a + 1]), torch.stack([a + 1, a])], dim=1)


# --------------------------------------------------------------------------------------------
# drop_edge: the conventions of torch_geometric.utils.dropout_edge


@pytest.mark.parametrize("p", [0.1, 0.3, 0.75])
@pytest.mark.parametrize("force_undirected", [False, True])
def test_drop_edge_equals_torch_geometric_with_the_same_seed(p, force_undirected):
    for seed in range(5):
        torch.manual_seed(seed)
        theirs = pyg_utils.dropout_edge(KARATE.edge_index, p, force_undirected=force_undirected)
        torch.manual_seed(seed)
        ours = drop_edge(KARATE.edge_index, p, force_undirected=force_undirected)
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
        assert ours[1].dtype == theirs[1].dtype


def test_drop_edge_mask_selects_the_kept_edges_and_leaves_the_input():
    edge_index = KARATE.edge_index
    before = edge_index.clone()
    kept, mask = drop_edge(edge_index, 0.4, generator=gen(0))
    assert torch.equal(edge_index, before)
    assert mask.dtype == torch.bool and mask.shape == (edge_index.shape[1],)
    assert torch.equal(kept, edge_index[:, mask])
    assert kept.data_ptr() != edge_index.data_ptr()
    assert torch.equal(drop_edge(edge_index, 0.4, generator=gen(0))[0], kept)  # reproducible
    assert not torch.equal(drop_edge(edge_index, 0.4, generator=gen(1))[1], mask)


def test_drop_edge_force_undirected_keeps_both_directions_together():
    edge_index = KARATE.edge_index
    kept, ids = drop_edge(edge_index, 0.5, force_undirected=True, generator=gen(2))
    assert ids.dtype == torch.int64
    half = kept.shape[1] // 2
    assert torch.equal(kept[:, half:], kept[:, :half].flip(0))
    assert bool((kept[0, :half] < kept[1, :half]).all())
    assert torch.equal(edge_index[:, ids[:half]], kept[:, :half])
    assert torch.equal(ids[half:], ids[:half])
    db._validation.check_symmetric_edges(kept)  # the sampled graph is undirected


def test_drop_edge_test_time_and_extreme_rates():
    edge_index = KARATE.edge_index
    for kwargs in (dict(p=0.5, training=False), dict(p=0.0)):
        kept, mask = drop_edge(edge_index, **kwargs)
        assert torch.equal(kept, edge_index) and bool(mask.all()) and mask.dtype == torch.bool
        # a difference on purpose: a new tensor, where PyTorch Geometric returns its input itself
        assert kept.data_ptr() != edge_index.data_ptr()
        theirs, _ = pyg_utils.dropout_edge(edge_index, **kwargs)
        assert theirs is edge_index
    kept, mask = drop_edge(edge_index, 1.0, generator=gen(0))
    assert kept.shape == (2, 0) and not bool(mask.any())


def test_drop_edge_keeps_dtype_and_accepts_an_empty_graph():
    small = path_graph().to(torch.int32)
    kept, _ = drop_edge(small, 0.5, generator=gen(0))
    assert kept.dtype == torch.int32
    empty = torch.zeros(2, 0, dtype=torch.int64)
    for force in (False, True):
        kept, mask = drop_edge(empty, 0.5, force_undirected=force)
        assert kept.shape == (2, 0) and mask.numel() == 0


def test_drop_edge_differences_from_torch_geometric_are_deliberate():
    # 1. an edge listed in one direction only: PyTorch Geometric silently loses it when it is row > col
    one_way = torch.tensor([[1, 2], [0, 1]])  # 1 -> 0 and 2 -> 1, both with row > col
    with pytest.raises(ValueError, match=r"^edge_index must list every undirected edge in both directions"):
        drop_edge(one_way, 0.1, force_undirected=True)
    torch.manual_seed(0)
    theirs, _ = pyg_utils.dropout_edge(one_way, 0.1, force_undirected=True)
    assert theirs.shape[1] == 0
    # 2. a kept self-loop is returned once (PyTorch Geometric returns it twice)
    with_loop = torch.tensor([[0, 1, 2], [1, 0, 2]])
    torch.manual_seed(0)
    theirs, _ = pyg_utils.dropout_edge(with_loop, 1e-9, force_undirected=True)
    ours, ids = drop_edge(with_loop, 1e-9, force_undirected=True, generator=gen(0))
    assert theirs.shape[1] == 4 and ours.shape[1] == 3
    assert (ours == 2).all(0).sum() == 1 and ids.tolist() == [0, 0, 2]


class Shape:
    pass


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((KARATE.edge_index, 1.5), {}, ValueError, r"^p must be in \[0, 1\]"),
    ((KARATE.edge_index, float("nan")), {}, ValueError, r"^p must be a number in \[0, 1\], got nan"),
    ((KARATE.edge_index, "0.5"), {}, TypeError, r"^p must be a number"),
    ((KARATE.edge_index, None), {}, TypeError, r"^p must be a number"),
    ((KARATE.edge_index.double(), 0.5), {}, TypeError, r"^edge_index must have an integer dtype"),
    ((KARATE.edge_index.bool(), 0.5), {}, TypeError, r"^edge_index must have an integer dtype"),
    ((KARATE.edge_index.numpy(), 0.5), {}, TypeError, r"^edge_index must be a torch.Tensor"),
    ((KARATE.edge_index[0], 0.5), {}, ValueError, r"^edge_index must have shape \(2, E\)"),
    ((KARATE.edge_index.T, 0.5), {}, ValueError, r"^edge_index must have shape \(2, E\)"),
    ((torch.tensor([[0, -1], [1, 0]]), 0.5), {}, ValueError, r"^edge_index must hold node ids >= 0"),
    ((KARATE.edge_index, 0.5), {"training": 1}, TypeError, r"^training must be a bool"),
    ((KARATE.edge_index, 0.5), {"force_undirected": "yes"}, TypeError, r"^force_undirected must be a bool"),
    ((KARATE.edge_index, 0.5), {"generator": 0}, TypeError, r"^generator must be a torch.Generator"),
])
def test_drop_edge_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        drop_edge(*args, **kwargs)


def test_drop_edge_accepts_numpy_and_tensor_probabilities():
    a = drop_edge(KARATE.edge_index, np.float64(0.3), generator=gen(0))
    b = drop_edge(KARATE.edge_index, torch.tensor(0.3), generator=gen(0))
    c = drop_edge(KARATE.edge_index, 0.3, generator=gen(0))
    assert torch.equal(a[1], c[1]) and torch.equal(b[1], c[1])


# --------------------------------------------------------------------------------------------
# drop_node


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(40, 3), (25, 2, 4)])
def test_drop_node_zeroes_whole_rows_and_scales_the_rest(dtype, shape):
    p = 0.3
    x = (torch.rand(shape, generator=gen(0), dtype=torch.float64) + 0.5).to(dtype)
    before = x.clone()
    y = drop_node(x, p, generator=gen(1))
    assert y.shape == x.shape and y.dtype == dtype and torch.equal(x, before)
    ratio = (y.double() / x.double()).flatten(1)
    kept = ratio[:, 0] != 0
    assert 0 < int(kept.sum()) < shape[0]
    scale = torch.tensor(1 / (1 - p), dtype=dtype).double()
    assert torch.equal(ratio[~kept], torch.zeros_like(ratio[~kept]))
    assert torch.allclose(ratio[kept], scale.expand_as(ratio[kept]), rtol=4 * torch.finfo(dtype).eps, atol=0)


def test_drop_node_keeps_the_memory_layout():
    x = torch.randn(4, 30, generator=gen(0)).T  # (30, 4), not contiguous
    y = drop_node(x, 0.5, generator=gen(1))
    assert y.stride() == x.stride()
    z = torch.randn(6, 3, 5, 5, generator=gen(2)).to(memory_format=torch.channels_last)
    assert drop_node(z, 0.5, generator=gen(3)).stride() == z.stride()


def test_drop_node_test_time_reproducibility_and_gradients():
    x = torch.randn(50, 3, dtype=torch.float64, generator=gen(0), requires_grad=True)
    out = drop_node(x, 0.5, training=False)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    assert torch.equal(drop_node(x, 0.0), x)
    assert torch.equal(drop_node(x, 0.4, generator=gen(5)), drop_node(x, 0.4, generator=gen(5)))
    drop_node(x, 0.4, generator=gen(5)).sum().backward()
    per_row = x.grad[:, 0]
    assert torch.equal(x.grad, per_row[:, None].expand(50, 3))
    assert set(per_row.tolist()) == {0.0, 1 / 0.6}
    x.grad = None
    zero = drop_node(x, 1.0)  # like F.dropout: zeros, and a zero gradient
    assert torch.equal(zero, torch.zeros_like(x)) and zero.requires_grad
    zero.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("x, p, kwargs, exc, match", [
    (torch.ones(4, 2), 1.2, {}, ValueError, r"^p must be in \[0, 1\]"),
    (torch.ones(4, 2), float("nan"), {}, ValueError, r"^p must be a number in \[0, 1\], got nan"),
    (torch.ones(4, 2), "0.1", {}, TypeError, r"^p must be a number"),
    (torch.ones(4, 2), None, {}, TypeError, r"^p must be a number"),
    (torch.ones(4, 2, dtype=torch.int64), 0.1, {}, TypeError, r"^x must have a floating dtype"),
    (torch.ones(4, 2, dtype=torch.bool), 0.1, {}, TypeError, r"^x must have a floating dtype"),
    (np.ones((4, 2)), 0.1, {}, TypeError, r"^x must be a torch.Tensor"),
    (torch.ones(4), 0.1, {}, ValueError, r"^x must have shape \(num_nodes, num_features, \.\.\.\)"),
    (torch.tensor(1.0), 0.1, {}, ValueError, r"^x must have shape"),
    (torch.ones(0, 3), 0.1, {}, ValueError, r"^x must hold at least one node"),
    (torch.ones(4, 2), 0.1, {"training": "no"}, TypeError, r"^training must be a bool"),
    (torch.ones(4, 2), 0.1, {"generator": "seed"}, TypeError, r"^generator must be a torch.Generator"),
])
def test_drop_node_bad_input(x, p, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        drop_node(x, p, **kwargs)


def test_drop_node_accepts_numpy_probability():
    x = torch.ones(10, 2)
    assert torch.equal(drop_node(x, np.float32(0.25), generator=gen(0)), drop_node(x, 0.25, generator=gen(0)))


# --------------------------------------------------------------------------------------------
# normalized_adjacency, dirichlet_energy, mean_pairwise_distance, graphs


def dense_from_gcn_norm(edge_index, n):
    ei, w = gcn_norm(edge_index, num_nodes=n, add_self_loops=True)
    P = torch.zeros(n, n, dtype=w.dtype)
    return P.index_put_((ei[1], ei[0]), w, accumulate=True)


def test_normalized_adjacency_is_the_gcn_propagation_of_torch_geometric():
    n = KARATE.num_nodes
    P = normalized_adjacency(KARATE.edge_index, n)
    assert torch.allclose(P, dense_from_gcn_norm(KARATE.edge_index, n), atol=1e-7)
    kept, _ = drop_edge(KARATE.edge_index, 0.5, generator=gen(0))
    assert torch.allclose(normalized_adjacency(kept, n), dense_from_gcn_norm(kept, n), atol=1e-7)
    deg = KARATE.degrees.double()
    P64 = normalized_adjacency(KARATE.edge_index, n, dtype=torch.float64)
    assert torch.allclose(P64.diagonal(), 1 / (1 + deg))
    assert torch.allclose(P64, P64.T)
    rw = normalized_adjacency(KARATE.edge_index, n, normalization="rw", dtype=torch.float64)
    assert torch.allclose(rw.sum(1), torch.ones(n, dtype=torch.float64))
    assert torch.allclose(rw.diagonal(), P64.diagonal())
    isolated = normalized_adjacency(torch.zeros(2, 0, dtype=torch.int64), 3)
    assert torch.equal(isolated, torch.eye(3))


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((KARATE.edge_index, 10), {}, ValueError, r"^edge_index must hold node ids in \[0, num_nodes\)"),
    ((KARATE.edge_index, 0), {}, ValueError, r"^num_nodes must be a positive int"),
    ((KARATE.edge_index, True), {}, TypeError, r"^num_nodes must be a positive int"),
    ((KARATE.edge_index, 34.0), {}, TypeError, r"^num_nodes must be a positive int"),
    ((KARATE.edge_index, 34), {"normalization": "left"}, ValueError, r"^normalization must be 'sym' or 'rw'"),
    ((KARATE.edge_index, 34), {"dtype": torch.int64}, TypeError, r"^dtype must be a floating torch dtype"),
    ((torch.tensor([[0, 1], [0, 0]]), 2), {}, ValueError, r"^edge_index must not contain self-loops"),
    ((KARATE.edge_index.float(), 34), {}, TypeError, r"^edge_index must have an integer dtype"),
])
def test_normalized_adjacency_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        normalized_adjacency(*args, **kwargs)


def test_dirichlet_energy_is_the_trace_form_and_vanishes_on_the_smooth_subspace():
    n = KARATE.num_nodes
    x = torch.randn(n, 3, dtype=torch.float64, generator=gen(0))
    P = normalized_adjacency(KARATE.edge_index, n, dtype=torch.float64)
    trace = torch.trace(x.T @ (torch.eye(n, dtype=torch.float64) - P) @ x)
    assert torch.allclose(dirichlet_energy(x, KARATE.edge_index), trace)
    smooth = (1 + KARATE.degrees.double()).sqrt()[:, None] * torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    assert float(dirichlet_energy(smooth, KARATE.edge_index)) == pytest.approx(0.0, abs=1e-12)
    assert float(dirichlet_energy(smooth, KARATE.edge_index, normalized=False)) > 1.0
    const = torch.ones(n, 2, dtype=torch.float64)
    assert float(dirichlet_energy(const, KARATE.edge_index, normalized=False)) == 0.0
    plain = sum(((x[i] - x[j]) ** 2).sum() for i, j in KARATE.edge_index.T.tolist()) / n
    assert torch.allclose(dirichlet_energy(x, KARATE.edge_index, normalized=False), plain)
    # propagation by P never raises the normalized energy (its eigenvalues lie in (-1, 1])
    h = x
    for _ in range(5):
        nxt = P @ h
        assert float(dirichlet_energy(nxt, KARATE.edge_index)) <= float(dirichlet_energy(h, KARATE.edge_index))
        h = nxt


def test_dirichlet_energy_gradient_and_bad_input():
    x = torch.randn(5, 2, requires_grad=True, generator=gen(0))
    dirichlet_energy(x, path_graph()).backward()
    assert x.grad is not None
    for bad, exc, match in [
        ((torch.ones(5), path_graph()), ValueError, r"^x must have shape \(num_nodes, num_features\)"),
        ((torch.ones(0, 2), torch.zeros(2, 0, dtype=torch.int64)), ValueError, r"^x must have shape"),
        ((torch.ones(5, 2, dtype=torch.int64), path_graph()), TypeError, r"^x must have a floating dtype"),
        ((torch.ones(3, 2), path_graph()), ValueError, r"^edge_index must hold node ids in \[0, num_nodes\)"),
        ((torch.ones(5, 2), torch.tensor([[0, 1], [0, 0]])), ValueError, r"^edge_index must not contain self-loops"),
        ((torch.ones(5, 2), [[0, 1], [1, 0]]), TypeError, r"^edge_index must be a torch.Tensor"),
    ]:
        with pytest.raises(exc, match=match):
            dirichlet_energy(*bad)
    with pytest.raises(TypeError, match=r"^normalized must be a bool"):
        dirichlet_energy(torch.ones(5, 2), path_graph(), normalized=None)


def test_mean_pairwise_distance():
    x = torch.randn(7, 3, dtype=torch.float64, generator=gen(0))
    brute = sum((x[i] - x[j]).norm() for i in range(7) for j in range(i + 1, 7)) / 21
    assert torch.allclose(mean_pairwise_distance(x), brute)
    assert float(mean_pairwise_distance(torch.ones(4, 2))) == 0.0
    for bad, exc, match in [(torch.ones(1, 3), ValueError, r"^x must have shape .* num_nodes >= 2"),
                            (torch.ones(3), ValueError, r"^x must have shape"),
                            (torch.ones(3, 2, dtype=torch.int32), TypeError, r"^x must have a floating dtype"),
                            (None, TypeError, r"^x must be a torch.Tensor")]:
        with pytest.raises(exc, match=match):
            mean_pairwise_distance(bad)


def test_karate_club_and_block_model():
    g = KARATE
    assert isinstance(g, Graph) and g.num_nodes == 34 and g.edge_index.shape == (2, 156)
    assert g.num_classes == 2 and g.labels.bincount().tolist() == [17, 17]
    assert int(g.degrees.sum()) == 156 and g.degrees[0] == 16 and g.degrees[33] == 17
    db._validation.check_symmetric_edges(g.edge_index)
    a = stochastic_block_model([30, 30, 30], 0.2, 0.02, seed=3)
    b = stochastic_block_model([30, 30, 30], 0.2, 0.02, seed=3)
    assert torch.equal(a.edge_index, b.edge_index) and a.labels.tolist() == [0] * 30 + [1] * 30 + [2] * 30
    same_block = a.labels[a.edge_index[0]] == a.labels[a.edge_index[1]]
    assert float(same_block.double().mean()) > 0.7  # homophily: 0.2 * 29 vs 0.02 * 60 expected neighbours
    with pytest.raises(ValueError, match=r"^sizes\[1\] must be a positive int"):
        stochastic_block_model([3, 0], 0.5, 0.1)
    with pytest.raises(TypeError, match=r"^sizes must be a non-empty sequence"):
        stochastic_block_model("30", 0.5, 0.1)
    with pytest.raises(ValueError, match=r"^p_out must be in \[0, 1\]"):
        stochastic_block_model([3, 3], 0.5, 1.1)
    with pytest.raises(TypeError, match=r"^seed must be an int"):
        stochastic_block_model([3, 3], 0.5, 0.1, seed=None)


# --------------------------------------------------------------------------------------------
# Monte Carlo: the samplers against the derived closed forms, with power


def test_drop_edge_keeps_each_edge_with_probability_one_minus_p_independently():
    """20,000 draws on the karate club: the fraction of kept edges is 1 - p (not p), and two given
    edges are kept together with probability (1 - p)^2 (independent masks), for db and for PyG."""
    p, n = 0.3, 20_000
    g = gen(11)
    ours = torch.stack([drop_edge(KARATE.edge_index, p, generator=g)[1] for _ in range(n)]).double()
    torch.manual_seed(11)
    theirs = torch.stack([pyg_utils.dropout_edge(KARATE.edge_index, p)[1] for _ in range(n)]).double()
    for masks in (ours, theirs):
        check_agrees_and_rejects(estimate_mean(masks[:, 0]), 1 - p, wrong={"keep with p": p})
        both = masks[:, 0] * masks[:, 1]  # the two directions of the edge 0 - 1
        check_agrees_and_rejects(estimate_mean(both), (1 - p) ** 2, wrong={"one draw per edge pair": 1 - p})


def test_drop_edge_force_undirected_keeps_an_edge_pair_with_probability_one_minus_p():
    p, n = 0.3, 5_000
    g = gen(12)
    counts = []
    for _ in range(n):
        kept, _ = drop_edge(KARATE.edge_index, p, force_undirected=True, generator=g)
        counts.append(((kept[0] == 0) & (kept[1] == 1)).any().item() and ((kept[0] == 1) & (kept[1] == 0)).any().item())
    check_agrees_and_rejects(estimate_mean(torch.tensor(counts, dtype=torch.float64)), 1 - p,
                             wrong={"independent directions": (1 - p) ** 2})


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_simulated_self_weight_agrees_with_the_derived_mean(p):
    """The self-loop weight 1/(1 + deg) of the renormalized adjacency of karate-club samples,
    for the highest-degree node (node 33, d = 17) and a node of degree 2 (node 9),
    over 10,000 DropEdge draws: it agrees with (1 - p^(d+1))/((d+1)(1-p)), and both the full
    graph's 1/(1+d) and the plug-in 1/(1+(1-p)d) are rejected."""
    n = 10_000
    g = gen(int(100 * p))
    nodes = {33: 17, 9: 2}
    deg = KARATE.degrees
    assert all(int(deg[v]) == d for v, d in nodes.items())
    samples = {v: [] for v in nodes}
    for _ in range(n):
        kept, _ = drop_edge(KARATE.edge_index, p, generator=g)
        kept_deg = torch.bincount(kept[1], minlength=KARATE.num_nodes)
        for v in nodes:
            samples[v].append(1.0 / (1.0 + float(kept_deg[v])))
    for v, d in nodes.items():
        subs = {W.p: sp.nsimplify(p), node_degree: d}
        truth = float(W.mean.subs(subs))
        wrong = {"full graph 1/(1+d)": float(W.undropped.subs(subs)), "plug-in 1/(1+(1-p)d)": float(W.plug_in.subs(subs))}
        check_agrees_and_rejects(estimate_mean(torch.tensor(samples[v], dtype=torch.float64)), truth, wrong)


def test_simulated_random_walk_neighbour_weight():
    """The weight of one neighbour in D^-1 (A + I) after DropEdge (node 9, d = 2, p = 0.5, 200,000
    draws of its two edges): it agrees with the derived E[m_j/(1+K)]; the full graph's 1/(1+d) and
    the naive (1 - p)/(1 + (1 - p) d) are rejected."""
    p, d, n = 0.5, 2, 200_000
    masks = (torch.rand(n, d, generator=gen(21), dtype=torch.float64) >= p).double()
    w = masks[:, 0] / (1 + masks.sum(1))
    subs = {W.p: sp.Rational(1, 2), node_degree: d}
    check_agrees_and_rejects(estimate_mean(w), float(W.neighbour_mean.subs(subs)),
                             wrong={"1/(1+d)": 1 / (1 + d), "(1-p)/(1+(1-p)d)": (1 - p) / (1 + (1 - p) * d)})


def test_simulated_drop_node_fraction_and_mean():
    """DropNode on 100,000 nodes: the fraction of zeroed rows is p (not 1 - p) and the mean of a
    feature is kept (the unscaled version's (1 - p) x is rejected)."""
    p, n = 0.3, 100_000
    x = torch.full((n, 2), 2.0, dtype=torch.float64)
    y = drop_node(x, p, generator=gen(31))
    dropped = (y[:, 0] == 0).double()
    check_agrees_and_rejects(estimate_mean(dropped), p, wrong={"drop with 1 - p": 1 - p})
    check_agrees_and_rejects(estimate_mean(y[:, 1]), 2.0, wrong={"no rescaling": 2.0 * (1 - p)})


# --------------------------------------------------------------------------------------------
# review of chapter 12: conventions at the edges of the domain, and bad input found by an outside user


def test_drop_edge_mask_is_boolean_when_nothing_is_dropped_even_with_force_undirected():
    """A convention shared with PyTorch Geometric, documented here: with p = 0 or training=False the
    second output is a boolean mask of True over the input's columns (in their order), also with
    force_undirected=True, where a positive p returns an int64 index tensor of the kept columns."""
    edge_index = KARATE.edge_index
    for kwargs in (dict(p=0.0), dict(p=0.4, training=False)):
        ours, mask = drop_edge(edge_index, force_undirected=True, **kwargs)
        theirs, mask_pyg = pyg_utils.dropout_edge(edge_index, force_undirected=True, **kwargs)
        assert mask.dtype == mask_pyg.dtype == torch.bool and bool(mask.all()) and mask.shape == (156,)
        assert torch.equal(ours, theirs) and torch.equal(ours, edge_index)
    _, ids = drop_edge(edge_index, 1e-9, force_undirected=True, generator=gen(0))
    assert ids.dtype == torch.int64 and ids.shape == (156,)


def test_drop_edge_int32_edge_index_matches_torch_geometric():
    small = KARATE.edge_index.to(torch.int32)
    for force in (False, True):
        torch.manual_seed(3)
        theirs = pyg_utils.dropout_edge(small, 0.4, force_undirected=force)
        torch.manual_seed(3)
        ours = drop_edge(small, 0.4, force_undirected=force)
        assert ours[0].dtype == theirs[0].dtype == torch.int32
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1]) and ours[1].dtype == theirs[1].dtype


def test_symmetry_check_names_the_right_edge_for_int32_ids_beyond_46340():
    # row * n + col overflowed int32 for n > 46,340 and the message named nodes like -35897
    one_way = torch.tensor([[0, 1, 50_000], [1, 0, 49_999]], dtype=torch.int32)
    with pytest.raises(ValueError, match=r"for example 50000 -> 49999 has no matching 49999 -> 50000$"):
        drop_edge(one_way, 0.3, force_undirected=True)
    both = torch.tensor([[0, 1, 50_000, 49_999], [1, 0, 49_999, 50_000]], dtype=torch.int32)
    assert drop_edge(both, 0.3, force_undirected=True, generator=gen(0))[0].dtype == torch.int32


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_mean_pairwise_distance_in_half_precision(dtype):
    # was NotImplementedError: "pdist" not implemented for 'Half'
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]], dtype=dtype)
    out = mean_pairwise_distance(x)
    assert out.dtype == dtype and float(out) == pytest.approx(10 / 3, rel=1e-2)


def test_block_model_accepts_numpy_integers_and_refuses_unordered_sizes():
    ref = stochastic_block_model([3, 4], 0.5, 0.1, seed=2)
    for sizes, seed in [(np.array([3, 4]), 2), ((np.int64(3), 4), np.int64(2)), (torch.tensor([3, 4]), 2)]:
        g = stochastic_block_model(sizes, 0.5, 0.1, seed=seed)
        assert torch.equal(g.edge_index, ref.edge_index) and torch.equal(g.labels, ref.labels)
    # a set or a dict has no order of blocks (the labels would follow the iteration order): refused
    for sizes in ({3, 4}, {3: 1, 4: 1}, np.ones((2, 2), dtype=int), []):
        with pytest.raises(TypeError, match=r"^sizes must be a non-empty sequence of positive ints"):
            stochastic_block_model(sizes, 0.5, 0.1)
    with pytest.raises(ValueError, match=r"^seed must be an int >= 0, got -1"):
        stochastic_block_model([3, 3], 0.5, 0.1, seed=-1)
    with pytest.raises(TypeError, match=r"^seed must be an int >= 0"):
        stochastic_block_model([3, 3], 0.5, 0.1, seed=1.0)
