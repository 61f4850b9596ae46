"""Saving figures safely."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..core.files import atomic_path


def save_figure(
    fig: Figure | Axes, path, *, dpi: int = 100, overwrite: bool = False, **savefig_kw
) -> Path:
    """Write ``fig`` (or an Axes' figure) to ``path``; the format follows the suffix.

    The figure is written atomically (:func:`vizkit.core.files.atomic_path`: a reader never sees
    a half-written file, and the file honours the umask). Parent folders are created.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    if isinstance(fig, Axes):
        fig = fig.figure
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure or Axes, got {type(fig).__name__}")
    path = Path(path)
    if not path.suffix:
        raise ValueError(f"path {str(path)!r} has no suffix to choose the format (.png, .svg, ...)")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=dpi, **savefig_kw)
    return path
