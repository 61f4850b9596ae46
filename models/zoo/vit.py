"""Vision transformer (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words: Transformers for
Image Recognition at Scale"), small enough to train on MNIST on a CPU.

Layer names are fixed so that visualisation code can target them::

    input -> patch_embed (Conv2D, kernel = stride = patch) -> patch_tokens (Reshape to (h*w, D))
          [-> class_token] -> pos_embed
          -> blockI_norm1 -> blockI_attn (MultiHeadAttention) -> blockI_add
          -> blockI_norm2 -> blockI_mlp1 (GELU) -> blockI_mlp2 -> blockI_out     (I = 1..depth)
          -> final_norm -> class_token_out + pre_logits (class token) | avg_pool (mean of
             the patch tokens) -> predictions

Every token layer outputs ``(N, T, D)`` with ``T = h*w`` patch tokens (plus the class token in
front when ``class_token=True``), so vizkit reads them as ``(N, h, w, D)`` grids
(:mod:`vizkit.core.tokens`). Without the top the model ends in ``token_grid``, the final
patch tokens as an ``(N, h, w, D)`` map.

With ``input_shape=(224, 224, 3), patch_size=16, dim=192, depth=12, heads=3, mlp_ratio=4``
and 1000 classes this is ViT-Ti / DeiT-Tiny: 5,717,416 parameters, the count of timm's
``vit_tiny_patch16_224`` (checked in ``tests/test_zoo.py``).
"""

from __future__ import annotations

import keras
from keras import layers

from ..custom_layers import ClassToken, PositionEmbedding
from ..registry import register_model

__all__ = ["vit_tiny"]

POOLINGS = ("token", "avg")


@register_model("vit_tiny")
def vit_tiny(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    patch_size: int = 4,
    dim: int = 64,
    depth: int = 4,
    heads: int = 4,
    mlp_ratio: float = 2.0,
    class_token: bool = True,
    pooling: str | None = None,
    dropout: float = 0.0,
) -> keras.Model:
    """A small pre-norm vision transformer.

    Parameters
    ----------
    input_shape : (H, W, C)
        Image shape; ``H`` and ``W`` must be multiples of ``patch_size`` (28x28 with patch 4
        gives a 7x7 grid of 49 patch tokens).
    num_classes : int
        Units of the softmax ``predictions`` layer.
    include_top : bool
        Without the top the model ends in ``token_grid``, shape ``(N, h, w, dim)``.
    patch_size : int
        Side of the square patches (the patch-embedding convolution's kernel and stride).
    dim : int
        Token width ``D``.
    depth : int
        Number of transformer blocks.
    heads : int
        Attention heads per block (``dim`` must be divisible by it).
    mlp_ratio : float
        Hidden width of each block's MLP as a multiple of ``dim``.
    class_token : bool
        Prepend a learned class token (then ``T = h*w + 1``).
    pooling : {"token", "avg"} or None
        What the classifier reads: the class token (``"token"``, the default with a class
        token) or the mean of the patch tokens (``"avg"``, the default without one).
    dropout : float
        Dropout rate after the position embedding and inside each MLP.

    Returns
    -------
    keras.Model
        Functional model named ``"vit_tiny"``.
    """
    grid = _check(input_shape, patch_size, dim, depth, heads, mlp_ratio, dropout)
    pooling = pooling or ("token" if class_token else "avg")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS} or None, got {pooling!r}")
    if pooling == "token" and not class_token:
        raise ValueError("pooling='token' needs class_token=True; use pooling='avg' without it")
    prefix = 1 if class_token else 0
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = layers.Conv2D(dim, patch_size, strides=patch_size, name="patch_embed")(inputs)
    x = layers.Reshape((grid[0] * grid[1], dim), name="patch_tokens")(x)
    if class_token:
        x = ClassToken(name="class_token")(x)
    x = PositionEmbedding(name="pos_embed")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="pos_dropout")(x)
    hidden = round(dim * mlp_ratio)
    for i in range(1, depth + 1):
        x = _block(x, f"block{i}", dim, heads, hidden, dropout)
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    if not include_top:
        if prefix:
            x = layers.Cropping1D((prefix, 0), name="patch_tokens_out")(x)
        x = layers.Reshape((*grid, dim), name="token_grid")(x)
        return keras.Model(inputs, x, name="vit_tiny")
    if pooling == "token":
        x = layers.Cropping1D((0, grid[0] * grid[1]), name="class_token_out")(x)
        x = layers.Reshape((dim,), name="pre_logits")(x)
    else:
        if prefix:
            x = layers.Cropping1D((prefix, 0), name="patch_tokens_out")(x)
        x = layers.GlobalAveragePooling1D(name="avg_pool")(x)
    x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="vit_tiny")


def _block(x, name: str, dim: int, heads: int, hidden: int, dropout: float):
    """Pre-norm transformer block: ``x + MHA(LN(x))``, then ``+ MLP(LN(.))``."""
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(x)
    y = layers.MultiHeadAttention(heads, dim // heads, name=f"{name}_attn")(y, y)
    x = layers.Add(name=f"{name}_add")([x, y])
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x)
    y = layers.Dense(hidden, activation="gelu", name=f"{name}_mlp1")(y)
    if dropout > 0:
        y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    y = layers.Dense(dim, name=f"{name}_mlp2")(y)
    return layers.Add(name=f"{name}_out")([x, y])


def _check(input_shape, patch_size, dim, depth, heads, mlp_ratio, dropout):
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    for name, value in (
        ("patch_size", patch_size),
        ("dim", dim),
        ("depth", depth),
        ("heads", heads),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if dim % heads:
        raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
    if not mlp_ratio > 0:
        raise ValueError(f"mlp_ratio must be > 0, got {mlp_ratio!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    h, w = int(input_shape[0]), int(input_shape[1])
    if h % patch_size or w % patch_size:
        raise ValueError(
            f"input_shape {tuple(input_shape)!r} is not a multiple of patch_size={patch_size}: "
            "pick a patch size that divides the height and width"
        )
    return h // patch_size, w // patch_size
