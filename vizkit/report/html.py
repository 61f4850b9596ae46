"""The static ``index.html`` of an export: no scripts, no network requests, inline CSS only.

Every model, layer, method or value taken from the user's model goes through
:func:`html.escape`, so a layer named ``<img src=x onerror=...>`` shows up as text.
"""

from __future__ import annotations

import html
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..core.files import atomic_write, safe_name
from ..registry import METHODS
from .manifest import Entry, Manifest

INDEX_NAME = "index.html"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:12px 24px}
header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;font-size:13px;color:#cfd8dc}
main{padding:8px 24px 40px}
nav ul{columns:3;font-size:13px}
section.model{margin-top:24px;border-top:3px solid #263238}
section.layer{margin:16px 0;padding:8px 12px;background:#fff;border:1px solid #ddd;border-radius:6px}
h2{font-size:18px;margin:12px 0 4px}
h3{font-size:15px;margin:4px 0 8px;font-family:ui-monospace,monospace}
h4{font-size:13px;margin:8px 0 4px;color:#555}
.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;padding:4px;border:1px solid #eee;background:#fff;text-align:center}
figure img{display:block;max-width:200px;max-height:200px;margin:auto}
figcaption{font-size:11px;color:#555;max-width:200px;word-break:break-all}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#eceff1}
td.name{text-align:left;font-family:ui-monospace,monospace}
tr.bad td{background:#ffebee}
pre{font-size:12px;background:#f5f5f5;padding:8px;overflow-x:auto}
"""


def write_index(manifest: Manifest) -> Path:
    """Render ``manifest`` to ``index.html`` in its folder (atomically) and return the path."""
    path = manifest.folder / INDEX_NAME
    atomic_write(path, render_index(manifest))
    return path


def render_index(manifest: Manifest) -> str:
    """The HTML text of the index page for ``manifest``."""
    by_model: dict[str, list[Entry]] = defaultdict(list)
    for entry in manifest.entries.values():
        by_model[entry.model].append(entry)
    names = [n for n in manifest.models if n in by_model or n in manifest.diagnosis]
    names += [n for n in by_model if n not in names]
    body = [_model_section(n, by_model.get(n, []), manifest) for n in names]
    body += [_extra_section(s, items) for s, items in manifest.extras.items()]
    figures = len(manifest.entries) + sum(len(items) for items in manifest.extras.values())
    toc = "".join(f'<li><a href="#{_anchor(n)}">{_esc(n)}</a></li>' for n in names)
    toc += "".join(f'<li><a href="#{_extra_anchor(s)}">{_esc(s)}</a></li>' for s in manifest.extras)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # A strict policy: the page may show its own images and inline CSS, nothing else.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src 'self' data:; style-src 'unsafe-inline'\">"
        f"<title>vizkit report</title><style>{_CSS}</style></head><body>"
        f"<header><h1>vizkit report</h1><p>{len(names)} model(s), {figures} file(s); "
        f"updated {_esc(stamp)}</p></header><main><nav><ul>{toc}</ul></nav>"
        + "".join(body)
        + "</main></body></html>\n"
    )


def _model_section(name: str, entries: list[Entry], manifest: Manifest) -> str:
    info = manifest.models.get(name, {})
    order = {p: i for i, p in enumerate(info.get("layers", []))}
    by_layer: dict[str | None, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_layer[entry.layer].append(entry)
    layers = sorted(by_layer, key=lambda p: (-1, "") if p is None else (order.get(p, 10**6), p))
    parts = [f'<section class="model" id="{_anchor(name)}"><h2>Model {_esc(name)}</h2>']
    if name in manifest.diagnosis:
        parts.append(_diagnosis_html(manifest.diagnosis[name]))
    for layer in layers:
        title = "Whole model (input attributions)" if layer is None else f"Layer {layer}"
        parts.append(f'<section class="layer"><h3>{_esc(title)}</h3>')
        parts.append(_figures_html(by_layer[layer]))
        parts.append("</section>")
    parts.append("</section>")
    return "".join(parts)


def _figures_html(entries: list[Entry]) -> str:
    # One figure per (method, image); its formats become links under the thumbnail.
    figures: dict[str, dict[int | None, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    for entry in entries:
        figures[entry.method][entry.image].append(entry)
    parts = []
    for method, per_image in figures.items():
        parts.append(f'<h4>{_esc(_title(method))}</h4><div class="grid">')
        for image in sorted(per_image, key=lambda i: -1 if i is None else i):
            files = sorted(per_image[image], key=lambda e: e.format != "png")
            main = files[0]
            caption = method if image is None else f"{method}, image {image}"
            links = " ".join(
                f'<a href="{_url(e.path)}">{_esc(e.format.upper())}</a>' for e in files
            )
            thumb = main.thumbnail or main.path
            parts.append(
                f'<figure><a href="{_url(main.path)}"><img src="{_url(thumb)}" '
                f'alt="{_esc(caption)}" loading="lazy"></a>'
                f"<figcaption>{_esc(caption)}<br>{links}</figcaption></figure>"
            )
        parts.append("</div>")
    return "".join(parts)


def _extra_section(section: str, items: list[dict[str, str]]) -> str:
    """Figures added with :func:`vizkit.report.add_figures`, one section per name."""
    parts = [
        f'<section class="model" id="{_extra_anchor(section)}"><h2>{_esc(section)}</h2>'
        '<div class="grid">'
    ]
    for item in items:
        title, path = item.get("title", ""), item.get("path", "")
        thumb = item.get("thumbnail") or path
        parts.append(
            f'<figure><a href="{_url(path)}"><img src="{_url(thumb)}" alt="{_esc(title)}" '
            f'loading="lazy"></a><figcaption>{_esc(title)}</figcaption></figure>'
        )
    parts.append("</div></section>")
    return "".join(parts)


def _diagnosis_html(diagnosis: dict[str, Any]) -> str:
    """Table of :meth:`vizkit.Diagnosis.to_dict`: one row per layer, problem rows highlighted."""
    rows = [r for r in diagnosis.get("layers", []) if isinstance(r, dict)]
    parts = ["<h4>Diagnosis: dead, constant and input-like channels</h4>"]
    if "error" in diagnosis:
        parts.append(f"<p>Diagnosis failed: {_esc(diagnosis['error'])}</p>")
    if rows:
        head = "".join(f"<th>{h}</th>" for h in _DIAGNOSIS_COLUMNS)
        body = []
        for row in rows:
            findings = [row.get(k) or [] for k in ("dead", "constant", "input_like")]
            shape = "x".join(str(s) for s in row.get("shape", []))
            sparsity = row.get("sparsity")
            cells = [
                f'<td class="name">{_esc(row.get("path", ""))}</td>',
                f"<td>{_esc(shape)}</td>",
                f"<td>{_esc(row.get('channels', ''))}</td>",
                *(f"<td>{_esc(_channels(f))}</td>" for f in findings),
                f"<td>{'' if sparsity is None else f'{float(sparsity):.1%}'}</td>",
            ]
            cls = ' class="bad"' if any(findings) else ""
            body.append(f"<tr{cls}>{''.join(cells)}</tr>")
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    summary = diagnosis.get("summary")
    if isinstance(summary, str) and summary:
        parts.append(f"<details><summary>Summary</summary><pre>{_esc(summary)}</pre></details>")
    return "".join(parts)


_DIAGNOSIS_COLUMNS = ("layer", "shape", "channels", "dead", "constant", "input-like", "zeros")


def _channels(indices: list) -> str:
    """``"2: [0, 5]"``: how many channels and which (the first ten)."""
    if not indices:
        return "0"
    shown = ", ".join(str(i) for i in indices[:10]) + (", ..." if len(indices) > 10 else "")
    return f"{len(indices)}: [{shown}]"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _url(path: str) -> str:
    return _esc(quote(path, safe="/"))


def _anchor(name: str) -> str:
    return "model-" + safe_name(name)


def _extra_anchor(section: str) -> str:
    return "extra-" + safe_name(section)


def _title(method: str) -> str:
    spec = METHODS.get(method)
    return spec.title if spec is not None else method
