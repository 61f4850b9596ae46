"""Batch export: every method x layer x image as files, a manifest and a paginated HTML report.

How a run goes (:func:`export`):

1. Arguments, layers and targets are checked and every model is planned: which method runs on
   which layers, under which file names (before anything is written).
2. The images are streamed (:func:`vizkit.core.sources.open_source`: arrays, folders of image
   files, file lists, iterators of batches, ``tf.data``), :data:`CHUNK` at a time. For each
   chunk the main thread predicts the classes (captions, targets) and computes every per-image
   method on the images whose figures are not on disk yet; a small worker pool
   (:class:`vizkit.report.pipeline.Pipeline`) draws and writes the figures of that chunk while
   the next one is computed. Memory is bounded by a few chunks, whatever the dataset size.
3. Per-layer methods (filters, activation maximisation, top-activating images over the whole
   dataset) and the diagnosis run after the stream.
4. Figures of an earlier export that this one replaces are removed, the manifest is compacted
   and the HTML pages are written (:mod:`vizkit.report.html`).

Pictures are raster images by default (:mod:`vizkit.render.raster`: NumPy/OpenCV pixels, the
text in the captions); ``style="matplotlib"`` draws :mod:`vizkit.plot` figures instead, and
PDF/SVG files are always matplotlib figures.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..core.batches import file_fit
from ..core.checks import choice, flag, positive_int
from ..core.files import UniqueNames, contained, current_umask, ensure_writable
from ..core.images import as_array, to_batch
from ..core.layers import iter_layers, layer_paths, resolve_layers
from ..core.sources import open_source
from ..methods.diagnose import diagnose
from ..registry import METHODS, check_methods
from ..render.encode import IMAGE_FORMATS, encode_image
from ..render.raster import Picture
from ..render.raster import render as render_picture
from ..render.tasks import STYLES, DrawTask, ImageTask
from . import captions
from .compute import (
    ONE_PASS,
    Context,
    call,
    default_layers,
    spatial_conv_paths,
    suitable_layers,
    suits,
)
from .html import INDEX_NAME, PAGE_SIZE, write_report
from .inputs import (
    image_sha1,
    is_classifier,
    predictions,
    resolve_labels,
    resolve_preprocess,
    true_label,
)
from .manifest import JOURNAL_NAME, Entry, Manifest, normalize
from .pipeline import Pipeline

DEFAULT_METHODS = ("filters", "feature_maps", "gradcam", "saliency", "occlusion")
FORMATS = ("png", "pdf", "svg")
MODEL_LEVEL = "_model"  # folder of whole-model (input attribution) figures
INPUT_FOLDER = "_input"  # folder of the input images shown in the per-image view
CHUNK = 32  # images computed together by the per-image methods
# Images kept from a one-shot stream for top-activating images and the diagnosis: the first
# SAMPLE, at most SAMPLE_BYTES of them.
SAMPLE = 1024
SAMPLE_BYTES = 64 * 2**20
# Folder names a model slug may not take (they hold the report's own files).
RESERVED = ("thumbs", "pages", "manifest.json", "manifest.journal", INDEX_NAME)
# The option that names a method's variant in file names and titles (saliency-smoothgrad).
VARIANTS = {"saliency": "method", "gradcam": "plus_plus"}


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
    style: str = "raster",
    preprocess=None,
    labels=None,
    workers: int | None = None,
    page_size: int = PAGE_SIZE,
) -> Path:
    """Write figures for many methods, layers, images and models, plus a paginated HTML report.

    Layout: ``out_dir/<model>/<layer>/<image>_<method>[-<variant>].<fmt>`` for per-image
    figures (``astronaut_saliency-smoothgrad.png``; whole-model methods such as saliency use
    the layer folder ``_model``; ``<image>`` is the file's name for image files, ``img042``
    for the 43rd image of an array or stream), ``out_dir/<model>/<layer>/<method>.<fmt>`` for
    per-layer figures, the input images under ``<model>/_input/``, thumbnails under
    ``thumbs/``, ``manifest.json``, and a static report: ``index.html`` (per model: the first
    images with every method's map side by side, the per-layer figures, the diagnosis summary)
    and ``pages/`` (one page set per model, layer and method, ``page_size`` figures a page,
    and the per-image view). No scripts, no network requests. Names are readable slugs of the
    model, layer and image names; a short hash is appended only when two names would share a
    file (see :class:`vizkit.core.files.UniqueNames`).

    The images are streamed: the export never holds the whole dataset, and while the model
    computes one chunk the figures of the previous one are drawn and written by ``workers``
    threads (processes for matplotlib figures). Every file is written atomically and recorded
    in an append-only journal, so an export interrupted at any point (even killed) resumes on
    a rerun: figures recorded with the same parameters are skipped and not computed again.
    The report shows exactly what the manifest lists: rerunning a method for a model with fewer
    images or layers removes the figures it no longer makes.

    Parameters
    ----------
    model : keras.Model, dict of str -> keras.Model, or list of keras.Model
        The model(s); a dict gives the names used in the report.
    images : array, folder, image files, iterable of batches or tf.data.Dataset
        Anything :func:`vizkit.core.sources.open_source` reads: an array ``(N, H, W[, C])``
        (uint8 or float), a folder of image files or a list of image paths (resized to the
        model input), an iterator of batches ``x`` or ``(x, y)`` (``y``: true labels, shown in
        captions), or a ``tf.data.Dataset``.
    out_dir : str or Path
        Output folder (created if missing).
    methods : sequence of str or "all"
        Names from :data:`vizkit.registry.METHODS`: ``filters``, ``feature_maps``,
        ``hypercolumns``, ``saliency``, ``gradcam``, ``occlusion``, ``maximize``,
        ``deepdream``, ``top_activating``.
    layers : layer spec, list of specs, "all" or None
        Layers (names, paths or indices) for the per-layer methods, applied to every model;
        each method keeps those it can handle. ``None`` uses each method's defaults (a few
        representative layers; the last map larger than 1x1 for Grad-CAM and DeepDream);
        ``"all"`` every layer a method can draw.
    targets : int, list of int, or None
        Class explained by saliency, Grad-CAM and occlusion (``None``: the predicted class; a
        list needs images whose number is known).
    formats : sequence of {"png", "pdf", "svg"}
        File formats of every figure (PNG thumbnails are always made for the report).
    overwrite : bool
        Replace files that exist but were not recorded with the same parameters. Without it
        such a file raises ``FileExistsError`` before the work that would replace it.
    resume : bool
        Skip figures recorded in the manifest with the same parameters.
    progress : bool
        Show a progress bar (figures per second and the time left) on stderr.
    model_name : str or None
        Name of a single model in the report (default: ``model.name``).
    method_options : dict or None
        Per-method keyword options, e.g. ``{"saliency": {"method": "smoothgrad"}}``.
    diagnose : bool
        Add the dead/constant channel summary of :func:`vizkit.diagnose` to the report.
    dpi : int
        Resolution of matplotlib figures (PDF, SVG, and PNG with ``style="matplotlib"``).
    thumbnail_size : int
        Longest side of the thumbnails in pixels.
    style : {"raster", "matplotlib"}
        ``"raster"`` (default): PNG pictures drawn with NumPy/OpenCV, titles, colour scales and
        value ranges in the captions and the manifest; ``"matplotlib"``: every file a
        :mod:`vizkit.plot` figure with its title and colour bar (slower).
    preprocess : None, str or callable
        Applied to every batch inside the model's graph (the pictures show the images as
        given): a preset name of :mod:`vizkit.preprocessing` or a function of a float32 batch.
    labels : None, "imagenet", path or list of str
        Class names for captions (predicted, explained and true classes).
    workers : int or None
        Threads (processes for matplotlib) that draw and write figures; ``None``: up to 4,
        one per CPU; ``0``: draw in the main thread.
    page_size : int
        Figures per HTML page.

    Returns
    -------
    Path
        The ``index.html`` file.

    Raises
    ------
    ValueError, TypeError
        For unknown methods, formats, layers, styles or options (before any file is written).
    FileExistsError
        For an existing file that would be overwritten without ``overwrite=True``.
    OSError
        When the output folder cannot be written; earlier files stay intact.
    """
    named = _named_models(model, model_name)
    chosen = check_methods(methods)
    formats = _check_formats(formats)
    options = _check_options(method_options, chosen)
    for name, value in (("overwrite", overwrite), ("resume", resume), ("progress", progress)):
        flag(value, name)
    flag(diagnose, "diagnose")
    style = choice(style, "style", STYLES)
    settings = Settings(
        formats=formats,
        style=style,
        dpi=positive_int(dpi, "dpi"),
        thumbnail_size=positive_int(thumbnail_size, "thumbnail_size"),
        page_size=positive_int(page_size, "page_size"),
        class_names=resolve_labels(labels),
    )
    pre_name, pre_fn = resolve_preprocess(preprocess)
    workers = _check_workers(workers)
    images = _image_list(images)
    source = open_source(images, batch_size=CHUNK, **file_fit(next(iter(named.values()))))
    if source.kind == "array":  # in memory anyway: bad pixels are refused before any work
        for batch in source:
            for m in named.values():
                to_batch(batch.images, m)
    user_targets = _check_targets(targets, source.count)
    root = ensure_writable(Path(out_dir))
    manifest = Manifest.load(root)
    slugs = _model_slugs(named, manifest)
    plans = [
        _plan_model(
            name, m, slugs[name], user_targets, layers, chosen, options, formats, pre_name, pre_fn
        )
        for name, m in named.items()
    ]
    previous = {name: dict(info) for name, info in manifest.models.items()}
    _check_layer_groups(plans, manifest, resume=resume, overwrite=overwrite)
    if (root / JOURNAL_NAME).exists():
        manifest.save()  # compacts the journal of an interrupted run
    for plan in plans:
        manifest.record_model(plan.name, plan.info)  # the folder names, should this run stop
    manifest.settings.update(settings.recorded(), labels=_describe_labels(labels))
    run = Run(manifest, plans, settings, resume=resume, overwrite=overwrite)
    run.start(workers, progress, total=_total(plans, source.count))
    reiterable = _reiterable(source, images)
    needs_data = diagnose or any(
        METHODS[g.method].needs_images for p in plans for g in p.layer_groups
    )
    try:
        run.stream(source, keep=needs_data and not reiterable)
        data = images if reiterable else run.sample()
        run.layer_groups(data)
        run.finish()
    except BaseException:
        run.abort()
        raise
    if diagnose:
        for plan in plans:
            manifest.diagnosis[plan.name] = _diagnosis(plan, data)
    run.remove_stale()
    for plan in plans:
        # The images of the per-image view; an export without per-image methods keeps the
        # number an earlier one recorded.
        recorded = previous.get(plan.name, {}).get("images")
        manifest.models[plan.name]["images"] = (
            run.seen[plan.name] if plan.image_groups else recorded
        )
    write_report(manifest)  # compacts the manifest too
    return root / INDEX_NAME


def render_method(
    model,
    images,
    method: str,
    *,
    layers=None,
    targets=None,
    options=None,
    progress=False,
    style: str = "raster",
    preprocess=None,
    labels=None,
    check_size: bool = True,
    exact_layers: bool = False,
) -> list[Rendered]:
    """Compute one method and draw its figures without writing anything (the command line's
    method subcommands).

    Parameters
    ----------
    model, images, layers, targets, style, preprocess, labels
        As for :func:`export` (``images`` may be ignored by methods that need none).
    method : str
        One name of :data:`vizkit.registry.METHODS`.
    options : dict or None
        The method's keyword options.
    progress : bool or None
        Progress bar over layers (``None``: only on a terminal).
    check_size : bool
        False lets images of any size through (DeepDream tiles fixed-size models).
    exact_layers : bool
        Draw exactly ``layers`` (the caller checked them, e.g. a 1x1 map named for Grad-CAM,
        which then warns) instead of keeping only those that suit the method.

    Returns
    -------
    list of Rendered
        One per figure: ``layer`` (None for whole-model methods), ``image`` (index, None for
        per-layer methods), ``image_id``, ``result`` (the array drawn), ``figure`` (a
        :class:`Drawing`: ``encode("png" | "pdf" | "svg")`` gives the file's bytes) and
        ``caption``. A :class:`Rendered` also unpacks as the 4-tuple
        ``(layer, image, result, figure)`` of earlier versions.
    """
    check_methods([method])
    opts = _check_options({method: dict(options or {})}, [method])
    style = choice(style, "style", STYLES)
    names = resolve_labels(labels)
    pre_name, pre_fn = resolve_preprocess(preprocess)
    spec = METHODS[method]
    source = open_source(images, batch_size=CHUNK, **file_fit(model))
    user_targets = _check_targets(targets, source.count)
    name = getattr(model, "name", "model")
    plan = _plan_model(name, model, name, user_targets, layers, [method], opts, ("png",),
                       pre_name, pre_fn, exact_layers=exact_layers)  # fmt: skip
    batches = list(source)
    x = np.concatenate([to_batch(b.images, model, check_size=check_size) for b in batches])
    ids = [i for b in batches for i in b.ids]
    # Predictions (captions, targets) for methods that explain a class, on images the model
    # takes as they are (DeepDream's any-size images are not predicted).
    predict = spec.target and check_size
    infos = _infos(plan, x, [None] * len(x), 0, [None] * len(x), predict=predict)
    targets_ = [i.get("target") for i in infos] if predict else user_targets
    ctx = Context(model, x, targets_, plan.layers, preprocess=pre_fn, data=x)
    out = []
    bar = _progress(len(plan.groups), enabled=progress, desc=f"vizkit {method}", unit="layer")
    # Methods that record several layers in one forward pass do so for all chosen layers: one
    # compiled graph instead of one per layer (N traces, and TensorFlow's retracing warning).
    together = ONE_PASS.get(method) if len(plan.groups) > 1 else None
    if together is not None:
        first = plan.groups[0]
        by_layer = together(ctx, [g.layer for g in plan.groups], **first.options)
    for group in plan.groups:
        if together is not None:
            result = by_layer[group.layer]
        else:
            result = call(spec, ctx, group.layer, group.options)
        for image in range(len(x)) if spec.per_image else [None]:
            item = result if image is None else result[image]
            info = None if image is None else infos[image]
            image_id = None if image is None else ids[image]
            drawing = Drawing(spec.renderer, item, None if image is None else x[image],
                              _title(group, image), style)  # fmt: skip
            facts = captions.image_facts(image_id, info, names)
            if spec.target:
                facts += captions.target_fact(info, names)
            text = captions.caption(facts)
            out.append(Rendered(group.layer, image, image_id, item, drawing, text))
        bar.update()
    bar.close()
    return out


@dataclass
class Drawing:
    """One figure, drawn when it is asked for: a raster :class:`~vizkit.render.raster.Picture`
    for PNG with ``style="raster"``, a matplotlib figure otherwise."""

    kind: str
    result: Any
    image: np.ndarray | None
    title: str
    style: str = "raster"
    _picture: Picture | None = field(default=None, repr=False)
    _figure: Any = field(default=None, repr=False)

    @property
    def picture(self) -> Picture:
        """The raster picture (pixels and caption notes)."""
        if self._picture is None:
            self._picture = render_picture(self.kind, self.result, self.image)
        return self._picture

    @property
    def figure(self):
        """The matplotlib figure (with title and colour bar)."""
        if self._figure is None:
            from ..plot.renderers import render

            self._figure = render(self.kind, self.result, self.image, title=self.title)
        return self._figure

    def encode(self, fmt: str = "png", dpi: int = 100) -> bytes:
        """The figure as ``fmt`` bytes: with ``style="raster"``, image formats (png, jpg, tif,
        webp, bmp) are the raster picture; pdf, svg and the rest are matplotlib's."""
        fmt = str(fmt).lower().lstrip(".")
        if self.style == "raster" and fmt in IMAGE_FORMATS:
            return encode_image(self.picture.pixels, fmt)
        from ..plot.renderers import to_bytes

        return to_bytes(self.figure, fmt, dpi)

    def savefig(self, fname, *, format: str | None = None, dpi: int = 100, **_) -> None:
        """``matplotlib.figure.Figure.savefig``'s calling convention (a path or a binary file)."""
        if format is None:
            format = Path(os.fspath(fname)).suffix.lstrip(".") or "png"
        data = self.encode(format, dpi)
        if hasattr(fname, "write"):
            fname.write(data)
        else:
            Path(fname).write_bytes(data)


@dataclass(frozen=True)
class Rendered:
    """One figure of :func:`render_method`."""

    layer: str | None
    image: int | None
    image_id: str | None
    result: Any
    figure: Drawing
    caption: str

    def __iter__(self):
        # The 4-tuple (layer, image, result, figure) that earlier versions returned.
        return iter((self.layer, self.image, self.result, self.figure))


# -- planning -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    formats: tuple[str, ...]
    style: str
    dpi: int
    thumbnail_size: int
    page_size: int
    class_names: list[str] | None

    @property
    def matplotlib(self) -> bool:
        """Whether any file is a matplotlib figure (drawn in worker processes)."""
        return self.style == "matplotlib" or any(f != "png" for f in self.formats)

    def recorded(self) -> dict[str, Any]:
        return {"page_size": self.page_size, "style": self.style, "class_names": self.class_names}


@dataclass
class Job:
    """One figure: its files (one per format) and its thumbnail.

    ``image`` is the image's position in the stream, ``row`` its row in the current chunk.
    """

    image: int | None
    files: dict[str, str]  # format -> relative path
    thumbnail: str
    parameters: dict[str, Any]
    image_id: str | None = None
    row: int | None = None


@dataclass
class Group:
    """Figures of one model, method and layer, computed together."""

    model: str
    method: str
    layer: str | None
    options: dict[str, Any]
    parameters: dict[str, Any]  # shared by every figure of the group
    folder: tuple[str, str]
    variant: str | None
    jobs: list[Job] = field(default_factory=list)  # per-layer groups: their one figure

    @property
    def stem(self) -> str:
        return self.method if self.variant is None else f"{self.method}-{self.variant}"

    def key(self, image_id: str | None, fmt: str) -> tuple:
        return (self.model, self.method, self.layer, image_id, fmt)


@dataclass
class Plan:
    """What one model's export will do."""

    name: str
    model: Any
    slug: str
    info: dict[str, Any]
    groups: list[Group]
    layers: list[str]  # the layers hypercolumns stack
    targets: list[int] | None
    preprocess: Any
    image_names: UniqueNames = field(default_factory=UniqueNames)

    @property
    def image_groups(self) -> list[Group]:
        return [g for g in self.groups if METHODS[g.method].per_image]

    @property
    def layer_groups(self) -> list[Group]:
        return [g for g in self.groups if not METHODS[g.method].per_image]


def _plan_model(
    name,
    model,
    slug,
    targets,
    layers,
    methods,
    options,
    formats,
    pre_name=None,
    pre_fn=None,
    *,
    exact_layers=False,
) -> Plan:
    every = isinstance(layers, str) and layers == "all"
    wanted = None if layers is None or every else resolve_layers(model, layers)
    _check_target_range(model, targets)
    info = {
        "slug": slug,
        "weights_sha1": _weights_digest(model),
        "images": None,
        "layers": layer_paths(model),
        "preprocess": pre_name,
        "classifier": is_classifier(model),
    }
    layer_names = UniqueNames(info["layers"])
    layer_objects = None
    conv_or_wanted = wanted if wanted is not None else spatial_conv_paths(model)
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
        params = dict(options[method_name])
        params["weights_sha1"] = info["weights_sha1"]
        if pre_name is not None and method_name != "filters":
            params["preprocess"] = pre_name
        if method.target:
            params["targets"] = targets if not isinstance(targets, list) else "per image"
        if method.layers is None and method_name == "hypercolumns":
            params["layers"] = conv_or_wanted
        variant = _variant(method_name, options[method_name])
        for layer in method_layers:
            folder = (slug, MODEL_LEVEL if layer is None else layer_names(layer))
            group = Group(name, method_name, layer, dict(options[method_name]),
                          normalize(params), folder, variant)  # fmt: skip
            if not method.per_image:
                group.jobs = [_job(group, None, None, None, formats)]
            groups.append(group)
    return Plan(name, model, slug, info, groups, conv_or_wanted, targets, pre_fn)


def _variant(method: str, options: Mapping[str, Any]) -> str | None:
    value = options.get(VARIANTS.get(method, ""))
    if value is None or value is False:
        return None
    return "plusplus" if value is True else str(value)


def _job(group: Group, image, image_id, file_id, formats, params=None, row=None) -> Job:
    stem = group.stem if file_id is None else f"{file_id}_{group.stem}"
    files = {fmt: "/".join((*group.folder, f"{stem}.{fmt}")) for fmt in formats}
    thumb = "/".join(("thumbs", *group.folder, f"{stem}.png"))
    return Job(image, files, thumb, params or group.parameters, image_id, row)


def _model_slugs(named: Mapping[str, Any], manifest: Manifest) -> dict[str, str]:
    """A folder name per model: the one recorded by an earlier export, else a new readable one
    (never one of the report's own names, :data:`RESERVED`)."""
    names = UniqueNames(reserved=RESERVED)
    for name, info in manifest.models.items():
        slug = info.get("slug")
        # Only a plain slug is reused: a manifest edited to say "../x" cannot move a folder.
        if isinstance(slug, str) and re.fullmatch(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?", slug):
            names.claim(name, slug)
    return {name: names(name) for name in named}


def _check_layer_groups(plans: list[Plan], manifest: Manifest, *, resume, overwrite) -> None:
    """Raise before any work if a per-layer figure would replace a file it may not."""
    known = manifest.known_paths()
    for plan in plans:
        for group in plan.layer_groups:
            _check_job(group, group.jobs[0], manifest, known, resume=resume, overwrite=overwrite)


def _needs_work(group: Group, job: Job, manifest: Manifest, resume: bool) -> bool:
    if not resume:
        return True
    for fmt, path in job.files.items():
        if manifest.find(path, group.key(job.image_id, fmt), job.parameters) is None:
            return True
    return False


def _check_job(group, job, manifest: Manifest, known: set, *, resume, overwrite) -> None:
    """Raise ``FileExistsError`` if writing ``job`` would replace, without ``overwrite``, a
    figure of an earlier export made with other parameters (or any, with ``resume=False``) or
    a file vizkit did not write."""
    own = set(manifest.pending)
    for fmt in job.files:
        old = manifest.by_key(group.key(job.image_id, fmt))
        if old is None:
            continue
        same = resume and old.parameters == job.parameters
        if not same and not overwrite and (manifest.folder / old.path).exists():
            _refuse(manifest.folder, old.path, "made by an earlier export with other parameters, "
                    "or resume=False")  # fmt: skip
        own |= {old.path, old.thumbnail}
    for path in (*job.files.values(), job.thumbnail):
        if overwrite or path in own or not manifest.folder.joinpath(path).exists():
            continue
        if path in known:
            why = "made by an earlier export with other parameters, or resume=False"
        else:
            why = "not written by vizkit export"
        _refuse(manifest.folder, path, why)


def _refuse(folder: Path, path: str, why: str) -> None:
    target = contained(folder, *path.split("/"))
    raise FileExistsError(
        f"{str(target)!r} already exists ({why}); pass overwrite=True (--overwrite) to replace "
        "it or choose another output folder"
    )


# -- running ------------------------------------------------------------------------------------
@dataclass
class Chunk:
    """The images of the current chunk for one model.

    ``shared`` holds results computed for several layers at once (:data:`ONE_PASS`):
    ``(method, layer) -> (rows, result for those rows)``.
    """

    plan: Plan
    x: np.ndarray
    infos: list[dict[str, Any]]
    shared: dict[tuple, tuple[list[int], np.ndarray]] = field(default_factory=dict)


class Writer:
    """Computes a group's figures for some jobs and hands them to the pipeline."""

    def __init__(self, manifest: Manifest, settings: Settings, plans: list[Plan]):
        self.manifest = manifest
        self.settings = settings
        self.plans = {p.name: p for p in plans}
        self.pipeline: Pipeline | None = None
        # Worker processes outlive an export; they take the umask of this one with each task.
        self.umask = current_umask() if settings.matplotlib else None
        self.chunk: Chunk | None = None
        self.data = None  # the dataset for per-layer methods that need one

    def run(self, group: Group, jobs: list[Job]) -> None:
        method = METHODS[group.method]
        plan = self.plans[group.model]
        if method.per_image:
            rows = [job.row for job in jobs]
            infos = [self.chunk.infos[r] for r in rows]
            targets = [i.get("target") for i in infos] if method.target else None
            ctx = Context(plan.model, self.chunk.x[rows], targets, plan.layers,
                          preprocess=plan.preprocess)  # fmt: skip
        else:
            infos = [None]
            ctx = Context(plan.model, np.zeros((0,)), None, plan.layers,
                          preprocess=plan.preprocess, data=self.data)  # fmt: skip
        start = time.perf_counter()
        shared = self.chunk.shared.get((group.method, group.layer)) if method.per_image else None
        if shared is not None:  # computed with the method's other layers in one pass
            at = {r: i for i, r in enumerate(shared[0])}
            result = shared[1][[at[r] for r in rows]]
        else:
            result = call(method, ctx, group.layer, group.options)
        share = (time.perf_counter() - start) / len(jobs)
        self.manifest.mark_pending(p for job in jobs for p in (*job.files.values(), job.thumbnail))
        for row, (job, info) in enumerate(zip(jobs, infos, strict=True)):
            item = result[row] if method.per_image else result
            image = ctx.images[row] if method.per_image else None
            task = DrawTask(
                kind=method.renderer,
                result=item,
                image=image,
                title=_title(group, job.image) if self.settings.matplotlib else "",
                files={f: str(self._abs(p)) for f, p in job.files.items()},
                thumbnail=str(self._abs(job.thumbnail)),
                style=self.settings.style,
                dpi=self.settings.dpi,
                thumbnail_size=self.settings.thumbnail_size,
                umask=self.umask,
            )
            self.pipeline.submit(task, ("figure", group, job, info, share))

    def _abs(self, rel: str) -> Path:
        # Report paths are made of slugs (UniqueNames): they cannot leave the folder.
        return self.manifest.folder.joinpath(rel)


class Run:
    """The state of one export while it runs."""

    def __init__(self, manifest: Manifest, plans: list[Plan], settings: Settings, *, resume,
                 overwrite):  # fmt: skip
        self.manifest = manifest
        self.plans = plans
        self.settings = settings
        self.resume = resume
        self.overwrite = overwrite
        self.writer = Writer(manifest, settings, plans)
        self.planned: set[str] = set()  # every path this export makes (or keeps)
        self.seen = {p.name: 0 for p in plans}
        self.known = manifest.known_paths()
        self._sample: list[np.ndarray] = []
        self._kept = 0
        self.bar = None

    def start(self, workers: int, progress: bool, total: int | None) -> None:
        # Threads for raster pictures (OpenCV and NumPy release the GIL); processes for
        # matplotlib figures, which hold it while they are laid out.
        self.writer.pipeline = Pipeline(workers, self._done, processes=self.settings.matplotlib,
                                        bound=max(4 * CHUNK, 4 * workers))  # fmt: skip
        self.bar = _progress(total, enabled=progress)

    # -- per-image methods, streamed ------------------------------------------------------------
    def stream(self, source, *, keep: bool) -> None:
        """Compute and draw the per-image methods chunk by chunk; with ``keep``, also keep the
        first :data:`SAMPLE` images (a one-shot stream cannot be read again)."""
        if not keep and not any(p.image_groups for p in self.plans):
            self.seen = {p.name: source.count for p in self.plans}  # nothing to read
            return
        for batch in source:
            if keep:
                self._keep(batch.images)
            for plan in self.plans:
                self.seen[plan.name] += len(batch)
                if plan.image_groups:
                    self._chunk(plan, batch)
            self.writer.pipeline.poll()

    def _chunk(self, plan: Plan, batch) -> None:
        x = to_batch(batch.images, plan.model)
        ids = [str(i) for i in batch.ids]
        names = [plan.image_names(_file_id(i)) for i in ids]
        sha = [image_sha1(img) for img in x]
        todo, rows = [], set()
        for group in plan.image_groups:
            jobs = []
            for row in range(len(x)):
                params = dict(group.parameters)
                params["image_sha1"] = sha[row]
                if plan.targets is not None and METHODS[group.method].target:
                    params["targets"] = _target_at(plan.targets, batch.start + row)
                job = _job(group, batch.start + row, ids[row], names[row],
                           self.settings.formats, normalize(params), row)  # fmt: skip
                self.planned.update((*job.files.values(), job.thumbnail))
                if _needs_work(group, job, self.manifest, self.resume):
                    _check_job(group, job, self.manifest, self.known, resume=self.resume,
                               overwrite=self.overwrite)  # fmt: skip
                    jobs.append(job)
                    rows.add(row)
                else:
                    self._advance(1)
            if jobs:
                todo.append((group, jobs))
        inputs = ["/".join((plan.slug, INPUT_FOLDER, f"{n}.png")) for n in names]
        self.planned.update(inputs)
        recorded = self.manifest.images.get(plan.name, {})
        for row, image_id in enumerate(ids):
            old = recorded.get(image_id)
            if (
                old is None
                or old.get("sha1") != sha[row]
                or old.get("path") != inputs[row]
                or not (self.manifest.folder / inputs[row]).is_file()
            ):
                rows.add(row)
        if not rows:
            return
        order = sorted(rows)
        labels = [None] * len(x) if batch.labels is None else [true_label(v) for v in batch.labels]
        fresh = _infos(plan, x[order], [labels[r] for r in order], batch.start,
                       [inputs[r] for r in order], rows=order)  # fmt: skip
        infos = [recorded.get(i, {}) for i in ids]
        for row, info in zip(order, fresh, strict=True):
            info["sha1"] = sha[row]
            infos[row] = info
            old = recorded.get(ids[row]) or {}
            same_file = old.get("sha1") == sha[row] and old.get("path") == inputs[row]
            if not same_file or not (self.manifest.folder / inputs[row]).is_file():
                self._write_input(plan, ids[row], x[row], info)
            elif old != info:  # same picture, new facts (e.g. other targets): no rewrite
                self.manifest.record_image(plan.name, ids[row], info)
        self.writer.chunk = Chunk(plan, x, infos, _one_pass(plan, x, todo))
        for group, jobs in todo:
            self.writer.run(group, jobs)

    def _write_input(self, plan: Plan, image_id: str, image, info: dict[str, Any]) -> None:
        path = info["path"]
        _check_free_path(self.manifest, path, self.known, self.overwrite)
        self.manifest.mark_pending([path])
        task = ImageTask(image, str(self.manifest.folder.joinpath(path)), self.writer.umask)
        self.writer.pipeline.submit(task, ("image", plan.name, image_id, info))

    # -- per-layer methods --------------------------------------------------------------------
    def layer_groups(self, data) -> None:
        self.writer.data = data
        for plan in self.plans:
            for group in plan.layer_groups:
                job = group.jobs[0]
                self.planned.update((*job.files.values(), job.thumbnail))
                if _needs_work(group, job, self.manifest, self.resume):
                    self.writer.run(group, [job])
                else:
                    self._advance(1)

    def finish(self) -> None:
        self.writer.pipeline.drain()
        self.writer.pipeline.close()
        self.manifest.sync()
        if self.bar is not None:
            self.bar.close()

    def abort(self) -> None:
        try:
            if self.writer.pipeline is not None:
                self.writer.pipeline.close()
        finally:
            if self.bar is not None:
                self.bar.close()
            self.manifest.close()

    # -- results --------------------------------------------------------------------------------
    def _done(self, tag, result: dict[str, Any]) -> None:
        if tag[0] == "image":
            _, model, image_id, info = tag
            self.manifest.record_image(model, image_id, info)
            return
        _, group, job, info, share = tag
        notes = result["notes"]
        title = captions.figure_title(group.method, group.variant, group.layer)
        names = self.settings.class_names
        facts = captions.image_facts(job.image_id, info, names)
        if METHODS[group.method].target:
            facts += captions.target_fact(info, names)
        text = captions.caption(facts, captions.picture_facts(notes))
        for fmt, rel in job.files.items():
            self.manifest.record(
                Entry(
                    path=rel,
                    method=group.method,
                    model=group.model,
                    layer=group.layer,
                    image=job.image,
                    format=fmt,
                    parameters=job.parameters,
                    seconds=round(share + result["seconds"], 4),
                    thumbnail=job.thumbnail,
                    image_id=job.image_id,
                    variant=group.variant,
                    title=title,
                    caption=text,
                    notes=notes,
                )
            )
        self._advance(1)

    def _advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    # -- the dataset for per-layer methods --------------------------------------------------------
    def _keep(self, images) -> None:
        arr = np.asarray(images)
        room = min(SAMPLE - self._kept, SAMPLE_BYTES // max(1, arr[:1].nbytes) - self._kept)
        if room > 0:
            part = arr[:room].copy()  # a copy: the stream's own buffers are not held
            self._sample.append(part)
            self._kept += len(part)

    def sample(self):
        """The images kept from a one-shot stream (the first :data:`SAMPLE`, at most
        :data:`SAMPLE_BYTES`)."""
        if not self._sample:
            return None
        return np.concatenate(self._sample)

    # -- clean-up -------------------------------------------------------------------------------
    def remove_stale(self) -> None:
        """Remove the figures of this export's (model, method) pairs that it did not make now,
        and input images no figure uses any more: the report shows what the manifest lists."""
        manifest = self.manifest
        pairs = {(p.name, g.method) for p in self.plans for g in p.groups}
        stale = [
            e
            for e in manifest.entries.values()
            if (e.model, e.method) in pairs and e.path not in self.planned
        ]
        gone = {e.path for e in stale}
        used: dict[str, set] = {}
        for e in manifest.entries.values():
            if e.path not in gone and e.image_id is not None:
                used.setdefault(e.model, set()).add(e.image_id)
        inputs = {
            info["path"]
            for plan in self.plans
            if plan.image_groups
            for image_id, info in manifest.images.get(plan.name, {}).items()
            if image_id not in used.get(plan.name, set()) and info.get("path")
        }
        if not gone and not inputs:
            return
        manifest.drop(gone | inputs)
        for rel in gone | inputs | {e.thumbnail for e in stale if e.thumbnail}:
            if rel not in self.planned:
                try:
                    os.unlink(contained(manifest.folder, *rel.split("/")))
                except FileNotFoundError:
                    pass


def _one_pass(plan: Plan, x: np.ndarray, todo) -> dict[tuple, tuple[list[int], np.ndarray]]:
    """Methods that record several layers in one forward pass (feature maps) do so for all
    their layers of a chunk: one compiled graph instead of one per layer."""
    shared = {}
    for method, together in ONE_PASS.items():
        groups = [(g, jobs) for g, jobs in todo if g.method == method]
        if len(groups) < 2:
            continue
        rows = sorted({job.row for _, jobs in groups for job in jobs})
        ctx = Context(plan.model, x[rows], None, plan.layers, preprocess=plan.preprocess)
        results = together(ctx, [g.layer for g, _ in groups], **groups[0][0].options)
        shared.update({(method, g.layer): (rows, results[g.layer]) for g, _ in groups})
    return shared


def _check_free_path(manifest: Manifest, path: str, known: set, overwrite: bool) -> None:
    if overwrite or path in manifest.pending or path in known:
        return
    if not manifest.folder.joinpath(path).exists():
        return
    _refuse(manifest.folder, path, "not written by vizkit export")


def _infos(plan: Plan, x, labels, start, paths, rows=None, predict=True) -> list[dict[str, Any]]:
    """What the report says about each image: position, input picture, prediction, target."""
    rows = list(range(len(x))) if rows is None else rows
    infos = [
        {"index": start + r, "path": p, "label": lab}
        for r, p, lab in zip(rows, paths, labels, strict=True)
    ]
    needs = plan.info.get("classifier") or any(METHODS[g.method].target for g in plan.groups)
    if not (predict and needs) or len(x) == 0:
        return infos
    classes, scores, probability = predictions(plan.model, x, plan.preprocess, CHUNK)
    for r, info, k, score in zip(rows, infos, classes, scores, strict=True):
        if plan.info.get("classifier"):
            info.update(prediction=int(k), score=round(float(score), 4), probability=probability)
        info["target"] = int(k) if plan.targets is None else _target_at(plan.targets, start + r)
    return infos


def _file_id(image_id: str) -> str:
    """The image part of a file name: the file's name for image files, ``img042`` otherwise."""
    return image_id if not image_id.isdigit() else f"img{image_id}"


def _title(group: Group, image: int | None) -> str:
    where = "whole model" if group.layer is None else group.layer
    text = f"{group.method} - {group.model} - {where}"
    text += "" if image is None else f" - image {image}"
    # Control characters (NUL, bidi overrides) in user names have no glyph in the figure font.
    return "".join(c if c.isprintable() else "?" for c in text)


def _diagnosis(plan: Plan, data) -> dict[str, Any]:
    if data is None:
        return {"error": "no images to diagnose"}
    try:
        diagnosis = diagnose(plan.model, data, preprocess=plan.preprocess)
    except (ValueError, TypeError) as exc:
        # The figures are written by now; a model diagnose cannot handle gets a note, not a crash.
        message = " ".join(str(exc).split())
        warnings.warn(f"diagnose failed for model {plan.name!r}: {message}", stacklevel=3)
        return {"error": message}
    out = dict(diagnosis.to_dict())
    out.setdefault("summary", diagnosis.summary())
    return out


def _reiterable(source, images) -> bool:
    """Whether ``images`` can be read again (for top-activating images and the diagnosis)."""
    if source.kind != "iterable":
        return True
    return iter(images) is not images


def _total(plans: list[Plan], count: int | None) -> int | None:
    per_layer = sum(len(p.layer_groups) for p in plans)
    per_image = sum(len(p.image_groups) for p in plans)
    if per_image and count is None:
        return None
    return per_layer + per_image * (count or 0)


def _progress(total: int | None, *, enabled: bool | None, desc: str = "vizkit export",
              unit: str = "fig"):  # fmt: skip
    # enabled=None lets tqdm decide: a bar on a terminal, nothing in logs and pipes.
    disable = None if enabled is None else (not enabled or total == 0)
    return tqdm(total=total, disable=disable, desc=desc, unit=unit, smoothing=0.1)


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


def _image_list(images):
    """A list of single images (``(H, W[, C])`` arrays or nested lists; not file paths, batches
    or ``(x, y)`` pairs) as one array, so that a ragged list is refused by name as
    :func:`vizkit.core.images.to_batch` refuses it."""
    if not (isinstance(images, list) and images):
        return images
    if all(isinstance(i, (np.ndarray, list)) and _rank(i) <= 3 for i in images):
        return as_array(images, "images")
    return images


def _rank(item) -> int:
    try:
        return np.ndim(item)
    except ValueError:  # a ragged nested list: as_array says so by name
        return 0


def _check_targets(targets, n: int | None) -> int | list[int] | None:
    """None, one class for every image, or one per image (needs a known number of images)."""
    if targets is None:
        return None
    if isinstance(targets, (int, np.integer)) and not isinstance(targets, bool):
        return int(targets)
    values = np.asarray(targets)
    if n is None:
        raise ValueError(
            "targets must be None or one class index for a stream of images of unknown "
            f"number; got {targets!r}"
        )
    if values.ndim != 1 or len(values) != n or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"targets must be None, a class index or {n} class indices (one per image), got {targets!r}"
        )
    return [int(v) for v in values]


def _target_at(targets: int | list[int], index: int) -> int:
    return targets if isinstance(targets, int) else targets[index]


def _check_target_range(model, targets) -> None:
    if targets is None:
        return
    outputs = getattr(model, "outputs", None)
    if not outputs or any(d is None for d in outputs[0].shape[1:]):
        return
    classes = int(np.prod(outputs[0].shape[1:]))
    bad = [t for t in np.atleast_1d(targets) if not 0 <= t < classes]
    if bad:
        raise ValueError(
            f"target {bad[0]} is out of range: model {model.name!r} has {classes} "
            f"output classes (0..{classes - 1})"
        )


def _check_workers(workers) -> int:
    if workers is None:
        return min(4, os.cpu_count() or 1)
    return positive_int(workers, "workers", minimum=0)


def _describe_labels(labels) -> Any:
    if labels is None or isinstance(labels, (str, os.PathLike)):
        return None if labels is None else os.fspath(labels)
    return "list"


def _weights_digest(model) -> str:
    digest = hashlib.sha1()
    for w in model.weights:
        digest.update(np.ascontiguousarray(w.numpy()).tobytes())
    return digest.hexdigest()[:16]


__all__ = [
    "DEFAULT_METHODS",
    "FORMATS",
    "INDEX_NAME",
    "Drawing",
    "Rendered",
    "export",
    "render_method",
]
