"""Free-standing figures in an export's report (:func:`add_figures`).

Training curves, a grid of misclassified images or a figure made with another library have
no model/layer/method key, so they are recorded in the manifest's ``extras`` and shown in
``index.html`` under their own section headings, after the model sections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.files import atomic_write, contained, ensure_writable, safe_name
from ..plot.renderers import to_bytes
from ..render.encode import png_thumbnail
from .html import write_index
from .manifest import Manifest

EXTRA_FOLDER = "_extra"  # model slugs never start with "_", so this cannot meet export's files
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def add_figures(
    out_dir: str | Path,
    figures: Mapping[str, Sequence[tuple[str, object]]],
    *,
    overwrite: bool = False,
    dpi: int = 100,
    thumbnail_size: int = 200,
) -> Path:
    """Add figures under section headings to the report in ``out_dir`` (made by :func:`export`
    or empty) and rewrite its ``index.html``.

    Each figure is written atomically to ``out_dir/_extra/<section>/<title>.<ext>`` with a PNG
    thumbnail under ``thumbs/_extra/``, recorded in ``manifest.json`` (key ``"extras"``), and
    linked from the index with its title (HTML-escaped). Adding a figure with the same section
    and title again replaces it.

    Parameters
    ----------
    out_dir : str or Path
        The report folder (created if missing).
    figures : dict of str -> list of (title, figure)
        Section heading -> figures; a figure is a matplotlib ``Figure`` (saved as PNG) or the
        path of a PNG/JPEG file (copied).
    overwrite : bool
        Replace a file at a target path that this report did not write.
    dpi : int
        Resolution (dots per inch) for saving the matplotlib figures.
    thumbnail_size : int
        Longest side of the thumbnails in pixels.

    Returns
    -------
    Path
        The ``index.html`` file.

    Raises
    ------
    TypeError, ValueError
        For a malformed ``figures`` argument (before anything is written).
    FileExistsError
        For a file not written by this report at a target path, without ``overwrite=True``.
    """
    items = _check_figures(figures)
    root = ensure_writable(Path(out_dir))
    manifest = Manifest.load(root)
    known = {i["path"] for section in manifest.extras.values() for i in section}
    known |= {i.get("thumbnail") for section in manifest.extras.values() for i in section}
    planned = []
    taken: set[str] = set()
    for section, title, figure in items:
        suffix = ".png" if hasattr(figure, "savefig") else Path(figure).suffix.lower()
        folder = (EXTRA_FOLDER, safe_name(section))
        stem = _unique(safe_name(title), folder, taken)
        rel = "/".join((*folder, stem + suffix))
        thumb = "/".join(("thumbs", *folder, stem + ".png"))
        for path in (rel, thumb):
            target = contained(root, *path.split("/"))
            if target.exists() and path not in known and not overwrite:
                raise FileExistsError(
                    f"{str(target)!r} already exists and was not written by this report; "
                    "pass overwrite=True to replace it"
                )
        planned.append((section, title, figure, rel, thumb))
    for section, title, figure, rel, thumb in planned:
        if hasattr(figure, "savefig"):
            data = to_bytes(figure, "png", dpi)
        else:
            data = Path(figure).read_bytes()
        manifest.pending.update((rel, thumb))
        manifest.save()
        atomic_write(contained(root, *rel.split("/")), data)
        atomic_write(contained(root, *thumb.split("/")), png_thumbnail(data, thumbnail_size))
        entries = [e for e in manifest.extras.get(section, []) if e.get("path") != rel]
        manifest.extras[section] = [*entries, {"title": title, "path": rel, "thumbnail": thumb}]
        manifest.pending.difference_update((rel, thumb))
        manifest.save()
    return write_index(manifest)


def _unique(stem: str, folder: tuple[str, ...], taken: set[str]) -> str:
    """``stem`` or ``stem_2``, ... so that two titles of one call never share a file."""
    name, n = stem, 2
    while (*folder, name) in taken:
        name, n = f"{stem}_{n}", n + 1
    taken.add((*folder, name))
    return name


def _check_figures(figures) -> list[tuple[str, str, object]]:
    if not isinstance(figures, Mapping):
        raise TypeError(
            f"figures must be a dict of section -> [(title, figure), ...], got {type(figures).__name__}"
        )
    items = []
    for section, entries in figures.items():
        if not isinstance(section, str) or not section.strip():
            raise ValueError(f"section names must be non-empty strings, got {section!r}")
        if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
            raise TypeError(
                f"figures[{section!r}] must be a list of (title, figure) pairs, got {entries!r}"
            )
        for entry in entries:
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)):
                raise TypeError(
                    f"figures[{section!r}] entries must be (title, figure) pairs, got {entry!r}"
                )
            title, figure = entry
            if not hasattr(figure, "savefig"):
                if not isinstance(figure, (str, Path)):
                    raise TypeError(
                        f"figure {title!r} must be a matplotlib Figure or an image path, "
                        f"got {type(figure).__name__}"
                    )
                if Path(figure).suffix.lower() not in IMAGE_SUFFIXES or not Path(figure).is_file():
                    raise ValueError(
                        f"figure {title!r}: {str(figure)!r} is not an existing file with a "
                        f"suffix in {IMAGE_SUFFIXES}"
                    )
            items.append((section, title, figure))
    return items
