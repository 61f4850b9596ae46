"""Attention of vision transformers: per-head attention maps and attention rollout.

Both read the attention weights of Keras ``MultiHeadAttention`` layers during the ordinary
forward pass (:class:`vizkit.core.graph.Tap` with ``attention=``: the layer's own
``_compute_attention`` is asked for its weights while the graph is traced), so the model is never
rebuilt. Tokens are mapped to the patch grid as in :mod:`vizkit.core.tokens`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ..core.checks import choice, flag
from ..core.graph import Tap, attention_key, compiled, forward, image_spec, map_batches
from ..core.images import to_batch
from ..core.tokens import (
    TokenGrid,
    attention_layer_paths,
    check_grid_args,
    infer_grid,
    is_attention,
    resolve_attention_layer,
)
from ..registry import HEAD_FUSIONS

QUERIES = ("cls", "mean")


def attention_maps(
    model: keras.Model,
    images,
    layer=None,
    *,
    query: str | int | tuple[int, int] | None = None,
    heads: int | Sequence[int] | None = None,
    upsample: bool = False,
    token_grid: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Per-head attention of one query token over the image's patches.

    Parameters
    ----------
    model : keras.Model
        A vision transformer built from Keras ``MultiHeadAttention`` layers.
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1].
    layer : str, int, Layer or None
        A ``MultiHeadAttention`` layer (self-attention); None means the last one.
    query : "cls", "mean", int, (row, col) or None
        Whose attention to show: the class token (``"cls"``, token 0), the mean over every
        patch token's row (``"mean"``), a token index in the whole sequence, or the patch at
        ``(row, col)`` of the grid. None means ``"cls"`` when the model has prefix tokens and
        ``"mean"`` otherwise.
    heads : int, list of int or None
        Heads to return (default all, in order).
    upsample : bool
        Resize the maps bilinearly to the image size ``(H, W)`` instead of the patch grid.
    token_grid : (h, w), optional
        Patch grid when it cannot be inferred from the token count.
    prefix_tokens : int, optional
        Class/distillation/register tokens in front of the patch tokens.
    preprocess : callable, optional
        Applied to the batch inside the graph before the model.
    batch_size : int, optional
        Images per forward pass (default 32).

    Returns
    -------
    ndarray, float32, ``(N, heads, h, w)`` (``(N, heads, H, W)`` with ``upsample``)
        The softmax weights the query gives each patch token (prefix tokens left out, so a
        map sums to at most 1).

    References
    ----------
    Vaswani et al. (2017), "Attention Is All You Need"; Dosovitskiy et al. (2021), "An Image is
    Worth 16x16 Words", figure 6; Caron et al. (2021), "Emerging Properties in Self-Supervised
    Vision Transformers" (per-head class-token attention maps).
    """
    x = to_batch(images, model)
    grid_args = check_grid_args(token_grid, prefix_tokens)
    path = _attention_layer(model, layer)
    tap = Tap(preprocess=preprocess, attention=(path,))

    def make():
        def fn(batch):
            weights = forward(model, batch, tap)[1][attention_key(path)]
            grid = _grid(weights, grid_args, path)
            rows = _query_rows(weights, _query(query, grid, weights.shape[2], path), grid)
            return grid.to_grid(tf.transpose(rows, (0, 2, 1)))  # (N, h, w, heads)

        return fn, (image_spec(x),)

    fn = compiled(model, ("attention_maps", tap, grid_args, _freeze(query)), make)
    maps = np.asarray(map_batches(fn, [x], batch_size), np.float32)
    maps = maps[..., _heads(heads, maps.shape[-1], path)]
    if upsample:
        maps = tf.image.resize(maps, x.shape[1:3], method="bilinear").numpy()
    return np.ascontiguousarray(np.transpose(maps, (0, 3, 1, 2)), dtype=np.float32)


