"""Drawing for vizkit results; the only part of vizkit that imports matplotlib.

Every function draws on a :class:`matplotlib.figure.Figure` (never pyplot's global state), takes
the caller's ``fig`` or ``ax`` as a keyword, returns it, and never shows anything. Save with
:func:`save_figure`.
"""

from .attention import plot_attention
from .diagnosis import plot_diagnosis
from .grids import (
    plot_feature_maps,
    plot_filters,
    plot_grid,
    plot_layers_overview,
    plot_top_activating,
)
from .io import save_figure
from .notebook import enable_inline
from .overlays import plot_heatmap, plot_hypercolumn
from .training import plot_history, plot_message
from .trust import plot_curves, plot_layer_similarity, plot_randomization

# Inside a Jupyter kernel, returned figures display as pictures (a no-op elsewhere).
enable_inline()

__all__ = [
    "plot_attention",
    "plot_curves",
    "plot_diagnosis",
    "plot_feature_maps",
    "plot_filters",
    "plot_grid",
    "plot_heatmap",
    "plot_history",
    "plot_hypercolumn",
    "plot_layer_similarity",
    "plot_layers_overview",
    "plot_message",
    "plot_randomization",
    "plot_top_activating",
    "save_figure",
]
