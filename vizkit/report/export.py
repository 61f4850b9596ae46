"""Batch export: figure grids for every method x layer x image, a manifest and an HTML index."""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..core.files import atomic_write, contained, ensure_writable, safe_name
from ..core.graph import Tap
from ..core.images import to_batch
from ..core.layers import iter_layers, layer_paths, resolve_layers
from ..core.targets import resolve_targets
from ..methods.diagnose import diagnose
from ..plot.renderers import render, to_bytes
from ..registry import METHODS, check_methods
from ..render.encode import png_thumbnail
from .compute import (
    ONE_PASS,
    Context,
    call,
    default_layers,
    spatial_conv_paths,
    suitable_layers,
    suits,
)
from .html import INDEX_NAME, write_index
from .manifest import Entry, Manifest, normalize

DEFAULT_METHODS = ("filters", "feature_maps", "gradcam", "saliency", "occlusion")
FORMATS = ("png", "pdf", "svg")
MODEL_LEVEL = "_model"
CHUNK = 16  # images computed together by a per-image method  # folder of whole-model (input attribution) figures


def export(
    model,
    images,
    out_dir: str | Path,
    *,
    methods: Sequence[str] | str = DEFAULT_METHODS,
    layers=None,
    targets=None,
    formats: Sequence[str] = ("png",),
    overwrite: bool = False,
    resume: bool = True,
    progress: bool = True,
    model_name: str | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    diagnose: bool = True,
    dpi: int = 100,
    thumbnail_size: int = 200,
) -> Path:
    """Write figure grids for many methods, layers, images and models, plus an HTML index.

    Layout: ``out_dir/<model>/<layer>/<method>[_imgNNN].<fmt>`` (whole-model methods such as
    saliency use the layer folder ``_model``), thumbnails under ``out_dir/thumbs/``, a
    ``manifest.json`` describing every file, and a static ``index.html`` (no network requests)
    with one section per model and layer and the :func:`vizkit.diagnose` table.

    Every file is written atomically and the manifest is updated after each one, so an
    interrupted export can be rerun: with ``resume=True`` files already written with the same
    parameters are skipped.

    Parameters
    ----------
    model : keras.Model, dict of str -> keras.Model, or list of keras.Model
        The model(s); a dict gives the names used in the report.
    images : array-like, shape (N, H, W[, C])
        Images for the per-image methods (uint8 or float, see :func:`vizkit.core.images.to_batch`).
    out_dir : str or Path
        Output folder (created if missing).
    methods : sequence of str or "all"
        Names from :data:`METHODS`: ``filters``, ``feature_maps``, ``hypercolumns``,
        ``saliency``, ``gradcam``, ``occlusion``, ``maximize``, ``deepdream``,
        ``top_activating``.
    layers : layer spec, list of specs, "all" or None
        Layers (names, paths or indices) for the per-layer methods, applied to every model;
        each method keeps those it can handle. ``None`` uses each method's defaults: a few
        representative layers (the last of each resolution stage, at most eight; the last map
        larger than 1x1 for Grad-CAM and DeepDream); ``"all"`` every layer a method can draw.
    targets : int, list of int, or None
        Class explained by saliency, Grad-CAM and occlusion (``None``: the predicted class).
    formats : sequence of {"png", "pdf", "svg"}
        File formats of every figure (PNG thumbnails are always made for the index).
    overwrite : bool
        Replace files that exist but were not recorded with the same parameters. Without it
        such a file raises ``FileExistsError`` before any work is done.
    resume : bool
        Skip files recorded in ``manifest.json`` with the same parameters.
    progress : bool
        Show a tqdm progress bar on stderr.
    model_name : str or None
        Name of a single model in the report (default: ``model.name``).
    method_options : dict or None
        Per-method keyword options, e.g. ``{"saliency": {"method": "smoothgrad"}}``.
    diagnose : bool
        Add the dead/constant channel table of :func:`vizkit.diagnose` to the index.
    dpi : int
        Resolution of the PNG figures.
    thumbnail_size : int
        Longest side of the thumbnails in pixels.

    Returns
    -------
    Path
        The ``index.html`` file.

    Raises
    ------
    ValueError, TypeError
        For unknown methods, formats, layers or options (before any file is written).
    FileExistsError
        For an existing file that would be overwritten without ``overwrite=True``.
    OSError
        When the output folder cannot be written; earlier files stay intact.
    """
    named = _named_models(model, model_name)
    chosen = check_methods(methods)
    formats = _check_formats(formats)
    options = _check_options(method_options, chosen)
    for flag, value in (("overwrite", overwrite), ("resume", resume), ("progress", progress)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be True or False, got {value!r}")
    root = ensure_writable(Path(out_dir))
    manifest = Manifest.load(root)
    plans = [
        _plan_model(name, m, images, targets, layers, chosen, options, formats)
        for name, m in named.items()
    ]
    groups = [g for plan in plans for g in plan.groups]
    todo = _todo(groups, manifest, resume=resume, overwrite=overwrite)
    for plan in plans:
        manifest.models[plan.name] = plan.info
    manifest.save()
    writer = Writer(manifest, formats=formats, dpi=dpi, thumbnail_size=thumbnail_size)
    bar = _progress(sum(len(jobs) for _, jobs in todo), enabled=progress)
    try:
        for group, jobs in todo:
            # Per-image methods run in chunks: bounded memory, steady progress, and an
            # interruption loses at most one chunk of work.
            step = CHUNK if METHODS[group.method].per_image else len(jobs)
            for start in range(0, len(jobs), step):
                writer.run(group, jobs[start : start + step])
                bar.update(len(jobs[start : start + step]))
    finally:
        bar.close()
    if diagnose:
        for plan in plans:
            manifest.diagnosis[plan.name] = _diagnosis(plan)
        manifest.save()
    return write_index(manifest)


def render_method(
    model,
    images,
    method: str,
    *,
    layers=None,
    targets=None,
    options=None,
    progress=False,
    check_size: bool = True,
    exact_layers: bool = False,
) -> list[tuple[str | None, int | None, Any, Any]]:
    """Compute one method and draw its figures without writing anything (used by the CLI).

    Returns
    -------
    list of (layer, image index, result, Figure)
        ``layer`` is None for whole-model methods, ``image index`` None for per-layer ones;
        ``result`` is the array (or structure) drawn in the figure.
    progress : bool or None
        Progress bar over layers (``None``: only on a terminal).
    check_size : bool
        False lets images of any size through (DeepDream tiles fixed-size models).
    exact_layers : bool
        Draw exactly ``layers`` (the caller checked them, e.g. a 1x1 map named for Grad-CAM,
        which then warns) instead of keeping only those that suit the method.
    """
    check_methods([method])
    opts = _check_options({method: dict(options or {})}, [method])
    plan = _plan_model(
        getattr(model, "name", "model"),
        model,
        images,
        targets,
        layers,
        [method],
        opts,
        ("png",),
        check_size=check_size,
        exact_layers=exact_layers,
    )
    spec = METHODS[method]
    out = []
    bar = _progress(len(plan.groups), enabled=progress, desc=f"vizkit {method}", unit="layer")
    # Methods that record several layers in one forward pass do so for all chosen layers: one
    # compiled graph instead of one per layer (N traces, and TensorFlow's retracing warning).
    together = ONE_PASS.get(method) if len(plan.groups) > 1 else None
    if together is not None:
        first = plan.groups[0]
        by_layer = together(first.ctx, [g.layer for g in plan.groups], **first.options)
    for group in plan.groups:
        if together is not None:
            result = by_layer[group.layer]
        else:
            result = call(spec, group.ctx, group.layer, group.options)
        for job in group.jobs:
            item = result if job.image is None else result[job.image]
            image = None if job.image is None else group.ctx.images[job.image]
            fig = render(spec.renderer, item, image, title=_title(group, job))
            out.append((group.layer, job.image, item, fig))
        bar.update()
    bar.close()
    return out


# -- planning -----------------------------------------------------------------------------------
@dataclass
class Job:
    """One figure: its files (one per format) and its thumbnail."""

    image: int | None
    files: dict[str, str]  # format -> relative path
    thumbnail: str
    parameters: dict[str, Any]


@dataclass
class Group:
    """Figures of one model, method and layer, computed together."""

    model: str
    method: str
    layer: str | None
    ctx: Context
    options: dict[str, Any]
    jobs: list[Job]


@dataclass
class Plan:
    name: str
    info: dict[str, Any]
    groups: list[Group]
    ctx: Context


def _plan_model(
    name,
    model,
    images,
    targets,
    layers,
    methods,
    options,
    formats,
    *,
    check_size=True,
    exact_layers=False,
) -> Plan:

    x = to_batch(images, model, check_size=check_size)
    every = isinstance(layers, str) and layers == "all"
    wanted = None if layers is None or every else resolve_layers(model, layers)
    targets = _check_targets(targets, len(x))
    if targets is not None:
        # Class indices are checked against the model now, before any figure is written.

        resolve_targets(model, x, targets, tap=Tap(logits=True), size=len(x))
    slug = safe_name(name)
    info = {
        "slug": slug,
        "weights_sha1": _weights_digest(model),
        "images": len(x),
        "layers": layer_paths(model),
    }
    image_ids = [hashlib.sha1(img.tobytes()).hexdigest()[:12] for img in x]
    layer_objects = None
    groups = []
    for method_name in methods:
        method = METHODS[method_name]
        if method.layers is None:
            method_layers: list[str | None] = [None]
        elif every:
            method_layers = suitable_layers(method, model)
        elif wanted is None:
            method_layers = list(default_layers(method, model))
        elif exact_layers:
            method_layers = list(wanted)
        else:
            layer_objects = layer_objects or dict(iter_layers(model))
            method_layers = [p for p in wanted if suits(method, layer_objects[p])]
        conv_or_wanted = wanted if wanted is not None else spatial_conv_paths(model)
        ctx = Context(model=model, images=x, targets=targets, layers=conv_or_wanted)
        for layer in method_layers:
            params = dict(options[method_name])
            params["weights_sha1"] = info["weights_sha1"]
            if method.target:
                params["targets"] = targets
            if method.layers is None and method_name == "hypercolumns":
                params["layers"] = conv_or_wanted
            folder = (slug, MODEL_LEVEL if layer is None else safe_name(layer))
            jobs = []
            for image in range(len(x)) if method.per_image else [None]:
                stem = method_name if image is None else f"{method_name}_img{image:03d}"
                job_params = dict(params)
                if image is not None:
                    job_params["image_sha1"] = image_ids[image]
                    if targets is not None:
                        job_params["targets"] = targets[image]
                files = {fmt: "/".join((*folder, f"{stem}.{fmt}")) for fmt in formats}
                thumb = "/".join(("thumbs", *folder, f"{stem}.png"))
                jobs.append(Job(image, files, thumb, normalize(job_params)))
            groups.append(Group(name, method_name, layer, ctx, dict(options[method_name]), jobs))
    return Plan(name, info, groups, Context(model, x, targets, []))


def _todo(groups, manifest: Manifest, *, resume: bool, overwrite: bool):
    """Jobs still to do per group; raises before any work if a foreign file would be replaced."""
    thumbs = {e.thumbnail for e in manifest.entries.values()}
    todo = []
    for group in groups:
        jobs = []
        for job in group.jobs:
            key = (group.model, group.method, group.layer, job.image)
            same = {
                fmt: manifest.matches(path, (*key, fmt), job.parameters)
                for fmt, path in job.files.items()
            }
            if resume and all(
                e is not None and manifest.find(e.path, e.key, e.parameters) for e in same.values()
            ):
                continue
            # With resume, our own files made with the same parameters (a PNG when a PDF is
            # added, the thumbnail of a deleted figure) may be rewritten; files from an
            # interrupted write are listed as pending.
            own = set(manifest.pending)
            if resume:
                for entry in filter(None, same.values()):
                    own |= {entry.path, entry.thumbnail}
            for path in (*job.files.values(), job.thumbnail):
                _check_free(manifest, path, own, thumbs, overwrite)
            jobs.append(job)
        if jobs:
            todo.append((group, jobs))
    return todo


def _check_free(manifest: Manifest, path: str, own: set, thumbs: set, overwrite: bool) -> None:
    target = contained(manifest.folder, *path.split("/"))
    if overwrite or path in own or not target.exists():
        return
    if path in manifest.entries or path in thumbs:
        why = "made by an earlier export with other parameters, or resume=False"
    else:
        why = "not written by vizkit export"
    raise FileExistsError(
        f"{str(target)!r} already exists ({why}); pass overwrite=True (--overwrite) to replace "
        "it or choose another output folder"
    )


# -- running ------------------------------------------------------------------------------------
class Writer:
    def __init__(self, manifest: Manifest, *, formats, dpi: int, thumbnail_size: int):
        self.manifest = manifest
        self.formats = formats
        self.dpi = dpi
        self.thumbnail_size = thumbnail_size

    def run(self, group: Group, jobs: list[Job]) -> None:
        method = METHODS[group.method]
        ctx = group.ctx
        if method.per_image:
            # Only the images still missing are computed (resume after an interruption).
            idx = [job.image for job in jobs]
            targets = None if ctx.targets is None else [ctx.targets[i] for i in idx]
            ctx = Context(ctx.model, ctx.images[idx], targets, ctx.layers)
        start = time.perf_counter()
        result = call(method, ctx, group.layer, group.options)
        share = (time.perf_counter() - start) / len(jobs)
        for row, job in enumerate(jobs):
            start = time.perf_counter()
            item = result[row] if method.per_image else result
            image = ctx.images[row] if method.per_image else None
            fig = render(method.renderer, item, image, title=_title(group, job))
            blobs = {fmt: to_bytes(fig, fmt, self.dpi) for fmt in self.formats}
            png = blobs.get("png") or to_bytes(fig, "png", self.dpi)
            self._write(
                group,
                job,
                blobs,
                png_thumbnail(png, self.thumbnail_size),
                share + time.perf_counter() - start,
            )

    def _write(self, group, job, blobs, thumb, seconds) -> None:
        manifest = self.manifest
        paths = [*job.files.values(), job.thumbnail]
        manifest.pending.update(paths)
        manifest.save()
        for fmt, rel in job.files.items():
            atomic_write(contained(manifest.folder, *rel.split("/")), blobs[fmt])
        atomic_write(contained(manifest.folder, *job.thumbnail.split("/")), thumb)
        for fmt, rel in job.files.items():
            manifest.entries[rel] = Entry(
                path=rel,
                method=group.method,
                model=group.model,
                layer=group.layer,
                image=job.image,
                format=fmt,
                parameters=job.parameters,
                seconds=round(seconds, 4),
                thumbnail=job.thumbnail,
            )
        manifest.pending.difference_update(paths)
        manifest.save()


def _title(group: Group, job: Job) -> str:
    where = "whole model" if group.layer is None else group.layer
    image = "" if job.image is None else f" - image {job.image}"
    text = f"{group.method} - {group.model} - {where}{image}"
    # Control characters (NUL, bidi overrides) in user names have no glyph in the figure font.
    return "".join(c if c.isprintable() else "?" for c in text)


def _diagnosis(plan: Plan) -> dict[str, Any]:
    try:
        diagnosis = diagnose(plan.ctx.model, plan.ctx.images)
    except (ValueError, TypeError) as exc:
        # The figures are written by now; a model diagnose cannot handle gets a note, not a crash.
        message = " ".join(str(exc).split())
        warnings.warn(f"diagnose failed for model {plan.name!r}: {message}", stacklevel=3)
        return {"error": message}
    out = dict(diagnosis.to_dict())
    out.setdefault("summary", diagnosis.summary())
    return out


def _progress(total: int, *, enabled: bool | None, desc: str = "vizkit export", unit: str = "fig"):

    # enabled=None lets tqdm decide: a bar on a terminal, nothing in logs and pipes.
    disable = None if enabled is None else (not enabled or total == 0)
    return tqdm(total=total, disable=disable, desc=desc, unit=unit)


# -- argument checks ----------------------------------------------------------------------------
def _named_models(model, model_name: str | None) -> dict[str, Any]:
    if isinstance(model, Mapping):
        if model_name is not None:
            raise ValueError("model_name is only for a single model; a dict already names them")
        named = {str(k): v for k, v in model.items()}
    elif isinstance(model, (list, tuple)):
        if model_name is not None:
            raise ValueError("model_name is only for a single model; pass a dict name -> model")
        named = {}
        for m in model:
            name, n = getattr(m, "name", "model"), 2
            while name in named:
                name, n = f"{getattr(m, 'name', 'model')}_{n}", n + 1
            named[name] = m
    else:
        named = {
            str(model_name) if model_name is not None else getattr(model, "name", "model"): model
        }
    if not named:
        raise ValueError("model is empty; pass a keras.Model, a list or a dict of them")
    for name, m in named.items():
        if not hasattr(m, "layers") or not callable(m):
            raise TypeError(f"model {name!r} must be a keras.Model, got {type(m).__name__}")
    return named


def _check_formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(dict.fromkeys(str(f).lower().lstrip(".") for f in formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {bad or formats!r}")
    return formats


def _check_options(method_options, methods: Iterable[str]) -> dict[str, dict[str, Any]]:
    given = dict(method_options or {})
    unknown = [k for k in given if k not in METHODS]
    if unknown:
        raise ValueError(f"method_options has unknown methods {unknown}; known: {sorted(METHODS)}")
    for name, opts in given.items():
        if not isinstance(opts, Mapping):
            raise TypeError(f"method_options[{name!r}] must be a dict, got {type(opts).__name__}")
    return {m: {**METHODS[m].export_defaults, **dict(given.get(m, {}))} for m in methods}


def _check_targets(targets, n: int) -> list[int] | None:
    if targets is None:
        return None
    if isinstance(targets, (int, np.integer)) and not isinstance(targets, bool):
        return [int(targets)] * n
    values = np.asarray(targets)
    if values.ndim != 1 or len(values) != n or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"targets must be None, a class index or {n} class indices (one per image), got {targets!r}"
        )
    return [int(v) for v in values]


def _weights_digest(model) -> str:
    digest = hashlib.sha1()
    for w in model.weights:
        digest.update(np.ascontiguousarray(w.numpy()).tobytes())
    return digest.hexdigest()[:16]


__all__ = ["DEFAULT_METHODS", "FORMATS", "INDEX_NAME", "export"]
