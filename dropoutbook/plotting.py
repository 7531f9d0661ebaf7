"""One figure style for the whole book."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

from ._validation import check_int

__all__ = ["BOOK_STYLE", "use_book_style", "figure"]

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
