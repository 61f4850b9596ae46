"""Finding layers by name, path or index in any Keras model (Sequential, functional, nested)."""

from __future__ import annotations

import difflib

import keras

from .images import check_model

CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def iter_layers(
    model: keras.Model, prefix: str = "", *, deep: bool = False
) -> list[tuple[str, keras.layers.Layer]]:
    """All layers of ``model`` in order as ``(path, layer)``, nested models flattened.

    A nested model appears itself (``"backbone"``) and then its inner layers
    (``"backbone/block1_conv1"``). Input layers are skipped. ``deep=True`` also lists the
    sublayers that custom layers own (``"encoder/block_1/mha"``, e.g. the attention layers
    inside keras-hub's transformer blocks), in the order the layers created them.
    """
    if not prefix:
        check_model(model)
    out: list[tuple[str, keras.layers.Layer]] = []
    for layer in _children(model, deep):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = f"{prefix}{layer.name}"
        out.append((path, layer))
        if isinstance(layer, keras.Model) or getattr(layer, "layers", None) or deep:
            out.extend(iter_layers(layer, prefix=f"{path}/", deep=deep))
    return out


def _children(layer, deep: bool) -> list:
    if isinstance(layer, keras.Model) or getattr(layer, "layers", None):
        return list(getattr(layer, "layers", []))
    if not deep or not hasattr(layer, "_flatten_layers"):
        return []
    # Keras tracks the sublayers a layer assigns as attributes; there is no public listing.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def layer_paths(model: keras.Model) -> list[str]:
    """Paths of every layer of ``model``, as accepted by :func:`resolve_layer`."""
    return [p for p, _ in iter_layers(model)]


def resolve_layer(
    model: keras.Model, layer: str | int | keras.layers.Layer
) -> tuple[str, keras.layers.Layer]:
    """Look up ``layer`` by path (``"backbone/block3_conv2"``), plain name, index or object.

    Returns
    -------
    (path, layer)

    Raises
    ------
    ValueError
        For an unknown name or an out-of-range index; the message lists the available layers.
    TypeError
        For anything that is not a str, int or Layer, or a ``model`` that is not a Keras model.
    """
    layers = iter_layers(check_built(model))
    if isinstance(layer, keras.layers.Layer):
        for path, obj in layers:
            if obj is layer:
                return path, obj
        raise ValueError(
            f"layer {layer.name!r} is not part of model {model.name!r}; {_listing(layers)}"
        )
    if isinstance(layer, bool) or not isinstance(layer, (str, int)):
        raise TypeError(
            f"layer must be a layer name (str) or index (int), got {type(layer).__name__}: {layer!r}"
        )
    if isinstance(layer, int):
        # Indices count the flattened list (nested layers included), as the error listing shows.
        if not -len(layers) <= layer < len(layers):
            raise ValueError(
                f"layer index {layer} is out of range for {len(layers)} layers; {_listing(layers)}"
            )
        return layers[layer]
    for path, obj in layers:
        if path == layer:
            return path, obj
    matches = [(p, obj) for p, obj in layers if p.rsplit("/", 1)[-1] == layer]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(f"layer name {layer!r} is ambiguous; use one of {[p for p, _ in matches]}")
    raise ValueError(f"unknown layer {layer!r}{_did_you_mean(layer, layers)}; {_listing(layers)}")


def resolve_layers(model: keras.Model, layers) -> list[str]:
    """Paths for ``layers`` (one spec or a list of specs); ``None`` means every layer."""
    if layers is None:
        return layer_paths(check_built(model))
    if isinstance(layers, (str, int, keras.layers.Layer)):
        layers = [layers]
    if not isinstance(layers, (list, tuple)):
        raise TypeError(
            "layers must be a layer name (str), index (int), Layer or a list of them, got "
            f"{type(layers).__name__}: {layers!r:.80}"
        )
    paths = [resolve_layer(model, spec)[0] for spec in layers]
    if not paths:
        raise ValueError(
            "layers is empty; pass None for every layer or at least one layer name or index"
        )
    return list(dict.fromkeys(paths))


def check_built(model) -> keras.Model:
    """``model`` if it is a built Keras model; layers of an unbuilt one have no weights or shapes.

    Raises
    ------
    TypeError
        For anything that is not a Keras model.
    ValueError
        For a model that was never built (a Sequential without ``keras.Input``, a subclassed model
        never called).
    """
    check_model(model)
    if not getattr(model, "built", True):
        raise ValueError(
            f"model {model.name!r} is not built, so its layers have no weights or shapes yet: "
            "build it first (call it once on a batch, or start a Sequential with keras.Input)"
        )
    return model


def spatial_layer_paths(model: keras.Model) -> list[str]:
    """Paths of every layer (nested models themselves excluded) with a 4-D output."""
    return [
        p
        for p, layer in iter_layers(model)
        if not isinstance(layer, keras.Model) and output_rank(layer) == 4
    ]


