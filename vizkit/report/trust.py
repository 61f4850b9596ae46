"""The "Which map to trust" card of an export (``vizkit.export(..., evaluate=True)``).

For each model, :func:`vizkit.evaluate` scores the explanation methods on the export's first
images (faithfulness: deletion, insertion, muFidelity; the cascading randomisation sanity check
of Adebayo et al., 2018); the table goes into the manifest (key ``"trust"``, per model) and the
figures into ``<model>/_trust/`` with thumbnails, and :func:`vizkit.report.html.trust_section`
draws the section from the manifest, so a resumed export shows it without recomputing it. The
card is computed again only when the model's weights, the images or the parameters change.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.batches import file_fit
from ..core.checks import positive_int
from ..core.files import atomic_write, contained
from ..core.images import to_batch
from ..core.sources import open_source
from ..render.encode import png_thumbnail
from .manifest import Manifest, normalize
from .plan import Plan, Settings
from .run import check_free_path

TRUST_FOLDER = "_trust"  # model slugs never start with "_", so this cannot meet a layer folder
TRUST_IMAGES = 64  # images evaluated by default: the first ones of the export
THUMBNAIL = 480  # the card's figures are wide (a strip of maps per method): larger thumbnails
# Arguments of vizkit.evaluate that the export sets itself.
_OWN = ("model", "images", "targets", "progress", "preprocess")  # set by the export itself
FIGURE_NAMES = ("trust_curves.png", "trust_randomization.png", "trust_layers.png")


def check_evaluate(evaluate) -> dict[str, Any] | None:
    """None (no card) or the keyword arguments for :func:`vizkit.evaluate`, plus ``count``
    (how many of the export's first images are evaluated).

    Raises
    ------
    TypeError
        For anything but a bool or a mapping.
    ValueError
        For unknown keys, unknown methods or metrics, or a bad ``count`` (before any work).
    """
    if evaluate is False:
        return None
    if evaluate is True:
        return {"count": TRUST_IMAGES}
    if not isinstance(evaluate, Mapping):
        raise TypeError(
            "evaluate must be True, False or a dict of vizkit.evaluate options, got "
            f"{type(evaluate).__name__}"
        )
    from ..metrics.names import METRICS
    from ..metrics.report_card import evaluate as evaluate_fn
    from ..registry import EXPLANATIONS

    options = dict(evaluate)
    known = [p for p in inspect.signature(evaluate_fn).parameters if p not in _OWN]
    unknown = sorted(k for k in options if k not in known and k != "count")
    if unknown:
        raise ValueError(
            f"evaluate has unknown keys {unknown}; known: {['count', *known]} (the export sets "
            "the images, targets, preprocessing and progress itself)"
        )
    for key, allowed in (("methods", EXPLANATIONS), ("metrics", METRICS)):
        value = options.get(key)
        names = [value] if isinstance(value, str) else list(value or ())
        bad = [n for n in names if n not in allowed]
        if key in options and (bad or not names):
            raise ValueError(
                f"evaluate[{key!r}] must be a non-empty list of {list(allowed)}, got "
                f"{bad or value!r}"
            )
    options["count"] = positive_int(options.get("count", TRUST_IMAGES), "evaluate['count']")
    return options


def trust_card(
    plan: Plan,
    data,
    targets,
    options: Mapping[str, Any],
    manifest: Manifest,
    settings: Settings,
    *,
    overwrite: bool,
    progress: bool,
) -> dict[str, Any]:
    """The manifest's ``trust`` entry of ``plan``'s model: the one recorded when the model's
    weights, the images and the parameters are unchanged (and its figures are on disk), else
    a new :func:`vizkit.evaluate` run with its figures written under ``<model>/_trust/``.

    A model :func:`vizkit.evaluate` cannot handle (several inputs, no class scores) gets
    ``{"params", "error"}`` and a warning: the rest of the report is written by then.
    """
    from ..metrics.report_card import evaluate
    from ..metrics.report_files import write_trust_figures

    kwargs = {k: v for k, v in options.items() if k != "count"}
    x = _first_images(plan.model, data, options["count"]) if data is not None else None
    if x is None or not len(x):
        return {"params": {}, "error": "no images to evaluate"}
    if isinstance(targets, list):
        targets = targets[: len(x)]
    params = normalize(
        {
            **kwargs,
            "images": len(x),
            "images_sha1": hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:16],
            "weights_sha1": plan.info["weights_sha1"],
            "targets": targets,
            "preprocess": plan.info.get("preprocess"),
        }
    )
    old = manifest.trust.get(plan.name)
    if isinstance(old, dict) and old.get("params") == params and _on_disk(manifest, old):
        return old
    root = manifest.folder
    folder = contained(root, plan.slug, TRUST_FOLDER)
    _check_free(manifest, plan.slug, overwrite)
    try:
        table = evaluate(
            plan.model, x, targets=targets, preprocess=plan.preprocess, progress=progress, **kwargs
        )
    except (ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())
        warnings.warn(f"evaluate failed for model {plan.name!r}: {message}", stacklevel=3)
        return {"params": params, "error": message}
    # Listed as pending first: a run killed before the card is saved leaves figures the next
    # run knows are its own (see Manifest).
    manifest.mark_pending(_card_paths(plan.slug))
    written = write_trust_figures(table, folder, dpi=settings.dpi)
    figures = []
    for title, path in written:
        rel = "/".join((plan.slug, TRUST_FOLDER, path.name))
        thumb = "/".join(("thumbs", plan.slug, TRUST_FOLDER, path.name))
        small = png_thumbnail(path.read_bytes(), max(settings.thumbnail_size, THUMBNAIL))
        atomic_write(contained(root, *thumb.split("/")), small)
        figures.append({"title": title, "path": rel, "thumbnail": thumb})
    kept = {f["path"] for f in figures} | {f["thumbnail"] for f in figures}
    for item in old.get("figures", []) if isinstance(old, dict) else ():
        for rel in (item.get("path"), item.get("thumbnail")):
            if isinstance(rel, str) and rel not in kept:  # e.g. no curves without deletion
                try:
                    os.unlink(contained(root, *rel.split("/")))
                except (FileNotFoundError, ValueError):
                    pass
    record = table.to_dict()
    for curves in record.get("curves", {}).values():  # the means are what the report draws
        for curve in curves.values():
            curve.pop("per_image", None)
    return {"params": params, "table": record, "figures": figures}


def _first_images(model, data, count: int) -> np.ndarray:
    """The first ``count`` images of ``data`` as the model takes them."""
    parts, held = [], 0
    for batch in open_source(data, batch_size=min(count, 256), **file_fit(model)):
        parts.append(to_batch(batch.images, model)[: count - held])
        held += len(parts[-1])
        if held >= count:
            break
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


def _on_disk(manifest: Manifest, card: dict[str, Any]) -> bool:
    if "error" in card:
        return True
    figures = card.get("figures", [])
    return "table" in card and all(
        isinstance(f.get(k), str) and (manifest.folder / f[k]).is_file()
        for f in figures
        for k in ("path", "thumbnail")
    )


def _card_paths(slug: str) -> list[str]:
    """Every file a card of the model folder ``slug`` may write: figures and thumbnails."""
    return [
        "/".join(parts)
        for name in FIGURE_NAMES
        for parts in ((slug, TRUST_FOLDER, name), ("thumbs", slug, TRUST_FOLDER, name))
    ]


def record_card(manifest: Manifest, plan, card: dict[str, Any]) -> None:
    """Store ``card`` as ``plan``'s model's trust entry, durably, then let its files leave
    ``pending``."""
    manifest.trust[plan.name] = card
    manifest.save()  # the card is not journaled: save it before the pending marks go
    manifest.drop(_card_paths(plan.slug))


def _check_free(manifest: Manifest, slug: str, overwrite: bool) -> None:
    """Refuse to replace a card figure this report did not write (without ``overwrite``)."""
    if overwrite:
        return
    known = manifest.known_paths()
    for path in _card_paths(slug):
        check_free_path(manifest, path, known, overwrite)


__all__ = [
    "FIGURE_NAMES",
    "TRUST_FOLDER",
    "TRUST_IMAGES",
    "check_evaluate",
    "record_card",
    "trust_card",
]
