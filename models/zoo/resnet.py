"""ResNet-18/34 (He et al., 2016) with optional pre-activation blocks (He et al., 2016b)."""

from __future__ import annotations

import keras
from keras import layers

from ..registry import register_model
from .blocks import channels, check_width, classifier, is_small

_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
_CHANNELS = (64, 128, 256, 512)


def _bn_relu(x, name: str):
    x = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _conv(filters: int, strides: int, name: str, kernel_size: int = 3) -> layers.Conv2D:
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def _basic_block(x, filters: int, strides: int, name: str):
    """Original block: conv-BN-ReLU-conv-BN, + shortcut, ReLU (projection when shapes differ)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, strides, f"{name}_shortcut", kernel_size=1)(x)
        shortcut = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_shortcut_bn")(shortcut)
    y = _bn_relu(_conv(filters, strides, f"{name}_conv1")(x), f"{name}_conv1")
    y = _conv(filters, 1, f"{name}_conv2")(y)
    y = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_conv2_bn")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _preact_block(x, filters: int, strides: int, name: str):
    """Pre-activation block: BN-ReLU-conv-BN-ReLU-conv + identity (a clean shortcut path)."""
    pre = _bn_relu(x, f"{name}_preact")
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        # The projection sees the pre-activated signal, as in the identity-mappings paper.
        shortcut = _conv(filters, strides, f"{name}_shortcut", kernel_size=1)(pre)
    y = _conv(filters, strides, f"{name}_conv1")(pre)
    y = _conv(filters, 1, f"{name}_conv2")(_bn_relu(y, f"{name}_conv1"))
    return layers.Add(name=f"{name}_out")([shortcut, y])


def _resnet(
    depth: int,
    input_shape,
    num_classes: int,
    *,
    include_top: bool,
    width: float,
    preact: bool,
    small_inputs: bool | None,
) -> keras.Model:
    width = check_width(width)
    inputs = keras.Input(shape=input_shape, name="input")
    if is_small(input_shape, small_inputs):
        # CIFAR adaptation: 3x3/1 stem, no max pooling, so 32x32 ends at 4x4.
        x = _conv(channels(64, width), 1, "conv1")(inputs)
    else:
        x = _conv(channels(64, width), 2, "conv1", kernel_size=7)(inputs)
    if not preact:
        x = _bn_relu(x, "conv1")
    if not is_small(input_shape, small_inputs):
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    block = _preact_block if preact else _basic_block
    for s, (n_blocks, n_ch) in enumerate(zip(_BLOCKS[depth], _CHANNELS, strict=True), start=2):
        for b in range(1, n_blocks + 1):
            strides = 2 if (b == 1 and s > 2) else 1
            x = block(x, channels(n_ch, width), strides, f"conv{s}_block{b}")
    if preact:
        x = _bn_relu(x, "post")
    if include_top:
        x = classifier(x, num_classes)
    return keras.Model(inputs, x, name=f"resnet{depth}{'_preact' if preact else ''}")


def _doc(depth: int, params: str) -> str:
    return f"""ResNet-{depth} with basic (two 3x3 conv) blocks; {params} parameters at 224x224x3.

    Stages ``conv2`` to ``conv5`` ({", ".join(map(str, _BLOCKS[depth]))} blocks of 64, 128, 256,
    512 channels); the first block of stages 3-5 halves the resolution and uses a 1x1
    projection shortcut (option B). Layer names follow keras.applications:
    ``conv1``, ``conv1_bn``, ``conv1_relu``, ``pool1``, ``conv3_block1_conv1``,
    ``conv3_block1_shortcut``, ``conv3_block1_add``, ``conv3_block1_out``, ``avg_pool``,
    ``predictions``. Seed 001 trains ResNet-34 on CIFAR-10; small inputs (< 96 px) use its usual
    adaptation, a 3x3/1 stem without max pooling.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at the last block).
    preact : bool
        Use pre-activation blocks (BN-ReLU-conv, identity shortcut path, final ``post_bn``,
        ``post_relu``) from "Identity Mappings in Deep Residual Networks".
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """


@register_model("resnet18")
def resnet18(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    preact: bool = False,
    small_inputs: bool | None = None,
) -> keras.Model:
    return _resnet(18, **locals())


@register_model("resnet34")
def resnet34(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    preact: bool = False,
    small_inputs: bool | None = None,
) -> keras.Model:
    return _resnet(34, **locals())


resnet18.__doc__ = _doc(18, "11.7M")
resnet34.__doc__ = _doc(34, "21.8M")

__all__ = ["resnet18", "resnet34"]
