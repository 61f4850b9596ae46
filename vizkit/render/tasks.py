"""Units of work for the export's worker pool: draw one figure (or an input image) and write it.

Tasks are plain picklable objects and :func:`run_task` imports neither TensorFlow nor the report,
so the same task runs in a thread (raster pictures: OpenCV releases the GIL) or in a worker
process (matplotlib figures, which hold the GIL while they are laid out).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.files import atomic_link, atomic_write
from .encode import encode_png, png_thumbnail
from .raster import render, to_rgb

STYLES = ("raster", "matplotlib")


@dataclass(frozen=True)
class DrawTask:
    """Draw ``result`` (renderer ``kind``) and write it in every format, plus a PNG thumbnail.

    PNG files are raster pictures with ``style="raster"``; PDF and SVG files (and PNG with
    ``style="matplotlib"``) are matplotlib figures titled ``title``.
    """

    kind: str
    result: Any
    image: np.ndarray | None
    title: str
    files: dict[str, str]  # format -> absolute path
    thumbnail: str | None  # absolute path
    style: str = "raster"
    dpi: int = 100
    thumbnail_size: int = 200
    umask: int | None = None  # the exporting process's, for a worker process started earlier


@dataclass(frozen=True)
class ImageTask:
    """Write one input image as PNG (at the resolution the model sees)."""

    image: np.ndarray
    path: str
    umask: int | None = None


def run_task(task: DrawTask | ImageTask) -> dict[str, Any]:
    """Do ``task``; returns ``{"notes": {...}, "seconds": float, "sizes": {format: bytes}}``
    (notes: what a caption says about a raster picture; empty for matplotlib figures).

    Files are written atomically but not ``fsync``'d one by one (see ``durable`` in
    :func:`vizkit.core.files.atomic_path`): the manifest records each figure's size, and a
    resumed export redraws a figure whose file is not that size.
    """
    start = time.perf_counter()
    if task.umask is not None:  # files honour the umask of the process that asked for them
        os.umask(task.umask)
    if isinstance(task, ImageTask):
        atomic_write(task.path, encode_png(to_rgb(task.image)), durable=False)
        return {"notes": {}, "seconds": time.perf_counter() - start, "sizes": {}}
    picture = render(task.kind, task.result, task.image) if task.style == "raster" else None
    figure = None
    png = None
    sizes = {}
    for fmt, path in task.files.items():
        if fmt == "png" and picture is not None:
            data = picture.png()
        else:
            if figure is None:
                figure = _matplotlib_figure(task)
            data = _figure_bytes(figure, fmt, task.dpi)
        if fmt == "png":
            png = data
        atomic_write(path, data, durable=False)
        sizes[fmt] = len(data)
    if task.thumbnail is not None:
        if picture is not None and png is not None and picture.fits(task.thumbnail_size):
            # Small enough already: the thumbnail is a second name of the figure's file.
            atomic_link(task.files["png"], task.thumbnail, durable=False)
            return {"notes": picture.notes, "seconds": time.perf_counter() - start, "sizes": sizes}
        if picture is not None:
            thumb = picture.thumbnail(task.thumbnail_size)
        else:
            if png is None:
                figure = figure if figure is not None else _matplotlib_figure(task)
                png = _figure_bytes(figure, "png", task.dpi)
            thumb = png_thumbnail(png, task.thumbnail_size)
        atomic_write(task.thumbnail, thumb, durable=False)
    notes = picture.notes if picture is not None else {}
    return {"notes": notes, "seconds": time.perf_counter() - start, "sizes": sizes}


def warm_up() -> None:
    """Load what the first task would otherwise wait for (a worker process's initializer): the
    colour tables of the raster renderer."""
    from ..plot.colormaps import colormap_table
    from .raster import HEATMAP, HYPERCOLUMN, MAPS_CMAP, MIXING_CMAP

    for name in {HEATMAP["cmap"], HYPERCOLUMN["cmap"], MAPS_CMAP, MIXING_CMAP}:
        colormap_table(name)


def _matplotlib_figure(task: DrawTask):
    from ..plot.renderers import render as render_figure

    return render_figure(task.kind, task.result, task.image, title=task.title)


def _figure_bytes(figure, fmt: str, dpi: int) -> bytes:
    from ..plot.renderers import to_bytes

    return to_bytes(figure, fmt, dpi)


__all__ = ["STYLES", "DrawTask", "ImageTask", "run_task", "warm_up"]
