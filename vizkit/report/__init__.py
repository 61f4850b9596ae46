"""Batch export of figures with a manifest and a static, paginated HTML report (:func:`export`)."""

from .export import export, render_method
from .extra import add_figures, add_section

__all__ = ["add_figures", "add_section", "export", "render_method"]
