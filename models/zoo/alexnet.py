"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012) and the AlexNet-style MNIST CNN of seed 000."""

from __future__ import annotations

import keras
from keras import layers

from ..custom_layers import LocalResponseNormalization
from ..registry import register_model
from .blocks import channels, check_width, is_small


@register_model("alexnet")
def alexnet(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    two_tower: bool = False,
    dropout: float = 0.5,
    small_inputs: bool | None = None,
) -> keras.Model:
    """AlexNet: five convolutions (96-256-384-384-256), LRN, overlapping pooling, FC 4096-4096.

    Parameters
    ----------
    input_shape : (H, W, C)
        224x224x3 uses the original stem (11x11 stride-4 conv, padded by 2 as in common
        re-implementations so that 224 gives the paper's 55x55 maps); inputs smaller than 96
        pixels use seed 001's CIFAR adaptation (11x11 stride-1 'same' conv) and 'same' pooling.
    num_classes : int
        Size of the softmax ``predictions`` layer.
    include_top : bool
        False returns the convolutional feature extractor (output of ``pool5``).
    width : float
        Multiplies every channel and FC width (1.0 = the paper).
    two_tower : bool
        Split conv2, conv4 and conv5 into two groups as on the paper's two GPUs. At 224x224 with
        1000 classes this gives 60,965,224 parameters (the commonly quoted 61M); the single-tower
        default gives 62,378,344 (the 62.4M figure).
    dropout : float
        Dropout rate after fc6 and fc7.
    small_inputs : bool or None
        Force (True) or forbid (False) the small-input stem; None decides by input size.
    """
    width = check_width(width)
    small = is_small(input_shape, small_inputs)
    groups = 2 if two_tower else 1
    inputs = keras.Input(shape=input_shape, name="input")
    pool_padding = "same" if small else "valid"
    # Grouped convolutions need channel counts divisible by the number of groups.
    n1 = groups * max(1, channels(96, width) // groups)

    if small:
        x = layers.Conv2D(n1, 11, padding="same", activation="relu", name="conv1")(inputs)
    else:
        x = layers.ZeroPadding2D(2, name="conv1_pad")(inputs)
        x = layers.Conv2D(n1, 11, strides=4, activation="relu", name="conv1")(x)
    x = LocalResponseNormalization(name="norm1")(x)
    x = layers.MaxPooling2D(3, strides=2, padding=pool_padding, name="pool1")(x)

    def conv(n, k, name):
        return layers.Conv2D(
            groups * max(1, channels(n, width) // groups),
            k,
            padding="same",
            activation="relu",
            groups=groups if name != "conv3" else 1,
            name=name,
        )

    x = conv(256, 5, "conv2")(x)
    x = LocalResponseNormalization(name="norm2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding=pool_padding, name="pool2")(x)
    x = conv(384, 3, "conv3")(x)
    x = conv(384, 3, "conv4")(x)
    x = conv(256, 3, "conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, padding=pool_padding, name="pool5")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for i in (6, 7):
            x = layers.Dense(channels(4096, width), activation="relu", name=f"fc{i}")(x)
            x = layers.Dropout(dropout, name=f"drop{i}")(x)
        x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="alexnet")


@register_model("alexnet_mnist")
def alexnet_mnist(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dropout: float = 0.2,
) -> keras.Model:
    """The AlexNet-style MNIST CNN of seed 000 (reported there at 97.27% test accuracy).

    Three blocks of 3x3 'same' conv (64, 128, 256 channels) + ReLU, 2x2 'same' max pooling,
    LRN (``depth_radius=4, bias=1, alpha=0.001/9, beta=0.75``, the seed's ``tf.nn.lrn``
    settings) and dropout (the seed keeps 80% of units, i.e. ``dropout=0.2``); then FC
    1024-1024 and a softmax. 28x28 inputs end in 4x4x256 maps, as in the seed.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder; ``include_top=False`` ends at ``drop3``.
    dropout : float
        Dropout rate after each conv block.
    """
    width = check_width(width)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, n in enumerate((64, 128, 256), start=1):
        x = layers.Conv2D(
            channels(n, width), 3, padding="same", activation="relu", name=f"conv{i}"
        )(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
        x = LocalResponseNormalization(
            depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75, name=f"norm{i}"
        )(x)
        x = layers.Dropout(dropout, name=f"drop{i}")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(channels(1024, width), activation="relu", name="fc1")(x)
        x = layers.Dense(channels(1024, width), activation="relu", name="fc2")(x)
        x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="alexnet_mnist")


__all__ = ["alexnet", "alexnet_mnist"]
