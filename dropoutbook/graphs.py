r"""Chapter 12, "Dropout on graphs": DropEdge, DropNode, the GCN propagation, and over-smoothing.

Graphs are given as an ``edge_index``, the convention of PyTorch Geometric :cite:`fey2019fast`:
an integer tensor of shape ``(2, E)`` whose column :math:`k` is the directed edge
``edge_index[0, k] -> edge_index[1, k]``; an undirected graph lists every edge in both directions.
As everywhere in the library, ``p`` is a *drop* probability.

* :func:`drop_edge` -- DropEdge :cite:`rong2020dropedge`: every edge is removed with probability
  :math:`p`, with the conventions of ``torch_geometric.utils.dropout_edge``.
* :func:`drop_node` -- DropNode :cite:`feng2020graph`: every node's whole feature row is zeroed
  with probability :math:`p`, the survivors scaled by :math:`1/(1-p)`.
* :func:`normalized_adjacency` -- the renormalized propagation matrix of a GCN
  :cite:`kipf2017semi`, :math:`\hat D^{-1/2}(A + I)\hat D^{-1/2}` (or :math:`\hat D^{-1}(A + I)`).
* :func:`dirichlet_energy`, :func:`mean_pairwise_distance` -- two measures of over-smoothing.
* :class:`Graph`, :func:`karate_club`, :func:`stochastic_block_model` -- small graphs made by
  networkx (no download), for the chapter's checks and experiment.

The library does not need PyTorch Geometric; the chapter uses its layers when it is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validation import (
    check_bool,
    check_edge_index,
    check_float_tensor,
    check_generator,
    check_int_in_range,
    check_positive_int,
    check_positive_int_sequence,
    check_probability,
    check_symmetric_edges,
)

__all__ = [
    "drop_edge", "drop_node", "normalized_adjacency", "dirichlet_energy", "mean_pairwise_distance",
    "Graph", "karate_club", "stochastic_block_model",
]


def drop_edge(edge_index: torch.Tensor, p: float = 0.5, *, force_undirected: bool = False,
              training: bool = True,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""DropEdge: remove every edge of the graph independently with probability ``p``.

    .. math:: \tilde A_{ij} = m_{ij} A_{ij}, \qquad m_{ij} \sim \mathrm{Bernoulli}(1 - p),

    with a fresh mask on every call (Rong et al. :cite:`rong2020dropedge` draw one per epoch; a
    call per training step is the common practice). Rong et al. remove a random subset of a
    *fixed size*, a fraction :math:`p` of the edges; the independent masks here are the convention
    of PyTorch Geometric, whose number of kept edges is binomial. The kept edges are *not* rescaled: a GCN
    renormalizes the adjacency of the sampled graph (:func:`normalized_adjacency`). The degree
    of a node of degree :math:`d` then follows a binomial distribution
    :math:`\mathrm{Bin}(d, 1-p)`, and the self-loop weight of the renormalized adjacency has the
    mean :math:`\mathbb E[1/(1+\deg)] = (1 - p^{d+1}) / ((d+1)(1-p))`, larger than the
    :math:`1/(1+d)` of the full graph (chapter 12, section "Derivation").

    Conventions of ``torch_geometric.utils.dropout_edge``, kept here:

    * it returns ``(edge_index, edge_mask)``; ``edge_mask`` is a boolean tensor of length ``E``
      (``True`` for a kept edge), so that edge attributes are selected with ``attr[edge_mask]``;
    * an edge is kept when a float32 uniform is ``>= p``, one uniform per column, so that with
      the same seed of the global generator both functions keep the same edges;
    * ``force_undirected=True`` decides each undirected edge once, by the uniform of its column
      with ``row < col``, and returns the kept edges in both directions: first the kept columns
      with ``row < col``, then the same edges flipped. ``edge_mask`` is then the tensor of the
      *column indices* (int64) of the returned edges' ``row < col`` originals, repeated twice;
    * with ``training=False`` or ``p = 0`` every edge is kept, in the input's order, and
      ``edge_mask`` is a boolean tensor of ``True`` -- also with ``force_undirected=True``, where
      it is otherwise an index tensor.

    Differences, on purpose (each is tested): the returned ``edge_index`` is always a new tensor
    (PyTorch Geometric returns its input itself when nothing is dropped); with
    ``force_undirected=True`` a graph that does not list every edge in both directions raises a
    ``ValueError`` (PyTorch Geometric silently loses an edge listed only as ``row > col``), and a
    self-loop is kept or dropped by its own uniform and returned once (PyTorch Geometric returns
    a kept self-loop twice).

    Args:
        edge_index: integer tensor of shape ``(2, E)``; it is never modified.
        p: drop probability of an edge, in [0, 1].
        force_undirected: drop both directions of an undirected edge together.
        training: drop edges if ``True``; keep them all otherwise.
        generator: optional ``torch.Generator`` for reproducible draws.

    Returns:
        ``(edge_index, edge_mask)`` as described above; ``edge_index`` has the dtype and device of
        the input.

    Shape:
        ``edge_index``: ``(2, E)``; output ``(2, E')`` with ``E'`` the number of kept edges.

    See chapter 12, "Dropout on graphs"; :cite:`rong2020dropedge`.

    Examples:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> kept, mask = drop_edge(edge_index, 0.5, generator=torch.Generator().manual_seed(0))
        >>> mask.dtype, kept.shape[0], torch.equal(kept, edge_index[:, mask])
        (torch.bool, 2, True)
        >>> kept, ids = drop_edge(edge_index, 0.5, force_undirected=True,
        ...                       generator=torch.Generator().manual_seed(0))
        >>> torch.equal(kept, torch.cat([edge_index[:, ids[:len(ids) // 2]],
        ...                              edge_index[:, ids[:len(ids) // 2]].flip(0)], dim=1))
        True
    """
    check_edge_index(edge_index)
    p = check_probability(p)
    check_bool(force_undirected, "force_undirected")
    check_bool(training, "training")
    check_generator(generator)
    if force_undirected:
        check_symmetric_edges(edge_index)
    n_edges = edge_index.shape[1]
    if not training or p == 0.0:
        return edge_index.clone(), torch.ones(n_edges, dtype=torch.bool, device=edge_index.device)
    row, col = edge_index[0], edge_index[1]
    keep = torch.rand(n_edges, generator=generator, dtype=torch.float32, device=edge_index.device) >= p
    if not force_undirected:
        return edge_index[:, keep], keep
    upper = (keep & (row < col)).nonzero().flatten()
    loops = (keep & (row == col)).nonzero().flatten()
    kept = edge_index[:, upper]
    out = torch.cat([kept, kept.flip(0), edge_index[:, loops]], dim=1)
    return out, torch.cat([upper, upper, loops])


