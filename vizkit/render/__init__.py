"""Turning method results into pixels without matplotlib: encoding and thumbnails (OpenCV).

The matplotlib renderers for publication figures (PDF, SVG) are in :mod:`vizkit.plot.renderers`;
both use the renderer names of :data:`vizkit.registry.RENDERERS`.
"""
