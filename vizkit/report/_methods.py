"""The export method table: name -> how to compute, how to draw, which layers it applies to.

Adding a method to :func:`vizkit.export` (and to the training callback) is one entry in
:data:`METHODS`. Heavy modules (TensorFlow, the methods, matplotlib) are imported only when a
method runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Context:
    """What a compute function may use besides its layer and options."""

    model: Any
    images: np.ndarray  # (N, H, W, C) float32, already fitted to the model
    targets: list[int] | None  # one class per image, or None for the predicted class
    layers: list[str]  # the layers the user asked for (or the method's defaults)


@dataclass(frozen=True)
class Method:
    """One row of the method table.

    Attributes
    ----------
    compute : callable
        ``compute(ctx, layer, **options)`` -> result; for ``per_image`` methods a result
        indexable by image along axis 0.
    plot : callable
        ``plot(result, image, *, title)`` -> matplotlib Figure (``image`` is ``None`` for
        methods that are not per image).
    default_layers : callable or None
        ``default_layers(model)`` -> layer paths; ``None`` for whole-model methods (input
        attributions) that produce one figure per image, not per layer.
    accepts : callable
        ``accepts(layer)`` -> whether a user-chosen layer suits this method.
    per_image : bool
        One figure per image (True) or per layer (False).
    uses_target : bool
        The method explains a class score, so ``targets`` is part of its parameters.
    defaults : dict
        Default options, overridden by ``method_options[name]``.
    """

    compute: Callable[..., Any]
    plot: Callable[..., Any]
    default_layers: Callable[[Any], list[str]] | None
    accepts: Callable[[Any], bool] = lambda layer: True
    per_image: bool = True
    uses_target: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)


def _vizkit(name: str) -> Callable:
    import vizkit

    return getattr(vizkit, name)


def _plot(name: str) -> Callable:
    """``vizkit.plot.<name>``; the plotting package is imported on first use."""
    return getattr(importlib.import_module("vizkit.plot"), name)


def _figure(drawn):
    """The Figure behind what a ``plot_*`` function returned (Figure, Axes or array of Axes)."""
    if hasattr(drawn, "savefig"):
        return drawn
    if hasattr(drawn, "figure"):
        return drawn.figure
    return np.ravel(drawn)[0].figure


# -- layer predicates (keras is imported only when a method runs) -----------------------------
def output_rank(layer) -> int:
    from ..core.layers import output_rank as rank

    return rank(layer)


def is_conv(layer) -> bool:
    from ..core.layers import is_conv as conv

    return conv(layer)


def iter_layers(model):
    from ..core.layers import iter_layers as layers

    return layers(model)


def _spatial(layer) -> bool:
    return output_rank(layer) == 4


def _units(layer) -> bool:
    return output_rank(layer) in (2, 4)


def _conv2d(layer) -> bool:
    return is_conv(layer) and _spatial(layer)


def _spatial_conv_paths(model) -> list[str]:
    return [p for p, layer in iter_layers(model) if is_conv(layer) and _spatial(layer)]


def _last_conv(model) -> list[str]:
    from ..core.layers import last_conv_layer

    try:
        return [last_conv_layer(model)]
    except ValueError:  # no spatial layer (an MLP): nothing to draw for this model
        return []


def _first_units(ctx: Context, layer: str, count: int) -> list[int]:
    from ..core.layers import output_shape, resolve_layer

    channels = int((output_shape(resolve_layer(ctx.model, layer)[1]) or (0,))[-1])
    return list(range(min(int(count), channels)))


# -- compute adapters ---------------------------------------------------------------------------
def _filters(ctx, layer, **options):
    return _vizkit("filters")(ctx.model, layer, **options)


def _feature_maps(ctx, layer, **options):
    return _vizkit("feature_maps")(ctx.model, ctx.images, layers=[layer], **options)[layer]


def _hypercolumns(ctx, layer, **options):
    return _vizkit("hypercolumns")(ctx.model, ctx.images, ctx.layers, **options)


def _maximize(ctx, layer, *, units=8, **options):
    picked = _first_units(ctx, layer, units) if isinstance(units, int) else list(units)
    return _vizkit("maximize")(ctx.model, layer, picked, **options)


def _saliency(ctx, layer, **options):
    return _vizkit("saliency")(ctx.model, ctx.images, ctx.targets, **options)


def _gradcam(ctx, layer, **options):
    return _vizkit("gradcam")(ctx.model, ctx.images, ctx.targets, layer=layer, **options)


def _occlusion(ctx, layer, *, patch=None, stride=None, **options):
    side = min(ctx.images.shape[1:3])
    patch = patch if patch is not None else max(2, side // 7)
    stride = stride if stride is not None else max(1, patch // 2)
    return _vizkit("occlusion")(
        ctx.model, ctx.images, ctx.targets, patch=patch, stride=stride, **options
    )


def _deepdream(ctx, layer, **options):
    dream = _vizkit("deepdream")
    return np.stack([dream(ctx.model, image, [layer], **options) for image in ctx.images])


def _top_activating(ctx, layer, *, units=4, k=9, **options):
    top = _vizkit("top_activating")
    k = min(int(k), len(ctx.images))
    rows = [
        top(ctx.model, layer, u, ctx.images, k=k, **options)
        for u in _first_units(ctx, layer, units)
    ]
    return {"images": ctx.images, "rows": rows}


# -- plot adapters: (result, image, *, title) -> Figure ------------------------------------------
def _draw(name: str, *args, **kwargs):
    return _figure(_plot(name)(*args, **kwargs))


def _plot_filters(result, image, *, title):
    return _draw("plot_filters", result, title=title)


def _plot_feature_maps(result, image, *, title):
    return _draw("plot_feature_maps", result, title=title)


def _plot_heatmap(result, image, *, title):
    return _draw("plot_heatmap", result, image, title=title)


def _plot_hypercolumn(result, image, *, title):
    return _draw("plot_hypercolumn", result, image, title=title)


def _plot_maximize(result, image, *, title):
    titles = [f"unit {u}" for u in range(len(result))]
    return _draw("plot_grid", result, titles=titles, cmap="gray", title=title)


def _plot_deepdream(result, image, *, title):
    return _draw(
        "plot_grid", [image, result], titles=["input", "dream"], ncols=2, cmap="gray", title=title
    )


def _plot_top_activating(result, image, *, title):
    images, rows = result["images"], result["rows"]
    tiles, titles = [], []
    for unit, (indices, scores) in enumerate(rows):
        for i, score in zip(indices, scores, strict=True):
            tiles.append(images[int(i)])
            titles.append(f"u{unit} #{int(i)} {float(score):.3g}")
    ncols = max(len(indices) for indices, _ in rows)
    return _draw("plot_grid", np.stack(tiles), titles=titles, ncols=ncols, cmap="gray", title=title)


METHODS: dict[str, Method] = {
    "filters": Method(
        compute=_filters,
        plot=_plot_filters,
        default_layers=lambda m: [p for p, lyr in iter_layers(m) if _conv2d(lyr)],
        accepts=_conv2d,
        per_image=False,
    ),
    "feature_maps": Method(
        compute=_feature_maps,
        plot=_plot_feature_maps,
        default_layers=_spatial_conv_paths,
        accepts=_spatial,
    ),
    "hypercolumns": Method(compute=_hypercolumns, plot=_plot_hypercolumn, default_layers=None),
    "saliency": Method(
        compute=_saliency,
        plot=_plot_heatmap,
        default_layers=None,
        uses_target=True,
        defaults={"method": "vanilla"},
    ),
    "gradcam": Method(
        compute=_gradcam,
        plot=_plot_heatmap,
        default_layers=_last_conv,
        accepts=_spatial,
        uses_target=True,
    ),
    "occlusion": Method(
        compute=_occlusion, plot=_plot_heatmap, default_layers=None, uses_target=True
    ),
    "maximize": Method(
        compute=_maximize,
        plot=_plot_maximize,
        default_layers=_spatial_conv_paths,
        accepts=_units,
        per_image=False,
        defaults={"units": 8},
    ),
    "deepdream": Method(
        compute=_deepdream,
        plot=_plot_deepdream,
        default_layers=_last_conv,
        accepts=_spatial,
    ),
    "top_activating": Method(
        compute=_top_activating,
        plot=_plot_top_activating,
        default_layers=_spatial_conv_paths,
        accepts=_units,
        per_image=False,
        defaults={"units": 4, "k": 9},
    ),
}
