"""``vizkit.atlas``: every channel of every conv layer of a model, as a static site.

One pass over the data (:class:`vizkit.engines.jobs.AtlasJob`, on the local engine or on Ray)
gives, for every channel of every layer, the top-k images with their receptive-field crops, the
dead/constant/input-like flags and the sparsity of :func:`vizkit.diagnose`, and an activation
histogram; then :func:`vizkit.maximize` runs once per layer for all its channels (batched) in
this process. :mod:`vizkit.microscope.site` writes the pages.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from ..core.checks import positive_int
from ..engines.jobs import AtlasJob, LayerSummary
from ..methods.top_activating import ReceptiveField, TopCrops

# The flags of vizkit.diagnose, with its default thresholds.
DEAD_TOL = 0.0
CONSTANT_TOL = 1e-6
COPY_THRESHOLD = 0.98


@dataclass(frozen=True)
class LayerAtlas:
    """Everything the atlas shows for one layer.

    Attributes
    ----------
    path : str
    shape : tuple of int
        ``(h, w, C)`` of the layer's output.
    summary : LayerSummary
        Top-k (with crops and image ids), channel statistics and histograms of every channel.
    findings : dict
        ``dead``, ``constant``, ``constant_values``, ``input_like``, ``sparsity`` (the layer's)
        as :class:`vizkit.methods.diagnose.LayerReport` has them.
    images : ndarray, float32, (C, H, W, c) in [0, 1]
        Activation maximisation of every channel.
    field : ReceptiveField
        Where the layer's units look in the input (the crops' size).
    """

    path: str
    shape: tuple[int, ...]
    summary: LayerSummary
    findings: dict
    images: np.ndarray
    field: ReceptiveField

    @property
    def channels(self) -> int:
        return int(self.shape[-1])

    def sparsity(self) -> np.ndarray:
        """Fraction of each channel's activations that are zero, float64 ``(C,)``."""
        values = self.summary.stats.values
        return values["zeros"] / values["count"]

    def crops(self, channel: int) -> TopCrops:
        """The receptive-field crops of ``channel``'s top images, best first."""
        payload = self.summary.top.extras[channel]
        patches, boxes, locations, _ = zip(*payload, strict=True)
        return TopCrops(np.stack(patches), np.array(boxes), np.array(locations), self.field)

    def ids(self, channel: int) -> list[str]:
        """Image ids of ``channel``'s top images, best first."""
        return [str(p[3]) for p in self.summary.top.extras[channel]]


