"""The atlas's static site: a landing page of layers and one page of channel cards per layer.

Layout of the folder::

    index.html                  the model, the data, one row per layer (dead / constant counts)
    atlas.json                  every number the pages show, and the files written
    layers/<layer>.html         one card per channel, anchors #c0, #c1, ... (the first
                                PAGE_SIZE channels; layers/<layer>~p2.html the next ones)
    layers/<layer>/cNNN-max.png activation maximisation of channel NNN
    layers/<layer>/cNNN-top.png the receptive-field crops of its top-k images, best first
    layers/<layer>/cNNN-hist.png its activation histogram

Pages hold no scripts, make no network request (a Content-Security-Policy forbids both) and
no timestamp, so the same inputs give the same bytes; every name from the model or the data
is escaped. Files are written atomically with the umask's permissions. As with
:func:`vizkit.export`, files already in the folder are never replaced without ``overwrite``
(the check runs before any work, on the list of files the atlas will write); other files in
the folder are left alone.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from ..core.files import UniqueNames, atomic_write, contained, ensure_writable
from ..methods.diagnose import MEANINGS
from ..render.encode import encode_png
from . import pictures

INDEX = "index.html"
MANIFEST = "atlas.json"
LAYERS = "layers"
FORMAT = 1
PREVIEW = 8  # maximisation thumbnails per layer on the landing page
PAGE_SIZE = 128  # channel cards per layer page (a layer with more gets several pages)
PAGE_MARK = "~p"  # page n > 1 of a layer: <slug>~p<n>.html ("~" is never in a slug)
WRITERS = 4  # threads encoding and writing PNGs (OpenCV and file I/O release the GIL)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:10px 24px}
header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;font-size:13px;color:#cfd8dc}
header a{color:#fff}
main{padding:8px 24px 40px}
nav.layers{font-size:14px;margin:8px 0}
nav.layers a{margin-right:16px}
nav.channels{font-size:12px;margin:6px 0;line-height:1.9}
nav.channels a{display:inline-block;min-width:26px;text-align:center;margin:0 2px;border:1px solid #ccc;border-radius:3px;text-decoration:none;color:#263238;background:#fff}
nav.channels a.dead{background:#ffcdd2}
nav.channels a.constant{background:#ffe0b2}
nav.pages{font-size:13px;margin:8px 0}
nav.pages a,nav.pages b{margin-right:10px}
p.legend{font-size:12px;color:#555;max-width:900px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:middle}
th{background:#eceff1}
td.name{text-align:left;font-family:ui-monospace,monospace}
td.preview{text-align:left}
td.preview img{width:28px;height:28px;margin-right:2px;image-rendering:pixelated;vertical-align:middle}
tr.bad td{background:#ffebee}
.cards{display:flex;flex-wrap:wrap;gap:10px}
article{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px 8px;width:max-content}
article.dead{border-color:#e57373;background:#fff5f5}
article.constant{border-color:#ffb74d}
article:target{outline:3px solid #1e88e5}
article h3{font-size:14px;margin:0 0 4px}
article h3 a{color:#222;text-decoration:none}
.badge{font-size:11px;font-weight:normal;padding:1px 5px;border-radius:3px;margin-left:4px;color:#fff}
.badge.dead{background:#c62828}
.badge.constant{background:#ef6c00}
.badge.input-like{background:#1565c0}
.pics{display:flex;gap:8px;align-items:flex-start}
.pics img{display:block;image-rendering:pixelated}
ol.top{list-style:none;margin:2px 0 0;padding:0;display:grid;gap:0 2px;font-size:10px;color:#555}
ol.top li{overflow-wrap:anywhere;line-height:1.2}
ol.top b{color:#222;font-weight:600}
img.hist{display:block;margin-top:4px;image-rendering:pixelated}
p.meta{font-size:11px;color:#555;margin:2px 0 0}
ul.legend{font-size:12px;color:#555;max-width:900px}
"""
_CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "img-src 'self'; style-src 'unsafe-inline'\">"
)


