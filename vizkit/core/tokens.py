"""Token layers of vision transformers read as feature maps: ``(N, T, D)`` <-> ``(N, h, w, D)``.

A transformer layer outputs ``T = p + h*w`` tokens of width ``D``: ``p`` prefix tokens (class,
distillation or register tokens) followed by the patch tokens in row-major order over the
``h x w`` patch grid (ViT, Dosovitskiy et al., 2021; DeiT; keras-hub's ViT). Dropping the prefix
and reshaping the patch tokens gives an ``(N, h, w, D)`` map that every spatial method (feature
maps, Grad-CAM, activation maximisation, top-activating patches, diagnosis, hypercolumns) treats
like a convolution layer's output.

The grid is inferred when unambiguous: a square ``T`` has no prefix, a square ``T - 1`` one
(the class token); grids of at least 2x2 only, so a lone pooled token is not a map. Anything else needs ``token_grid=(h, w)`` and/or ``prefix_tokens=p``; the
error says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from .layers import iter_layers, last_conv_layer, output_shape, resolve_layer

GRID_ARGS = "token_grid=(h, w) and/or prefix_tokens=p"


@dataclass(frozen=True)
class TokenGrid:
    """How ``p + h*w`` tokens map onto an ``h x w`` patch grid (prefix tokens first)."""

    height: int
    width: int
    prefix: int = 0

    @property
    def tokens(self) -> int:
        """Total number of tokens ``T = prefix + height * width``."""
        return self.prefix + self.height * self.width

    def to_grid(self, tokens):
        """``(N, T, D)`` tokens (tensor or array) -> ``(N, h, w, D)`` patch tokens.

        Traceable: works on ``tf.Tensor`` inside compiled functions and on NumPy arrays.
        """
        patches = tokens[:, self.prefix :, :]
        if isinstance(patches, np.ndarray):
            return patches.reshape(len(patches), self.height, self.width, patches.shape[-1])
        import tensorflow as tf

        return tf.reshape(patches, (-1, self.height, self.width, patches.shape[-1]))

    def to_tokens(self, grid, prefix=None):
        """``(N, h, w, D)`` -> ``(N, T, D)``, the prefix tokens taken from ``prefix``
        ``(N, p, D)`` (zeros when None)."""
        if isinstance(grid, np.ndarray):
            flat = grid.reshape(len(grid), self.height * self.width, grid.shape[-1])
            if self.prefix == 0:
                return flat
            if prefix is None:
                prefix = np.zeros((len(grid), self.prefix, grid.shape[-1]), grid.dtype)
            return np.concatenate([prefix, flat], axis=1)
        import tensorflow as tf

        flat = tf.reshape(grid, (-1, self.height * self.width, grid.shape[-1]))
        if self.prefix == 0:
            return flat
        if prefix is None:
            prefix = tf.zeros((tf.shape(grid)[0], self.prefix, grid.shape[-1]), grid.dtype)
        return tf.concat([prefix, flat], axis=1)


def check_grid_args(token_grid, prefix_tokens) -> tuple[tuple[int, int] | None, int | None]:
    """Validate ``token_grid`` (``(h, w)`` of positive ints or None) and ``prefix_tokens``
    (an int >= 0 or None); returns them normalised (hashable, for cache keys)."""
    grid = None
    if token_grid is not None:
        try:
            h, w = token_grid
        except (TypeError, ValueError):
            raise ValueError(
                f"token_grid must be (h, w) with two positive ints, got {token_grid!r}"
            ) from None
        if not all(_is_int(v) and v > 0 for v in (h, w)):
            raise ValueError(
                f"token_grid must be (h, w) with two positive ints, got {token_grid!r}"
            )
        grid = (int(h), int(w))
    if prefix_tokens is not None and not (_is_int(prefix_tokens) and prefix_tokens >= 0):
        raise ValueError(f"prefix_tokens must be an int >= 0 or None, got {prefix_tokens!r}")
    return grid, None if prefix_tokens is None else int(prefix_tokens)


def infer_grid(
    tokens: int, *, token_grid=None, prefix_tokens=None, layer: str = "the layer"
) -> TokenGrid:
    """The :class:`TokenGrid` of a layer with ``tokens`` tokens.

    Parameters
    ----------
    tokens : int
        ``T``, the layer's sequence length.
    token_grid : (h, w), optional
        The patch grid; the prefix is then ``T - h*w`` unless ``prefix_tokens`` is given too.
    prefix_tokens : int, optional
        Class/distillation/register tokens in front of the patch tokens.
    layer : str
        Named in error messages.

    Raises
    ------
    ValueError
        When the grid cannot be inferred (the message names ``token_grid`` and
        ``prefix_tokens``) or the given values do not add up to ``T``.
    """
    grid, prefix = check_grid_args(token_grid, prefix_tokens)
    t = int(tokens)
    if grid is not None:
        p = t - grid[0] * grid[1] if prefix is None else prefix
        if p < 0 or p + grid[0] * grid[1] != t:
            raise ValueError(
                f"{layer} has {t} tokens, which token_grid={grid} with prefix_tokens={p} does not "
                f"match: pass token_grid=(h, w) and prefix_tokens=p with h*w + p = {t}"
            )
        return TokenGrid(grid[0], grid[1], p)
    if prefix is not None:
        side = _square_side(t - prefix)
        if side is None:
            raise ValueError(
                f"{layer} has {t} tokens; without its {prefix} prefix tokens the {t - prefix} "
                f"patch tokens are not a square grid: pass token_grid=(h, w) with h*w = "
                f"{t - prefix}"
            )
        return TokenGrid(side, side, prefix)
    for p in (0, 1):  # no prefix, or one class token
        side = _square_side(t - p)
        # A lone token (a pooled class token) is not a patch grid unless the caller says so.
        if side is not None and side >= 2:
            return TokenGrid(side, side, p)
    raise ValueError(
        f"{layer} has {t} tokens, neither a square grid nor a square grid plus one class token, "
        f"so the patch grid is ambiguous: pass {GRID_ARGS} (h*w + p = {t})"
    )


def layer_grid(
    layer: keras.layers.Layer, *, token_grid=None, prefix_tokens=None, path: str | None = None
) -> TokenGrid | None:
    """The grid of ``layer`` if its output is ``(N, T, D)``, else None (4-D maps, dense layers).

    Raises
    ------
    ValueError
        For a 3-D output whose grid cannot be inferred (naming ``token_grid``/``prefix_tokens``).
    """
    shape = output_shape(layer)
    if shape is None or len(shape) != 3:
        return None
    name = f"layer {path or layer.name!r} (output shape {shape})"
    if shape[1] is None:
        if token_grid is None:
            raise ValueError(f"{name} has a free number of tokens: pass {GRID_ARGS}")
        grid, prefix = check_grid_args(token_grid, prefix_tokens)
        return TokenGrid(grid[0], grid[1], prefix or 0)
    return infer_grid(shape[1], token_grid=token_grid, prefix_tokens=prefix_tokens, layer=name)


def try_layer_grid(layer: keras.layers.Layer, *, token_grid=None, prefix_tokens=None):
    """Like :func:`layer_grid` but None instead of an error (for choosing default layers)."""
    try:
        return layer_grid(layer, token_grid=token_grid, prefix_tokens=prefix_tokens)
    except ValueError:
        return None


def is_token_layer(layer: keras.layers.Layer, *, token_grid=None, prefix_tokens=None) -> bool:
    """True for a layer with an ``(N, T, D)`` output whose tokens form a patch grid."""
    if isinstance(layer, keras.Model):
        return False
    return try_layer_grid(layer, token_grid=token_grid, prefix_tokens=prefix_tokens) is not None


def grid_rank(layer: keras.layers.Layer, *, token_grid=None, prefix_tokens=None) -> int:
    """The rank the layer's output has for spatial methods: 4 for maps and token layers."""
    shape = output_shape(layer)
    if shape is None:
        return -1
    if len(shape) == 3 and is_token_layer(
        layer, token_grid=token_grid, prefix_tokens=prefix_tokens
    ):
        return 4
    return len(shape)


