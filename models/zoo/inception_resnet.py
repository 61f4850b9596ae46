"""Inception-ResNet V1 and V2 (Szegedy, Ioffe, Vanhoucke & Alemi, 2017).

Residual Inception blocks: the concatenated branches are projected back to the input width by
a linear 1x1 convolution with bias (``<block>_up``), scaled (0.17 / 0.1 / 0.2) and added to the
input by :class:`~models.custom_layers.ScaledResidual` (``<block>_add``), then ReLU (``<block>_out``).
"""

from __future__ import annotations

import keras
from keras import layers

from ..custom_layers import ScaledResidual
from ..registry import register_model
from .blocks import channels, check_width, classifier, conv_bn, is_small
from .inception_blocks import check_blocks, concat, conv, pool_branch, reduction_a, tower


def _residual(x, branches, name: str, scale: float, activation: bool = True):
    mixed = concat(branches, f"{name}_mixed")
    up = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_up")(mixed)
    x = ScaledResidual(scale, name=f"{name}_add")([x, up])
    if activation:
        x = layers.Activation("relu", name=f"{name}_out")(x)
    return x


def _stem_common(inputs, small: bool, width: float):
    """conv1-conv5 with two poolings; shared by V1 and (keras.applications') V2."""
    s = 1 if small else 2
    x = tower(inputs, "conv1", [conv(32, 3, s, "valid")], width)
    x = tower(x, "conv2", [conv(32, 3, 1, "valid")], width)
    x = tower(x, "conv3", [conv(64, 3)], width)
    x = layers.MaxPooling2D(3, strides=s, name="pool1")(x)
    x = tower(x, "conv4", [conv(80, 1, 1, "valid")], width)
    return tower(x, "conv5", [conv(192, 3, 1, "valid")], width)


def _finish(x, inputs, num_classes, include_top, dropout, name):
    if include_top:
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name=name)


# --- V1 -------------------------------------------------------------------------------------


def _v1_a(x, name, width, scale=0.17):
    branches = [
        tower(x, f"{name}_branch_1x1", [conv(32, 1)], width),
        tower(x, f"{name}_branch_3x3", [conv(32, 1), conv(32, 3)], width),
        tower(x, f"{name}_branch_3x3dbl", [conv(32, 1), conv(32, 3), conv(32, 3)], width),
    ]
    return _residual(x, branches, name, scale)


def _v1_b(x, name, width, scale=0.1):
    branches = [
        tower(x, f"{name}_branch_1x1", [conv(128, 1)], width),
        tower(x, f"{name}_branch_7x7", [conv(128, 1), conv(128, (1, 7)), conv(128, (7, 1))], width),
    ]
    return _residual(x, branches, name, scale)


def _v1_c(x, name, width, scale=0.2):
    branches = [
        tower(x, f"{name}_branch_1x1", [conv(192, 1)], width),
        tower(x, f"{name}_branch_3x3", [conv(192, 1), conv(192, (1, 3)), conv(192, (3, 1))], width),
    ]
    return _residual(x, branches, name, scale)


def _reduction_b(x, width, n3: tuple[int, int, int], name="reduction_b"):
    """Reduction-B of the Inception-ResNets: max pool and three stride-2 3x3 towers."""
    a, b, c = n3
    return concat(
        [
            pool_branch(x, f"{name}_branch_pool", "max", None, width, strides=2),
            tower(x, f"{name}_branch_3x3a", [conv(256, 1), conv(a, 3, 2, "valid")], width),
            tower(x, f"{name}_branch_3x3b", [conv(256, 1), conv(b, 3, 2, "valid")], width),
            tower(
                x,
                f"{name}_branch_3x3dbl",
                [conv(256, 1), conv(b, 3), conv(c, 3, 2, "valid")],
                width,
            ),
        ],
        name,
    )


@register_model("inception_resnet_v1")
def inception_resnet_v1(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dropout: float = 0.2,
    blocks: tuple[int, int, int] = (5, 10, 5),
    small_inputs: bool | None = None,
) -> keras.Model:
    """Inception-ResNet-v1 (the cost of Inception-v3 with residual connections).

    Stem of the paper's Figure 14 (``conv1``-``conv6``: 299 -> 35x35x256), 5 x block A
    (``block_a1``..., scale 0.17), ``reduction_a`` (k=192, l=192, m=256, n=384), 10 x block B
    (scale 0.1), ``reduction_b``, 5 x block C (scale 0.2), global average pooling, dropout (keep
    0.8), softmax. Small inputs use stride 1 in the stem (seed 001's ``small_mode``).

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``block_c5_out``).
    dropout : float
        Dropout before the classifier.
    blocks : (int, int, int)
        Number of residual blocks A, B and C (the paper's 5, 10, 5); fewer make a shallower net
        that trains faster on a CPU.
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """
    width = check_width(width)
    n_a, n_b, n_c = check_blocks(blocks)
    small = is_small(input_shape, small_inputs)
    inputs = keras.Input(shape=input_shape, name="input")
    x = _stem_common(inputs, small, width)
    x = tower(x, "conv6", [conv(256, 3, 1 if small else 2, "valid")], width)
    for i in range(1, n_a + 1):
        x = _v1_a(x, f"block_a{i}", width)
    x = reduction_a(x, "reduction_a", 192, 192, 256, 384, width)
    for i in range(1, n_b + 1):
        x = _v1_b(x, f"block_b{i}", width)
    x = _reduction_b(x, width, (384, 256, 256))
    for i in range(1, n_c + 1):
        x = _v1_c(x, f"block_c{i}", width)
    return _finish(x, inputs, num_classes, include_top, dropout, "inception_resnet_v1")


