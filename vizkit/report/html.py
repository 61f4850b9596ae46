"""The static HTML report of an export: ``index.html`` plus paginated pages under ``pages/``.

* ``index.html`` opens at once whatever the report's size: per model, the first few images with
  every method's map side by side (the per-image view), the per-layer figures, a table of every
  figure group with links to its pages, and the diagnosis summary (layers with findings first,
  the full table folded); then the sections added with :func:`vizkit.report.add_section` and
  the figures added with :func:`vizkit.report.add_figures`.
* ``pages/<model>/images-N.html``: the per-image view, one row per image (the input, its name,
  prediction and true label, then one column per method and layer).
* ``pages/<model>/<layer>__<method>-N.html``: the figures of one layer and method, ``page_size``
  a page; ``pages/<model>/<method>-N.html``: a per-layer method's figures of every layer.

No scripts, no network requests, inline CSS only, and a Content-Security-Policy that forbids
anything else. Every name taken from the user's model or data goes through :func:`html.escape`,
so a layer named ``<img src=x onerror=...>`` shows up as text. Pages whose text did not change
are not rewritten.
"""

from __future__ import annotations

import hashlib
import html
import math
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..core.files import atomic_write, contained, safe_name
from ..metrics.names import FAILED, LABELS, REFERENCE_ROW, SANITY, cell, legend
from ..metrics.names import column as metric_column
from ..registry import METHODS
from . import captions
from .manifest import Entry, Manifest, file_size

