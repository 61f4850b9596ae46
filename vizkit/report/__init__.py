"""Batch export of figure grids with a manifest and a static HTML index (:func:`export`)."""

from .export import export

__all__ = ["export"]
