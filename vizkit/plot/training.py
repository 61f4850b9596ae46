"""Training curves and plain text panels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def plot_history(
    history: Mapping[str, Sequence[float]],
    *,
    metrics: Sequence[str] = ("loss", "accuracy"),
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Per-epoch training curves, one panel per metric, validation dashed beside training.

    Parameters
    ----------
    history : mapping
        ``{"loss": [...], "val_loss": [...], ...}`` as in ``keras.callbacks.History.history``
        or ``models.TrainResult.history``.
    metrics : sequence of str
        Metrics to draw; those missing from ``history`` are skipped.
    """
    present = [m for m in metrics if m in history]
    if not present:
        raise ValueError(
            f"history has none of the metrics {list(metrics)}; it has {sorted(history)}"
        )
    fig = fig if fig is not None else Figure(figsize=(4 * len(present), 3))
    axes = np.atleast_1d(fig.subplots(1, len(present)))
    for ax, key in zip(axes, present, strict=True):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], "o-", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_message(text: str, *, fig: Figure | None = None) -> Figure:
    """A small figure that only says ``text`` (for a report slot with nothing to draw)."""
    fig = fig if fig is not None else Figure(figsize=(4, 1))
    fig.text(0.5, 0.5, text, ha="center", va="center")
    return fig