def attention_rollout(
    model: keras.Model,
    images,
    *,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    residual: bool = True,
    query: str | int | tuple[int, int] | None = None,
    layers=None,
    token_grid: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Attention rollout: how much each patch flows into the query token through all layers.

    Abnar & Zuidema (2020), "Quantifying Attention Flow in Transformers": each layer's
    attention (heads fused by ``head_fusion``) is mixed with the identity for the residual
    connection, ``A' = (A + I) / 2``, rows renormalised, and the layers multiplied in order,
    ``R = A'_L ... A'_1``. The query's row of ``R`` over the patch tokens is the map.
    ``discard_ratio`` drops the weakest attention weights of each layer first (Gildenblat's
    variant, which sharpens the map).

    Parameters
    ----------
    model : keras.Model
        A vision transformer built from Keras ``MultiHeadAttention`` self-attention layers.
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1].
    head_fusion : {"mean", "max", "min"}
        How the heads of a layer are combined.
    discard_ratio : float in [0, 1)
        Fraction of each layer's smallest fused weights set to zero (per image).
    residual : bool
        Account for the residual connections (``(A + I) / 2``); False multiplies raw attention.
    query : "cls", "mean", int, (row, col) or None
        As in :func:`attention_maps` (default: the class token if there is one, else the mean
        over the patch tokens).
    layers : list of layer names, optional
        The attention layers to roll out, in order; default every ``MultiHeadAttention`` layer.
    token_grid, prefix_tokens
        As in :func:`attention_maps`.
    preprocess : callable, optional
        Applied to the batch inside the graph before the model.
    batch_size : int, optional
        Images per forward pass (default 32).

    Returns
    -------
    ndarray, float32, ``(N, H, W)``
        The rollout weight of each patch (non-negative; the query's full row sums to 1 over all
        tokens), bilinearly upsampled from the patch grid to the image size.
    """
    x = to_batch(images, model)
    choice(head_fusion, "head_fusion", HEAD_FUSIONS)
    if (
        isinstance(discard_ratio, bool)
        or not isinstance(discard_ratio, (int, float, np.number))
        or not 0.0 <= float(discard_ratio) < 1.0
    ):
        raise ValueError(f"discard_ratio must be a number in [0, 1), got {discard_ratio!r}")
    flag(residual, "residual")
    grid_args = check_grid_args(token_grid, prefix_tokens)
    paths = _rollout_layers(model, layers)
    tap = Tap(preprocess=preprocess, attention=paths)
    settings = (head_fusion, float(discard_ratio), bool(residual), grid_args, _freeze(query))

    def make():
        def fn(batch):
            captured = forward(model, batch, tap)[1]
            rollout, grid = None, None
            for path in paths:
                weights = captured[attention_key(path)]
                if weights.shape[2] != weights.shape[3] or (
                    rollout is not None and weights.shape[2] != rollout.shape[1]
                ):
                    raise ValueError(
                        f"attention rollout needs self-attention over the same tokens in every "
                        f"layer; layer {path!r} has weights of shape {tuple(weights.shape)}"
                    )
                grid = _grid(weights, grid_args, path)
                fused = _discard(_fuse(weights, head_fusion), float(discard_ratio))
                if residual:
                    fused = 0.5 * fused + 0.5 * tf.eye(fused.shape[1], dtype=fused.dtype)
                fused = tf.math.divide_no_nan(fused, tf.reduce_sum(fused, -1, keepdims=True))
                rollout = fused if rollout is None else tf.matmul(fused, rollout)
            rows = _query_rows(
                rollout[:, None], _query(query, grid, rollout.shape[1], paths[-1]), grid
            )
            return grid.to_grid(tf.transpose(rows, (0, 2, 1)))[..., 0]  # (N, h, w)

        return fn, (image_spec(x),)

    fn = compiled(model, ("attention_rollout", tap, settings), make)
    maps = np.asarray(map_batches(fn, [x], batch_size), np.float32)
    up = tf.image.resize(maps[..., None], x.shape[1:3], method="bilinear").numpy()[..., 0]
    return up.astype(np.float32)


# --------------------------------------------------------------------------------------------
def parse_query(text: str | None):
    """A query from the command line: ``"cls"``, ``"mean"``, ``"7"`` (a token index) or
    ``"2,3"`` (a patch's ``(row, col)``); None stays None."""
    if text is None or not isinstance(text, str):
        return text
    value = text.strip().lower()
    if value in QUERIES:
        return value
    try:
        parts = [int(part) for part in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return (parts[0], parts[1])
    raise ValueError(f"query must be 'cls', 'mean', a token index or 'row,col', got {text!r}")


def _attention_layer(model: keras.Model, layer) -> str:
    if layer is None:
        paths = attention_layer_paths(model)
        if not paths:
            raise ValueError(
                f"model {model.name!r} has no MultiHeadAttention layer: attention maps need a "
                "transformer built from keras.layers.MultiHeadAttention"
            )
        return paths[-1]
    path, obj = resolve_attention_layer(model, layer)
    if not is_attention(obj):
        raise ValueError(
            f"layer {path!r} ({type(obj).__name__}) is not a MultiHeadAttention layer; pass "
            f"layer= naming one (this model has {attention_layer_paths(model) or 'none'})"
        )
    return path


def _rollout_layers(model: keras.Model, layers) -> tuple[str, ...]:
    if layers is None:
        paths = attention_layer_paths(model)
        if not paths:
            raise ValueError(
                f"model {model.name!r} has no MultiHeadAttention layer: attention rollout needs "
                "a transformer built from keras.layers.MultiHeadAttention"
            )
        return tuple(paths)
    if isinstance(layers, (str, int, keras.layers.Layer)):
        layers = [layers]
    return tuple(_attention_layer(model, spec) for spec in layers)


def _grid(weights: tf.Tensor, grid_args, path: str) -> TokenGrid:
    """The patch grid of the keys of ``weights`` ``(N, heads, T, S)``."""
    return infer_grid(
        weights.shape[3],
        token_grid=grid_args[0],
        prefix_tokens=grid_args[1],
        layer=f"attention layer {path!r} (weights {tuple(weights.shape)})",
    )


def _query(query, grid: TokenGrid, n_queries: int, path: str):
    """``("rows", index)`` or ``("mean", None)`` for the query spec."""
    if query is None:
        query = "cls" if grid.prefix > 0 else "mean"
    if isinstance(query, str):
        choice(query, "query", QUERIES)
        if query == "mean":
            return "mean", None
        if grid.prefix == 0:
            raise ValueError(
                f"query='cls' needs a class token, but the tokens of {path!r} have no prefix "
                "(pass query='mean', a token index or (row, col), or prefix_tokens= if the "
                "grid was guessed wrong)"
            )
        return "rows", 0
    if isinstance(query, (tuple, list)) and len(query) == 2:
        row, col = query
        if not all(_is_int(v) for v in (row, col)) or not (
            0 <= row < grid.height and 0 <= col < grid.width
        ):
            raise ValueError(
                f"query {tuple(query)!r} is outside the {grid.height}x{grid.width} patch grid"
            )
        return "rows", grid.prefix + int(row) * grid.width + int(col)
    if _is_int(query):
        if not 0 <= query < n_queries:
            raise ValueError(f"query token {query} is out of range: there are {n_queries} tokens")
        return "rows", int(query)
    raise ValueError(f"query must be 'cls', 'mean', a token index or (row, col), got {query!r}")


def _query_rows(weights: tf.Tensor, query, grid: TokenGrid) -> tf.Tensor:
    """``(N, heads, S)`` attention of the query over the keys."""
    kind, index = query
    if kind == "mean":
        return tf.reduce_mean(weights[:, :, grid.prefix :, :], axis=2)
    return weights[:, :, index, :]


def _fuse(weights: tf.Tensor, how: str) -> tf.Tensor:
    reduce = {"mean": tf.reduce_mean, "max": tf.reduce_max, "min": tf.reduce_min}[how]
    return reduce(weights, axis=1)


def _discard(fused: tf.Tensor, ratio: float) -> tf.Tensor:
    """Zero the smallest ``ratio`` of each image's weights (and any tied with the cut-off)."""
    if ratio <= 0.0:
        return fused
    n = fused.shape[1] * fused.shape[2]
    k = int(n * ratio)
    if k == 0:
        return fused
    flat = tf.reshape(fused, (-1, n))
    threshold = -tf.math.top_k(-flat, k=k).values[:, -1:]  # k-th smallest
    kept = tf.where(flat > threshold, flat, tf.zeros_like(flat))
    return tf.reshape(kept, tf.shape(fused))


def _heads(heads, n_heads: int, path: str) -> list[int]:
    if heads is None:
        return list(range(n_heads))
    chosen = (
        [heads]
        if _is_int(heads)
        else list(heads)
        if isinstance(heads, (list, tuple, range))
        else None
    )
    if not chosen or not all(_is_int(h) and 0 <= h < n_heads for h in chosen):
        raise ValueError(
            f"heads must be None, a head index or a list of them in 0..{n_heads - 1} (layer "
            f"{path!r} has {n_heads} heads), got {heads!r}"
        )
    return [int(h) for h in chosen]


def _freeze(query):
    return tuple(query) if isinstance(query, list) else query


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