def grid_shape(layer: keras.layers.Layer, *, token_grid=None, prefix_tokens=None) -> tuple | None:
    """Output shape as spatial methods see it: ``(N, h, w, D)`` for token layers."""
    shape = output_shape(layer)
    grid = (
        None
        if shape is None
        else try_layer_grid(layer, token_grid=token_grid, prefix_tokens=prefix_tokens)
    )
    if grid is None:
        return shape
    return (shape[0], grid.height, grid.width, shape[2])


def grid_layer_paths(model: keras.Model, *, token_grid=None, prefix_tokens=None) -> list[str]:
    """Every layer (nested models themselves excluded) with a 4-D output or a token grid."""
    return [
        p
        for p, layer in iter_layers(model)
        if not isinstance(layer, keras.Model)
        and grid_rank(layer, token_grid=token_grid, prefix_tokens=prefix_tokens) == 4
    ]


def is_attention(layer: keras.layers.Layer) -> bool:
    """True for Keras ``MultiHeadAttention`` layers (and subclasses, e.g. keras-hub's)."""
    return isinstance(layer, keras.layers.MultiHeadAttention)


def attention_layer_paths(model: keras.Model) -> list[str]:
    """Paths of every ``MultiHeadAttention`` layer of ``model``, in model order, including those
    inside custom blocks (``"vit_encoder/transformer_block_1/mha"`` in keras-hub's ViT)."""
    return [p for p, layer in iter_layers(model, deep=True) if is_attention(layer)]