INDEX_NAME = "index.html"
PAGES = "pages"
PAGE_SIZE = 200  # figures per page
PREVIEW_ROWS = 4  # images of the per-image view shown on the index
PREVIEW_FIGURES = 12  # per-layer figures shown on the index, per model
PAGE_LINKS = 5  # page numbers shown on either side of the current page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:10px 24px}
header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;font-size:13px;color:#cfd8dc}
header a{color:#fff}
main{padding:4px 24px 40px}
nav.toc{font-size:13px;margin:6px 0}
nav.toc a{margin-right:14px}
nav.pager{font-size:13px;margin:8px 0}
nav.pager a,nav.pager span{margin-right:6px}
nav.pager span.here{font-weight:bold}
section.model{margin-top:12px;border-top:3px solid #263238}
section.extra,section.section{margin-top:20px;border-top:3px solid #607d8b}
h2{font-size:18px;margin:8px 0 4px}
h3{font-size:15px;margin:12px 0 6px}
h4{font-size:13px;margin:8px 0 4px;color:#555}
p.meta{font-size:12px;color:#555;margin:2px 0}
.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;padding:4px;border:1px solid #eee;background:#fff;text-align:center}
figure img{display:block;max-width:200px;max-height:200px;margin:auto}
.wide figure img{max-width:480px;max-height:360px}
.wide figcaption{max-width:480px}
figcaption{font-size:11px;color:#555;max-width:200px;overflow-wrap:anywhere}
figcaption b{color:#222}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right;vertical-align:top}
th{background:#eceff1}
td.name{text-align:left;font-family:ui-monospace,monospace}
tr.bad td{background:#ffebee}
tr.muted td{font-style:italic;color:#555}
li.bad{background:#ffebee}
table.images td,table.images th{text-align:center;background:#fff}
table.images thead th{background:#eceff1;font-weight:normal;max-width:170px}
table.images img{display:block;max-width:160px;max-height:160px;margin:auto}
table.images img.input{width:96px;image-rendering:pixelated}
table.images .facts{font-size:11px;color:#555;max-width:170px;overflow-wrap:anywhere}
table.images td .facts{max-width:160px}
pre{font-size:12px;background:#f5f5f5;padding:8px;overflow-x:auto}
details{margin:6px 0}
"""
# The page may show its own images and inline CSS, nothing else.
_CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "img-src 'self' data:; style-src 'unsafe-inline'\">"
)
_DIAGNOSIS_COLUMNS = ("layer", "shape", "channels", "dead", "constant", "input-like", "zeros")


def write_report(manifest: Manifest) -> Path:
    """Write the report of ``manifest``: its pages (those that changed), the compacted
    ``manifest.json`` and ``index.html``; pages of earlier runs that are no longer part of the
    report are removed. Returns the index path."""
    report = Report(manifest, int(manifest.settings.get("page_size") or PAGE_SIZE))
    pages = report.pages()
    written = {}
    for rel, text in pages.items():
        data = text.encode("utf-8")
        digest = hashlib.sha1(data).hexdigest()
        target = contained(manifest.folder, *rel.split("/"))
        # Pages are made again from the manifest whenever they differ, so they are not synced
        # one by one: a page a power failure emptied has the wrong size and is written again.
        if manifest.pages.get(rel) != digest or file_size(target) != len(data):
            atomic_write(target, data, durable=False)
        written[rel] = digest
    for rel in set(manifest.pages) - set(written):
        try:
            os.unlink(contained(manifest.folder, *rel.split("/")))
        except FileNotFoundError:
            pass
    manifest.pages = written
    manifest.save()
    path = manifest.folder / INDEX_NAME
    atomic_write(path, report.index(), durable=False)  # made anew by every export
    return path


# -- the model of the report ----------------------------------------------------------------------
@dataclass
class Figure:
    """One figure: its entries (one per format, PNG first)."""

    entries: list[Entry]

    @property
    def main(self) -> Entry:
        return self.entries[0]


@dataclass
class Group:
    """The figures of one model, layer and method (per-image) or one method (per-layer)."""

    model: str
    title: str
    page_stem: str  # pages/<model>/<page_stem>-N.html
    figures: list[Figure] = field(default_factory=list)
    layer: str | None = None
    method: str = ""
    per_image: bool = True


@dataclass
class ModelView:
    name: str
    slug: str
    info: dict[str, Any]
    image_groups: list[Group]
    layer_groups: list[Group]
    rows: list[tuple[str, dict[str, Any], dict[int, Figure]]]  # image id, info, column -> figure


class Report:
    """Everything the pages show, grouped once from the manifest."""

    def __init__(self, manifest: Manifest, page_size: int):
        self.manifest = manifest
        self.page_size = max(1, page_size)
        self.names = manifest.settings.get("class_names")
        by_model: dict[str, list[Entry]] = defaultdict(list)
        for entry in manifest.entries.values():
            by_model[entry.model].append(entry)
        shown = set(by_model) | set(manifest.diagnosis) | set(manifest.trust)
        order = [n for n in manifest.models if n in shown]
        order += [n for n in by_model if n not in order]
        self.models = [self._model(n, by_model.get(n, [])) for n in order]

    def _model(self, name: str, entries: list[Entry]) -> ModelView:
        info = self.manifest.models.get(name, {})
        slug = info.get("slug") or (entries[0].path.split("/")[0] if entries else safe_name(name))
        rank = {p: i for i, p in enumerate(info.get("layers", []))}
        methods = {m: i for i, m in enumerate(METHODS)}
        figures: dict[tuple, dict[Any, list[Entry]]] = defaultdict(lambda: defaultdict(list))
        for e in entries:
            per_image = e.image_id is not None or e.image is not None
            stem = e.method if e.variant is None else f"{e.method}-{e.variant}"
            folder = e.path.split("/")[1] if e.path.count("/") >= 2 else "_"
            key = (per_image, stem, e.layer, folder) if per_image else (per_image, stem, None, "")
            image = e.image_id if e.image_id is not None else e.image
            figures[key][image if per_image else e.layer].append(e)

        def sort_key(key):
            per_image, stem, layer, _ = key
            method = stem.split("-")[0]
            where = (-1, "") if layer is None else (rank.get(layer, 10**6), layer)
            # Explanation maps first (saliency, Grad-CAM, occlusion side by side), then the rest.
            explains = method in METHODS and METHODS[method].target
            return (not per_image, not explains, methods.get(method, 99), where, stem)

        image_groups, layer_groups = [], []
        for key in sorted(figures, key=sort_key):
            per_image, stem, layer, folder = key
            by_item = figures[key]
            first = next(iter(by_item.values()))[0]
            if per_image:
                items = sorted(by_item.values(), key=lambda es: _position(es[0]))
                title = captions.figure_title(first.method, first.variant, layer)
                group = Group(name, title, f"{folder}__{stem}", layer=layer, method=first.method)
            else:
                items = sorted(by_item.values(), key=lambda es: _layer_rank(es[0], rank))
                title = captions.method_title(first.method, first.variant)
                group = Group(name, title, stem, method=first.method, per_image=False)
            group.figures = [Figure(sorted(es, key=lambda e: e.format != "png")) for es in items]
            (image_groups if per_image else layer_groups).append(group)
        rows = self._rows(name, image_groups)
        return ModelView(name, slug, info, image_groups, layer_groups, rows)

    def _rows(self, name: str, groups: list[Group]):
        known = self.manifest.images.get(name, {})
        cells: dict[str, dict[int, Figure]] = defaultdict(dict)
        position: dict[str, Any] = {}
        for column, group in enumerate(groups):
            for figure in group.figures:
                image = (
                    figure.main.image_id if figure.main.image_id is not None else figure.main.image
                )
                cells[str(image)][column] = figure
                position.setdefault(str(image), _position(figure.main))
        order = sorted(cells, key=lambda i: (known.get(i, {}).get("index", position[i]), i))
        return [(i, known.get(i, {}), cells[i]) for i in order]

    # -- pages ----------------------------------------------------------------------------------
    def pages(self) -> dict[str, str]:
        """``{relative path: HTML}`` of every page but the index."""
        out = {}
        for view in self.models:
            if view.rows:
                pages = _chunks(view.rows, self.rows_per_page(view))
                for n, rows in enumerate(pages, 1):
                    path = self.page_path(view, "images", n)
                    body = self._image_table(view, rows, "../../")
                    title = f"Images of {view.name}"
                    out[path] = self._page(view, title, body, "images", n, len(pages))
            for group in view.image_groups + view.layer_groups:
                pages = _chunks(group.figures, self.page_size)
                for n, figures in enumerate(pages, 1):
                    path = self.page_path(view, group.page_stem, n)
                    body = _grid(figures, "../../")
                    title = f"{group.title} - {view.name}"
                    out[path] = self._page(view, title, body, group.page_stem, n, len(pages))
        return out

    def page_path(self, view: ModelView, stem: str, n: int) -> str:
        return f"{PAGES}/{view.slug}/{stem}-{n}.html"

    def rows_per_page(self, view: ModelView) -> int:
        """Images per page of the per-image view: about ``page_size`` figures a page."""
        return max(1, self.page_size // max(1, len(view.image_groups)))

    def page_count(self, view: ModelView, group: Group | None) -> int:
        """Pages of the per-image view (``group`` None) or of one group."""
        if group is None:
            return math.ceil(len(view.rows) / self.rows_per_page(view))
        return math.ceil(len(group.figures) / self.page_size)

    def _page(self, view, title: str, body: str, stem: str, n: int, total: int) -> str:
        pager = self._pager(view, stem, n, total)
        crumbs = (
            f'<a href="../../{INDEX_NAME}">report</a> &rsaquo; '
            f'<a href="../../{INDEX_NAME}#{_anchor(view.slug)}">{_esc(view.name)}</a>'
        )
        return _document(
            title,
            f"<header><h1>{_esc(title)}</h1><p>{crumbs} &middot; page {n} of {total}</p></header>"
            f"<main>{pager}{body}{pager}</main>",
        )

    def _pager(self, view, stem: str, n: int, total: int) -> str:
        if total <= 1:
            return ""

        def link(k: int, text: str, rel: str = "") -> str:
            rel = f' rel="{rel}"' if rel else ""
            return f'<a href="{_url(f"{stem}-{k}.html")}"{rel}>{text}</a>'

        parts = []
        if n > 1:
            parts += [link(1, "&laquo; first"), link(n - 1, "&lsaquo; previous", "prev")]
        for k in range(max(1, n - PAGE_LINKS), min(total, n + PAGE_LINKS) + 1):
            parts.append(f'<span class="here">{k}</span>' if k == n else link(k, str(k)))
        if n < total:
            parts += [link(n + 1, "next &rsaquo;", "next"), link(total, "last &raquo;")]
        return f'<nav class="pager">{" ".join(parts)}</nav>'

    def _image_table(self, view: ModelView, rows, prefix: str) -> str:
        head = "".join(f"<th>{_esc(g.title)}</th>" for g in view.image_groups)
        body = []
        for image_id, info, cells in rows:
            facts = captions.image_facts(image_id, info, self.names)
            picture = ""
            if info.get("path"):
                url = _url(prefix + info["path"])
                picture = (
                    f'<a href="{url}"><img class="input" src="{url}" alt="{_esc(image_id)}" '
                    'loading="lazy"></a>'
                )
            cols = []
            for column in range(len(view.image_groups)):
                figure = cells.get(column)
                cols.append("<td></td>" if figure is None else f"<td>{_cell(figure, prefix)}</td>")
            body.append(
                f'<tr id="{_esc("image-" + safe_name(image_id))}"><th>{picture}'
                f'<div class="facts">{"<br>".join(_esc(f) for f in facts)}</div></th>'
                f"{''.join(cols)}</tr>"
            )
        return (
            f'<table class="images"><thead><tr><th>image</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )

    # -- the index ------------------------------------------------------------------------------
    def index(self) -> str:
        m = self.manifest
        figures = len(m.entries) + sum(len(items) for items in m.extras.values())
        toc = [f'<a href="#{_anchor(v.slug)}">{_esc(v.name)}</a>' for v in self.models]
        toc += [
            f'<a href="#{_trust_anchor(v.slug)}">{_esc(f"Which map to trust ({v.name})")}</a>'
            for v in self.models
            if v.name in m.trust
        ]
        toc += [f'<a href="#{_section_anchor(k)}">{_esc(s.get("title", k))}</a>'
                for k, s in m.sections.items()]  # fmt: skip
        toc += [f'<a href="#{_extra_anchor(s)}">{_esc(s)}</a>' for s in m.extras]
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        body = [self._model_section(v) for v in self.models]
        body += [section_html(s, _section_anchor(k)) for k, s in m.sections.items()]
        body += [_extra_section(s, items) for s, items in m.extras.items()]
        return _document(
            "vizkit report",
            f"<header><h1>vizkit report</h1><p>{len(self.models)} model(s), {figures} file(s); "
            f"updated {_esc(stamp)}</p></header><main>"
            f'<nav class="toc">{"".join(toc)}</nav>' + "".join(body) + "</main>",
        )

    def _model_section(self, view: ModelView) -> str:
        info = view.info
        meta = [f"{info['images']} image(s)"] if info.get("images") else []
        if info.get("preprocess"):
            meta.append(f"preprocess {info['preprocess']}")
        if info.get("weights_sha1"):
            meta.append(f"weights {info['weights_sha1']}")
        parts = [
            f'<section class="model" id="{_anchor(view.slug)}"><h2>Model {_esc(view.name)}</h2>',
            f'<p class="meta">{_esc(" · ".join(meta))}</p>' if meta else "",
        ]
        if view.rows:
            shown = view.rows[:PREVIEW_ROWS]
            parts.append(f"<h3>Images ({len(view.rows)}): every method side by side</h3>")
            parts.append(self._image_table(view, shown, ""))
            pages = self.page_count(view, None)
            links = " ".join(
                f'<a href="{_url(self.page_path(view, "images", n))}">{n}</a>'
                for n in range(1, min(pages, 2 * PAGE_LINKS) + 1)
            )
            more = f" &hellip; ({pages} pages)" if pages > 2 * PAGE_LINKS else ""
            parts.append(f'<p class="meta">All images, page by page: {links}{more}</p>')
        if view.layer_groups:
            figures = [f for g in view.layer_groups for f in g.figures]
            parts.append("<h3>Per-layer figures</h3>")
            parts.append(_grid(figures[:PREVIEW_FIGURES], ""))
            if len(figures) > PREVIEW_FIGURES:
                parts.append(f'<p class="meta">{len(figures) - PREVIEW_FIGURES} more below.</p>')
        groups = view.image_groups + view.layer_groups
        if groups:
            parts.append("<h3>All figures</h3>" + self._group_table(view, groups))
        if view.name in self.manifest.diagnosis:
            parts.append(section_html(diagnosis_section(self.manifest.diagnosis[view.name]),
                                      level=3))  # fmt: skip
        if view.name in self.manifest.trust:
            card = trust_section(self.manifest.trust[view.name])
            parts.append(section_html(card, _trust_anchor(view.slug), level=3))
        parts.append("</section>")
        return "".join(parts)

    def _group_table(self, view: ModelView, groups: list[Group]) -> str:
        rows = []
        for group in groups:
            pages = self.page_count(view, group)
            links = " ".join(
                f'<a href="{_url(self.page_path(view, group.page_stem, n))}">{n}</a>'
                for n in range(1, min(pages, 2 * PAGE_LINKS) + 1)
            )
            if pages > 2 * PAGE_LINKS:
                last = self.page_path(view, group.page_stem, pages)
                links += f' &hellip; <a href="{_url(last)}">{pages}</a>'
            where = "every layer" if not group.per_image else (group.layer or "whole model")
            title = captions.method_title(group.method, group.figures[0].main.variant)
            rows.append(
                f'<tr><td class="name">{_esc(where)}</td><td class="name">{_esc(title)}</td>'
                f'<td>{len(group.figures)}</td><td class="name">{links}</td></tr>'
            )
        return (
            "<table><thead><tr><th>layer</th><th>method</th><th>figures</th><th>pages</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )


# -- sections ---------------------------------------------------------------------------------------
def section_html(section: dict[str, Any], anchor: str | None = None, *, level: int = 2) -> str:
    """One section: a title, a note, a table (``columns``, ``rows``; rows listed in
    ``highlight`` are marked, rows in ``muted`` set in italics), a ``legend`` under the table,
    a bulleted list (``items``; those in ``items_highlight`` marked), figures (``{"title",
    "path", "thumbnail"}``, paths relative to the report; larger with ``wide``) and folded
    ``details``
    (``{"summary", "columns", "rows", "text"}``), all escaped."""
    ident = f' id="{_esc(anchor)}"' if anchor else ""
    parts = [f'<section class="section"{ident}>' if level == 2 else f"<div{ident}>"]
    parts.append(f"<h{level}>{_esc(section.get('title', ''))}</h{level}>")
    if section.get("note"):
        parts.append(f"<p>{_esc(section['note'])}</p>")
    if section.get("rows"):
        parts.append(_table(section.get("columns"), section["rows"], section.get("highlight"),
                            section.get("muted")))  # fmt: skip
    if section.get("legend"):
        parts.append(f'<p class="meta">{_esc(section["legend"])}</p>')
    if section.get("items"):
        marked = set(section.get("items_highlight") or ())
        parts.append(
            "<ul>"
            + "".join(
                f'<li class="bad">{_esc(item)}</li>' if i in marked else f"<li>{_esc(item)}</li>"
                for i, item in enumerate(section["items"])
            )
            + "</ul>"
        )
    if section.get("figures"):
        parts.append(_plain_grid(section["figures"], wide=bool(section.get("wide"))))
    details = section.get("details")
    if details:
        parts.append(f"<details><summary>{_esc(details.get('summary', 'Details'))}</summary>")
        if details.get("rows"):
            parts.append(_table(details.get("columns"), details["rows"], details.get("highlight")))
        if details.get("text"):
            parts.append(f"<pre>{_esc(details['text'])}</pre>")
        parts.append("</details>")
    parts.append("</section>" if level == 2 else "</div>")
    return "".join(parts)


def diagnosis_section(diagnosis: dict[str, Any]) -> dict[str, Any]:
    """The section of :meth:`vizkit.Diagnosis.to_dict`: layers with findings in a table, every
    layer in a folded one, the text summary folded too."""
    rows = [r for r in diagnosis.get("layers", []) if isinstance(r, dict)]
    table = [_diagnosis_row(r) for r in rows]
    bad = [
        i for i, r in enumerate(rows) if any(r.get(k) for k in ("dead", "constant", "input_like"))
    ]
    section: dict[str, Any] = {"title": "Diagnosis: dead, constant and input-like channels"}
    if "error" in diagnosis:
        section["note"] = f"Diagnosis failed: {diagnosis['error']}"
    elif bad:
        section["note"] = (
            f"{len(bad)} of {len(rows)} layers have dead, constant or input-like channels."
        )
        section.update(columns=_DIAGNOSIS_COLUMNS, rows=[table[i] for i in bad])
        section["highlight"] = list(range(len(bad)))
    elif rows:
        section["note"] = f"No dead, constant or input-like channels in {len(rows)} layers."
    if rows:
        details = {"summary": f"All {len(rows)} layers", "columns": _DIAGNOSIS_COLUMNS}
        details.update(rows=table, highlight=bad)
        if isinstance(diagnosis.get("summary"), str):
            details["text"] = diagnosis["summary"]
        section["details"] = details
    return section


def _diagnosis_row(row: dict[str, Any]) -> list[str]:
    findings = [row.get(k) or [] for k in ("dead", "constant", "input_like")]
    shape = "x".join(str(s) for s in row.get("shape", []))
    sparsity = row.get("sparsity")
    return [
        str(row.get("path", "")),
        shape,
        str(row.get("channels", "")),
        *(_channels(f) for f in findings),
        "" if sparsity is None else f"{float(sparsity):.1%}",
    ]


def trust_section(card: dict[str, Any]) -> dict[str, Any]:
    """The "Which map to trust" section of one model's card (the manifest's ``trust`` entry:
    :meth:`vizkit.metrics.TrustTable.to_dict` as ``table`` and the figures): methods x metrics
    as mean ± standard deviation with the random-pixel-order reference row in italics, methods
    that fail a sanity check marked, the legend, the verdict (failed checks marked) and the
    figures (deletion/insertion curves, the cascading randomisation strip, similarity per
    layer)."""
    section: dict[str, Any] = {"title": "Which map to trust"}
    if "error" in card or not isinstance(card.get("table"), dict):
        section["note"] = f"Evaluation failed: {card.get('error', 'no table recorded')}"
        return section
    table = card["table"]
    metrics = [k for k in table.get("metrics", []) if k in LABELS]
    cells = table.get("table", {})
    threshold = table.get("sanity_threshold", 0.5)
    rows, bad = [], []
    for i, method in enumerate(table.get("methods", [])):
        values = [cells.get(method, {}).get(k, {}) for k in metrics]
        rows.append([method, *(cell(v.get("mean"), v.get("std")) for v in values)])
        failed = [
            v.get("mean") is not None and v["mean"] >= threshold
            for k, v in zip(metrics, values, strict=True)
            if k in SANITY
        ]
        if any(failed):
            bad.append(i)
    reference = table.get("reference") or {}
    muted = []
    if reference:
        muted.append(len(rows))
        rows.append(
            [REFERENCE_ROW]
            + [
                cell(reference[k].get("mean"), _pstdev(reference[k].get("per_image")))
                if k in reference
                else "-"
                for k in metrics
            ]
        )
    verdict = [str(line) for line in table.get("verdict", [])]
    section.update(
        columns=["method", *(metric_column(k) for k in metrics)],
        rows=rows,
        highlight=bad,
        muted=muted,
        legend=legend(table.get("settings", {}), metrics),
        items=verdict,
        items_highlight=[i for i, line in enumerate(verdict) if line.startswith(FAILED)],
        figures=list(card.get("figures", [])),
        wide=True,  # the strip and the curves are wide figures: larger thumbnails
    )
    return section


def _pstdev(values) -> float | None:
    """Standard deviation (ddof=0) of the numbers in ``values`` (None, JSON's NaN, left out)."""
    numbers = [float(v) for v in values or () if v is not None]
    return statistics.pstdev(numbers) if numbers else None


def _table(columns, rows, highlight=None, muted=None) -> str:
    marked = set(highlight or ())
    quiet = set(muted or ())
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns) if columns else ""
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="name">{_esc(v)}</td>' if j == 0 else f"<td>{_esc(v)}</td>"
            for j, v in enumerate(row)
        )
        kind = "bad" if i in marked else "muted" if i in quiet else ""
        body.append(f'<tr class="{kind}">{cells}</tr>' if kind else f"<tr>{cells}</tr>")
    head = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


def _channels(indices: list) -> str:
    """``"2: [0, 5]"``: how many channels and which (the first ten)."""
    if not indices:
        return "0"
    shown = ", ".join(str(i) for i in indices[:10]) + (", ..." if len(indices) > 10 else "")
    return f"{len(indices)}: [{shown}]"


# -- pieces -----------------------------------------------------------------------------------------
def _grid(figures: Sequence[Figure], prefix: str) -> str:
    return '<div class="grid">' + "".join(_figure(f, prefix) for f in figures) + "</div>"


def _figure(figure: Figure, prefix: str) -> str:
    main = figure.main
    text = main.caption or (
        main.method if main.image is None else f"{main.method}, image {main.image}"
    )
    links = " ".join(
        f'<a href="{_url(prefix + e.path)}">{_esc(e.format.upper())}</a>' for e in figure.entries
    )
    thumb = main.thumbnail or main.path
    title = main.title or main.method
    return (
        f'<figure><a href="{_url(prefix + main.path)}"><img src="{_url(prefix + thumb)}" '
        f'alt="{_esc(text)}" loading="lazy"></a>'
        f"<figcaption><b>{_esc(title)}</b><br>{_esc(text)}<br>{links}</figcaption></figure>"
    )


def _cell(figure: Figure, prefix: str) -> str:
    main = figure.main
    facts = captions.picture_facts(main.notes or {})
    links = " ".join(
        f'<a href="{_url(prefix + e.path)}">{_esc(e.format.upper())}</a>' for e in figure.entries
    )
    return (
        f'<a href="{_url(prefix + main.path)}"><img src="{_url(prefix + (main.thumbnail or main.path))}" '
        f'alt="{_esc(main.caption or main.method)}" loading="lazy"></a>'
        f'<div class="facts">{_esc(facts[0]) if facts else ""}<br>{links}</div>'
    )


def _plain_grid(items: list[dict[str, str]], prefix: str = "", *, wide: bool = False) -> str:
    parts = ['<div class="grid wide">' if wide else '<div class="grid">']
    for item in items:
        title, path = item.get("title", ""), item.get("path", "")
        thumb = item.get("thumbnail") or path
        parts.append(
            f'<figure><a href="{_url(prefix + path)}"><img src="{_url(prefix + thumb)}" '
            f'alt="{_esc(title)}" loading="lazy"></a><figcaption>{_esc(title)}</figcaption></figure>'
        )
    parts.append("</div>")
    return "".join(parts)


def _extra_section(section: str, items: list[dict[str, str]]) -> str:
    """Figures added with :func:`vizkit.report.add_figures`, one section per name."""
    return (
        f'<section class="extra" id="{_extra_anchor(section)}"><h2>{_esc(section)}</h2>'
        f"{_plain_grid(items)}</section>"
    )


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{_CSP}<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"{body}</body></html>\n"
    )


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _position(entry: Entry) -> tuple:
    return (entry.image if entry.image is not None else math.inf, str(entry.image_id))


def _layer_rank(entry: Entry, rank: dict[str, int]) -> tuple:
    return (rank.get(entry.layer, 10**6), str(entry.layer))


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _url(path: str) -> str:
    return _esc(quote(path, safe="/"))


def _anchor(slug: str) -> str:
    return "model-" + slug


def _section_anchor(key: str) -> str:
    return "section-" + safe_name(key)


def _trust_anchor(slug: str) -> str:
    return "trust-" + slug


def _extra_anchor(section: str) -> str:
    return "extra-" + safe_name(section)


__all__ = [
    "INDEX_NAME",
    "PAGE_SIZE",
    "diagnosis_section",
    "section_html",
    "trust_section",
    "write_report",
]
