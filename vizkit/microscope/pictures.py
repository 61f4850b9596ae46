"""The atlas's pictures as pixels (NumPy and :mod:`vizkit.render.raster`, no matplotlib):
maximisation tiles, sheets of receptive-field crops and small histograms."""

from __future__ import annotations

import numpy as np

from ..render.raster import gray_or_rgb, tile, upscale_tiles

MAX_SIDE = 112  # maximisation images are upscaled (integer factor) until a side reaches this
CROP_SIDE = 36  # receptive-field crops likewise
CROP_COLUMNS = 3  # the top-k crops are a sheet of this many columns (3 x 3 for k = 9)
HIST_HEIGHT = 40
HIST_BIN = 4  # pixels per bin: a 3-pixel bar and a 1-pixel gap
BACKGROUND = (246, 247, 248)
BAR = (69, 90, 100)
ZERO_BAR = (230, 126, 34)  # the bin that holds 0 (where a ReLU's zeros go)
AXIS = (176, 190, 197)


def maximization_tiles(images: np.ndarray) -> tuple[np.ndarray, int]:
    """Activation-maximisation images ``(C, H, W, c)`` in [0, 1] as RGB uint8 tiles ``(C, h,
    w, 3)``, gray ones each stretched to its own range; returns the tiles and the upscaling
    factor."""
    tiles, _ = gray_or_rgb(images, autoscale=True)
    return upscale_tiles(tiles, MAX_SIDE)


def crop_sheet(patches: np.ndarray) -> tuple[np.ndarray, int]:
    """Receptive-field crops ``(k, h, w, c)`` in [0, 1], best first, as one RGB uint8 sheet of
    :data:`CROP_COLUMNS` columns (values clipped to [0, 1], not stretched, so crops of one
    channel compare), tiles 2 pixels apart. Returns the sheet and the width of one tile."""
    tiles, _ = gray_or_rgb(patches, autoscale=False)
    tiles, _ = upscale_tiles(tiles, CROP_SIDE)
    return tile(tiles, CROP_COLUMNS), int(tiles.shape[2])


def histogram_bars(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """A histogram as RGB uint8 pixels ``(HIST_HEIGHT, HIST_BIN * len(counts) + 1, 3)``.

    Bar heights grow with ``log(1 + count)`` so that the few large activations stay visible
    next to a ReLU's many zeros; any nonzero count is at least one pixel high. The bar of the
    bin that holds 0 is orange.
    """
    counts = np.asarray(counts, np.int64)
    edges = np.asarray(edges, np.float64)
    pixels = np.empty((HIST_HEIGHT, HIST_BIN * len(counts) + 1, 3), np.uint8)
    pixels[:] = BACKGROUND
    pixels[-1] = AXIS
    top = np.log1p(float(counts.max(initial=0))) or 1.0
    room = HIST_HEIGHT - 2
    for j, count in enumerate(counts):
        if count <= 0:
            continue
        height = max(1, round(np.log1p(float(count)) / top * room))
        colour = ZERO_BAR if edges[j] <= 0.0 < edges[j + 1] else BAR
        left = 1 + j * HIST_BIN
        pixels[HIST_HEIGHT - 1 - height : HIST_HEIGHT - 1, left : left + HIST_BIN - 1] = colour
    return pixels