@dataclass(frozen=True)
class LayerFiles:
    """Where the files of one layer go (paths relative to the site folder, ``/``-separated)."""

    slug: str
    channels: int
    page_size: int

    @property
    def pages(self) -> list[str]:
        """The layer's pages, the first one ``layers/<slug>.html``."""
        n = -(-self.channels // self.page_size)
        return [f"{LAYERS}/{self.slug}{'' if i == 0 else f'{PAGE_MARK}{i + 1}'}.html"
                for i in range(n)]  # fmt: skip

    def page_of(self, channel: int) -> str:
        return self.pages[channel // self.page_size]

    def pictures(self, channel: int) -> dict[str, str]:
        """The maximisation, top-crops and histogram pictures of ``channel``."""
        width = max(3, len(str(self.channels - 1)))
        stem = f"{LAYERS}/{self.slug}/c{channel:0{width}d}"
        return {"max": f"{stem}-max.png", "top": f"{stem}-top.png", "hist": f"{stem}-hist.png"}

    def files(self) -> list[str]:
        pics = [f for c in range(self.channels) for f in self.pictures(c).values()]
        return [*self.pages, *pics]


def plan_files(
    layer_order: Sequence[str], layers: Sequence[tuple[str, int]], page_size: int = PAGE_SIZE
) -> list[LayerFiles]:
    """The files of each of ``layers`` (``(path, channels)`` pairs).

    ``layer_order`` is every layer path of the model: slugs are given in that order, so a
    layer's file names do not depend on which layers the atlas shows.
    """
    names = UniqueNames(layer_order)
    return [LayerFiles(names(path), int(channels), int(page_size)) for path, channels in layers]


def prepare_folder(
    out_dir: str | os.PathLike, plan: Sequence[LayerFiles], *, overwrite: bool
) -> Path:
    """``out_dir`` created and writable, checked before any work: without ``overwrite`` none of
    the files the atlas will write (``plan``, ``index.html``, ``atlas.json``) may exist.

    Raises
    ------
    FileExistsError
        A file to write exists and ``overwrite`` is False (the message names it and says
        whether an earlier atlas wrote it).
    NotADirectoryError
        ``out_dir`` is a file.
    """
    folder = Path(out_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"out_dir {str(out_dir)!r} is a file; pass a folder for the site")
    if folder.is_dir() and not overwrite:
        earlier = _previous_files(folder)
        for rel in [INDEX, MANIFEST, *(f for layer in plan for f in layer.files())]:
            target = contained(folder, *rel.split("/"))
            if target.exists():
                why = "written by an earlier atlas" if rel in earlier else "not written by vizkit"
                raise FileExistsError(
                    f"{str(target)!r} already exists ({why}); pass overwrite=True (--overwrite) "
                    "to replace it or choose another output folder"
                )
    return ensure_writable(folder)


def write_site(
    folder: Path, info: dict[str, Any], layers: Sequence, plan: Sequence[LayerFiles]
) -> Path:
    """Write the pages, pictures and ``atlas.json`` of ``layers`` (:class:`LayerAtlas`, in
    model order, their files as ``plan`` says) into ``folder``; files listed by an earlier
    atlas there and not written again are removed. Returns ``index.html``.
    """
    previous = _previous_files(folder)
    written: list[str] = []
    pictures_todo: list[tuple[str, np.ndarray]] = []
    records = []
    for layer, files in zip(layers, plan, strict=True):
        record, todo = _layer_files(layer, files)
        records.append(record)
        pictures_todo += todo
    with ThreadPoolExecutor(WRITERS) as pool:
        for rel in pool.map(lambda item: _write_png(folder, *item), pictures_todo):
            written.append(rel)
    for i, record in enumerate(records):
        neighbours = (
            records[i - 1] if i else None,
            records[i + 1] if i + 1 < len(records) else None,
        )
        for number, page in enumerate(record["pages"]):
            _write_text(folder, page["file"], layer_page(info, record, number, *neighbours))
            written.append(page["file"])
    written += [MANIFEST, INDEX]
    manifest = {"format": FORMAT, **info, "layers": records, "files": sorted(written)}
    _write_text(folder, MANIFEST, json.dumps(manifest, indent=1, allow_nan=False) + "\n")
    index = _write_text(folder, INDEX, index_page(info, records))
    _remove_stale(folder, previous - set(written))
    return index


# -- what one layer shows -------------------------------------------------------------------------
def _layer_files(layer, plan: LayerFiles) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]]]:
    """The record of ``layer`` for the manifest and pages, and its pictures to write."""
    channels = layer.channels
    if plan.channels != channels:
        raise ValueError(f"plan of {layer.path!r} has {plan.channels} channels, not {channels}")
    tiles, factor = pictures.maximization_tiles(layer.images)
    sparsity = layer.sparsity()
    hist = layer.summary.hist
    top = layer.summary.top
    todo, units = [], []
    crop_side = 0
    for c in range(channels):
        sheet, crop_side = pictures.crop_sheet(layer.crops(c).images)
        counts, edges = hist.used(c)
        bars = pictures.histogram_bars(counts, edges)
        files = plan.pictures(c)
        todo += [(files["max"], tiles[c]), (files["top"], sheet), (files["hist"], bars)]
        units.append(
            {
                "channel": c,
                "page": plan.page_of(c),
                "sparsity": float(sparsity[c]),
                "low": _finite(hist.low[c]),
                "high": _finite(hist.high[c]),
                "top": [
                    {"index": int(i), "id": image_id, "score": _finite(s)}
                    for i, image_id, s in zip(
                        top.indices[c], layer.ids(c), top.scores[c], strict=True
                    )
                ],
                "boxes": [[int(v) for v in box] for box in layer.crops(c).boxes],
                "histogram": {
                    "exponent": int(hist.exponent[c]),
                    "start": int(hist.start[c]),
                    "counts": [int(n) for n in counts],
                },
                "files": files,
                "sizes": {
                    "max": list(tiles.shape[1:3]),
                    "top": list(sheet.shape[:2]),
                    "hist": list(bars.shape[:2]),
                },
            }
        )
    f = layer.findings
    record = {
        "name": layer.path,
        "slug": plan.slug,
        "page": plan.pages[0],
        "pages": [
            {"file": page, "first": first, "last": min(channels, first + plan.page_size) - 1}
            for page, first in zip(plan.pages, range(0, channels, plan.page_size), strict=True)
        ],
        "shape": list(layer.shape),
        "channels": channels,
        "dead": list(f["dead"]),
        "constant": list(f["constant"]),
        "constant_values": [float(v) for v in f["constant_values"]],
        "input_like": list(f["input_like"]),
        "sparsity": float(f["sparsity"]),
        "receptive_field": {
            "size": list(layer.field.size),
            "jump": list(layer.field.jump),
            "start": list(layer.field.start),
        },
        "maximization_scale": int(factor),
        "crop_side": int(crop_side),
        "units": units,
    }
    return record, todo


