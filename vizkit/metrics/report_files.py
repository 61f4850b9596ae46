"""The report card on disk: its figures, ``trust.md``, ``trust.json`` and a standalone
``index.html`` (escaped, no scripts, no network requests)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from ..core.files import atomic_write, ensure_writable
from .report_card import TrustTable


def write_trust_figures(table: TrustTable, out_dir, *, dpi: int = 100) -> list[tuple[str, Path]]:
    """Save the table's figures into ``out_dir`` (atomically, replacing earlier ones).

    Writes ``trust_curves.png`` (deletion / insertion curves per method, if computed),
    ``trust_randomization.png`` (the cascading randomisation strip of one image, Adebayo et al.'s
    figure 2) and ``trust_layers.png`` (similarity per randomised layer), when the
    randomisation test was run.

    Returns
    -------
    list of (title, Path)
        In the order a report should show them.
    """
    from ..plot import plot_curves, plot_layer_similarity, plot_randomization, save_figure

    folder = ensure_writable(Path(out_dir))
    written = []
    n = table.settings.get("images", "?")
    if table.curves:
        path = save_figure(plot_curves(table), folder / "trust_curves.png", dpi=dpi, overwrite=True)
        written.append((f"Deletion and insertion curves (mean over {n} images)", path))
    strip = table.strip()
    if strip:
        fig = plot_randomization(strip, table.image)
        path = save_figure(fig, folder / "trust_randomization.png", dpi=dpi, overwrite=True)
        index = table.settings.get("strip_image", 0)
        written.append(
            (f"Cascading randomisation, image {index}: maps as layers are re-initialised", path)
        )
    if table.randomization:
        fig = plot_layer_similarity(table.randomization)
        path = save_figure(fig, folder / "trust_layers.png", dpi=dpi, overwrite=True)
        written.append((f"Similarity to the original map per randomised layer ({n} images)", path))
    return written


REPORT_FILES = ("trust.md", "trust.json", "index.html")


def write_trust_report(table: TrustTable, out_dir, *, overwrite: bool = False) -> Path:
    """Write ``trust.md``, ``trust.json``, the figures and a self-contained ``index.html``
    (escaped, no scripts, no network requests) into ``out_dir``; returns the index path.

    Raises
    ------
    FileExistsError
        When one of these files exists already and ``overwrite`` is false.
    """
    folder = ensure_writable(Path(out_dir))
    names = [*REPORT_FILES, "trust_curves.png", "trust_randomization.png", "trust_layers.png"]
    existing = [name for name in names if (folder / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{folder} already holds {', '.join(existing)}; pass overwrite=True (--overwrite) "
            "to replace them"
        )
    figures = write_trust_figures(table, folder)
    atomic_write(folder / "trust.md", "# Which map to trust\n\n" + table.to_markdown())
    atomic_write(folder / "trust.json", json.dumps(table.to_dict(), indent=1) + "\n")
    index = folder / "index.html"
    atomic_write(index, trust_html(table, [(t, p.name) for t, p in figures]))
    return index


def trust_html(table: TrustTable, figures: Sequence[tuple[str, str]] = ()) -> str:
    """A standalone HTML page with the table, the verdict and ``figures`` ((title, relative
    path) pairs); every text is escaped, no scripts."""
    model = html.escape(str(table.settings.get("model", "model")))
    images = "".join(
        f'<figure><a href="{quote(path)}"><img src="{quote(path)}" alt="{html.escape(title)}">'
        f"</a><figcaption>{html.escape(title)}</figcaption></figure>"
        for title, path in figures
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src 'self' data:; style-src 'unsafe-inline'\">"
        f"<title>Which map to trust: {model}</title><style>{_CSS}</style></head><body>"
        f"<h1>Which map to trust: {model}</h1>"
        f'{table._repr_html_()}<div class="grid">{images}</div></body></html>\n'
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:16px 24px;color:#222}"
    "table{border-collapse:collapse;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left;font-family:ui-monospace,monospace}"
    "th{background:#eceff1}p{font-size:12px;color:#444;max-width:60em}"
    ".grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}"
    "figure img{max-width:640px;display:block}figcaption{font-size:12px;color:#555}"
)
