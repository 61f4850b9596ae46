"""VGG-16 and VGG-19 (Simonyan & Zisserman, 2015): stacks of 3x3 convolutions."""

from __future__ import annotations

import keras
from keras import layers

from ..registry import register_model
from .blocks import channels, check_width, is_small

# convolutions per block, channels per block
_DEPTHS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_CHANNELS = (64, 128, 256, 512, 512)


def _vgg(
    depth: int,
    input_shape,
    num_classes: int,
    *,
    include_top: bool,
    width: float,
    batch_norm: bool,
    dropout: float,
    small_inputs: bool | None,
) -> keras.Model:
    width = check_width(width)
    small = is_small(input_shape, small_inputs)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for b, (n_conv, n_ch) in enumerate(zip(_DEPTHS[depth], _CHANNELS, strict=True), start=1):
        for c in range(1, n_conv + 1):
            name = f"block{b}_conv{c}"
            act = None if batch_norm else "relu"
            x = layers.Conv2D(channels(n_ch, width), 3, padding="same", activation=act, name=name)(
                x
            )
            if batch_norm:
                x = layers.BatchNormalization(name=f"{name}_bn")(x)
                x = layers.Activation("relu", name=f"{name}_relu")(x)
        # 'same' pooling equals 'valid' for 224 (divisible by 32) and keeps 28x28 from
        # collapsing: 28 -> 14 -> 7 -> 4 -> 2 -> 1.
        x = layers.MaxPooling2D(2, strides=2, padding="same", name=f"block{b}_pool")(x)
    if include_top:
        # The paper's 4096-4096 head at 224; 512-512 for small inputs, whose 1x1x512 maps
        # do not need (and overfit with) 4096 units.
        fc = channels(512 if small else 4096, width)
        x = layers.Flatten(name="flatten")(x)
        for i in (1, 2):
            x = layers.Dense(fc, activation="relu", name=f"fc{i}")(x)
            x = layers.Dropout(dropout, name=f"drop{i}")(x)
        x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=f"vgg{depth}")


def _doc(depth: int) -> str:
    return f"""VGG-{depth}: five blocks of 3x3 'same' convolutions with 2x2 max pooling, FC head.

    Parameters
    ----------
    input_shape : (H, W, C)
        224x224x3 is the paper's setting (138.4M / 143.7M parameters with 1000 classes, the
        same layer names and counts as ``keras.applications``); small inputs (< 96 px) keep the
        convolutions and use a 512-512 head (the 4096-wide head only memorises small images).
    num_classes : int
        Size of the softmax ``predictions`` layer.
    include_top : bool
        False returns the convolutional feature extractor (output of ``block5_pool``).
    width : float
        Multiplies every channel and FC width.
    batch_norm : bool
        Insert BatchNorm after every convolution (``block1_conv1_bn``), which makes the
        network trainable from scratch with plain SGD/Adam.
    dropout : float
        Dropout after fc1 and fc2.
    small_inputs : bool or None
        Force or forbid the small-input head; None decides by input size.
    """


@register_model("vgg16")
def vgg16(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    batch_norm: bool = False,
    dropout: float = 0.5,
    small_inputs: bool | None = None,
) -> keras.Model:
    return _vgg(16, **locals())


@register_model("vgg19")
def vgg19(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    batch_norm: bool = False,
    dropout: float = 0.5,
    small_inputs: bool | None = None,
) -> keras.Model:
    return _vgg(19, **locals())


vgg16.__doc__ = _doc(16)
vgg19.__doc__ = _doc(19)

__all__ = ["vgg16", "vgg19"]
