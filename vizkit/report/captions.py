"""Readable titles and captions: what a raster picture does not draw as text.

The raster renderer draws pixels only; the image's name, the prediction, the true label, the
explained class, the colour map and the value range go into the caption under the thumbnail and
into the manifest (``title``, ``caption``, ``notes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..methods.diagnose import channel_list
from ..registry import METHODS
from .inputs import class_name

SEP = " · "


def method_title(method: str, variant: str | None = None) -> str:
    """``"Grad-CAM"``, ``"Saliency (input gradients), smoothgrad"``."""
    spec = METHODS.get(method)
    title = spec.title if spec is not None else method
    return f"{title}, {variant}" if variant else title


def figure_title(method: str, variant: str | None, layer: str | None) -> str:
    """The method (and variant) and, for per-layer methods, the layer."""
    title = method_title(method, variant)
    return title if layer is None else f"{title}{SEP}{layer}"


def image_facts(image_id: str | None, info: dict[str, Any] | None, names=None) -> list[str]:
    """``["astronaut", "predicted 281 tabby (p 0.93)", "true 281 tabby"]``."""
    # File names as they are; positions of an array or stream as "image 042".
    text = str(image_id)
    facts = [] if image_id is None else [f"image {text}" if text.isdigit() else text]
    info = info or {}
    if info.get("prediction") is not None:
        score = info.get("score")
        how = "p" if info.get("probability") else "score"
        value = "" if score is None else f" ({how} {score:.3g})"
        facts.append(f"predicted {class_name(info['prediction'], names)}{value}")
    if info.get("label") is not None:
        facts.append(f"true {class_name(info['label'], names)}")
    return facts


def target_fact(info: dict[str, Any] | None, names=None) -> list[str]:
    """``["explains 7"]`` for methods that explain a class score."""
    target = (info or {}).get("target")
    return [] if target is None else [f"explains {class_name(target, names)}"]


def picture_facts(notes: dict[str, Any]) -> list[str]:
    """Colour map and value range, shown channels, units, upscaling: from a raster picture's
    notes (:class:`vizkit.render.raster.Picture`)."""
    facts = []
    if "cmap" in notes and "range" in notes:
        lo, hi = notes["range"]
        facts.append(f"{notes['cmap']} colours, {lo:.3g} (low) to {hi:.3g} (high)")
    if "channels" in notes:
        first, last = notes["channels"]
        facts.append(f"channels {first}-{last} of {notes.get('of')}, each on its own scale")
    if notes.get("dead"):
        facts.append(f"{notes['dead']} all-zero")
    if "units" in notes and "top" not in notes:
        facts.append(f"units {channel_list(tuple(int(u) for u in notes['units']))[1:-1]}")
    for unit, row in zip(notes.get("units", ()), notes.get("top", ()), strict=False):
        if row:  # the best image of each unit (the manifest's notes list them all)
            facts.append(f"unit {unit}: #{row[0][0]} ({row[0][1]:.3g}) first of {len(row)}")
    if "rows" in notes and "columns" in notes:  # a 1x1 convolution's channel-mixing matrix
        facts.append(f"rows: {notes['rows']}, columns: {notes['columns']}")
    if "count" in notes:
        facts.append(f"{notes['count']} kernels")
    if notes.get("scale", 1) > 1:
        facts.append(f"{notes['scale']}x upscaled")
    return facts


def caption(*parts: Sequence[str]) -> str:
    """The facts of ``parts`` joined into one line."""
    return SEP.join(fact for part in parts for fact in part)
