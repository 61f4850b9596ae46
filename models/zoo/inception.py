"""GoogLeNet Inception V1-V4 (Szegedy et al. 2015, Ioffe & Szegedy 2015, Szegedy et al. 2016/2017).

Layer names: ``inception_4a_branch_3x3`` (V1/V2 modules), ``mixed5_branch_7x7dbl_conv2``
(V3), ``inception_b3_branch_7x7_conv1`` (V4); every conv of V2-V4 is followed by ``<name>_bn``
and ``<name>_relu``. Keras forbids ``/`` in layer names, hence ``_``.
"""

from __future__ import annotations

import keras
from keras import layers

from ..custom_layers import LocalResponseNormalization
from ..registry import register_model
from .blocks import channels, check_width, classifier, conv_bn, is_small
from .inception_blocks import check_blocks, concat, conv, pool_branch, reduction_a, tower


def _inputs(input_shape):
    return keras.Input(shape=input_shape, name="input")


def _finish(x, inputs, num_classes: int, include_top: bool, dropout: float, name: str):
    if include_top:
        x = classifier(x, num_classes, dropout=dropout)
    return keras.Model(inputs, x, name=name)


# --- Inception V1 (GoogLeNet) ---------------------------------------------------------------

# name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), Table 1 of "Going deeper".
_V1 = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


# Caffe's GoogLeNet LRN: local_size 5, alpha 1e-4 (Caffe divides alpha by the window), k 1.
_CAFFE_LRN = {"depth_radius": 2, "bias": 1.0, "alpha": 1e-4 / 5, "beta": 0.75}


def _relu_conv(x, filters: int, kernel, name: str, strides: int = 1):
    return layers.Conv2D(
        filters, kernel, strides=strides, padding="same", activation="relu", name=name
    )(x)


