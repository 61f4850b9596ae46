"""Grids of small images: filters, feature maps, layer overviews, top-activating images."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..core.checks import positive_int

TILE_INCHES = 1.5


def plot_grid(
    images,
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "viridis",
    colorbar: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Draw images in a grid, one Axes per image (empty cells get no Axes).

    Parameters
    ----------
    images : array_like (N, H, W[, C]) or sequence of (H, W[, C]) arrays
        ``C`` is 1 (drawn with ``cmap``), 3 or 4 (drawn as colour, floats clipped to [0, 1]).
    titles : sequence of str, optional
        One per image.
    ncols : int, optional
        Columns; default ``ceil(sqrt(N))``.
    cmap : str
        Colour map for single-channel images.
    colorbar : bool
        Add one colour bar shared by every single-channel tile (they then share one scale,
        ``vmin``/``vmax`` or the overall range).
    vmin, vmax : float, optional
        Fixed colour scale for single-channel images (default: each tile's own range).
    title : str, optional
        Figure title.
    fig : Figure, optional
        An empty figure to draw on; a new :class:`matplotlib.figure.Figure` by default.

    Returns
    -------
    Figure
    """
    tiles = [_displayable(img, i) for i, img in enumerate(images)]
    if not tiles:
        raise ValueError("images is empty: nothing to draw")
    if titles is not None and len(titles) != len(tiles):
        raise ValueError(f"titles has {len(titles)} entries for {len(tiles)} images")
    ncols = _ncols(ncols, len(tiles))
    nrows = math.ceil(len(tiles) / ncols)
    fig = _figure(fig, ncols, nrows)
    if colorbar and vmin is None and vmax is None:
        gray = [t for t in tiles if t.ndim == 2]
        if gray:
            vmin = float(min(t.min() for t in gray))
            vmax = float(max(t.max() for t in gray))
    grid = fig.add_gridspec(nrows, ncols)
    axes, mappable = [], None
    for i, tile in enumerate(tiles):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        im = ax.imshow(tile, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
        if tile.ndim == 2:
            mappable = im
        axes.append(ax)
    if colorbar and mappable is not None:
        fig.colorbar(mappable, ax=axes, shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def plot_filters(
    filters_array: np.ndarray,
    *,
    ncols: int | None = None,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Draw :func:`vizkit.filters` output ``(n, kh, kw, c)`` in [0, 1]: gray or colour tiles.

    A 2-D ``(c_in, c_out)`` array (:func:`vizkit.methods.filters.channel_mixing` of a 1x1
    convolution) is drawn as one channel-mixing heat map instead: rows are input channels,
    columns output channels, blue negative and red positive weights on a scale symmetric
    around zero, with a colour bar.
    """
    arr = np.asarray(filters_array, dtype=np.float32)
    if arr.ndim == 2:
        return plot_channel_mixing(arr, title=title, fig=fig)
    if arr.ndim != 4:
        raise ValueError(
            f"filters_array must have shape (n, kh, kw, c), or (c_in, c_out) for a 1x1 "
            f"convolution's channel-mixing matrix, got {arr.shape}"
        )
    return plot_grid(
        arr, titles=titles, ncols=ncols, cmap="gray", vmin=0.0, vmax=1.0, title=title, fig=fig
    )


def plot_channel_mixing(
    matrix: np.ndarray, *, title: str | None = None, fig: Figure | None = None
) -> Figure:
    """Draw a 1x1 convolution's ``(c_in, c_out)`` weights as a heat map (see :func:`plot_filters`)."""
    arr = np.asarray(matrix, dtype=np.float32)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"matrix must have shape (c_in, c_out), got {arr.shape}")
    if fig is None:
        rows, cols = arr.shape
        # About 0.12 inch per channel, within [3, 12] inches per side.
        width = float(np.clip(0.12 * cols + 1.5, 3.0, 12.0))
        height = float(np.clip(0.12 * rows + 0.8, 3.0, 12.0))
        fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    peak = float(np.max(np.abs(arr))) or 1.0
    im = ax.imshow(
        arr, cmap="RdBu_r", vmin=-peak, vmax=peak, interpolation="nearest", aspect="auto"
    )
    ax.set_xlabel(f"output channel ({arr.shape[1]})")
    ax.set_ylabel(f"input channel ({arr.shape[0]})")
    fig.colorbar(im, ax=ax, shrink=0.8, label="weight")
    ax.set_title(title or "1x1 convolution: channel-mixing weights", fontsize=9)
    return fig


def plot_feature_maps(
    maps: np.ndarray,
    *,
    image_index: int = 0,
    max_maps: int | None = 64,
    ncols: int | None = None,
    cmap: str = "viridis",
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Draw the channels of one layer's maps, ``(H, W, C)`` or ``(N, H, W, C)`` (image ``image_index``).

    At most ``max_maps`` channels are drawn (``None`` for all), each titled with its index.
    """
    arr = _one_image(maps, image_index, "maps")
    channels = arr.shape[-1] if max_maps is None else min(arr.shape[-1], max_maps)
    tiles = np.moveaxis(arr[..., :channels], -1, 0)
    return plot_grid(
        tiles,
        titles=[str(c) for c in range(channels)],
        ncols=ncols,
        cmap=cmap,
        title=title,
        fig=fig,
    )


def plot_layers_overview(
    feature_maps_dict: dict,
    image_index: int = 0,
    *,
    channels: int = 8,
    cmap: str = "viridis",
    fig: Figure | None = None,
) -> Figure:
    """Several layers side by side: one column per layer, its first ``channels`` maps below.

    Like seed 001's InceptionV3 figure, this shows at a glance where maps become empty or stay
    copies of the input. Layers without a 4-D ``(N, H, W, C)`` output are skipped.
    """
    layers = {p: np.asarray(m) for p, m in feature_maps_dict.items() if np.ndim(m) == 4}
    if not layers:
        raise ValueError("feature_maps_dict has no 4-D (N, H, W, C) maps to draw")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    nrows = min(channels, max(m.shape[-1] for m in layers.values()))
    fig = _figure(fig, len(layers), nrows)
    grid = fig.add_gridspec(nrows, len(layers))
    for col, (path, maps) in enumerate(layers.items()):
        arr = _one_image(maps, image_index, f"feature maps of {path!r}")
        for row in range(min(nrows, arr.shape[-1])):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(arr[..., row], cmap=cmap, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(path.rsplit("/", 1)[-1], fontsize=8)
    return fig


def plot_top_activating(
    images,
    indices=None,
    scores=None,
    *,
    crops=None,
    ncols: int | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Draw the result of :func:`vizkit.top_activating`.

    Parameters
    ----------
    images : array_like (N, H, W[, C])
        The dataset the indices refer to, or (with ``indices=None``) the selected images.
    indices, scores : array_like, optional
        As returned by ``top_activating``; tiles are titled ``#index`` and the score.
    crops : TopCrops, optional
        Draw the receptive-field patches ``crops.images`` instead of the whole images.
    """
    if crops is not None:
        tiles = np.asarray(crops.images)
    elif indices is None:
        tiles = np.asarray(images)
    else:
        tiles = np.asarray(images)[np.asarray(indices, dtype=np.int64)]
    n = len(tiles)
    labels = [f"#{int(i)}" for i in indices] if indices is not None else [""] * n
    if scores is not None:
        labels = [f"{lab} {float(s):.3g}".strip() for lab, s in zip(labels, scores, strict=True)]
    titled = labels if (indices is not None or scores is not None) else None
    return plot_grid(tiles, titles=titled, ncols=ncols, cmap="gray", title=title, fig=fig)


# --------------------------------------------------------------------------------------------
def _displayable(img, i: int) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return arr.astype(np.float32)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return arr if arr.dtype == np.uint8 else np.clip(arr.astype(np.float32), 0.0, 1.0)
    raise ValueError(
        f"image {i} has shape {arr.shape}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
    )


def _one_image(maps, image_index: int, name: str) -> np.ndarray:
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim == 4:
        if not -len(arr) <= image_index < len(arr):
            raise ValueError(f"image_index {image_index} is out of range for {len(arr)} images")
        arr = arr[image_index]
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (H, W, C) or (N, H, W, C), got {arr.shape}")
    return arr


def _ncols(ncols, n: int) -> int:
    if ncols is None:
        return max(1, math.ceil(math.sqrt(n)))
    return min(positive_int(ncols, "ncols"), n)


def _figure(fig: Figure | None, ncols: int, nrows: int) -> Figure:
    if fig is not None:
        return fig
    # Cap the size so a 512-tile grid still renders in reasonable memory.
    width = min(TILE_INCHES * ncols, 24.0)
    height = min(TILE_INCHES * nrows + 0.4, 24.0)
    return Figure(figsize=(width, height), layout="constrained")