# --- V2 -------------------------------------------------------------------------------------


def _v2_a(x, name, width, scale=0.17):
    branches = [
        tower(x, f"{name}_branch_1x1", [conv(32, 1)], width),
        tower(x, f"{name}_branch_3x3", [conv(32, 1), conv(32, 3)], width),
        tower(x, f"{name}_branch_3x3dbl", [conv(32, 1), conv(48, 3), conv(64, 3)], width),
    ]
    return _residual(x, branches, name, scale)


def _v2_b(x, name, width, scale=0.1):
    branches = [
        tower(x, f"{name}_branch_1x1", [conv(192, 1)], width),
        tower(x, f"{name}_branch_7x7", [conv(128, 1), conv(160, (1, 7)), conv(192, (7, 1))], width),
    ]
    return _residual(x, branches, name, scale)


def _v2_c(x, name, width, scale=0.2, activation=True):
    branches = [
        tower(x, f"{name}_branch_1x1", [conv(192, 1)], width),
        tower(x, f"{name}_branch_3x3", [conv(192, 1), conv(224, (1, 3)), conv(256, (3, 1))], width),
    ]
    return _residual(x, branches, name, scale, activation)


@register_model("inception_resnet_v2")
def inception_resnet_v2(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dropout: float = 0.0,
    blocks: tuple[int, int, int] = (10, 20, 10),
    small_inputs: bool | None = None,
) -> keras.Model:
    """Inception-ResNet-v2, laid out like ``keras.applications.InceptionResNetV2``.

    Stem ``conv1``-``conv5`` + ``pool1``/``pool2`` and the 35x35 Inception module ``mixed_5b``
    (the TF-slim/keras.applications stem), 10 x block A (``block_a1``..., scale 0.17),
    ``reduction_a`` (k=256, l=256, m=384, n=384), 20 x block B (scale 0.1), ``reduction_b``,
    10 x block C (scale 0.2; the last one scale 1 without ReLU), ``conv_7b`` (1x1, 1536),
    global average pooling, softmax: 55,873,736 parameters at 299x299 with 1000 classes, the
    same as keras.applications (the paper quotes ~55.8M). Small inputs use stride 1 in the stem.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``conv_7b_relu``).
    dropout : float
        Dropout before the classifier (the paper keeps 0.8 of the units; keras.applications
        none).
    blocks : (int, int, int)
        Number of residual blocks A, B and C (the paper's 10, 20, 10); fewer make a shallower net
        that trains faster on a CPU.
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """
    width = check_width(width)
    n_a, n_b, n_c = check_blocks(blocks)
    small = is_small(input_shape, small_inputs)
    inputs = keras.Input(shape=input_shape, name="input")
    x = _stem_common(inputs, small, width)
    x = layers.MaxPooling2D(3, strides=1 if small else 2, name="pool2")(x)
    x = concat(
        [
            tower(x, "mixed_5b_branch_1x1", [conv(96, 1)], width),
            tower(x, "mixed_5b_branch_5x5", [conv(48, 1), conv(64, 5)], width),
            tower(x, "mixed_5b_branch_3x3dbl", [conv(64, 1), conv(96, 3), conv(96, 3)], width),
            pool_branch(x, "mixed_5b_branch_pool", "avg", 64, width),
        ],
        "mixed_5b",
    )
    for i in range(1, n_a + 1):
        x = _v2_a(x, f"block_a{i}", width)
    x = reduction_a(x, "reduction_a", 256, 256, 384, 384, width)
    for i in range(1, n_b + 1):
        x = _v2_b(x, f"block_b{i}", width)
    x = _reduction_b(x, width, (384, 288, 320))
    for i in range(1, n_c + 1):
        last = i == n_c
        x = _v2_c(x, f"block_c{i}", width, scale=1.0 if last else 0.2, activation=not last)
    x = conv_bn(x, channels(1536, width), 1, "conv_7b")
    return _finish(x, inputs, num_classes, include_top, dropout, "inception_resnet_v2")


__all__ = ["inception_resnet_v1", "inception_resnet_v2"]
