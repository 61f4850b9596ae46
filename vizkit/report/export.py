"""Batch export: every method x layer x image as files, a manifest and a paginated HTML report.

How a run goes (:func:`export`):

1. Arguments, layers and targets are checked and every model is planned: which method runs on
   which layers, under which file names (before anything is written).
2. The images are streamed (:func:`vizkit.core.sources.open_source`: arrays, folders of image
   files, file lists, iterators of batches, ``tf.data``), a chunk at a time (:func:`chunk_size`). For each
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

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.batches import file_fit
from ..core.checks import choice, flag, positive_int
from ..core.files import ensure_writable, remove_abandoned
from ..core.graph import default_batch_size
from ..core.images import model_input_shape, to_batch
from ..core.sources import open_source
from ..preprocessing import resolve_preprocess
from ..registry import METHODS, check_methods
from ..render.encode import IMAGE_FORMATS, encode_image
from ..render.raster import Picture
from ..render.raster import render as render_picture
from ..render.tasks import STYLES
from . import captions
from .compute import ONE_PASS, Context, call
from .distributed import stream_on_engine
from .html import INDEX_NAME, PAGE_SIZE, write_report
from .inputs import resolve_labels
from .manifest import JOURNAL_NAME, Manifest
from .plan import (
    FORMATS,
    Settings,
    check_formats,
    check_options,
    check_targets,
    check_workers,
    describe_labels,
    image_list,
    matplotlib_title,
    model_slugs,
    named_models,
    plan_model,
)
from .run import (
    Run,
    Writer,
    check_layer_groups,
    diagnosis_of,
    image_infos,
    progress_bar,
    reiterable,
    total_figures,
)
from .trust import check_evaluate, record_card, trust_card

DEFAULT_METHODS = ("filters", "feature_maps", "gradcam", "saliency", "occlusion")
CHUNK = 32  # images computed together by the per-image methods (more for small images)


def chunk_size(models) -> int:
    """Images per chunk for ``models``: the default batch of their inputs (32, up to 128 for
    small images such as 28x28 digits: per-chunk costs, a prediction and one call per method,
    are spread over more images), the smallest over the models; :data:`CHUNK` when a model's
    input size is not fixed."""
    sizes = []
    for model in models:
        shape = model_input_shape(model)
        if any(d is None for d in shape):
            return CHUNK
        sizes.append(default_batch_size(np.empty((1, *shape), np.float32)))
    return min(sizes, default=CHUNK)


# Images kept from a one-shot stream for top-activating images and the diagnosis: the first
# SAMPLE, at most SAMPLE_BYTES of them.
SAMPLE = 1024
SAMPLE_BYTES = 64 * 2**20


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
    engine="local",
    address: str | None = None,
    evaluate: bool | Mapping[str, Any] = False,
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
    threads (processes for matplotlib figures). With ``engine="ray"`` each chunk of images
    (:func:`chunk_size`) is computed, drawn and written by a Ray worker instead
    (:mod:`vizkit.report.distributed`); the driver records the figures and writes the report
    once, and the files and manifest entries are those of the local export. Every file is
    marked pending in an append-only journal before it is written and recorded there after
    (a file that replaces another is written atomically), so an export interrupted at any
    point (even killed) resumes on a rerun: figures recorded with the same parameters are
    skipped and not computed again.
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
        ``deepdream``, ``top_activating``. An empty list is allowed with ``evaluate``: the
        report then gets the trust card alone (figures of earlier exports stay).
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
        one per CPU; ``0``: draw in the main thread. With ``engine="ray"``: the number of Ray
        workers (default: as many as the cluster has CPUs for).
    page_size : int
        Figures per HTML page.
    engine : {"local", "ray"} or an engine object
        Where the per-image figures are computed: ``"local"`` (this process, pipelined with
        the drawing threads) or ``"ray"`` (Ray workers, each of which computes, draws and
        writes its chunks into ``out_dir``, which every worker must be able to write to; a
        :class:`vizkit.engines.RayEngine` configures it further). Per-layer methods run in
        this process, except the pass of top-activating images over the data, which runs on
        the engine as does the diagnosis.
    address : str or None
        The Ray cluster for ``engine="ray"`` (``"auto"``, ``"host:port"``,
        ``"ray://host:port"``); None starts a local Ray (or uses the one this process runs).
    evaluate : bool or dict
        Add "Which map to trust" to every model's section: :func:`vizkit.evaluate` on the
        export's first 64 images (the table of faithfulness metrics and the randomisation
        sanity check, its verdict, the deletion/insertion curves and the cascading
        randomisation strip). A dict is passed to :func:`vizkit.evaluate` (``methods``,
        ``metrics``, ``steps``, ``baseline``, ...), plus ``count``: how many of the first
        images to evaluate (pass 16 to 64: the means are noisy below about 16). The card is
        computed again only when the weights, images or options change. It runs in this
        process on either engine.

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
    ConnectionError
        When the Ray cluster at ``address`` does not answer.
    OSError
        When the output folder cannot be written; earlier files stay intact.
    """
    named = named_models(model, model_name)
    card = check_evaluate(evaluate)
    empty = isinstance(methods, (list, tuple)) and not methods
    chosen = [] if empty and card is not None else check_methods(methods)
    formats = check_formats(formats)
    options = check_options(method_options, chosen)
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
    remote = _engine(engine, address, workers)
    # With engine="ray", workers counts Ray workers; the per-layer figures get the default.
    workers = check_workers(None if isinstance(engine, str) and engine == "ray" else workers)
    images = image_list(images)
    chunk = chunk_size(named.values())
    source = open_source(images, batch_size=chunk, **file_fit(next(iter(named.values()))))
    if source.kind == "array":  # in memory anyway: bad pixels are refused before any work
        for batch in source:
            for m in named.values():
                to_batch(batch.images, m)
    user_targets = check_targets(targets, source.count)
    root = ensure_writable(Path(out_dir))
    manifest = Manifest.load(root)
    slugs = model_slugs(named, manifest)
    plans = [
        plan_model(
            name, m, slugs[name], user_targets, layers, chosen, options, formats, pre_name, pre_fn
        )
        for name, m in named.items()
    ]
    previous = {name: dict(info) for name, info in manifest.models.items()}
    check_layer_groups(plans, manifest, resume=resume, overwrite=overwrite)
    if (root / JOURNAL_NAME).exists():  # an interrupted run
        manifest.save()  # compacts its journal
        remove_abandoned(root)  # and removes the half-written files it left
    for plan in plans:
        manifest.record_model(plan.name, plan.info)  # the folder names, should this run stop
    manifest.settings.update(settings.recorded(), labels=describe_labels(labels))
    run = Run(manifest, plans, settings, resume=resume, overwrite=overwrite, chunk=chunk,
              sample_images=SAMPLE, sample_bytes=SAMPLE_BYTES, engine=remote)  # fmt: skip
    run.start(workers, progress, total=total_figures(plans, source.count))
    again = reiterable(source, images)  # can be read twice (top-activating, diagnosis)
    needs_data = (
        diagnose
        or card is not None
        or any(METHODS[g.method].needs_images for p in plans for g in p.layer_groups)
    )
    try:
        if remote is None:
            run.stream(source, keep=needs_data and not again)
            data = images if again else run.sample()
        else:
            data = stream_on_engine(run, source, images, remote, again=again,
                                    keep=needs_data and not again, chunk=chunk)  # fmt: skip
        run.layer_groups(data)
        run.finish()
    except BaseException:
        run.abort()
        raise
    if diagnose:
        for plan in plans:
            manifest.diagnosis[plan.name] = diagnosis_of(plan, data, engine=remote)
    if card is not None:
        for plan in plans:
            entry = trust_card(plan, data, user_targets, card, manifest, settings,
                               overwrite=overwrite, progress=progress)  # fmt: skip
            record_card(manifest, plan, entry)
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