# -- pages ----------------------------------------------------------------------------------------
def index_page(info: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """The landing page: the model, the data and one row per layer."""
    rows = []
    for r in records:
        bad = ' class="bad"' if r["dead"] or r["constant"] else ""
        thumbs = "".join(
            f'<a href="{_url(u["page"])}#c{u["channel"]}"><img src="{_url(u["files"]["max"])}" '
            f'alt="channel {u["channel"]}" title="channel {u["channel"]}"></a>'
            for u in r["units"][:PREVIEW]
        )
        rows.append(
            f"<tr{bad}>"
            f'<td class="name"><a href="{_url(r["page"])}">{_esc(r["name"])}</a></td>'
            f"<td>{_esc(_shape(r['shape']))}</td><td>{r['channels']}</td>"
            f"<td>{len(r['dead'])}</td><td>{len(r['constant'])}</td>"
            f"<td>{len(r['input_like'])}</td><td>{r['sparsity']:.1%}</td>"
            f'<td class="preview">{thumbs}</td></tr>'
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "layer",
            "output",
            "channels",
            "dead",
            "constant",
            "input-like",
            "mean sparsity",
            f"first {PREVIEW} channels",
        )
    )
    total = sum(r["channels"] for r in records)
    dead = sum(len(r["dead"]) for r in records)
    body = (
        f"<header><h1>Atlas of model {_esc(info['model'])}</h1><p>{_esc(_facts(info))}</p>"
        "</header><main>"
        f'<p class="legend">{len(records)} layers, {total} channels, {dead} dead. Each layer '
        "page shows every channel: the input that excites it most (activation maximisation), "
        "the crops of the dataset images that excite it most, its flags, its sparsity (the "
        "fraction of its activations that are zero) and a histogram of its activations.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{_meanings(('dead', 'constant', 'input-like'))}</main>"
    )
    return _document(f"Atlas of {info['model']}", body)