def atlas(
    model: keras.Model,
    data,
    out_dir: str | os.PathLike,
    *,
    layers=None,
    k: int = 9,
    engine="local",
    address: str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    preprocess: Callable | str | None = None,
    maximize_steps: int | None = None,
    page_size: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a browsable atlas of every channel of ``model``'s conv layers to ``out_dir``.

    For every channel: its activation-maximisation image (:func:`vizkit.maximize`, all channels
    of a layer optimised as one batch), the ``k`` dataset images that excite it most with the
    crop of each image's receptive field around the strongest location
    (:func:`vizkit.top_activating`), the dead / constant / input-like flags and the sparsity
    (:func:`vizkit.diagnose`) and a histogram of its activations. The data are read once, on
    the local engine or on Ray (the same pages either way). In the manner of OpenAI Microscope
    (Schubert et al., 2020), for the user's own model.

    Parameters
    ----------
    model : keras.Model
        A model with a fixed input size.
    data
        Anything :func:`vizkit.core.sources.open_source` reads: an image array, a folder or
        list of image files (resized to the model's input), a ``tf.data`` / ``ray.data``
        dataset or an iterable of batches.
    out_dir : path
        Folder for the site (created if missing).
    layers : layer spec or list of them, optional
        Layers with a 4-D ``(N, h, w, C)`` output; default every convolution layer with one.
    k : int
        Dataset images kept per channel.
    engine, address, workers
        As in :func:`vizkit.top_activating`: ``"local"`` or ``"ray"`` for the pass over the
        data (maximisation runs in this process).
    batch_size : int, optional
        Images per chunk of the data pass (default 32).
    preprocess : callable or preset name, optional
        The model's input preprocessing, applied in the graph to images in [0, 1].
    maximize_steps : int, optional
        Optimisation steps of the maximisation (default: :func:`vizkit.maximize`'s 256; capped
        by ``VIZKIT_MAX_STEPS``).
    page_size : int, optional
        Channel cards per page (default 128): a layer with more channels gets several pages.
    overwrite : bool
        Replace files that exist already (an earlier atlas's, or any file the atlas would
        write). Without it such a file raises ``FileExistsError`` before any work; other files
        in ``out_dir`` are left alone either way.
    progress : bool
        Progress bars over the data (on a terminal) and over the layers while maximising.

    Returns
    -------
    Path
        The landing page, ``out_dir/index.html``.

    Raises
    ------
    ValueError
        For a layer without a 4-D output, a model without such a layer, data without images.
    FileExistsError
        For a file the atlas would replace, without ``overwrite``.
    ConnectionError
        For a Ray ``address`` that does not answer.
    """
    from ..core.batches import file_fit
    from ..core.images import check_model, model_input_shape
    from ..core.sources import open_source
    from ..engines import progress_bars, resolve_engine, run
    from ..methods.top_activating import receptive_field
    from ..preprocessing import resolve_preprocess
    from . import site

    check_model(model)
    k = positive_int(k, "k")
    steps = None if maximize_steps is None else positive_int(maximize_steps, "maximize_steps")
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    chosen = resolve_engine(engine, address=address, workers=workers)
    pre_name, preprocess = resolve_preprocess(preprocess)  # a wrong name fails before any work
    page_size = site.PAGE_SIZE if page_size is None else positive_int(page_size, "page_size")
    paths = atlas_layers(model, layers)
    shapes = _shapes(model, paths)
    plan = site.plan_files(_all_paths(model), [(p, shapes[p][-1]) for p in paths], page_size)
    kind = open_source(data, name="data", **file_fit(model)).kind  # an empty folder fails here
    folder = site.prepare_folder(out_dir, plan, overwrite=overwrite)
    fields = tuple(receptive_field(model, p) for p in paths)
    job = AtlasJob(tuple(paths), fields, k, preprocess, DEAD_TOL)
    with progress_bars(progress):
        summaries, n_images = run(job, model, data, batch_size=batch_size, engine=chosen)
    found = []
    for path, field in zip(_bar(paths, progress, "maximising"), fields, strict=True):
        images = _maximize(model, path, shapes[path][-1], steps, preprocess)
        findings = summaries[path].stats.findings(DEAD_TOL, CONSTANT_TOL, COPY_THRESHOLD)
        found.append(LayerAtlas(path, shapes[path], summaries[path], findings, images, field))
    info = {
        "model": model.name,
        "input_shape": [s for s in model_input_shape(model)],
        "data": {"count": int(n_images), "kind": kind},
        "settings": {
            "k": k,
            "maximize_steps": _effective_steps(steps),
            "dead_tol": DEAD_TOL,
            "constant_tol": CONSTANT_TOL,
            "copy_threshold": COPY_THRESHOLD,
            "preprocess": pre_name,
        },
    }
    return site.write_site(folder, info, found, plan)


def atlas_layers(model: keras.Model, layers=None) -> list[str]:
    """The layers of the atlas: ``layers`` checked (4-D outputs only), or by default every
    convolution layer with a 4-D output, in model order.

    Raises
    ------
    ValueError
        For a layer without a 4-D output (or a model without any such conv layer).
    """
    from ..core.layers import output_shape, resolve_layers
    from ..report.compute import spatial_conv_paths

    if layers is None:
        paths = spatial_conv_paths(model)
        if not paths:
            raise ValueError(
                f"model {model.name!r} has no convolution layer with a 4-D (N, H, W, C) output; "
                "pass layers=[...] naming layers with one"
            )
        return paths
    paths = resolve_layers(model, layers)
    objects = dict(_iter(model))
    for path in paths:
        shape = output_shape(objects[path])
        if shape is None or len(shape) != 4:
            raise ValueError(
                f"layers: {path!r} has output shape {shape}; the atlas shows layers with a 4-D "
                f"(N, H, W, C) output, such as {spatial_conv_paths(model)[:4]}"
            )
    return paths


def _iter(model):
    from ..core.layers import iter_layers

    return iter_layers(model)


def _all_paths(model) -> list[str]:
    return [p for p, _ in _iter(model)]


def _shapes(model, paths) -> dict[str, tuple[int, ...]]:
    from ..core.layers import output_shape

    objects = dict(_iter(model))
    return {p: tuple(int(s) for s in output_shape(objects[p])[1:]) for p in paths}


def _maximize(model, path: str, channels: int, steps: int | None, preprocess) -> np.ndarray:
    from ..methods.maximize import maximize

    options = {} if steps is None else {"steps": steps}
    return maximize(model, path, list(range(channels)), preprocess=preprocess, **options)


def _effective_steps(steps: int | None) -> int:
    """The steps maximise runs: the default 256 or ``steps``, capped by VIZKIT_MAX_STEPS."""
    import inspect

    from ..methods.maximize import maximize
    from ..optimize.core import capped_steps

    wanted = steps if steps is not None else inspect.signature(maximize).parameters["steps"].default
    return capped_steps(wanted)


def _bar(items, progress: bool, what: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=what, unit="layer", leave=False, disable=None if progress else True)
