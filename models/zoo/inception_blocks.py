"""Inception building blocks shared by Inception V1-V4 and Inception-ResNet: conv towers,
pooling branches, concatenation and Reduction-A."""

from __future__ import annotations

from collections.abc import Sequence

from keras import layers

from .blocks import channels, conv_bn

# A conv spec: (filters, kernel, strides, padding); kernel is an int or (kh, kw).
Spec = tuple


def conv(filters: int, kernel, strides: int = 1, padding: str = "same") -> Spec:
    """A conv spec for :func:`tower`."""
    return (filters, kernel, strides, padding)


def tower(x, name: str, specs: Sequence[Spec], width: float):
    """Apply ``conv_bn`` for each spec in turn; layers ``name_conv1``, ``name_conv2``, ...

    A single spec is named ``name`` itself.
    """
    for i, (filters, kernel, strides, padding) in enumerate(specs, start=1):
        layer_name = name if len(specs) == 1 else f"{name}_conv{i}"
        x = conv_bn(
            x, channels(filters, width), kernel, layer_name, strides=strides, padding=padding
        )
    return x


def pool_branch(x, name: str, kind: str, filters: int | None, width: float, strides: int = 1):
    """3x3 average/max pooling, optionally followed by a 1x1 projection ``name_proj``."""
    padding = "same" if strides == 1 else "valid"
    pool = layers.AveragePooling2D if kind == "avg" else layers.MaxPooling2D
    x = pool(3, strides=strides, padding=padding, name=name)(x)
    if filters:
        x = conv_bn(x, channels(filters, width), 1, f"{name}_proj")
    return x


def concat(branches, name: str):
    return layers.Concatenate(axis=-1, name=name)(branches)


def reduction_a(x, name: str, k: int, l: int, m: int, n: int, width: float):  # noqa: E741
    """Reduction-A of Inception-v4 / Inception-ResNet (35x35 -> 17x17); output 3 branches."""
    return concat(
        [
            pool_branch(x, f"{name}_branch_pool", "max", None, width, strides=2),
            tower(x, f"{name}_branch_3x3", [conv(n, 3, 2, "valid")], width),
            tower(
                x,
                f"{name}_branch_3x3dbl",
                [conv(k, 1), conv(l, 3), conv(m, 3, 2, "valid")],
                width,
            ),
        ],
        name,
    )


def check_blocks(blocks) -> tuple[int, int, int]:
    """Validate a (stage A, stage B, stage C) repeat count."""
    counts = tuple(blocks) if isinstance(blocks, tuple | list) else ()
    if len(counts) != 3 or not all(isinstance(n, int) and n >= 1 for n in counts):
        raise ValueError(f"blocks must be three ints >= 1, got {blocks!r}")
    return counts
