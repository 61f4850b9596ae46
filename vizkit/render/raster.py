"""The raster renderer: method results turned into pixels with NumPy and OpenCV.

Every renderer kind of :data:`vizkit.registry.RENDERERS` has a function here that returns a
:class:`Picture`: an RGB uint8 array plus ``notes`` (colour map, value range, units, ...) that
the report writes into captions and the manifest instead of drawing text. Colour maps are lookup
tables sampled once (:func:`vizkit.plot.colormaps.colormap_table`), so a heat map has the
colours ``imshow`` would give it; a heat map is stretched (bilinear) to its image's own
resolution, blended there and the picture upscaled (nearest: one block per pixel the model
sees) to a readable size; grids are tiled in NumPy. No text layout, no
figure objects: a 224x224 overlay takes about a millisecond, and OpenCV releases the GIL, so
pictures are drawn in threads while the model computes.

:mod:`vizkit.plot` stays the place for publication figures (titles, colour bars, PDF and SVG).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from ..core.checks import map_array, number_in
from .encode import encode_png, encode_upscaled_png, shrink

# Heat maps are upscaled until their short side reaches this: 28x28 digits become 140x140,
# small enough to be their own thumbnail (no second picture to encode and write).
HEATMAP_SIDE = 128
TILE_SIDE = 48  # grid tiles are upscaled until their long side reaches this
GAP = 2  # pixels between grid tiles
BACKGROUND = 255  # white between tiles
MAX_MAPS = 64  # feature-map channels drawn per figure (as plot_feature_maps)
HEATMAP = {"cmap": "jet", "alpha": 0.5}
HYPERCOLUMN = {"cmap": "viridis", "alpha": 0.6}
MAPS_CMAP = "viridis"
MIXING_CMAP = "RdBu_r"  # 1x1 convolutions: negative blue, positive red


@dataclass(frozen=True)
class Picture:
    """A drawn result: ``pixels`` (H, W, 3) RGB uint8 and the ``notes`` a caption needs.

    ``notes`` holds plain JSON values: ``cmap``, ``range`` ([min, max] of the values coloured),
    ``alpha``, ``scale`` (upscaling factor), ``units``, ``tiles``, ...
    ``blocks`` > 1 says that ``pixels`` is a smaller picture upscaled that many times (nearest),
    which the PNG encoder uses (:func:`~vizkit.render.encode.encode_upscaled_png`).
    """

    pixels: np.ndarray
    notes: dict[str, Any] = field(default_factory=dict)
    blocks: int = 1

    def png(self) -> bytes:
        """The picture as PNG bytes."""
        if self.blocks > 1:
            return encode_upscaled_png(self.pixels[:: self.blocks, :: self.blocks], self.blocks)
        return encode_png(self.pixels)

    def fits(self, size: int) -> bool:
        """Whether the picture is its own thumbnail (no side longer than ``size``)."""
        return max(self.pixels.shape[:2]) <= size

    def thumbnail(self, size: int) -> bytes:
        """PNG bytes of the picture shrunk to at most ``size`` pixels on its longest side."""
        return encode_png(shrink(self.pixels, size))


def render(kind: str, result, image=None) -> Picture:
    """Draw ``result`` as renderer ``kind`` (``image``: the input image, for per-image kinds).

    Raises
    ------
    ValueError
        For an unknown kind (the message lists them) or a result of the wrong shape.
    """
    try:
        draw = _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown renderer {kind!r}; known: {', '.join(_KINDS)}") from None
    return draw(result, image)


def render_many(kind: str, results: Sequence, images: Sequence | None = None) -> list[Picture]:
    """:func:`render` of several results of one kind (``images[i]`` for ``results[i]``): heat
    maps of one shape are drawn together (:func:`draw_heatmaps`), other kinds one by one."""
    images = [None] * len(results) if images is None else list(images)
    if len(images) != len(results):
        raise ValueError(f"got {len(results)} results for {len(images)} images")
    together = _TOGETHER.get(kind)
    if together is not None and len(results) > 1:
        maps = [np.asarray(r, dtype=np.float32) for r in results]
        alone = all(i is None for i in images)
        same_images = alone or (
            all(i is not None for i in images) and len({np.shape(i) for i in images}) == 1
        )
        if same_images and len({m.shape for m in maps}) == 1:
            return together(np.stack(maps), None if alone else np.stack(images))
    return [render(kind, r, i) for r, i in zip(results, images, strict=True)]


# -- building blocks ------------------------------------------------------------------------------
def color_indices(values, vmin: float | None = None, vmax: float | None = None):
    """``values`` mapped to colour-table indices 0..255 as matplotlib's ``Normalize`` would.

    ``[vmin, vmax]`` (default: the values' own range) is split into 256 equal bins; values
    outside are clipped, and a constant array (``vmin == vmax``) maps to 0.

    Returns
    -------
    indices : ndarray, uint8, same shape as ``values``
    value_range : (float, float)
        The ``(vmin, vmax)`` used.
    """
    arr = np.asarray(values, dtype=np.float32)
    lo, hi = value_range(arr, vmin, vmax)
    return _indices(arr, np.float32(lo), np.float32(hi)), (lo, hi)


def value_range(values: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    """``(vmin, vmax)`` with the finite values' min and max for the ones not given (0 if none)."""
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if vmin is None and finite.size else float(vmin or 0.0)
    hi = float(finite.max()) if vmax is None and finite.size else float(vmax or 0.0)
    return lo, hi


def colorize(values, cmap: str, vmin: float | None = None, vmax: float | None = None):
    """``values`` ``(...)`` as RGB uint8 ``(..., 3)`` through colour map ``cmap``.

    Returns ``(pixels, (vmin, vmax))``; see :func:`color_indices` for the normalisation.
    """
    from ..plot.colormaps import colormap_table

    indices, value_range = color_indices(values, vmin, vmax)
    return np.take(colormap_table(cmap), indices, axis=0), value_range


def to_rgb(image) -> np.ndarray:
    """An image ``(H, W)``, ``(H, W, 1|3|4)`` as RGB uint8: floats are clipped to [0, 1] (not
    rescaled), gray is repeated, alpha is dropped."""
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must have shape (H, W) or (H, W, 1|3|4), got {arr.shape}")
    return rgb_stack(arr[None])[0]


def rgb_stack(images) -> np.ndarray:
    """:func:`to_rgb` of a stack ``(N, H, W[, 1|3|4])``: ``(N, H, W, 3)`` uint8."""
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and arr.shape[3] == 4:
        arr = arr[..., :3]
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[3] != 3):
        raise ValueError(f"images must have shape (N, H, W[, 1|3|4]), got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.rint(np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=3)
    return np.ascontiguousarray(arr)


def upscale(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Every pixel repeated ``factor`` times along both axes (nearest neighbour)."""
    if factor == 1:
        return pixels
    h, w = pixels.shape[:2]
    return cv2.resize(pixels, (w * factor, h * factor), interpolation=cv2.INTER_NEAREST)


def blend(base: np.ndarray, top: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * base + alpha * top``, rounded to uint8 (both RGB uint8 of one shape)."""
    alpha = number_in(alpha, "alpha", 0.0, 1.0)
    return cv2.addWeighted(base, 1.0 - alpha, top, alpha, 0.0)


def factor_for(shape: Sequence[int], side: int, *, short: bool = True) -> int:
    """The integer upscaling factor that brings the short (or long) side of ``shape`` to ``side``."""
    edge = min(shape[:2]) if short else max(shape[:2])
    return max(1, math.ceil(side / max(1, edge)))


def tile(tiles: np.ndarray, ncols: int | None = None, *, gap: int = GAP) -> np.ndarray:
    """Tiles ``(n, h, w, 3)`` uint8 in a grid of ``ncols`` columns (default ``ceil(sqrt(n))``),
    ``gap`` background pixels between them, row-major."""
    n, h, w = tiles.shape[:3]
    ncols = max(1, min(n, ncols or math.ceil(math.sqrt(n))))
    nrows = math.ceil(n / ncols)
    canvas = np.full(
        (nrows * (h + gap) - gap, ncols * (w + gap) - gap, 3), BACKGROUND, dtype=np.uint8
    )
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tiles[i]
    return canvas


def gray_or_rgb(images, *, autoscale: bool) -> tuple[np.ndarray, str]:
    """A stack ``(n, h, w[, 1|3|4])`` as RGB tiles ``(n, h, w, 3)``.

    Single-channel tiles are drawn in gray, each scaled to its own range when ``autoscale``
    (what ``imshow`` does without ``vmin``/``vmax``) or clipped to [0, 1]; colour tiles are
    clipped to [0, 1]. Returns the tiles and a note saying which scale was used.
    """
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must have shape (n, H, W[, 1|3|4]), got {arr.shape}")
    if arr.shape[-1] == 1 and autoscale:
        flat = arr.reshape(len(arr), -1)
        lo, hi = flat.min(axis=1), flat.max(axis=1)
        span = np.where(hi > lo, hi - lo, 1.0)
        scaled = (arr - lo[:, None, None, None]) / span[:, None, None, None]
        scaled[hi <= lo] = 0.0
        return _gray_tiles(scaled), "each tile scaled to its own range"
    if arr.shape[-1] == 1:
        return _gray_tiles(arr), "gray, [0, 1]"
    return rgb_stack(arr), "colour, [0, 1]"


def _gray_tiles(arr: np.ndarray) -> np.ndarray:
    gray = np.rint(np.clip(arr[..., 0], 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def upscale_tiles(tiles: np.ndarray, side: int = TILE_SIDE) -> tuple[np.ndarray, int]:
    """Tiles ``(n, h, w, 3)`` repeated by an integer factor until their long side reaches
    ``side``; returns the tiles and the factor."""
    factor = factor_for(tiles.shape[1:3], side, short=False)
    if factor > 1:
        tiles = tiles.repeat(factor, axis=1).repeat(factor, axis=2)
    return tiles, factor


# -- renderer kinds -------------------------------------------------------------------------------
def draw_heatmap(
    heatmap,
    image=None,
    *,
    cmap: str = HEATMAP["cmap"],
    alpha: float = HEATMAP["alpha"],
    vmin: float | None = None,
    vmax: float | None = None,
    side: int = HEATMAP_SIDE,
) -> Picture:
    """A heat map ``(h, w)`` coloured through ``cmap``, blended over ``image`` ``(H, W[, C])``.

    The heat map is stretched to the image's size with bilinear interpolation (a coarse
    Grad-CAM map on a full-size photo) and coloured: values ``[vmin, vmax]`` (default: the
    map's range) span the colour map. The blend is then upscaled by an integer factor (nearest)
    until its short side reaches ``side``, so a 28x28 digit's saliency shows one block per
    pixel the model sees. Without an image the coloured map is drawn alone (``alpha`` unused).
    """
    hm = map_array(heatmap, 2, "heatmap", "(H, W)")
    images = None if image is None else to_rgb(image)[None]
    style = {"cmap": cmap, "alpha": alpha, "vmin": vmin, "vmax": vmax, "side": side}
    (picture,) = draw_heatmaps(hm[None], images, **style)
    return picture


def draw_heatmaps(
    heatmaps,
    images=None,
    *,
    cmap: str = HEATMAP["cmap"],
    alpha: float = HEATMAP["alpha"],
    vmin: float | None = None,
    vmax: float | None = None,
    side: int = HEATMAP_SIDE,
) -> list[Picture]:
    """:func:`draw_heatmap` of ``N`` maps ``(N, h, w)`` over ``N`` images ``(N, H, W[, C])``
    (or alone) at once: the same pictures, in a few array operations instead of a few per map
    (the export draws a chunk's maps of one method together)."""
    hm = map_array(heatmaps, 3, "heatmaps", "(N, H, W)")
    alpha = number_in(alpha, "alpha", 0.0, 1.0)
    base = None if images is None else rgb_stack(images)
    if base is not None and len(base) != len(hm):
        raise ValueError(f"got {len(hm)} heat maps for {len(base)} images")
    shape = hm.shape[1:] if base is None else base.shape[1:3]
    factor = factor_for(shape, side)
    # The colour scale spans each map's own values (interpolation never leaves that range).
    ranges = [value_range(m, vmin, vmax) for m in hm]
    if hm.shape[1:] != shape:
        hm = np.stack([cv2.resize(m, shape[::-1], interpolation=cv2.INTER_LINEAR) for m in hm])
    lo = np.array([r[0] for r in ranges], np.float32)[:, None, None]
    hi = np.array([r[1] for r in ranges], np.float32)[:, None, None]
    indices = _indices(hm, lo, hi)
    from ..plot.colormaps import colormap_table

    colour = np.take(colormap_table(cmap), indices, axis=0)  # (N, H, W, 3)
    notes: dict[str, Any] = {"cmap": cmap, "scale": factor}
    if base is not None:
        notes["alpha"] = alpha
        colour = blend(
            base.reshape(-1, *base.shape[2:]),
            colour.reshape(base.shape[0] * base.shape[1], *base.shape[2:]),
            alpha,
        )
    n, h, w = len(hm), *shape
    stacked = upscale(np.ascontiguousarray(colour).reshape(n * h, w, 3), factor)
    big = stacked.reshape(n, h * factor, w * factor, 3)  # rows of one map stay together
    return [
        Picture(big[i], {**notes, "range": [lo_i, hi_i]}, blocks=factor)
        for i, (lo_i, hi_i) in enumerate(ranges)
    ]


def _indices(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:func:`color_indices` with a ``(vmin, vmax)`` per leading index (broadcast ``lo``, ``hi``)."""
    flat = ~(hi > lo)
    span = np.where(flat, np.float32(1.0), hi - lo)
    # Divide, then multiply by the table size, in float32: matplotlib's order of operations.
    scaled = (values - lo) / span * np.float32(256.0)
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    indices = np.clip(scaled, 0, 255).astype(np.uint8)
    if flat.any():
        indices[np.broadcast_to(flat, indices.shape)] = 0
    return indices


def draw_hypercolumn(hypercolumn, image=None) -> Picture:
    """Hypercolumns ``(H, W, C)`` (or their ``(H, W)`` average) as a heat map over the image."""
    arr = np.asarray(hypercolumn, dtype=np.float32)
    if arr.ndim not in (2, 3):
        raise ValueError(f"hypercolumn must have shape (H, W, C) or (H, W), got {arr.shape}")
    return _hypercolumns(arr[None], None if image is None else to_rgb(image)[None])[0]


def _hypercolumns(stack: np.ndarray, images) -> list[Picture]:
    """Hypercolumns ``(N, H, W[, C])`` over images ``(N, ...)`` or None."""
    maps = stack.mean(axis=-1) if stack.ndim == 4 else stack
    pictures = draw_heatmaps(maps, images, **HYPERCOLUMN)
    return [replace(p, notes={**p.notes, "of": "channel average"}) for p in pictures]


def _heatmaps(stack: np.ndarray, images) -> list[Picture]:
    return draw_heatmaps(stack, images)


def draw_feature_maps(maps, image=None, *, max_maps: int = MAX_MAPS) -> Picture:
    """One image's maps ``(H, W, C)``: the first ``max_maps`` channels, each coloured (viridis)
    over its own range, in a grid in channel order."""
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"maps must have shape (H, W, C) for one image, got {arr.shape}")
    shown = min(arr.shape[-1], max_maps)
    stack = np.moveaxis(arr[..., :shown], -1, 0)  # (n, H, W)
    flat = stack.reshape(shown, -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
    scaled = (stack - lo[:, None, None]) / span[:, None, None] * np.float32(256.0)
    indices = np.clip(scaled, 0, 255).astype(np.uint8)
    indices[hi <= lo] = 0
    from ..plot.colormaps import colormap_table

    tiles, factor = upscale_tiles(np.take(colormap_table(MAPS_CMAP), indices, axis=0))
    notes = {
        "cmap": MAPS_CMAP,
        "range": [float(lo.min()), float(hi.max())],
        "channels": [0, shown - 1],
        "of": int(arr.shape[-1]),
        "dead": int(np.count_nonzero((hi <= lo) & (hi == 0))),
        "scale": factor,
        "tiles": "each channel scaled to its own range",
    }
    return Picture(tile(tiles), notes)


def draw_filters(kernels, image=None) -> Picture:
    """Kernels ``(n, kh, kw, 1|3)`` in [0, 1] (:func:`vizkit.filters`): gray or colour tiles.

    A ``(c_in, c_out)`` matrix (:func:`vizkit.methods.filters.channel_mixing` of a 1x1
    convolution) is drawn as one heat map: rows input channels, columns output channels, blue
    negative and red positive weights on a scale symmetric around zero.
    """
    arr = np.asarray(kernels, dtype=np.float32)
    if arr.ndim == 2 and arr.size:
        peak = float(np.max(np.abs(arr))) or 1.0
        colour, _ = colorize(arr, MIXING_CMAP, -peak, peak)
        factor = factor_for(arr.shape, HEATMAP_SIDE, short=False)
        notes = {"cmap": MIXING_CMAP, "range": [-peak, peak], "scale": factor,
                 "rows": f"{arr.shape[0]} input channels", "columns": f"{arr.shape[1]} output channels"}  # fmt: skip
        return Picture(upscale(np.ascontiguousarray(colour), factor), notes, blocks=factor)
    if arr.ndim != 4:
        raise ValueError(
            f"filters must have shape (n, kh, kw, c), or (c_in, c_out) for a 1x1 convolution's "
            f"channel-mixing matrix, got {arr.shape}"
        )
    tiles, how = gray_or_rgb(arr, autoscale=False)
    tiles, factor = upscale_tiles(tiles)
    return Picture(tile(tiles), {"tiles": how, "count": len(arr), "scale": factor})


def draw_grid(result, image=None) -> Picture:
    """``{"images": (n, H, W, C), "units": [...]}`` (activation maximisation), one tile a unit."""
    tiles, how = gray_or_rgb(result["images"], autoscale=True)
    tiles, factor = upscale_tiles(tiles)
    units = [int(u) for u in result.get("units", range(len(tiles)))]
    return Picture(tile(tiles), {"units": units, "tiles": how, "scale": factor})


def draw_pair(result, image=None) -> Picture:
    """The input and the result side by side (DeepDream)."""
    first = np.asarray(image, dtype=np.float32)
    second = np.asarray(result, dtype=np.float32)
    if first.shape != second.shape:
        second = cv2.resize(second, first.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        second = second.reshape(first.shape)
    tiles, how = gray_or_rgb(np.stack([first, second]), autoscale=True)
    tiles, factor = upscale_tiles(tiles, HEATMAP_SIDE)
    return Picture(tile(tiles, 2), {"panels": ["input", "result"], "tiles": how, "scale": factor})


def draw_top(result, image=None) -> Picture:
    """``{"images", "rows": [(indices, scores), ...], "units"}`` (top-activating images): one
    row of tiles per unit, best first; ``images[i]`` is looked up for every index."""
    images, rows = result["images"], result["rows"]
    units = [int(u) for u in result.get("units", range(len(rows)))]
    k = max(len(indices) for indices, _ in rows)
    picked, top = [], []
    for indices, scores in rows:
        picked += [np.asarray(images[int(i)], dtype=np.float32) for i in indices]
        top.append([[int(i), round(float(s), 4)] for i, s in zip(indices, scores, strict=True)])
    tiles, how = gray_or_rgb(np.stack(picked), autoscale=True)
    tiles, factor = upscale_tiles(tiles)
    if any(len(indices) < k for indices, _ in rows):  # ragged rows: pad each row to k tiles
        blank = np.full_like(tiles[0], BACKGROUND)
        padded, at = [], 0
        for indices, _ in rows:
            padded += list(tiles[at : at + len(indices)]) + [blank] * (k - len(indices))
            at += len(indices)
        tiles = np.stack(padded)
    notes = {"units": units, "rows": "one row per unit, best first", "tiles": how, "top": top}
    notes["scale"] = factor
    return Picture(tile(tiles, k), notes)


_KINDS: dict[str, Callable[..., Picture]] = {
    "filters": draw_filters,
    "feature_maps": draw_feature_maps,
    "heatmap": draw_heatmap,
    "hypercolumn": draw_hypercolumn,
    "grid": draw_grid,
    "pair": draw_pair,
    "top": draw_top,
}
KINDS = tuple(_KINDS)
# Kinds whose results of one shape are drawn together by render_many.
_TOGETHER: dict[str, Callable[[np.ndarray, np.ndarray | None], list[Picture]]] = {
    "heatmap": _heatmaps,
    "hypercolumn": _hypercolumns,
}

__all__ = [
    "KINDS",
    "Picture",
    "blend",
    "color_indices",
    "colorize",
    "draw_feature_maps",
    "draw_filters",
    "draw_grid",
    "draw_heatmap",
    "draw_heatmaps",
    "draw_hypercolumn",
    "draw_pair",
    "draw_top",
    "factor_for",
    "render",
    "render_many",
    "rgb_stack",
    "tile",
    "to_rgb",
    "upscale",
    "value_range",
]