def _engine(engine, address, workers):
    """None for the local, pipelined export; else the engine object of the chunk job."""
    from ..engines import RayEngine, resolve_engine
    from ..engines.ray_engine import import_ray

    if isinstance(engine, str) and engine == "local":
        resolve_engine(engine, address=address)  # refuses an address without Ray
        return None
    chosen = (
        resolve_engine(engine, address=address, workers=workers)
        if isinstance(engine, str)
        else resolve_engine(engine, address=address)
    )
    if isinstance(chosen, RayEngine):
        import_ray()  # without Ray: say how to install it before any file is written
    return chosen


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
    opts = check_options({method: dict(options or {})}, [method])
    style = choice(style, "style", STYLES)
    names = resolve_labels(labels)
    pre_name, pre_fn = resolve_preprocess(preprocess)
    spec = METHODS[method]
    source = open_source(images, batch_size=CHUNK, **file_fit(model))
    user_targets = check_targets(targets, source.count)
    name = getattr(model, "name", "model")
    plan = plan_model(name, model, name, user_targets, layers, [method], opts, ("png",),
                       pre_name, pre_fn, exact_layers=exact_layers)  # fmt: skip
    batches = list(source)
    x = np.concatenate([to_batch(b.images, model, check_size=check_size) for b in batches])
    ids = [i for b in batches for i in b.ids]
    # Predictions (captions, targets) for methods that explain a class, on images the model
    # takes as they are (DeepDream's any-size images are not predicted).
    predict = spec.target and check_size
    infos = image_infos(plan, x, [None] * len(x), 0, [None] * len(x), predict=predict)
    targets_ = [i.get("target") for i in infos] if predict else user_targets
    ctx = Context(model, x, targets_, plan.layers, preprocess=pre_fn, data=x)
    out = []
    bar = progress_bar(len(plan.groups), enabled=progress, desc=f"vizkit {method}", unit="layer")
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
                              matplotlib_title(group, image), style)  # fmt: skip
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


__all__ = [
    "DEFAULT_METHODS",
    "FORMATS",
    "INDEX_NAME",
    "Drawing",
    "Rendered",
    "Writer",
    "export",
    "render_method",
]
