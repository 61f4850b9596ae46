"""Network in Network (Lin, Chen & Yan, 2014): mlpconv blocks and global average pooling."""

from __future__ import annotations

import keras
from keras import layers

from ..registry import register_model
from .blocks import channels, check_width, is_small

# Per mlpconv block: (kernel, stride, (conv channels, 1x1, 1x1)), then the pooling after it.
# CIFAR-10 net of the paper (and its Caffe model zoo entry); the last 1x1 is the class map.
_CIFAR = (
    (5, 1, (192, 160, 96), "max"),
    (5, 1, (192, 192, 192), "avg"),
    (3, 1, (192, 192, None), None),
)
# ImageNet net of the Caffe model zoo (4 mlpconv blocks).
_IMAGENET = (
    (11, 4, (96, 96, 96), "max"),
    (5, 1, (256, 256, 256), "max"),
    (3, 1, (384, 384, 384), "max"),
    (3, 1, (1024, 1024, None), None),
)


@register_model("nin")
def nin(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dropout: float = 0.5,
    small_inputs: bool | None = None,
) -> keras.Model:
    """Network in Network: "mlpconv" blocks (a conv followed by two 1x1 convs, all ReLU).

    The last 1x1 convolution has ``num_classes`` channels (``mlpconv3_cccp2``, one confidence
    map per class) and global average pooling replaces the fully connected layers. Small
    inputs use the paper's CIFAR-10 layout (3 blocks, 192 channels, 3x3/2 pooling, dropout
    between blocks); 96 pixels and up use the 4-block ImageNet layout (11x11/4 stem).
    Names: ``mlpconv1_conv``, ``mlpconv1_cccp1``, ``mlpconv1_cccp2``, ``mlpconv1_pool``,
    ``mlpconv1_drop``, ..., ``avg_pool``, ``predictions`` (a softmax ``Activation``).

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder. ``include_top=False`` drops the class-map convolution and
        returns the output of the last mlpconv block's first two convolutions.
    dropout : float
        Dropout after each pooled mlpconv block.
    small_inputs : bool or None
        Force or forbid the CIFAR layout; None decides by input size.
    """
    width = check_width(width)
    plan = _CIFAR if is_small(input_shape, small_inputs) else _IMAGENET
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, (kernel, stride, widths, pool) in enumerate(plan, start=1):
        name = f"mlpconv{i}"
        for j, (suffix, n) in enumerate(zip(("conv", "cccp1", "cccp2"), widths, strict=True)):
            if n is None:  # the class-map layer
                if not include_top:
                    break
                n_out, act = num_classes, "relu"
            else:
                n_out, act = channels(n, width), "relu"
            x = layers.Conv2D(
                n_out,
                kernel if j == 0 else 1,
                strides=stride if j == 0 else 1,
                padding="same",
                activation=act,
                name=f"{name}_{suffix}",
            )(x)
        if pool is not None:
            pool_layer = layers.MaxPooling2D if pool == "max" else layers.AveragePooling2D
            x = pool_layer(3, strides=2, padding="same", name=f"{name}_pool")(x)
            x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="nin")


__all__ = ["nin"]
