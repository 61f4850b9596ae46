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
from .html import write_report
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
        manifest.mark_pending((rel, thumb))
        atomic_write(contained(root, *rel.split("/")), data)
        atomic_write(contained(root, *thumb.split("/")), png_thumbnail(data, thumbnail_size))
        entries = [e for e in manifest.extras.get(section, []) if e.get("path") != rel]
        manifest.extras[section] = [*entries, {"title": title, "path": rel, "thumbnail": thumb}]
        manifest.pending.difference_update((rel, thumb))
    return write_report(manifest)


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


def add_section(
    out_dir: str | Path,
    title: str,
    *,
    note: str | None = None,
    columns: Sequence[str] | None = None,
    rows: Sequence[Sequence[object]] | None = None,
    highlight: Sequence[int] | None = None,
    figures: Sequence[tuple[str, str]] | None = None,
    details: Mapping[str, object] | None = None,
    key: str | None = None,
) -> Path:
    """Add a section to the index of the report in ``out_dir`` and rewrite the report.

    A section is a heading, an optional note, a table, figures already in the report and
    folded details (another table and/or preformatted text); everything is HTML-escaped. The
    index shows sections after the models, in the order they were first added; adding a
    section with the same ``key`` (default: the title) replaces it. The diagnosis summary and
    the trust metrics of :func:`vizkit.evaluate` are drawn the same way.

    Parameters
    ----------
    out_dir : str or Path
        The report folder (created if missing).
    title : str
        The heading.
    note : str, optional
        A paragraph under the heading.
    columns, rows : optional
        A table: column names, and rows of cells (strings or numbers; the first cell of a row
        is drawn as a name).
    highlight : sequence of int, optional
        Rows (indices into ``rows``) to mark.
    figures : sequence of (title, path), optional
        Images already in the report (paths relative to ``out_dir``, e.g. from
        :func:`add_figures`), shown as a grid.
    details : dict, optional
        Folded content: ``summary`` (the clickable line), ``columns``/``rows``/``highlight``
        (a table), ``text`` (preformatted).
    key : str, optional
        Identifies the section for replacement (default ``title``).

    Returns
    -------
    Path
        The ``index.html`` file.
    """
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"title must be a non-empty string, got {title!r}")
    root = ensure_writable(Path(out_dir))
    section: dict[str, object] = {"title": title}
    if note is not None:
        section["note"] = str(note)
    if rows is not None:
        section.update(_check_table(columns, rows, highlight, "rows"))
    if figures is not None:
        section["figures"] = _check_section_figures(root, figures)
    if details is not None:
        if not isinstance(details, Mapping):
            raise TypeError(f"details must be a dict, got {type(details).__name__}")
        unknown = set(details) - {"summary", "columns", "rows", "highlight", "text"}
        if unknown:
            raise ValueError(f"details has unknown keys {sorted(unknown)}")
        folded: dict[str, object] = {"summary": str(details.get("summary", "Details"))}
        if details.get("rows") is not None:
            folded.update(_check_table(details.get("columns"), details["rows"],
                                       details.get("highlight"), "details['rows']"))  # fmt: skip
        if details.get("text") is not None:
            folded["text"] = str(details["text"])
        section["details"] = folded
    manifest = Manifest.load(root)
    manifest.sections[str(key) if key is not None else title] = section
    return write_report(manifest)


def _check_table(columns, rows, highlight, name: str) -> dict[str, object]:
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise TypeError(
            f"{name} must be a list of rows (lists of cells), got {type(rows).__name__}"
        )
    table = []
    for row in rows:
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise TypeError(f"{name} must be a list of rows (lists of cells), got row {row!r}")
        table.append([c if isinstance(c, (int, float)) else str(c) for c in row])
    out: dict[str, object] = {"rows": table}
    if columns is not None:
        out["columns"] = [str(c) for c in columns]
    if highlight is not None:
        out["highlight"] = sorted({int(i) for i in highlight})
    return out


def _check_section_figures(root: Path, figures) -> list[dict[str, str]]:
    items = []
    for entry in figures:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)):
            raise TypeError(f"figures entries must be (title, path) pairs, got {entry!r}")
        title, rel = entry
        rel = Path(rel).as_posix() if not isinstance(rel, str) else rel
        if not contained(root, *rel.split("/")).is_file():
            raise ValueError(f"figure {title!r}: no file {rel!r} in the report {str(root)!r}")
        items.append({"title": title, "path": rel, "thumbnail": rel})
    return items
