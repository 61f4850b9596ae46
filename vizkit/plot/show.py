"""One call for notebooks: a compact grid comparing explanation methods on a few images."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..registry import EXPLANATIONS
from .grids import TILE_INCHES
from .overlays import plot_heatmap

DEFAULT_METHODS = ("vanilla", "smoothgrad", "integrated", "gradcam")


def show(
    model,
    images,
    methods: str | Sequence[str] = DEFAULT_METHODS,
    *,
    target=None,
    labels=None,
    preprocess: Callable | str | None = None,
    options: Mapping[str, Mapping] | None = None,
    alpha: float = 0.5,
    fig: Figure | None = None,
) -> Figure:
    """Draw every image with its prediction and each explanation map of ``methods``.

    Rows are images (titled with the predicted class, its probability and the explained
    class); columns are the input and one map per method, drawn over the input.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like ``(N, H, W[, C])`` or one image
        uint8 or float in [0, 1]; a handful (each is a row).
    methods : str or sequence of str
        Names from :data:`vizkit.registry.EXPLANATIONS` (``"vanilla"``, ``"gradxinput"``,
        ``"smoothgrad"``, ``"integrated"``, ``"guided"``, ``"deconvnet"``, ``"gradcam"``,
        ``"gradcam++"``, ``"occlusion"``) or ``"all"``.
    target : int, sequence of int or None
        Class to explain per image (default: the predicted class).
    labels : "imagenet", path, list of str or None
        Class names for the titles (:func:`vizkit.preprocessing.load_labels`).
    preprocess : callable or str, optional
        Passed to every method (a :mod:`vizkit.preprocessing` preset name too).
    options : dict, optional
        Extra options per method, e.g. ``{"gradcam": {"layer": "conv3"}}``.
    alpha : float
        Opacity of the maps over the images.
    fig : Figure, optional
        An empty figure to draw on.

    Returns
    -------
    Figure
        ``N`` rows and ``1 + len(methods)`` columns.
    """
    from ..core.graph import Tap, map_batches, predict_fn
    from ..core.images import to_batch
    from ..methods.explain import explain
    from ..preprocessing import label_of, load_labels

    names = _methods(methods)
    extra = dict(options or {})
    unknown = sorted(set(extra) - set(names))
    if unknown:
        raise ValueError(f"options given for methods not shown: {unknown}; shown: {names}")
    x = to_batch(images, model)
    names_of = None if labels is None else load_labels(labels)
    probs = map_batches(predict_fn(model, Tap(preprocess=preprocess), x), [x])
    probs = np.asarray(probs, np.float32).reshape(len(x), -1)
    predicted = probs.argmax(axis=1)
    explained = predicted if target is None else np.broadcast_to(np.asarray(target), len(x))
    maps = {
        name: explain(
            model,
            x,
            name,
            [int(t) for t in explained],
            preprocess=preprocess,
            **extra.get(name, {}),
        )
        for name in names
    }
    ncols = 1 + len(names)
    if fig is None:
        fig = Figure(
            figsize=(min(TILE_INCHES * ncols, 24.0), min(TILE_INCHES * len(x) + 0.5, 24.0)),
            layout="constrained",
        )
    grid = fig.add_gridspec(len(x), ncols)
    for i, image in enumerate(x):
        shown = image[..., 0] if image.shape[-1] == 1 else np.clip(image[..., :3], 0.0, 1.0)
        ax = fig.add_subplot(grid[i, 0])
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        title = f"pred {label_of(names_of, predicted[i])} ({probs[i, predicted[i]]:.2f})"
        if target is not None:
            title += f"\nexplained {label_of(names_of, explained[i])}"
        ax.set_title(title, fontsize=9)
        for j, name in enumerate(names, start=1):
            cell = fig.add_subplot(grid[i, j])
            plot_heatmap(
                np.nan_to_num(maps[name][i]),
                image,
                ax=cell,
                alpha=alpha,
                colorbar=False,
            )
            if i == 0:  # the size of the row titles, so long method names fit a narrow column
                cell.set_title(name, fontsize=9)
    return fig


def _methods(methods) -> list[str]:
    if isinstance(methods, str):
        methods = list(EXPLANATIONS) if methods == "all" else [methods]
    names = list(dict.fromkeys(methods))
    unknown = [m for m in names if m not in EXPLANATIONS]
    if unknown or not names:
        raise ValueError(
            f"methods must be names from {list(EXPLANATIONS)} or 'all', got {unknown or names!r}"
        )
    return names
