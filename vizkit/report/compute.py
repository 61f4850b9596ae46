"""How the export and the command line call each method: layer choice and compute adapters.

Each :class:`vizkit.registry.MethodSpec` names its adapter here (``compute(ctx, layer,
**options)``); an adapter turns the export's uniform call (a model, a batch of images, targets,
one layer) into the method's own signature and returns something indexable by image for
per-image methods. Which layers a method applies to is the spec's ``layers`` kind, resolved by
:func:`suits` and :func:`default_layers`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from ..core.batches import iter_batches
from ..core.layers import (
    has_area,
    is_conv,
    iter_layers,
    output_rank,
    output_shape,
    representative_layers,
    resolve_layer,
)
from ..core.tokens import (
    attention_layer_paths,
    default_map_layer,
    grid_rank,
    grid_shape,
    is_attention,
)
from ..methods.attention import attention_maps as attention_maps_method
from ..methods.attention import attention_rollout as attention_rollout_method
from ..methods.attention import parse_query
from ..methods.deepdream import deepdream as deepdream_method
from ..methods.feature_maps import feature_maps as feature_maps_method
from ..methods.filters import channel_mixing, is_pointwise
from ..methods.filters import filters as filters_method
from ..methods.gradcam import gradcam as gradcam_method
from ..methods.hypercolumns import hypercolumns as hypercolumns_method
from ..methods.maximize import maximize as maximize_method
from ..methods.occlusion import occlusion as occlusion_method
from ..methods.saliency import saliency as saliency_method
from ..methods.top_activating import top_activating as top_activating_method
from ..registry import MethodSpec


@dataclass(frozen=True)
class Context:
    """What a compute adapter may use besides its layer and options."""

    model: keras.Model
    images: np.ndarray  # (N, H, W, C) float32, already fitted to the model
    targets: list[int] | None  # one class per image, or None for the predicted class
    layers: list[str]  # the layers the user asked for (or the spatial conv layers)
    preprocess: Callable | None = None  # applied inside the graph before the model
    # The whole dataset, for methods that rank every image (top_activating): anything
    # vizkit.core.sources.open_source reads; None means ``images``.
    data: Any = None
    # The dataset engine of methods that rank a dataset (None: their default, "local").
    engine: Any = None

    def pre(self) -> dict[str, Any]:
        """``{"preprocess": fn}`` when there is one (methods without it get no keyword)."""
        return {} if self.preprocess is None else {"preprocess": self.preprocess}


# -- which layers -------------------------------------------------------------------------------
def suits(spec: MethodSpec, layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` suits ``spec`` (its ``layers`` kind); whole-model methods take none."""
    if isinstance(layer, keras.Model):
        return False
    rank = grid_rank(layer)  # transformer token layers with a patch grid count as 4-D
    kind = spec.layers
    if kind == "conv2d":
        return is_conv(layer) and rank == 4
    if kind == "spatial":
        return rank == 4
    if kind == "gradcam":
        return rank == 4 and has_area(layer)
    if kind == "units":
        return rank in (2, 4)
    if kind == "attention":
        return is_attention(layer)
    return False


def why_not(spec: MethodSpec, path: str, layer: keras.layers.Layer) -> str:
    """One sentence saying why ``layer`` does not suit ``spec``."""
    shape = output_shape(layer)
    needs = {
        "conv2d": "a convolution layer with a 4-D (N, H, W, C) output",
        "spatial": "a layer with a 4-D (N, H, W, C) output",
        "gradcam": "a layer with a 4-D (N, H, W, C) output larger than 1x1",
        "units": "a layer with a 4-D (N, H, W, C) or 2-D (N, units) output",
        "attention": "a MultiHeadAttention layer",
    }.get(spec.layers or "", "no layer at all (it explains the whole model)")
    return f"layer {path!r} (output shape {shape}) does not suit {spec.name}: it needs {needs}"


def suitable_layers(spec: MethodSpec, model: keras.Model) -> list[str]:
    """Every layer path of ``model`` that suits ``spec``, in model order."""
    return [p for p, layer in iter_layers(model) if suits(spec, layer)]


def default_layers(spec: MethodSpec, model: keras.Model) -> list[str]:
    """The layers the export draws for ``spec`` when the user names none.

    ``"last"``: the last suitable layer (for Grad-CAM the last map larger than 1x1);
    ``"representative"``: the last suitable layer of each resolution stage, at most eight
    (:func:`vizkit.core.layers.representative_layers`); ``"all"``: every suitable layer.
    """
    if spec.layers is None:
        return []
    if spec.default_layers == "last":
        try:
            path = default_map_layer(model)
        except ValueError:  # no spatial layer (an MLP): nothing to draw for this model
            return []
        layer = resolve_layer(model, path)[1]
        return [path] if suits(spec, layer) else suitable_layers(spec, model)[-1:]
    paths = suitable_layers(spec, model)
    if spec.layers == "units":  # dense layers are reached by naming them
        paths = [p for p in paths if grid_rank(resolve_layer(model, p)[1]) == 4]
    if spec.default_layers == "representative":
        return representative_layers(model, paths)
    return paths


def spatial_conv_paths(model: keras.Model) -> list[str]:
    """Convolution layers with a 4-D output (the layers hypercolumns stack by default)."""
    return [p for p, layer in iter_layers(model) if is_conv(layer) and output_rank(layer) == 4]