def _v1_module(x, key: str, width: float):
    name = f"inception_{key}"
    n1, r3, n3, r5, n5, npool = (channels(c, width) for c in _V1[key])
    b1 = _relu_conv(x, n1, 1, f"{name}_branch_1x1")
    b3 = _relu_conv(x, r3, 1, f"{name}_branch_3x3_reduce")
    b3 = _relu_conv(b3, n3, 3, f"{name}_branch_3x3")
    b5 = _relu_conv(x, r5, 1, f"{name}_branch_5x5_reduce")
    b5 = _relu_conv(b5, n5, 5, f"{name}_branch_5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = _relu_conv(bp, npool, 1, f"{name}_pool_proj")
    return concat([b1, b3, b5, bp], f"{name}_concat")


@register_model("inception_v1")
def inception_v1(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dropout: float = 0.4,
    small_inputs: bool | None = None,
) -> keras.Model:
    """GoogLeNet (Inception V1) without the two auxiliary classifiers.

    The Caffe/paper layout: conv1 7x7/2, pool, LRN, conv2 1x1+3x3, LRN, pool, inception 3a-3b,
    pool, 4a-4e, pool, 5a-5b, global average pooling, dropout 0.4, softmax. Convolutions have
    biases and ReLU, no batch norm. At 224x224x3 with 1000 classes it has 6,998,552 parameters
    (the Caffe ``bvlc_googlenet`` count without auxiliary heads; torchvision's 6.6M variant has
    BN, no conv biases and a 3x3 "5x5" branch). Small inputs (< 96 px) use a 3x3/1 stem without
    the two stem poolings, so 28x28 runs at 28 -> 14 -> 7.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``inception_5b_concat``).
    dropout : float
        Dropout before the classifier.
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """
    width = check_width(width)
    small = is_small(input_shape, small_inputs)
    inputs = _inputs(input_shape)
    if small:
        x = _relu_conv(inputs, channels(64, width), 3, "conv1")
    else:
        x = _relu_conv(inputs, channels(64, width), 7, "conv1", strides=2)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = LocalResponseNormalization(**_CAFFE_LRN, name="norm1")(x)
    x = _relu_conv(x, channels(64, width), 1, "conv2_reduce")
    x = _relu_conv(x, channels(192, width), 3, "conv2")
    x = LocalResponseNormalization(**_CAFFE_LRN, name="norm2")(x)
    if not small:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    for key in ("3a", "3b"):
        x = _v1_module(x, key, width)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool3")(x)
    for key in ("4a", "4b", "4c", "4d", "4e"):
        x = _v1_module(x, key, width)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool4")(x)
    for key in ("5a", "5b"):
        x = _v1_module(x, key, width)
    return _finish(x, inputs, num_classes, include_top, dropout, "inception_v1")


# --- Inception V2 (BN-Inception) ------------------------------------------------------------

# name: (1x1, 3x3 reduce, 3x3, double-3x3 reduce, double 3x3, pool kind, pool proj, stride),
# Figure 5 of the batch-normalisation paper.
_V2 = {
    "3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "5b": (352, 192, 320, 192, 224, "max", 128, 1),
}


def _v2_module(x, key: str, width: float):
    name = f"inception_{key}"
    n1, r3, n3, rd, nd, pool, npool, s = _V2[key]
    branches = []
    if n1:
        branches.append(tower(x, f"{name}_branch_1x1", [conv(n1, 1)], width))
    branches.append(tower(x, f"{name}_branch_3x3", [conv(r3, 1), conv(n3, 3, s)], width))
    branches.append(
        tower(x, f"{name}_branch_3x3dbl", [conv(rd, 1), conv(nd, 3), conv(nd, 3, s)], width)
    )
    # Stride-2 modules pass the pooled input through; 'same' keeps 28 -> 14 -> 7 exact.
    pooled = (layers.AveragePooling2D if pool == "avg" else layers.MaxPooling2D)(
        3, strides=s, padding="same", name=f"{name}_pool"
    )(x)
    if npool:
        pooled = conv_bn(pooled, channels(npool, width), 1, f"{name}_pool_proj")
    branches.append(pooled)
    return concat(branches, f"{name}_concat")


@register_model("inception_v2")
def inception_v2(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dropout: float = 0.2,
    small_inputs: bool | None = None,
) -> keras.Model:
    """BN-Inception (Inception V2): batch normalisation after every convolution.

    The 5x5 convolutions of V1 become two stacked 3x3 ("3x3dbl"), some pools are averages, and
    the grid is reduced inside modules 3c and 4e (stride-2 branches, pooled pass-through), as in
    Figure 5 of the batch-normalisation paper; about 11.2M parameters at 224x224 with 1000
    classes. Small inputs use a 3x3/1 stem without the two stem poolings.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``inception_5b_concat``).
    dropout : float
        Dropout before the classifier.
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """
    width = check_width(width)
    small = is_small(input_shape, small_inputs)
    inputs = _inputs(input_shape)
    if small:
        x = conv_bn(inputs, channels(64, width), 3, "conv1")
    else:
        x = conv_bn(inputs, channels(64, width), 7, "conv1", strides=2)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = conv_bn(x, channels(64, width), 1, "conv2_reduce")
    x = conv_bn(x, channels(192, width), 3, "conv2")
    if not small:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    for key in _V2:
        x = _v2_module(x, key, width)
    return _finish(x, inputs, num_classes, include_top, dropout, "inception_v2")


# --- Inception V3 ---------------------------------------------------------------------------


def _v3_stem(inputs, small: bool, width: float):
    """299 -> 35x35x192. Small inputs use stride 1 throughout (seed 001's ``small_mode``)."""
    s = 1 if small else 2
    x = tower(inputs, "conv1", [conv(32, 3, s, "valid")], width)
    x = tower(x, "conv2", [conv(32, 3, 1, "valid")], width)
    x = tower(x, "conv3", [conv(64, 3)], width)
    x = layers.MaxPooling2D(3, strides=s, name="pool1")(x)
    x = tower(x, "conv4", [conv(80, 1, 1, "valid")], width)
    x = tower(x, "conv5", [conv(192, 3, 1, "valid")], width)
    return layers.MaxPooling2D(3, strides=s, name="pool2")(x)


def _v3_a(x, i: int, pool_proj: int, width: float):
    name = f"mixed{i}"
    return concat(
        [
            tower(x, f"{name}_branch_1x1", [conv(64, 1)], width),
            tower(x, f"{name}_branch_5x5", [conv(48, 1), conv(64, 5)], width),
            tower(x, f"{name}_branch_3x3dbl", [conv(64, 1), conv(96, 3), conv(96, 3)], width),
            pool_branch(x, f"{name}_branch_pool", "avg", pool_proj, width),
        ],
        name,
    )


def _v3_b(x, i: int, c: int, width: float):
    """17x17 module with factorised 7x7 convolutions (1x7 followed by 7x1)."""
    name = f"mixed{i}"
    return concat(
        [
            tower(x, f"{name}_branch_1x1", [conv(192, 1)], width),
            tower(x, f"{name}_branch_7x7", [conv(c, 1), conv(c, (1, 7)), conv(192, (7, 1))], width),
            tower(
                x,
                f"{name}_branch_7x7dbl",
                [conv(c, 1), conv(c, (7, 1)), conv(c, (1, 7)), conv(c, (7, 1)), conv(192, (1, 7))],
                width,
            ),
            pool_branch(x, f"{name}_branch_pool", "avg", 192, width),
        ],
        name,
    )


def _split_1x3_3x1(x, name: str, filters: int, width: float):
    """The expanded 8x8 output: parallel 1x3 and 3x1 convolutions, concatenated."""
    return concat(
        [
            tower(x, f"{name}_1x3", [conv(filters, (1, 3))], width),
            tower(x, f"{name}_3x1", [conv(filters, (3, 1))], width),
        ],
        f"{name}_concat",
    )


def _v3_c(x, i: int, width: float):
    name = f"mixed{i}"
    b3 = tower(x, f"{name}_branch_3x3", [conv(384, 1)], width)
    bd = tower(x, f"{name}_branch_3x3dbl", [conv(448, 1), conv(384, 3)], width)
    return concat(
        [
            tower(x, f"{name}_branch_1x1", [conv(320, 1)], width),
            _split_1x3_3x1(b3, f"{name}_branch_3x3", 384, width),
            _split_1x3_3x1(bd, f"{name}_branch_3x3dbl", 384, width),
            pool_branch(x, f"{name}_branch_pool", "avg", 192, width),
        ],
        name,
    )


@register_model("inception_v3")
def inception_v3(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dropout: float = 0.0,
    small_inputs: bool | None = None,
) -> keras.Model:
    """Inception V3 ("Rethinking the Inception Architecture"): factorised convolutions.

    Stem (conv1-conv5, pool1-pool2), 3 x 35x35 modules (``mixed0``-``mixed2``), grid reduction
    ``mixed3``, 4 x 17x17 modules with 1x7/7x1 factorisation (``mixed4``-``mixed7``), grid
    reduction ``mixed8``, 2 x 8x8 modules with expanded 1x3/3x1 outputs (``mixed9``,
    ``mixed10``), global average pooling, softmax. At 299x299x3 with 1000 classes it has
    23,851,784 parameters, the same as ``keras.applications.InceptionV3``. Label smoothing, the
    paper's other contribution, is a training option: ``models.train(..., label_smoothing=0.1)``.
    Small inputs use seed 001's ``small_mode``: stride 1 in the stem, so 28x28 runs at
    18 -> 8 -> 3.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``mixed10``).
    dropout : float
        Dropout before the classifier (keras.applications uses none).
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """
    width = check_width(width)
    inputs = _inputs(input_shape)
    x = _v3_stem(inputs, is_small(input_shape, small_inputs), width)
    for i, proj in enumerate((32, 64, 64)):
        x = _v3_a(x, i, proj, width)
    x = concat(
        [
            tower(x, "mixed3_branch_3x3", [conv(384, 3, 2, "valid")], width),
            tower(
                x,
                "mixed3_branch_3x3dbl",
                [conv(64, 1), conv(96, 3), conv(96, 3, 2, "valid")],
                width,
            ),
            pool_branch(x, "mixed3_branch_pool", "max", None, width, strides=2),
        ],
        "mixed3",
    )
    for i, c in zip(range(4, 8), (128, 160, 160, 192), strict=True):
        x = _v3_b(x, i, c, width)
    x = concat(
        [
            tower(x, "mixed8_branch_3x3", [conv(192, 1), conv(320, 3, 2, "valid")], width),
            tower(
                x,
                "mixed8_branch_7x7x3",
                [conv(192, 1), conv(192, (1, 7)), conv(192, (7, 1)), conv(192, 3, 2, "valid")],
                width,
            ),
            pool_branch(x, "mixed8_branch_pool", "max", None, width, strides=2),
        ],
        "mixed8",
    )
    for i in (9, 10):
        x = _v3_c(x, i, width)
    return _finish(x, inputs, num_classes, include_top, dropout, "inception_v3")


# --- Inception V4 ---------------------------------------------------------------------------


def _v4_stem(inputs, small: bool, width: float):
    """Figure 3 of the Inception-v4 paper: 299 -> 35x35x384 (stride 1 for small inputs)."""
    s = 1 if small else 2
    x = tower(inputs, "stem_conv1", [conv(32, 3, s, "valid")], width)
    x = tower(x, "stem_conv2", [conv(32, 3, 1, "valid")], width)
    x = tower(x, "stem_conv3", [conv(64, 3)], width)
    x = concat(
        [
            layers.MaxPooling2D(3, strides=s, name="stem_mixed1_branch_pool")(x),
            tower(x, "stem_mixed1_branch_3x3", [conv(96, 3, s, "valid")], width),
        ],
        "stem_mixed1",
    )
    x = concat(
        [
            tower(x, "stem_mixed2_branch_3x3", [conv(64, 1), conv(96, 3, 1, "valid")], width),
            tower(
                x,
                "stem_mixed2_branch_7x7",
                [conv(64, 1), conv(64, (7, 1)), conv(64, (1, 7)), conv(96, 3, 1, "valid")],
                width,
            ),
        ],
        "stem_mixed2",
    )
    return concat(
        [
            tower(x, "stem_mixed3_branch_3x3", [conv(192, 3, s, "valid")], width),
            layers.MaxPooling2D(3, strides=s, name="stem_mixed3_branch_pool")(x),
        ],
        "stem_mixed3",
    )


def _v4_a(x, name: str, width: float):
    return concat(
        [
            pool_branch(x, f"{name}_branch_pool", "avg", 96, width),
            tower(x, f"{name}_branch_1x1", [conv(96, 1)], width),
            tower(x, f"{name}_branch_3x3", [conv(64, 1), conv(96, 3)], width),
            tower(x, f"{name}_branch_3x3dbl", [conv(64, 1), conv(96, 3), conv(96, 3)], width),
        ],
        name,
    )


def _v4_b(x, name: str, width: float):
    return concat(
        [
            pool_branch(x, f"{name}_branch_pool", "avg", 128, width),
            tower(x, f"{name}_branch_1x1", [conv(384, 1)], width),
            tower(
                x, f"{name}_branch_7x7", [conv(192, 1), conv(224, (1, 7)), conv(256, (7, 1))], width
            ),
            tower(
                x,
                f"{name}_branch_7x7dbl",
                [
                    conv(192, 1),
                    conv(192, (7, 1)),
                    conv(224, (1, 7)),
                    conv(224, (7, 1)),
                    conv(256, (1, 7)),
                ],
                width,
            ),
        ],
        name,
    )


def _v4_c(x, name: str, width: float):
    b3 = tower(x, f"{name}_branch_3x3", [conv(384, 1)], width)
    bd = tower(
        x, f"{name}_branch_3x3dbl", [conv(384, 1), conv(448, (3, 1)), conv(512, (1, 3))], width
    )
    return concat(
        [
            pool_branch(x, f"{name}_branch_pool", "avg", 256, width),
            tower(x, f"{name}_branch_1x1", [conv(256, 1)], width),
            _split_1x3_3x1(b3, f"{name}_branch_3x3", 256, width),
            _split_1x3_3x1(bd, f"{name}_branch_3x3dbl", 256, width),
        ],
        name,
    )


def _reduction_b_v4(x, width: float):
    name = "reduction_b"
    return concat(
        [
            pool_branch(x, f"{name}_branch_pool", "max", None, width, strides=2),
            tower(x, f"{name}_branch_3x3", [conv(192, 1), conv(192, 3, 2, "valid")], width),
            tower(
                x,
                f"{name}_branch_7x7x3",
                [conv(256, 1), conv(256, (1, 7)), conv(320, (7, 1)), conv(320, 3, 2, "valid")],
                width,
            ),
        ],
        name,
    )


@register_model("inception_v4")
def inception_v4(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dropout: float = 0.2,
    blocks: tuple[int, int, int] = (4, 7, 3),
    small_inputs: bool | None = None,
) -> keras.Model:
    """Inception-v4 (Szegedy et al., 2017): a uniform, deeper Inception with a branched stem.

    Stem (``stem_*``), 4 x Inception-A (``inception_a1``-``a4``), ``reduction_a`` (k=192,
    l=224, m=256, n=384), 7 x Inception-B, ``reduction_b``, 3 x Inception-C, global average
    pooling, dropout (keep 0.8) and softmax; about 42.7M parameters at 299x299 with 1000
    classes. Small inputs use seed 001's ``small_mode`` (stride 1 in the stem).

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``inception_c3``).
    dropout : float
        Dropout before the classifier.
    blocks : (int, int, int)
        Number of Inception-A, -B and -C modules (the paper's 4, 7, 3); fewer make a shallower
        net that trains faster on a CPU.
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """
    width = check_width(width)
    n_a, n_b, n_c = check_blocks(blocks)
    inputs = _inputs(input_shape)
    x = _v4_stem(inputs, is_small(input_shape, small_inputs), width)
    for i in range(1, n_a + 1):
        x = _v4_a(x, f"inception_a{i}", width)
    x = reduction_a(x, "reduction_a", 192, 224, 256, 384, width)
    for i in range(1, n_b + 1):
        x = _v4_b(x, f"inception_b{i}", width)
    x = _reduction_b_v4(x, width)
    for i in range(1, n_c + 1):
        x = _v4_c(x, f"inception_c{i}", width)
    return _finish(x, inputs, num_classes, include_top, dropout, "inception_v4")


__all__ = ["inception_v1", "inception_v2", "inception_v3", "inception_v4"]