def drop_node(x: torch.Tensor, p: float, *, training: bool = True,
              generator: torch.Generator | None = None) -> torch.Tensor:
    r"""DropNode: zero the whole feature row of every node with probability ``p``; scale the others by :math:`1/(1-p)`.

    .. math:: \tilde x_i = \frac{\epsilon_i}{1-p}\, x_i, \qquad \epsilon_i \sim \mathrm{Bernoulli}(1-p),

    one draw per node (row), shared by all its features, so that
    :math:`\mathbb E[\tilde X] = X` (the form of Feng et al.'s GRAND :cite:`feng2020graph`). It is
    inverted dropout (chapter 1) with one mask entry per row. Unlike DropEdge it leaves the graph
    intact: a dropped node still passes on the messages of its neighbours. (PyTorch Geometric's
    ``dropout_node`` is a different operation: it removes the edges of dropped nodes.) With
    ``p = 1`` the output is zero and so is the gradient, as with ``torch.nn.functional.dropout``.

    Args:
        x: floating-point node features of shape ``(N, ...)``, one row per node, ``N >= 1`` and at
            least two dimensions; it is never modified.
        p: drop probability of a node, in [0, 1].
        training: drop rows if ``True``; return a copy of ``x`` otherwise.
        generator: optional ``torch.Generator`` for reproducible draws.

    Shape:
        Input ``(N, F, ...)``; output of the same shape, dtype, device and memory layout.

    See chapter 12, "Dropout on graphs"; :cite:`feng2020graph`.

    Examples:
        >>> y = drop_node(torch.ones(5, 3), 0.5, generator=torch.Generator().manual_seed(0))
        >>> [sorted(set(row.tolist())) for row in y]
        [[0.0], [2.0], [0.0], [0.0], [0.0]]
    """
    check_float_tensor(x)
    p = check_probability(p)
    check_bool(training, "training")
    check_generator(generator)
    if x.dim() < 2:
        raise ValueError(f"x must have shape (num_nodes, num_features, ...) (at least 2 dimensions), "
                         f"got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one node (row), got 0 rows")
    if not training or p == 0.0:
        return x.clone()
    u_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    mask = (torch.rand(shape, generator=generator, dtype=u_dtype, device=x.device) >= p).to(x.dtype)
    if p < 1.0:
        mask = mask.mul_(1.0 / (1.0 - p))
    return x * mask  # the product keeps the strides (memory layout) of x


