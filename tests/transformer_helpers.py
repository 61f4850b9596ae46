"""Tiny vision transformers with hand-set weights for known-answer tests of token layers and
attention (12x12 images, 4x4 patches: a 3x3 grid of 9 patch tokens)."""

from __future__ import annotations

import keras
import numpy as np

import models
from models.custom_layers import ClassToken, PositionEmbedding

SIDE, PATCH, GRID = 12, 4, 3
N_PATCHES = GRID * GRID


def tiny_vit(*, class_token: bool = True, depth: int = 2) -> keras.Model:
    """``vit_tiny`` on 12x12x1 images, width 8, 2 heads (random weights)."""
    return models.create_model(
        "vit_tiny",
        (SIDE, SIDE, 1),
        3,
        patch_size=PATCH,
        dim=8,
        depth=depth,
        heads=2,
        mlp_ratio=1.0,
        class_token=class_token,
    )


def position_tokens(prefix: int = 1, *, content: bool = True):
    """``(input, tokens)``: the tokens of a 12x12 image where channel ``c < 9`` is 1 on patch
    ``c`` only (a one-hot position embedding) and channel 9 is the patch's mean brightness.

    ``prefix`` zero tokens go in front (class / distillation tokens), so ``T = prefix + 9``.
    """
    inp = keras.Input((SIDE, SIDE, 1), name="input")
    embed = keras.layers.Conv2D(10, PATCH, strides=PATCH, use_bias=False, name="patch_embed")
    x = embed(inp)
    kernel = np.zeros((PATCH, PATCH, 1, 10), np.float32)
    if content:
        kernel[..., 9] = 1.0 / (PATCH * PATCH)
    embed.set_weights([kernel])
    x = keras.layers.Reshape((N_PATCHES, 10), name="patch_tokens")(x)
    if prefix:
        x = ClassToken(prefix, name="class_token")(x)
    pos = PositionEmbedding(name="tokens")
    x = pos(x)
    table = np.zeros((prefix + N_PATCHES, 10), np.float32)
    table[prefix + np.arange(N_PATCHES), np.arange(N_PATCHES)] = 1.0
    pos.set_weights([table])
    return inp, x


def one_patch_reader(patch: int, prefix: int = 1) -> keras.Model:
    """A classifier whose class-0 logit reads token ``prefix + patch`` only:
    ``2 * position_channel[patch] + brightness``; class 1's logit is 0.

    Grad-CAM at ``tokens`` is then ``(2 [i == patch] + brightness_i) / 9`` on the grid (the
    gradient is non-zero only at that token): it peaks at ``patch`` whatever the image.
    """
    inp, x = position_tokens(prefix)
    t = prefix + patch
    x = keras.layers.Cropping1D((t, prefix + N_PATCHES - t - 1), name="read_token")(x)
    x = keras.layers.Reshape((10,), name="flat")(x)
    head = keras.layers.Dense(2, activation="softmax", name="predictions")
    out = head(x)
    kernel = np.zeros((10, 2), np.float32)
    kernel[patch, 0], kernel[9, 0] = 2.0, 1.0
    head.set_weights([kernel, np.zeros(2, np.float32)])
    return keras.Model(inp, out, name="one_patch_reader")


def fixed_attention_vit(patch: int, *, layers: int = 2, prefix: int = 1) -> keras.Model:
    """A transformer whose every attention layer sends (almost) all attention of every token
    to patch token ``patch``: queries are a constant, keys are the one-hot position channel of
    that patch. Attention outputs are zero, so each block passes its input on unchanged.
    """
    inp, x = position_tokens(prefix, content=False)
    for i in range(1, layers + 1):
        attn = keras.layers.MultiHeadAttention(2, 10, name=f"block{i}_attn")
        y = attn(x, x)
        (qk, qb, kk, kb, vk, vb, ok, ob) = (np.zeros(w.shape, np.float32) for w in attn.weights)
        qb[:, 0] = 40.0  # every query: (40, 0, ...) in each head
        kk[patch, :, 0] = 1.0  # key[0] = the position channel of `patch`
        attn.set_weights([qk, qb, kk, kb, vk, vb, ok, ob])
        x = keras.layers.Add(name=f"block{i}_out")([x, y])
    x = keras.layers.GlobalAveragePooling1D(name="avg_pool")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="fixed_attention_vit")


def images(n: int = 3, seed: int = 0) -> np.ndarray:
    """Float32 12x12x1 images in [0, 1]."""
    return np.random.default_rng(seed).random((n, SIDE, SIDE, 1), dtype=np.float32)


def patch_box(patch: int) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of patch ``patch`` (row-major) in the image."""
    r, c = divmod(patch, GRID)
    return r * PATCH, c * PATCH, (r + 1) * PATCH, (c + 1) * PATCH
