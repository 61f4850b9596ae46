"""The dataset images that most activate one unit, found by streaming over the data once.

Zeiler & Fergus (2014) and seed 004 ("the images that most activate a filter"): run the whole
dataset through the network and keep the top-k images per unit; the patch of the image inside the
unit's receptive field around the strongest location shows what the unit responds to. Token
layers of vision transformers are read as their patch grid; a patch token's field is its patch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ..core.checks import positive_int
from ..core.graph import Tap, compiled, forward, image_spec
from ..core.images import model_input_shape
from ..core.layers import iter_layers, output_shape, resolve_layer
from ..core.tokens import TokenGrid, check_grid_args, layer_grid, patch_box
from ..engines import run
from ..engines.jobs import TopKJob

REDUCTIONS = ("max", "mean")


@dataclass(frozen=True)
class ReceptiveField:
    """Where a unit of a layer looks in the input, per axis ``(rows, cols)``.

    Unit ``(r, c)`` of the layer sees the input pixels centred on
    ``start + (r, c) * jump`` spanning ``size`` pixels (Araujo et al., 2019, "Computing Receptive
    Fields of Convolutional Neural Networks").
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` (bottom/right exclusive) of unit ``(row, col)``, unclipped."""
        top, left = (
            int(np.floor(s + i * j - (n - 1) / 2 + 0.5))
            for s, i, j, n in zip(self.start, (row, col), self.jump, self.size, strict=True)
        )
        return top, left, top + self.size[0], left + self.size[1]


@dataclass(frozen=True)
class TopCrops:
    """Receptive-field crops of the top-k images around their strongest location.

    Attributes
    ----------
    images : ndarray, float32, shape (k, min(size_h, H), min(size_w, W), C)
        Input patches; parts of the field outside the image are zero. A field larger than the
        image is cut to the image size.
    boxes : ndarray, int, shape (k, 4)
        ``(top, left, bottom, right)`` of each patch in its image, clipped to the image.
    locations : ndarray, int, shape (k, 2)
        ``(row, col)`` of the strongest activation in the layer's map.
    field : ReceptiveField
    """

    images: np.ndarray
    boxes: np.ndarray
    locations: np.ndarray
    field: ReceptiveField


def top_activating(
    model: keras.Model,
    layer,
    units,
    data,
    k: int = 9,
    *,
    batch_size: int | None = None,
    crops: bool = False,
    preprocess: Callable | None = None,
    reduce: str = "max",
    token_grid: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
    engine="local",
    address: str | None = None,
    workers: int | None = None,
):
    """Indices of the ``k`` images that activate each unit of ``layer`` most, best first.

    Parameters
    ----------
    model : keras.Model
    layer : str, int, Layer or a list of them
        A layer with a 4-D ``(N, h, w, c)`` or 2-D ``(N, c)`` output, or a transformer token
        layer ``(N, T, c)`` (read as its ``(N, h, w, c)`` patch grid). A list ranks the units
        of every layer in one pass over the data and returns ``{path: result}``.
    units : int, sequence of int or None
        A channel (or dense unit) index, a list of them, or None for every channel (of each
        layer).
    data : array_like (N, H, W[, C]), folder, file list, tf.data / ray.data Dataset or iterable
        Anything :func:`vizkit.core.sources.open_source` reads: an array of any size
        (processed ``batch_size`` images at a time), a folder or list of image files (resized
        to the model's input), a dataset, or an iterable of batches ``x`` or ``(x, y)``. uint8
        is scaled to [0, 1]. Indices count images across the whole stream.
    k : int
        Number of images to keep per unit (fewer if the data has fewer).
    batch_size : int, optional
        Images per forward pass and per chunk of work (default 32).
    crops : bool
        Also return :class:`TopCrops`, the receptive-field patches around each image's argmax.
    preprocess : callable, optional
        Applied to the batch inside the graph before the model.
    reduce : {"max", "mean"}
        Score of an image: the max (default) or mean of the unit's activation map.
    token_grid : (h, w), optional
        Patch grid of a token layer when it cannot be inferred from the token count.
    prefix_tokens : int, optional
        Class/distillation/register tokens in front of the patch tokens (not ranked).
    engine : {"local", "ray"} or an engine object
        Where the pass runs: this process, or Ray Data workers
        (:class:`vizkit.engines.RayEngine`); both return the same answer.
    address : str, optional
        Ray cluster address for ``engine="ray"`` (a local Ray when None).
    workers : int, optional
        Number of Ray workers for ``engine="ray"``.

    Returns
    -------
    indices : ndarray, int64, shape (k,) for one unit, (U, k) for a list or None
        Image indices by decreasing score (ties: lower index first); row ``u`` belongs to
        ``units[u]`` (to channel ``u`` when ``units`` is None).
    scores : ndarray, float32, same shape
    crops : TopCrops, or a list of them (one per unit)
        Only when ``crops=True`` (then three values are returned).
    dict
        ``{layer path: (indices, scores[, crops])}`` when ``layer`` is a list.
    """
    k = positive_int(k, "k")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    many = isinstance(layer, (list, tuple))
    if many and not layer:
        raise ValueError("layer is an empty list; pass a layer or a list of layers")
    token_grid, prefix_tokens = check_grid_args(token_grid, prefix_tokens)
    paths, chosen, fields, grids = [], [], [], []
    for one_layer in layer if many else [layer]:
        path, obj = resolve_layer(model, one_layer)
        if path in paths:
            continue
        rank, channels = _output_rank(path, obj)
        grid = layer_grid(obj, token_grid=token_grid, prefix_tokens=prefix_tokens, path=path)
        if crops and rank == 2:
            raise ValueError(
                f"crops=True needs a layer with a spatial output; {path!r} has rank {rank}"
            )
        paths.append(path)
        chosen.append(_check_units(units, channels, path))
        grids.append(grid)
        field = None
        if crops:
            field = _patch_field(model, grid) if grid is not None else receptive_field(model, path)
        fields.append(field)
    job = TopKJob(
        tuple(paths), tuple(chosen), int(k), reduce, preprocess, tuple(fields), tuple(grids)
    )
    best, _ = run(
        job, model, data, batch_size=batch_size, engine=engine, address=address, workers=workers
    )
    one = not isinstance(units, (list, tuple, np.ndarray)) and units is not None
    results = {p: _result(best[p], f, one) for p, f in zip(paths, fields, strict=True)}
    return results if many else results[paths[0]]


def _result(best, field: ReceptiveField | None, one: bool) -> tuple:
    """``(indices, scores[, crops])`` of one layer; one unit's row when ``one``."""
    indices, scores = (best.indices[0], best.scores[0]) if one else (best.indices, best.scores)
    if field is None:
        return indices, scores
    found = [_top_crops(payload, field) for payload in best.extras]
    return indices, scores, found[0] if one else found


def unit_scores(
    model: keras.Model,
    layers: tuple[str, ...],
    units: tuple[tuple[int, ...], ...],
    images: np.ndarray,
    *,
    reduce: str = "max",
    preprocess: Callable | None = None,
    grids: tuple | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Score of every image for every unit of every layer, from one forward pass.

    Parameters
    ----------
    layers : tuple of str
        Resolved layer paths.
    units : tuple of tuples of int
        The units of each layer.
    images : ndarray, float32, (n, H, W, C)
        Fitted to the model.
    grids : tuple of TokenGrid or None, optional
        Per layer, how a transformer token layer maps onto its patch grid (None: not a token
        layer).

    Returns
    -------
    list of (scores, locations), one per layer
        ``scores`` float32 ``(n, U)``: max (or mean) of each unit's map, the unit's value for
        a 2-D layer; ``locations`` int32 ``(n, U, 2)``: ``(row, col)`` of each unit's strongest
        activation (zeros for a 2-D layer).
    """
    grids = tuple(grids) if grids else (None,) * len(layers)
    fn = _score_fn(model, tuple(layers), preprocess, reduce, grids, images)
    chosen = tuple(tf.constant(np.asarray(u, np.int32).reshape(-1)) for u in units)
    return [(s.numpy(), loc.numpy()) for s, loc in fn(tf.convert_to_tensor(images), chosen)]


def receptive_field(model: keras.Model, layer) -> ReceptiveField:
    """Receptive field of ``layer``'s units, from the kernel sizes, strides, dilations and padding
    of every layer between the input and ``layer`` (the largest over parallel branches)."""
    path, _ = resolve_layer(model, layer)
    names = path.split("/")
    geo = _IDENTITY
    layers = dict(iter_layers(model))
    for depth in range(len(names)):
        obj = layers["/".join(names[: depth + 1])]
        memo: dict[int, _Geo] = {}
        if depth < len(names) - 1:  # a nested model on the way: go to its input, then inside
            geo = geo.then(_inputs_geo(obj, memo))
        else:
            geo = geo.then(_layer_geo(obj, memo))
    return ReceptiveField(
        tuple(int(s) for s in geo.size),
        tuple(int(j) for j in geo.jump),
        tuple(float(s) for s in geo.start),
    )


def map_scores(act: tf.Tensor, units: tf.Tensor, reduce: str = "max") -> tuple:
    """In-graph scores of the images of a batch for ``units`` of one layer's output ``act``.

    ``act`` is ``(n, h, w, c)`` or ``(n, c)``; returns ``scores`` ``(n, U)`` (max or mean of each
    unit's map, the unit's value for a 2-D layer) and ``locations`` int32 ``(n, U, 2)``, the
    ``(row, col)`` of each unit's strongest activation (zeros for a 2-D layer). Ties in the map
    go to the first position in row-major order.
    """
    act = tf.gather(act, units, axis=-1)
    if act.shape.rank == 2:
        return act, tf.zeros((tf.shape(act)[0], tf.shape(units)[0], 2), tf.int32)
    flat = tf.reshape(act, (tf.shape(act)[0], -1, tf.shape(units)[0]))  # (n, h*w, U)
    score = tf.reduce_max(flat, 1) if reduce == "max" else tf.reduce_mean(flat, 1)
    arg = tf.cast(tf.argmax(flat, axis=1), tf.int32)
    width = tf.shape(act)[2]
    return score, tf.stack([arg // width, arg % width], axis=-1)


# --------------------------------------------------------------------------------------------
def _score_fn(model, paths: tuple[str, ...], preprocess, reduce: str, grids, example: np.ndarray):
    tap = Tap(capture=paths, preprocess=preprocess)

    def make():
        def fn(x, units):
            captured = forward(model, x, tap)[1]
            acts = [
                captured[p] if g is None else g.to_grid(captured[p])
                for p, g in zip(paths, grids, strict=True)
            ]
            return tuple(map_scores(a, u, reduce) for a, u in zip(acts, units, strict=True))

        unit_specs = tuple(tf.TensorSpec((None,), tf.int32) for _ in paths)
        return fn, (image_spec(example), unit_specs)

    return compiled(model, ("top_activating", tap, reduce, grids), make)


def _patch_field(model, grid: TokenGrid) -> ReceptiveField:
    """A patch token's field: the patch of the image its grid cell covers."""
    h, w, _ = model_input_shape(model)
    if h is None or w is None:
        raise ValueError(
            f"model {model.name!r} takes images of any size, so the patch of a token is unknown; "
            "crops=True on token layers needs a model with a fixed input size"
        )
    size, jump, start = patch_box((h, w), grid)
    return ReceptiveField(tuple(size), tuple(jump), tuple(float(v) for v in start))


def _output_rank(path: str, layer) -> tuple[int, int]:
    shape = output_shape(layer)
    if shape is None:
        raise ValueError(f"layer {path!r} has no single known output shape")
    if len(shape) not in (2, 3, 4):
        raise ValueError(
            f"layer {path!r} has output shape {shape}; top_activating needs (N, h, w, c), "
            "(N, T, c) token or (N, c) outputs"
        )
    return len(shape), int(shape[-1])


def _check_units(units, channels: int, path: str) -> tuple[int, ...]:
    """``units`` (an int, a sequence of ints or None for all) as a tuple of channel indices."""
    if units is None:
        return tuple(range(channels))
    many = isinstance(units, (list, tuple, np.ndarray))
    values = list(np.asarray(units).reshape(-1)) if isinstance(units, np.ndarray) else units
    for unit in values if many else [units]:
        if isinstance(unit, (bool, np.bool_)) or not isinstance(unit, (int, np.integer)):
            raise TypeError(
                f"unit must be an int channel index (units: an int, a list of them or None), "
                f"got {type(unit).__name__}: {unit!r}"
            )
        if not 0 <= unit < channels:
            raise ValueError(f"unit {unit} is out of range: layer {path!r} has {channels} channels")
    if many and not len(values):
        raise ValueError("units is an empty list; pass unit indices, or None for every channel")
    return tuple(int(u) for u in values) if many else (int(units),)


def _top_crops(payload: np.ndarray, field: ReceptiveField) -> TopCrops:
    patches, boxes, locations = zip(*payload, strict=True)
    return TopCrops(np.stack(patches), np.array(boxes), np.array(locations), field)


def receptive_crop(image: np.ndarray, loc: np.ndarray, field: ReceptiveField):
    """``(patch, box, location)``: the receptive field of unit ``loc = (row, col)`` cut out of
    ``image`` (see :class:`TopCrops`)."""
    top, left, bottom, right = field.box(int(loc[0]), int(loc[1]))
    h, w = image.shape[:2]
    # Fields of deep layers outgrow the image: patches are never larger than the image itself.
    ph, pw = min(field.size[0], h), min(field.size[1], w)
    patch = np.zeros((ph, pw, image.shape[-1]), np.float32)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if t < b and lft < r:
        # Keep the part cut off at the border empty (zeros) on the side where it was cut off.
        dt, dl = min(t - top, ph - (b - t)), min(lft - left, pw - (r - lft))
        patch[dt : dt + b - t, dl : dl + r - lft] = image[t:b, lft:r]
    return patch, (t, lft, b, r), (int(loc[0]), int(loc[1]))


# Receptive-field arithmetic ------------------------------------------------------------------
@dataclass(frozen=True)
class _Geo:
    size: np.ndarray
    jump: np.ndarray
    start: np.ndarray

    def then(self, inner: _Geo) -> _Geo:
        """The field of ``inner`` (relative to this tensor) in the coordinates of our input."""
        return _Geo(
            self.size + (inner.size - 1) * self.jump,
            self.jump * inner.jump,
            self.start + inner.start * self.jump,
        )


_IDENTITY = _Geo(np.ones(2), np.ones(2), np.zeros(2))


def _first(tensor):
    return tensor[0] if isinstance(tensor, (list, tuple)) else tensor


def _inputs_geo(layer, memo: dict) -> _Geo:
    """Field of ``layer``'s input (the widest of several) in its graph's input coordinates."""
    # A nested model's ``.input`` is its own Input; the tensor it is called on in the enclosing
    # graph is on its first inbound node (the same node ``layer.input`` reads for plain layers).
    nodes = getattr(layer, "_inbound_nodes", None)
    if not nodes:
        raise ValueError(
            f"layer {layer.name!r} has never been called in a graph, so its receptive field is "
            "unknown; build the model from keras.Input (or start a Sequential with one)"
        )
    inputs = list(nodes[0].input_tensors)
    return max((_tensor_geo(t, memo) for t in inputs), key=lambda g: float(g.size.sum()))


def _tensor_geo(tensor, memo: dict) -> _Geo:
    op = tensor._keras_history.operation
    if isinstance(op, keras.layers.InputLayer):
        return _IDENTITY
    return _layer_geo(op, memo)


def _layer_geo(layer, memo: dict) -> _Geo:
    """Field of ``layer``'s output relative to the input of the graph it lives in."""
    if id(layer) in memo:
        return memo[id(layer)]
    before = _inputs_geo(layer, memo)
    if isinstance(layer, keras.Model):
        inner = _tensor_geo(_first(layer.outputs), {})
    else:
        inner = _local_geo(layer)
    memo[id(layer)] = before.then(inner)
    return memo[id(layer)]


def _pair(value) -> np.ndarray:
    v = np.atleast_1d(np.asarray(value, dtype=float))
    return np.repeat(v, 2) if v.size == 1 else v[:2]


def _local_geo(layer) -> _Geo:
    """Field of one layer's output in its own input's coordinates."""
    if isinstance(layer, keras.layers.ZeroPadding2D):
        pad = np.array([layer.padding[0][0], layer.padding[1][0]], float)
        return _Geo(np.ones(2), np.ones(2), -pad)
    if isinstance(layer, keras.layers.Cropping2D):
        crop = np.array([layer.cropping[0][0], layer.cropping[1][0]], float)
        return _Geo(np.ones(2), np.ones(2), crop)
    conv_kernel = getattr(layer, "kernel_size", None)
    kernel = conv_kernel or getattr(layer, "pool_size", None)
    if kernel is None:
        return _IDENTITY
    k = _pair(kernel)
    # Pooling strides default to the pool size, convolution strides (custom layers) to 1.
    s = _pair(getattr(layer, "strides", None) or (1 if conv_kernel else k))
    d = _pair(getattr(layer, "dilation_rate", 1))
    span = d * (k - 1) + 1
    pad = np.zeros(2)
    if _padding(layer, s) == "same":
        size_in = np.array(layer.input.shape[1:3], float)
        size_out = np.ceil(size_in / s)
        pad = np.floor(np.maximum((size_out - 1) * s + span - size_in, 0) / 2)
    return _Geo(span, s, (span - 1) / 2 - pad)


def _padding(layer, strides: np.ndarray) -> str:
    padding = getattr(layer, "padding", None)
    if padding in ("same", "valid"):
        return padding
    # A custom layer without a padding attribute: "same" if the shapes say so.
    try:
        size_in = np.array(layer.input.shape[1:3], float)
        size_out = np.array(layer.output.shape[1:3], float)
    except (AttributeError, ValueError, TypeError):
        return "valid"
    return "same" if np.array_equal(size_out, np.ceil(size_in / strides)) else "valid"