def pick_units(model: keras.Model, layer: str, units=None, first: int | None = None) -> list[int]:
    """Unit indices: ``units`` as given, else the first ``first`` channels of ``layer``."""
    if units is not None:
        return [int(u) for u in np.atleast_1d(units)]
    channels = int((grid_shape(resolve_layer(model, layer)[1]) or (0,))[-1])
    return list(range(min(int(first or 8), channels)))


# -- compute adapters: (ctx, layer, **options) -> result ------------------------------------------
def filters(ctx: Context, layer: str, **options):
    if is_pointwise(ctx.model, layer):  # a 1x1 kernel: its channel-mixing matrix, not flat tiles
        return channel_mixing(ctx.model, layer)
    return filters_method(ctx.model, layer, **options)


def feature_maps(ctx: Context, layer: str, **options):
    return feature_maps_method(ctx.model, ctx.images, layers=[layer], **ctx.pre(), **options)[layer]


def feature_maps_layers(ctx: Context, layers: Sequence[str], **options) -> dict[str, np.ndarray]:
    """Feature maps of several layers from one forward pass: ``{layer: (N, h, w, c)}``."""
    return feature_maps_method(ctx.model, ctx.images, layers=list(layers), **ctx.pre(), **options)


# Adapters that compute several layers in one call (one compiled graph), by method name.
ONE_PASS = {"feature_maps": feature_maps_layers}


def hypercolumns(ctx: Context, layer: str | None, **options):
    return hypercolumns_method(ctx.model, ctx.images, ctx.layers, **ctx.pre(), **options)


def saliency(ctx: Context, layer: str | None, **options):
    return saliency_method(ctx.model, ctx.images, ctx.targets, **ctx.pre(), **options)


def gradcam(ctx: Context, layer: str, **options):
    return gradcam_method(ctx.model, ctx.images, ctx.targets, layer=layer, **ctx.pre(), **options)


def occlusion(ctx: Context, layer: str | None, *, patch=None, stride=None, **options):
    side = min(ctx.images.shape[1:3])
    patch = patch if patch is not None else max(2, side // 7)
    stride = stride if stride is not None else max(1, patch // 2)
    return occlusion_method(
        ctx.model, ctx.images, ctx.targets, patch=patch, stride=stride, **ctx.pre(), **options
    )


def maximize(ctx: Context, layer: str, *, units=None, first=None, **options):
    chosen = pick_units(ctx.model, layer, units, first)
    images = maximize_method(ctx.model, layer, chosen, **ctx.pre(), **options)
    return {"images": images, "units": chosen}


def deepdream(ctx: Context, layer: str, **options):
    return np.stack(
        [
            deepdream_method(ctx.model, image, [layer], **ctx.pre(), **options)
            for image in ctx.images
        ]
    )


def top_activating(ctx: Context, layer: str, *, units=None, first=None, k=9, **options):
    """Top-``k`` images of each unit over ``ctx.data`` (or ``ctx.images``); ``"images"`` maps
    each index that made a top list to its image (one more pass over a streamed dataset)."""
    data = ctx.images if ctx.data is None else ctx.data
    if isinstance(data, np.ndarray):
        k = min(int(k), len(data))
    chosen = pick_units(ctx.model, layer, units, first)
    # Every unit in one pass over the data: (U, k) indices and scores.
    if ctx.engine is not None:
        options.setdefault("engine", ctx.engine)
    indices, scores = top_activating_method(
        ctx.model, layer, chosen, data, k=k, **ctx.pre(), **options
    )
    rows = list(zip(indices, scores, strict=True))
    wanted = {int(i) for indices, _ in rows for i in indices}
    return {"images": pick_images(ctx.model, data, wanted), "rows": rows, "units": chosen}


def pick_images(model: keras.Model, data, indices: set[int]) -> dict[int, np.ndarray]:
    """``{index: image}`` (fitted to ``model``) for the stream positions in ``indices``."""
    if isinstance(data, np.ndarray) and data.ndim == 4 and data.dtype == np.float32:
        return {i: data[i] for i in sorted(indices)}
    found: dict[int, np.ndarray] = {}
    offset = 0
    for x in iter_batches(data, model, None):
        for i in sorted(j for j in indices if offset <= j < offset + len(x)):
            found[i] = x[i - offset].copy()
        offset += len(x)
        if len(found) == len(indices):
            break
    return found


def attention_maps(ctx: Context, layer: str, *, query=None, heads=None, **options):
    maps = attention_maps_method(
        ctx.model,
        ctx.images,
        layer,
        query=parse_query(query),
        heads=heads,
        upsample=True,
        **ctx.pre(),
        **options,
    )
    return maps.mean(axis=1)  # one heat map per image: the heads averaged


def attention_rollout(ctx: Context, layer: str, *, query=None, **options):
    paths = attention_layer_paths(ctx.model)
    upto = paths[: paths.index(layer) + 1]  # the rollout through the layers up to this one
    return attention_rollout_method(
        ctx.model, ctx.images, query=parse_query(query), layers=upto, **ctx.pre(), **options
    )


def call(spec: MethodSpec, ctx: Context, layer: str | None, options: dict[str, Any]):
    """Run ``spec``'s adapter."""
    return spec.load_compute()(ctx, layer, **options)


__all__: Sequence[str] = [
    "ONE_PASS",
    "Context",
    "call",
    "default_layers",
    "pick_images",
    "pick_units",
    "spatial_conv_paths",
    "suitable_layers",
    "suits",
    "why_not",
]