def layer_page(
    info: dict[str, Any],
    record: dict[str, Any],
    number: int,
    previous: dict[str, Any] | None,
    following: dict[str, Any] | None,
) -> str:
    """Page ``number`` (from 0) of one layer: navigation, an index of all the layer's channels
    (linking across pages) and the cards of the page's channels."""
    nav = _layer_nav(record, previous, following)
    page = record["pages"][number]
    here = _name(page["file"])
    dead, constant = set(record["dead"]), set(record["constant"])
    jump = "".join(
        f'<a href="{_channel_href(u, here)}"{_flag_class(u["channel"], dead, constant)}>'
        f"{u['channel']}</a>"
        for u in record["units"]
    )
    pager = _pager(record, number)
    k = info["settings"]["k"]
    units = record["units"][page["first"] : page["last"] + 1]
    cards = "".join(_card(record, unit, dead, constant) for unit in units)
    columns = (
        f"ol.top{{grid-template-columns:repeat({pictures.CROP_COLUMNS},{record['crop_side']}px)}}"
    )
    field = record["receptive_field"]["size"]
    summary = (
        f"output {_shape(record['shape'])}, {record['channels']} channels, "
        f"{len(record['dead'])} dead, {len(record['constant'])} constant, "
        f"{len(record['input_like'])} input-like, mean sparsity {record['sparsity']:.1%}; "
        f"receptive field {field[0]}x{field[1]} pixels"
    )
    if len(record["pages"]) > 1:
        summary += (
            f"; channels {page['first']} to {page['last']} "
            f"(page {number + 1} of {len(record['pages'])})"
        )
    legend = (
        f"Per channel: the input that excites it most ({info['settings']['maximize_steps']} "
        f"steps of activation maximisation); the top {k} of {info['data']['count']} images, "
        "each cropped to the channel's receptive field around its strongest activation, best "
        "first (bold: the channel's largest activation on that image; below: the image id); "
        "a histogram of all its activations (bar heights grow with the log of the count; the "
        "orange bar holds zero); its sparsity and the range of its activations."
    )
    body = (
        f"<header><h1>{_esc(info['model'])}: layer {_esc(record['name'])}</h1>"
        f"<p>{_esc(summary)}</p></header><main>{nav}"
        f'<p class="legend">{_esc(legend)}</p>'
        f'<nav class="channels" aria-label="channels">{jump}</nav>{pager}'
        f'<div class="cards">{cards}</div>{pager}{nav}</main>'
    )
    title = f"{info['model']}: {record['name']}"
    if len(record["pages"]) > 1:
        title += f" ({number + 1}/{len(record['pages'])})"
    return _document(title, body, extra_css=columns)


def _channel_href(unit: dict[str, Any], here: str) -> str:
    """Link to ``unit``'s card from the layer page file ``here``."""
    page = _name(unit["page"])
    return f"#c{unit['channel']}" if page == here else f"{_url(page)}#c{unit['channel']}"


def _pager(record: dict[str, Any], number: int) -> str:
    """Links to the pages of a layer with several (empty for one page)."""
    pages = record["pages"]
    if len(pages) < 2:
        return ""
    parts = []
    for i, page in enumerate(pages):
        label = f"{page['first']}&ndash;{page['last']}"
        if i == number:
            parts.append(f'<b aria-current="page">{label}</b>')
        else:
            rel = ' rel="prev"' if i == number - 1 else ' rel="next"' if i == number + 1 else ""
            parts.append(f'<a{rel} href="{_url(_name(page["file"]))}">{label}</a>')
    return f'<nav class="pages" aria-label="pages of channels">channels: {" ".join(parts)}</nav>'