def resolve_attention_layer(model: keras.Model, layer) -> tuple[str, keras.layers.Layer]:
    """``(path, layer)`` of an attention layer given by path, name, index or object; sublayers
    of custom blocks are found by their full path or a unique name."""
    try:
        return resolve_layer(model, layer)
    except ValueError:
        if not isinstance(layer, (str, keras.layers.Layer)):
            raise
    deep = iter_layers(model, deep=True)
    found = [
        (p, obj)
        for p, obj in deep
        if obj is layer or p == layer or (isinstance(layer, str) and p.rsplit("/", 1)[-1] == layer)
    ]
    if len(found) == 1:
        return found[0]
    raise ValueError(
        f"layer {layer!r} is {'ambiguous' if found else 'unknown'}; attention layers of model "
        f"{model.name!r}: {attention_layer_paths(model)}"
    )


def default_map_layer(model: keras.Model) -> str:
    """Grad-CAM's default layer: the last conv map, or for transformers the token layer that
    feeds the last attention layer (the last block's first norm).

    The output of a class-token transformer's last block reaches the classifier only through
    the class token, so its patch tokens get no gradient; the input of the last attention layer
    is the usual choice instead (pytorch-grad-cam's ViT recipe uses ``blocks[-1].norm1``).
    """
    attention = attention_layer_paths(model)
    if attention:
        feeding = _query_source(model, attention[-1])
        if feeding is not None and is_token_layer(resolve_layer(model, feeding)[1]):
            return feeding
    order = {p: i for i, (p, _) in enumerate(iter_layers(model))}
    tokens = [p for p, layer in iter_layers(model) if is_token_layer(layer)]
    try:
        conv = last_conv_layer(model)
    except ValueError:  # no 4-D layer at all
        if not tokens:
            raise
        return tokens[-1]
    # A token model without attention (an MLP-Mixer): its last token layer comes after the
    # patch-embedding convolution.
    if tokens and order[tokens[-1]] > order[conv]:
        return tokens[-1]
    return conv


def patch_box(image_size: tuple[int, int], grid: TokenGrid) -> tuple[tuple[int, int], ...]:
    """``(size, jump, start)`` per axis of the patch each grid cell covers in the image.

    The receptive field of a patch token is taken as its own patch (what the patch embedding
    reads); attention lets it see further, but its own patch is where it sits in the image.
    """
    jump = (image_size[0] // grid.height, image_size[1] // grid.width)
    start = tuple((j - 1) / 2 for j in jump)
    return jump, jump, start


# --------------------------------------------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _square_side(n: int) -> int | None:
    if n < 1:
        return None
    side = math.isqrt(n)
    return side if side * side == n else None


def _query_source(model: keras.Model, path: str) -> str | None:
    """Path of the layer whose output is the query of the attention layer at ``path``."""
    layer = resolve_layer(model, path)[1]
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if not nodes:
        return None
    tensors = list(getattr(nodes[0], "input_tensors", []) or [])
    if not tensors:
        return None
    history = getattr(tensors[0], "_keras_history", None)
    source = getattr(history, "operation", None)
    prefix = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    for p, obj in iter_layers(model):
        if obj is source and p.startswith(prefix):
            return p
    return None
