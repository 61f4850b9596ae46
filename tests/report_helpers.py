"""Reading an exported report back in tests: the manifest (with its journal) and every link."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from urllib.parse import unquote

from vizkit.report.manifest import Manifest

_LINK = re.compile(r'(?:href|src)="([^"]+)"')


def load(root: Path) -> dict:
    """The manifest as ``manifest.json`` reads once compacted (``manifest.json`` + journal)."""
    return Manifest.load(Path(root)).to_dict()


def recorded_files(manifest: dict) -> set[str]:
    """Every file a manifest accounts for: figures, thumbnails, input images and HTML pages."""
    paths = {f["path"] for f in manifest["files"]} | {f["thumbnail"] for f in manifest["files"]}
    for per_model in manifest.get("images", {}).values():
        paths |= {i["path"] for i in per_model.values() if i.get("path")}
    return paths | set(manifest.get("pages", {}))


def report_pages(root: Path) -> list[str]:
    """``index.html`` and every page under ``pages/`` (paths relative to ``root``)."""
    pages = sorted(p.relative_to(root).as_posix() for p in (root / "pages").rglob("*.html"))
    return ["index.html", *pages]


def report_links(root: Path) -> dict[str, set[str]]:
    """For each report page, the files its ``href``/``src`` attributes point to, as paths
    relative to ``root`` (anchors dropped)."""
    out = {}
    for page in report_pages(root):
        text = (root / page).read_text(encoding="utf-8")
        base = posixpath.dirname(page)
        links = set()
        for url in _LINK.findall(text):
            url = unquote(url.replace("&amp;", "&")).split("#")[0]
            if url:
                links.add(posixpath.normpath(posixpath.join(base, url)))
        out[page] = links
    return out


def all_links(root: Path) -> set[str]:
    """Every file linked from any page of the report."""
    return set().union(*report_links(root).values())