def _card(record: dict[str, Any], unit: dict[str, Any], dead: set, constant: set) -> str:
    c = unit["channel"]
    files, sizes = unit["files"], unit["sizes"]
    page_dir = f"{LAYERS}/"
    badges, kind = [], ""
    if c in dead:
        badges.append(
            '<span class="badge dead" title="{}">dead</span>'.format(_esc(MEANINGS["dead"]))
        )
        kind = ' class="dead"'
    elif c in constant:
        value = record["constant_values"][record["constant"].index(c)]
        badges.append(
            f'<span class="badge constant" title="{_esc(MEANINGS["constant"])}">'
            f"constant {value:.4g}</span>"
        )
        kind = ' class="constant"'
    if c in record["input_like"]:
        badges.append(
            f'<span class="badge input-like" title="{_esc(MEANINGS["input-like"])}">'
            "input-like</span>"
        )
    top = "".join(
        f'<li><b>{t["score"]:.3g}</b><br>{_esc(t["id"])}</li>' if t["score"] is not None
        else f"<li><b>n/a</b><br>{_esc(t['id'])}</li>"
        for t in unit["top"]
    )  # fmt: skip
    low, high, n_top = unit["low"], unit["high"], len(unit["top"])
    span = f"range [{low:.4g}, {high:.4g}]" if low is not None and high is not None else "no values"
    return (
        f'<article id="c{c}"{kind}><h3><a href="#c{c}">channel {c}</a>{"".join(badges)}</h3>'
        '<div class="pics">'
        f"{_img(files['max'], sizes['max'], f'activation maximisation of channel {c}', page_dir)}"
        f"<div>{_img(files['top'], sizes['top'], f'top {n_top} crops of channel {c}', page_dir)}"
        f'<ol class="top">{top}</ol></div></div>'
        f"{_img(files['hist'], sizes['hist'], f'activation histogram of channel {c}', page_dir, 'hist')}"
        f'<p class="meta">sparsity {unit["sparsity"]:.1%}, {span}</p></article>'
    )


def _layer_nav(record, previous, following) -> str:
    parts = []
    if previous is not None:
        parts.append(
            f'<a rel="prev" href="{_url(_name(previous["page"]))}">&larr; {_esc(previous["name"])}</a>'
        )
    parts.append(f'<a href="../{INDEX}">all layers</a>')
    if following is not None:
        parts.append(
            f'<a rel="next" href="{_url(_name(following["page"]))}">{_esc(following["name"])} &rarr;</a>'
        )
    return f'<nav class="layers">{"".join(parts)}</nav>'


def _img(rel: str, size: Sequence[int], alt: str, strip: str, cls: str | None = None) -> str:
    src = rel.removeprefix(strip)  # layer pages live in layers/: their pictures are relative
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<img{klass} src="{_url(src)}" width="{size[1]}" height="{size[0]}" '
        f'alt="{_esc(alt)}" loading="lazy">'
    )


def _flag_class(c: int, dead: set, constant: set) -> str:
    if c in dead:
        return ' class="dead" title="dead"'
    if c in constant:
        return ' class="constant" title="constant"'
    return ""


def _meanings(kinds: Sequence[str]) -> str:
    items = "".join(f"<li><b>{_esc(k)}</b>: {_esc(MEANINGS[k])}</li>" for k in kinds)
    return f'<ul class="legend">{items}</ul>'


def _facts(info: dict[str, Any]) -> str:
    shape = "x".join("?" if s is None else str(s) for s in info["input_shape"])
    data = info["data"]
    return (
        f"input {shape}; {data['count']} images ({data['kind']}); top {info['settings']['k']} "
        f"per channel; {info['settings']['maximize_steps']} maximisation steps"
    )


def _document(title: str, body: str, *, extra_css: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{_CSP}<title>{_esc(title)}</title><style>{_CSS}{extra_css}</style></head><body>"
        f"{body}</body></html>\n"
    )


# -- files ----------------------------------------------------------------------------------------
def _write_png(folder: Path, rel: str, pixels: np.ndarray) -> str:
    atomic_write(contained(folder, *rel.split("/")), encode_png(np.ascontiguousarray(pixels)))
    return rel


def _write_text(folder: Path, rel: str, text: str) -> Path:
    path = contained(folder, *rel.split("/"))
    atomic_write(path, text)
    return path


def _previous_files(folder: Path) -> set[str]:
    """The files an earlier atlas in ``folder`` wrote (from its ``atlas.json``)."""
    try:
        found = json.loads((folder / MANIFEST).read_text("utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {f for f in found if isinstance(f, str)}


def _remove_stale(folder: Path, stale: set[str]) -> None:
    """Remove an earlier atlas's files that this one did not write (and folders left empty)."""
    parents = set()
    for rel in stale:
        try:
            path = contained(folder, *rel.split("/"))
            if path.is_file():
                path.unlink()
                parents.add(path.parent)
        except (OSError, ValueError):
            continue
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        if parent != folder:
            try:
                parent.rmdir()
            except OSError:  # not empty: someone else's files are there
                pass


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def _name(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _url(path: str) -> str:
    return _esc(quote(path, safe="/"))