def conv_layer_paths(model: keras.Model) -> list[str]:
    """Paths of every convolution layer (any rank, including separable/depthwise/transposed)."""
    return [p for p, layer in iter_layers(model) if is_conv(layer)]


def is_conv(layer: keras.layers.Layer) -> bool:
    """True for convolution-like layers with a spatial kernel."""
    name = type(layer).__name__
    return isinstance(layer, CONV_TYPES) or ("Conv" in name and hasattr(layer, "kernel_size"))


def last_conv_layer(model: keras.Model) -> str:
    """Path of the last layer whose map is larger than 1x1 (Grad-CAM's default target).

    Convolution layers are preferred; any layer with a 4-D output comes next. A 1x1 map (the
    last conv of LeNet-5) carries no "where", so it is skipped when a larger one exists.
    """
    check_built(model)
    layers = [(p, lyr) for p, lyr in iter_layers(model) if not isinstance(lyr, keras.Model)]
    spatial = [(p, lyr) for p, lyr in layers if output_rank(lyr) == 4]
    for candidates in (
        [(p, lyr) for p, lyr in spatial if is_conv(lyr) and has_area(lyr)],
        [(p, lyr) for p, lyr in spatial if has_area(lyr)],
        [(p, lyr) for p, lyr in spatial if is_conv(lyr)],
        spatial,
    ):
        if candidates:
            return candidates[-1][0]
    raise ValueError(
        f"model {model.name!r} has no layer with a 4-D (N, H, W, C) output; "
        "pass layer= explicitly or use a convolutional model"
    )


def has_area(layer: keras.layers.Layer) -> bool:
    """True unless the layer's 4-D map is known to be 1x1 (a free size counts as an area)."""
    shape = output_shape(layer)
    return shape is None or len(shape) != 4 or not (shape[1] == 1 and shape[2] == 1)


def representative_layers(model: keras.Model, paths: list[str], limit: int = 8) -> list[str]:
    """A few of ``paths`` that show the whole network: the last layer of each resolution stage.

    Layers are grouped by the spatial size of their output (a new group starts whenever the size
    changes, in model order); the last layer of each group is kept, and at most ``limit`` of those,
    spread evenly from the first stage to the last.
    """
    layers = dict(iter_layers(model))
    picked: list[str] = []
    previous = object()
    for path in paths:
        shape = output_shape(layers[path])
        size = None if shape is None or len(shape) != 4 else tuple(shape[1:3])
        if picked and size == previous:
            picked[-1] = path
        else:
            picked.append(path)
        previous = size
    if len(picked) <= limit:
        return picked
    step = (len(picked) - 1) / (limit - 1)
    return [picked[round(i * step)] for i in range(limit)]


def output_shape(layer: keras.layers.Layer) -> tuple | None:
    """Output shape of ``layer`` (batch axis included), or None when it cannot be known.

    Layers of functional models have a symbolic ``output``; layers inside subclassed models only
    know the shape they were built with, from which the output shape is computed.
    """
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        pass
    shapes = getattr(layer, "_build_shapes_dict", None) or {}
    if not getattr(layer, "built", False) or len(shapes) != 1:
        return None
    try:
        shape = layer.compute_output_shape(next(iter(shapes.values())))
    except Exception:  # layers without a static shape rule
        return None
    if not isinstance(shape, (tuple, list)) or not all(
        s is None or isinstance(s, int) for s in shape
    ):
        return None  # several outputs
    return tuple(shape)


def output_rank(layer: keras.layers.Layer) -> int:
    shape = output_shape(layer)
    return -1 if shape is None else len(shape)


# Past this many layers an error names the closest ones and the count instead of every layer
# (a MobileNetV2 nested as a backbone has 150+, which made a one-line error unreadable).
MAX_LISTED = 30


def _listing(layers: list[tuple[str, keras.layers.Layer]]) -> str:
    if len(layers) > MAX_LISTED:
        return (
            f"the model has {len(layers)} layers (vizkit.layer_paths(model) lists them; "
            "nested ones as 'outer/inner')"
        )
    names = [f"{i}: {p}" for i, (p, _) in enumerate(layers)]
    return "available layers: " + ", ".join(names)


def _did_you_mean(name: str, layers: list[tuple[str, keras.layers.Layer]], n: int = 3) -> str:
    """`` (did you mean 'a' or 'b'?)`` for the paths closest to ``name``, or ``""``."""
    paths = [p for p, _ in layers]
    close = difflib.get_close_matches(name, paths, n=n, cutoff=0.6)
    # A mistyped inner name ("block_3_projet") is compared with the inner names too.
    leaf = name.rsplit("/", 1)[-1]
    by_leaf: dict[str, list[str]] = {}
    for p in paths:
        by_leaf.setdefault(p.rsplit("/", 1)[-1], []).append(p)
    for match in difflib.get_close_matches(leaf, list(by_leaf), n=n, cutoff=0.6):
        close.extend(by_leaf[match])
    close = list(dict.fromkeys(close))[:n]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(p) for p in close) + "?)"