def _degrees(edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype) -> torch.Tensor:
    """In-degree of every node (edges counted with multiplicity), the convention of a GCN's ``col`` scatter."""
    deg = torch.zeros(num_nodes, dtype=dtype, device=edge_index.device)
    return deg.index_add_(0, edge_index[1], torch.ones(edge_index.shape[1], dtype=dtype, device=edge_index.device))


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int, *, normalization: str = "sym",
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""The renormalized adjacency matrix of a graph convolutional network, as a dense matrix.

    With :math:`\hat A = A + I` (a self-loop added to every node) and :math:`\hat D` its diagonal
    degree matrix, :math:`\hat D_{ii} = 1 + \deg(i)`, Kipf and Welling's "renormalization trick"
    :cite:`kipf2017semi` propagates node features with

    .. math:: P_{\mathrm{sym}} = \hat D^{-1/2} \hat A \hat D^{-1/2}, \qquad
              (P_{\mathrm{sym}})_{ij} = \frac{\hat A_{ij}}{\sqrt{(1+\deg i)(1+\deg j)}},

    or, with ``normalization="rw"``, the random-walk form :math:`P_{\mathrm{rw}} = \hat D^{-1}\hat A`,
    whose rows sum to 1. In both the self-loop weight is :math:`P_{ii} = 1/(1 + \deg i)`. The
    matrix is that of ``torch_geometric.nn.GCNConv`` (``gcn_norm``): ``P[j, i]`` is the weight of
    the message ``i -> j``, degrees count the edges arriving at a node, and repeated edges count
    with their multiplicity. After :func:`drop_edge` the matrix is computed from the kept edges, as
    DropEdge prescribes. Dense: meant for the small graphs of the book.

    Args:
        edge_index: integer tensor of shape ``(2, E)`` with node ids in ``[0, num_nodes)``; it should
            not contain self-loops (one is added to every node).
        num_nodes: number of nodes :math:`N`, a positive int.
        normalization: ``"sym"`` or ``"rw"``.
        dtype: floating dtype of the result.

    Returns:
        The :math:`N \times N` matrix :math:`P`, with ``P @ X`` the propagated features.

    See chapter 12, "Dropout on graphs", section "The mechanism".

    Examples:
        >>> P = normalized_adjacency(torch.tensor([[0, 1], [1, 0]]), 3)
        >>> P.diagonal().tolist()
        [0.5, 0.5, 1.0]
    """
    num_nodes = check_positive_int(num_nodes, "num_nodes")
    check_edge_index(edge_index, num_nodes=num_nodes)
    if normalization not in ("sym", "rw"):
        raise ValueError(f"normalization must be 'sym' or 'rw', got {normalization!r}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    if edge_index.numel() and bool((edge_index[0] == edge_index[1]).any()):
        raise ValueError("edge_index must not contain self-loops: normalized_adjacency adds one to every node")
    loops = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
    src = torch.cat([edge_index[0], loops])
    dst = torch.cat([edge_index[1], loops])
    deg = _degrees(edge_index, num_nodes, torch.float64) + 1  # weights in float64, then rounded once
    weight = 1.0 / (deg[src] * deg[dst]).sqrt() if normalization == "sym" else 1.0 / deg[dst]
    P = torch.zeros(num_nodes, num_nodes, dtype=torch.float64, device=edge_index.device)
    return P.index_put_((dst, src), weight, accumulate=True).to(dtype)


def dirichlet_energy(x: torch.Tensor, edge_index: torch.Tensor, *, normalized: bool = True) -> torch.Tensor:
    r"""Dirichlet energy of node features on a graph: how much the features differ across edges.

    With ``normalized=True`` (Cai and Wang's definition :cite:`cai2020note`), for the
    renormalized degrees :math:`\hat d_i = 1 + \deg i`,

    .. math:: E(X) = \frac12 \sum_{(i, j) \in \mathcal E}
              \left\lVert \frac{x_i}{\sqrt{\hat d_i}} - \frac{x_j}{\sqrt{\hat d_j}} \right\rVert^2
              = \operatorname{tr}\left(X^\top (I - P_{\mathrm{sym}}) X\right),

    summed over the directed edges of ``edge_index`` (each undirected edge listed twice, hence the
    :math:`\frac12`). It is zero exactly when :math:`x_i \propto \sqrt{\hat d_i}` on every connected
    component, the subspace to which repeated GCN propagation drives the features
    (over-smoothing). With ``normalized=False`` it is
    :math:`\frac1N \sum_{(i,j) \in \mathcal E} \lVert x_i - x_j \rVert^2`, zero for equal features.

    Args:
        x: floating-point node features of shape ``(N, F)``; never modified.
        edge_index: integer tensor of shape ``(2, E)`` with ids in ``[0, N)``, without self-loops.
        normalized: use the degree-normalized energy (default) or the plain one.

    Returns:
        A 0-dimensional tensor (differentiable with respect to ``x``).

    See chapter 12, "Dropout on graphs", section "Experiment".

    Examples:
        >>> edge_index = torch.tensor([[0, 1], [1, 0]])
        >>> float(dirichlet_energy(torch.tensor([[1.0], [3.0]]), edge_index, normalized=False))
        4.0
    """
    check_float_tensor(x)
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (num_nodes, num_features) with num_nodes >= 1, got {tuple(x.shape)}")
    check_edge_index(edge_index, num_nodes=x.shape[0])
    check_bool(normalized, "normalized")
    row, col = edge_index[0], edge_index[1]
    if not normalized:
        return (x[row] - x[col]).pow(2).sum() / x.shape[0]
    if edge_index.numel() and bool((row == col).any()):
        raise ValueError("edge_index must not contain self-loops (the normalized energy adds them itself)")
    scale = (_degrees(edge_index, x.shape[0], x.dtype) + 1).rsqrt()
    y = x * scale[:, None]
    return 0.5 * (y[row] - y[col]).pow(2).sum()


def mean_pairwise_distance(x: torch.Tensor) -> torch.Tensor:
    r"""Mean Euclidean distance between the feature vectors of all pairs of distinct nodes.

    .. math:: \frac{2}{N(N-1)} \sum_{i < j} \lVert x_i - x_j \rVert_2 .

    It falls to zero when all node representations collapse to one vector, the extreme form of
    over-smoothing (the row-difference measure of Zhao and Akoglu :cite:`zhao2020pairnorm`, here
    averaged over the pairs of distinct nodes).

    Args:
        x: floating-point tensor of shape ``(N, F)`` with ``N >= 2``; never modified.

    Returns:
        A 0-dimensional tensor of the dtype of ``x`` (half precision is computed in float32).

    See chapter 12, "Dropout on graphs", section "Experiment".

    Examples:
        >>> float(mean_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]])))
        5.0
    """
    check_float_tensor(x)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"x must have shape (num_nodes, num_features) with num_nodes >= 2, got {tuple(x.shape)}")
    if x.dtype in (torch.float16, torch.bfloat16):  # torch.pdist has no half-precision kernel on CPU
        return torch.pdist(x.float()).mean().to(x.dtype)
    return torch.pdist(x).mean()


@dataclass(frozen=True)
class Graph:
    """An undirected graph with node labels: ``edge_index`` (both directions), ``labels``, ``num_nodes``.

    Made by :func:`karate_club` and :func:`stochastic_block_model` for chapter 12, "Dropout on graphs".
    """

    edge_index: torch.Tensor
    labels: torch.Tensor
    num_nodes: int

    @property
    def degrees(self) -> torch.Tensor:
        """The degree of every node (int64), the number of edges arriving at it."""
        return torch.bincount(self.edge_index[1], minlength=self.num_nodes)

    @property
    def num_classes(self) -> int:
        """The number of distinct labels, ``max(labels) + 1``."""
        return int(self.labels.max()) + 1


def _from_networkx(G, labels) -> Graph:
    edges = torch.tensor(sorted(G.edges()), dtype=torch.int64).reshape(-1, 2).T
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    order = torch.argsort(edge_index[0] * G.number_of_nodes() + edge_index[1])
    return Graph(edge_index[:, order].contiguous(), torch.as_tensor(labels, dtype=torch.int64), G.number_of_nodes())


def _networkx():
    try:
        import networkx
    except ImportError as exc:  # pragma: no cover - the book extra installs networkx
        raise ImportError("the graphs of chapter 12 are made by networkx: pip install 'dropoutbook[graphs]'") from exc
    return networkx


def karate_club() -> Graph:
    """Zachary's karate club :cite:`zachary1977information`: 34 members, 78 friendships, two factions.

    The label of a member is the faction it joined after the club split (0: "Mr. Hi", 1:
    "Officer"), as recorded in networkx's copy of the data set.

    See chapter 12, "Dropout on graphs".

    Examples:
        >>> g = karate_club()
        >>> g.num_nodes, g.edge_index.shape[1] // 2, int(g.degrees.max())
        (34, 78, 17)
    """
    nx = _networkx()
    G = nx.karate_club_graph()
    labels = [0 if G.nodes[v]["club"] == "Mr. Hi" else 1 for v in G.nodes]
    return _from_networkx(G, labels)


def stochastic_block_model(sizes, p_in: float, p_out: float, *, seed: int = 0) -> Graph:
    r"""A graph drawn from a stochastic block model: nodes in blocks, edges within a block with probability ``p_in``, between blocks with ``p_out``.

    Drawn by ``networkx.stochastic_block_model`` with the given seed; the label of a node is its
    block. With :math:`p_\text{in} > p_\text{out}` neighbours tend to share a label (homophily),
    the setting in which a GCN's averaging over neighbours helps.

    Args:
        sizes: the number of nodes of each block, an ordered sequence of positive ints (a list,
            tuple or 1-D integer array).
        p_in, p_out: edge probabilities within and between blocks, in [0, 1].
        seed: seed of the draw, an int >= 0 (numpy integers accepted).

    See chapter 12, "Dropout on graphs", section "Experiment".

    Examples:
        >>> g = stochastic_block_model([10, 10], 0.5, 0.05, seed=0)
        >>> g.num_nodes, g.labels.tolist()[8:12]
        (20, [0, 0, 1, 1])
    """
    sizes = check_positive_int_sequence(sizes, "sizes")
    p_in = check_probability(p_in, "p_in")
    p_out = check_probability(p_out, "p_out")
    seed = check_int_in_range(seed, "seed", 0)
    nx = _networkx()
    k = len(sizes)
    probs = [[p_in if a == b else p_out for b in range(k)] for a in range(k)]
    G = nx.stochastic_block_model(sizes, probs, seed=seed)
    labels = [block for block, size in enumerate(sizes) for _ in range(size)]
    return _from_networkx(G, labels)
