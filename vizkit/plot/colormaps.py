"""Colour maps as lookup tables, sampled once from matplotlib for the raster renderer."""

from __future__ import annotations

import functools

import matplotlib
import numpy as np

TABLE_SIZE = 256


@functools.lru_cache(maxsize=32)
def colormap_table(name: str) -> np.ndarray:
    """The matplotlib colour map ``name`` as a read-only ``(256, 3)`` uint8 RGB table.

    Entry ``i`` is the colour matplotlib draws for a value normalised to ``[i / 256, (i + 1) /
    256)`` (its own quantisation, ``bytes=True``), so that a raster image coloured through the
    table matches ``imshow`` pixel for pixel.

    Raises
    ------
    ValueError
        For a name matplotlib does not know; the message lists a few that it does.
    """
    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        known = ", ".join(sorted(matplotlib.colormaps)[:12])
        raise ValueError(f"unknown colour map {name!r}; e.g. {known}, ...") from None
    table = cmap.resampled(TABLE_SIZE)(np.arange(TABLE_SIZE), bytes=True)[:, :3]
    table = np.ascontiguousarray(table, dtype=np.uint8)
    table.setflags(write=False)
    return table


__all__ = ["TABLE_SIZE", "colormap_table"]
