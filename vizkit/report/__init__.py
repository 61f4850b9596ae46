"""Batch export of figure grids with a manifest and a static HTML index (:func:`export`)."""

from .export import export
from .extra import add_figures

__all__ = ["add_figures", "export"]
