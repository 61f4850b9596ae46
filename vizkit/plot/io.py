"""Saving figures safely."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure


def save_figure(
    fig: Figure | Axes, path, *, dpi: int = 100, overwrite: bool = False, **savefig_kw
) -> Path:
    """Write ``fig`` (or an Axes' figure) to ``path``; the format follows the suffix.

    The figure is written to a temporary file in the same folder and then moved into place, so
    a reader never sees a half-written file. Parent folders are created.

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format=path.suffix[1:].lower(), dpi=dpi, **savefig_kw)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; figures are meant to be shared
        # Without overwrite, link() fails if the name appeared meanwhile, so a concurrent writer
        # is never clobbered; file systems without hard links fall back to an atomic rename.
        if overwrite or not _hard_link(tmp, path):
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _hard_link(tmp: str, path: Path) -> bool:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} appeared while writing; pass overwrite=True") from None
    except OSError:
        return False
    return True
