"""Reading an exported report back in tests: the manifest (with its journal) and every link."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from urllib.parse import unquote

import keras
import numpy as np

from vizkit.report.manifest import Manifest

_LINK = re.compile(r'(?:href|src)="([^"]+)"')


def tiny_model(name="tiny", conv2="c2", *, dead=False):
    """8x8x1 -> conv c1 (4 ch) -> conv ``conv2`` (3 ch) -> GAP -> 3-way softmax; with ``dead``,
    channel 1 of c1 can never fire (a known dead channel for the diagnosis)."""
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(3, 3, activation="relu", name=conv2)(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(inp, out, name=name)
    if dead:
        kernel, bias = model.get_layer("c1").get_weights()
        kernel[..., 1], bias[1] = 0.0, -1.0
        model.get_layer("c1").set_weights([kernel, bias])
    return model


def digits(n: int, seed: int = 0) -> np.ndarray:
    """``n`` random 8x8x1 float32 images in [0, 1]."""
    return np.random.default_rng(seed).random((n, 8, 8, 1)).astype(np.float32)


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
