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

from ..core.files import link_redoable, write_redoable
from .encode import encode_png, png_thumbnail
from .raster import render, render_many, to_rgb

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


@dataclass(frozen=True)
class DrawBatch:
    """Draw tasks of one renderer kind done together (a chunk's figures of one method): their
    raster pictures are drawn in one pass (:func:`~vizkit.render.raster.render_many`), which
    spends a fraction of the Python time, and so of the GIL, that drawing them one by one does.
    """

    tasks: tuple[DrawTask, ...]


def run_task(task: DrawTask | ImageTask | DrawBatch) -> dict[str, Any]:
    """Do ``task``; returns ``{"notes": {...}, "seconds": float, "sizes": {format: bytes}}``
    (notes: what a caption says about a raster picture; empty for matplotlib figures) or, for a
    :class:`DrawBatch`, ``{"results": [...]}`` with one such dict per task.

    Files are written with :func:`vizkit.core.files.write_redoable`: straight to their names
    when new (atomically when they replace a file), not ``fsync``'d one by one. The export marks
    them pending in its journal before they are written and records each figure's size after,
    so a resumed export redraws a figure that was cut short or is not that size.
    """
    start = time.perf_counter()
    if isinstance(task, DrawBatch):
        return {"results": _run_batch(task.tasks, start)}
    if task.umask is not None:  # files honour the umask of the process that asked for them
        os.umask(task.umask)
    if isinstance(task, ImageTask):
        pixels = to_rgb(task.image)
        gray = np.ndim(task.image) == 2 or np.shape(task.image)[-1] == 1
        # A gray image stays one channel: a third of the bytes to encode and write.
        write_redoable(task.path, encode_png(pixels[..., 0] if gray else pixels))
        return {"notes": {}, "seconds": time.perf_counter() - start, "sizes": {}}
    picture = render(task.kind, task.result, task.image) if task.style == "raster" else None
    return _write_figure(task, picture, start)


def _run_batch(tasks: tuple[DrawTask, ...], start: float) -> list[dict[str, Any]]:
    if not tasks:
        return []
    first = tasks[0]
    if first.umask is not None:  # files honour the umask of the process that asked for them
        os.umask(first.umask)
    if all(t.style == "raster" and t.kind == first.kind for t in tasks):
        pictures = render_many(first.kind, [t.result for t in tasks], [t.image for t in tasks])
    else:
        pictures = [render(t.kind, t.result, t.image) if t.style == "raster" else None
                    for t in tasks]  # fmt: skip
    drawn = (time.perf_counter() - start) / len(tasks)  # the drawing's share of each figure
    out = []
    for task, picture in zip(tasks, pictures, strict=True):
        out.append(_write_figure(task, picture, time.perf_counter() - drawn))
    return out


def _write_figure(task: DrawTask, picture, start: float) -> dict[str, Any]:
    """Write ``task``'s files (``picture``: its raster picture, or None for matplotlib) and
    its thumbnail; ``start``: when the work on this figure began."""
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
        write_redoable(path, data)
        sizes[fmt] = len(data)
    notes = picture.notes if picture is not None else {}
    if task.thumbnail is not None:
        if picture is not None and png is not None and picture.fits(task.thumbnail_size):
            # Small enough already: the thumbnail is a second name of the figure's file.
            link_redoable(task.files["png"], task.thumbnail)
            return {"notes": notes, "seconds": time.perf_counter() - start, "sizes": sizes}
        if picture is not None:
            thumb = picture.thumbnail(task.thumbnail_size)
        else:
            if png is None:
                figure = figure if figure is not None else _matplotlib_figure(task)
                png = _figure_bytes(figure, "png", task.dpi)
            thumb = png_thumbnail(png, task.thumbnail_size)
        write_redoable(task.thumbnail, thumb)
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


__all__ = ["STYLES", "DrawBatch", "DrawTask", "ImageTask", "run_task", "warm_up"]
