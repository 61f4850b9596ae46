"""Turning method results into pixels without matplotlib (the export's fast path).

* :mod:`vizkit.render.raster`: one function per renderer kind of
  :data:`vizkit.registry.RENDERERS` (heat maps and overlays, feature-map and filter tiles,
  maximisation grids, top-activating rows, input/result pairs) returning a
  :class:`~vizkit.render.raster.Picture` (RGB pixels plus caption notes);
* :mod:`vizkit.render.encode`: PNG encoding and thumbnails (OpenCV);
* :mod:`vizkit.render.tasks`: draw-and-write tasks for the export's worker pool.

The matplotlib renderers for publication figures (PDF, SVG, ``style="matplotlib"``) are in
:mod:`vizkit.plot.renderers`; both use the same renderer kinds.
"""
