"""Inline display of vizkit's figures in Jupyter.

vizkit draws on plain :class:`matplotlib.figure.Figure` objects, never through pyplot, so that it
leaves no global state behind. IPython, however, learns to show a ``Figure`` as a picture only
when pyplot loads the inline backend (``matplotlib_inline`` registers its PNG formatter then);
until that happens a returned figure shows as ``<Figure size 640x480 with 2 Axes>``. Importing
:mod:`vizkit.plot` inside a notebook kernel registers the same kind of PNG formatter for
``Figure`` unless the kernel already has an image formatter for it (so ``%matplotlib inline``,
``%config InlineBackend.figure_formats`` and ipympl keep precedence), and one for ``Axes`` (the
``plot_*`` functions that draw one panel return it), which shows the Axes' figure.
"""

from __future__ import annotations

import io
import sys

from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Any of these registered for Figure means the kernel already shows figures as pictures.
_IMAGE_TYPES = ("image/png", "image/svg+xml", "image/jpeg", "application/pdf")


def enable_inline(shell=None) -> bool:
    """Let IPython display matplotlib ``Figure`` and ``Axes`` objects as PNG pictures.

    Parameters
    ----------
    shell : IPython.core.interactiveshell.InteractiveShell, optional
        Default: the running shell, if IPython is already imported (this function never imports
        IPython itself).

    Returns
    -------
    bool
        True when the formatters were registered; False outside IPython, in a front end that
        does not show pictures (the terminal), or when the shell already shows figures as
        pictures.
    """
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is None:
            return False
    display = getattr(shell, "display_formatter", None)
    if display is None or "image/png" not in display.active_types:
        return False
    for mime in _IMAGE_TYPES:
        formatter = display.formatters.get(mime)
        if formatter is None:
            continue
        try:
            formatter.lookup_by_type(Figure)
        except KeyError:
            continue
        return False
    png = display.formatters["image/png"]
    png.for_type(Figure, figure_png)
    png.for_type(Axes, lambda ax: figure_png(_root_figure(ax)))
    return True


def figure_png(fig: Figure) -> bytes | None:
    """``fig`` as PNG bytes, cropped to its contents (None for a figure with nothing drawn)."""
    if not fig.axes and not fig.texts and not fig.images:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _root_figure(ax: Axes) -> Figure:
    """The Figure holding ``ax``, also when the Axes sits in a SubFigure."""
    fig = ax.figure
    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig
