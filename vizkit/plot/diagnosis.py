"""A picture of :func:`vizkit.diagnose`: problem channels and sparsity per layer."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

COLOURS = {"dead": "tab:red", "constant": "tab:orange", "input-like": "tab:purple"}


def plot_diagnosis(diagnosis, *, fig: Figure | None = None) -> Figure:
    """Two panels: the fraction of dead / constant / input-like channels per layer (stacked
    bars), and each layer's sparsity (fraction of zero activations).

    Returns
    -------
    Figure
        Two Axes, layers along the x axis in model order.
    """
    reports = list(diagnosis.layers)
    if not reports:
        raise ValueError("diagnosis has no layers to draw")
    if fig is None:
        fig = Figure(figsize=(max(6.0, 0.6 * len(reports) + 2), 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(reports))
    base = np.zeros(len(reports))
    for label, attr in (("dead", "dead"), ("constant", "constant"), ("input-like", "input_like")):
        frac = np.array([len(getattr(r, attr)) / max(r.channels, 1) for r in reports])
        top.bar(x, frac, bottom=base, color=COLOURS[label], label=label)
        base += frac
    top.set_ylabel("fraction of channels")
    top.set_ylim(0, 1)
    top.legend(loc="upper right", fontsize=8)
    top.set_title(f"{diagnosis.model_name}: {diagnosis.n_images} images")
    bottom.bar(x, [r.sparsity for r in reports], color="tab:gray")
    bottom.set_ylabel("sparsity (zeros)")
    bottom.set_ylim(0, 1)
    bottom.set_xticks(x, [r.path for r in reports], rotation=60, ha="right", fontsize=8)
    return fig
