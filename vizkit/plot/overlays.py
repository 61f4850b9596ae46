"""Heat maps drawn over their input image (saliency, Grad-CAM, occlusion, hypercolumns)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..core.checks import map_array, number_in


def plot_heatmap(
    heatmap,
    image=None,
    *,
    ax: Axes | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    colorbar: bool = True,
    title: str | None = None,
) -> Axes:
    """Draw a heat map ``(H, W)``, over ``image`` ``(H, W[, C])`` when given.

    The heat map is stretched over the image's extent when the sizes differ (e.g. a coarse
    Grad-CAM map on a full-size photo). Float images are clipped to [0, 1]; grayscale images are
    drawn in gray under the colour map.

    Returns
    -------
    Axes
        ``ax`` or the single Axes of a new :class:`matplotlib.figure.Figure`.
    """
    hm = map_array(heatmap, 2, "heatmap", "(H, W)")
    alpha = number_in(alpha, "alpha", 0.0, 1.0)
    if ax is None:
        ax = Figure(figsize=(4, 4), layout="constrained").add_subplot()
    extent = None
    if image is not None:
        img = _background(image)
        extent = (-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5)
        ax.imshow(img, cmap="gray", extent=extent, interpolation="nearest")
    im = ax.imshow(
        hm,
        cmap=cmap,
        alpha=alpha if image is not None else 1.0,
        extent=extent,
        interpolation="bilinear",
    )
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_hypercolumn(
    hypercolumn,
    image=None,
    *,
    ax: Axes | None = None,
    alpha: float = 0.6,
    cmap: str = "viridis",
    colorbar: bool = True,
    title: str | None = "hypercolumn average",
) -> Axes:
    """Draw one image's hypercolumns as their channel average (seed 001's figure).

    ``hypercolumn`` is ``(H, W, C_total)`` from :func:`vizkit.hypercolumns` (averaged over the
    channels here) or an ``(H, W)`` average already.
    """
    arr = np.asarray(hypercolumn, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr.mean(axis=-1)
    if arr.ndim != 2:
        raise ValueError(
            f"hypercolumn must be (H, W, C) or (H, W) for one image, got shape {arr.shape}"
        )
    return plot_heatmap(arr, image, ax=ax, alpha=alpha, cmap=cmap, colorbar=colorbar, title=title)


def _background(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] not in (3, 4)):
        raise ValueError(f"image must have shape (H, W) or (H, W, 1|3|4), got {img.shape}")
    return img if img.dtype == np.uint8 else np.clip(img.astype(np.float32), 0.0, 1.0)
