"""One figure style for the whole book."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

from ._validation import check_int

__all__ = ["BOOK_STYLE", "use_book_style", "figure", "reliability_plot"]

#: Matplotlib settings shared by every figure of the book.
BOOK_STYLE = {
    "figure.dpi": 100,  # the size on the page: 100 pixels per inch of figure
    "savefig.dpi": 200,  # files written with savefig: twice as many pixels, sharp on high-density screens
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "svg.hashsalt": "dropoutbook",  # stable SVG ids from run to run
}


#: How a notebook shows a figure: "retina" is a PNG with twice the pixels of ``figure.dpi``, shown
#: at the same size (its output metadata holds the half width and height), so figures are sharp on
#: high-density screens. nbval does not compare PNG data, so this does not touch the strict check.
INLINE_FORMAT = "retina"


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib's global settings, and in a notebook show figures as
    2x PNG (:data:`INLINE_FORMAT`)."""
    mpl.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # matplotlib without IPython: nothing is shown inline
        return
    shell = get_ipython()
    if shell is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats(INLINE_FORMAT)


def figure(ncols: int = 1, *, width: float = 4.2, height: float = 3.2, **kwargs):
    """A figure with ``ncols`` side-by-side axes in the book's style.

    Args:
        ncols: number of axes side by side, a positive int.
        width: width of each axes' share of the figure, in inches.
        height: height of the figure, in inches.
        **kwargs: passed on to ``matplotlib.pyplot.subplots`` (e.g. ``sharey=True``).

    Returns:
        ``(fig, axes)``, as ``plt.subplots`` returns them.
    """
    ncols = check_int(ncols, "ncols", minimum=1)
    use_book_style()
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained", **kwargs)
    return fig, axes


def reliability_plot(ax, diagram, *, label: str | None = None, color: str = "C0", marker: str = "o"):
    """Draw a reliability diagram (chapter 5, "Monte Carlo dropout", section "Calibration").

    Plots each non-empty bin's accuracy against its mean confidence, with the marker area growing
    with the bin's count, joined by a line, and the diagonal of perfect calibration (drawn once per
    axes, dashed grey). Axis labels and limits [0, 1] are set.

    Args:
        ax: a matplotlib ``Axes``.
        diagram: a :class:`~dropoutbook.ReliabilityDiagram`, as returned by
            :func:`~dropoutbook.reliability_diagram`.
        label: legend label of the curve.
        color: matplotlib colour of the curve.
        marker: matplotlib marker of the bins.

    Returns:
        ``ax``.
    """
    from .calibration import ReliabilityDiagram

    if not isinstance(diagram, ReliabilityDiagram):
        raise TypeError(f"diagram must be a dropoutbook.ReliabilityDiagram (from reliability_diagram), "
                        f"got {type(diagram).__name__}")
    filled = diagram.count > 0
    conf = diagram.confidence[filled].numpy()
    acc = diagram.accuracy[filled].numpy()
    share = (diagram.count[filled].double() / diagram.count.sum()).numpy()
    if not getattr(ax, "_reliability_diagonal", False):
        ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration")
        ax._reliability_diagonal = True
    ax.plot(conf, acc, "-", color=color, lw=1.2)
    ax.scatter(conf, acc, s=10 + 300 * share, color=color, marker=marker, label=label, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max. probability)")
    ax.set_ylabel("accuracy")
    return ax
