"""Convolutional highway network (Srivastava, Greff & Schmidhuber, 2015)."""

from __future__ import annotations

import keras
from keras import layers

from ..custom_layers import Highway
from ..registry import register_model
from .blocks import channels, check_width, is_small

_STAGES = (64, 128, 256)


@register_model("highway")
def highway(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    layers_per_stage: int = 3,
    transform_bias: float = -2.0,
    dropout: float = 0.2,
    small_inputs: bool | None = None,
) -> keras.Model:
    """A highway network: every layer is ``y = H(x) T(x) + x (1 - T(x))``.

    A stem convolution, then three stages (64, 128, 256 channels); each stage starts with a
    1x1 projection (``stage1_proj``) so that the highway layers keep their input's shape, has
    ``layers_per_stage`` 3x3 convolutional :class:`~models.custom_layers.Highway` layers
    (``stage1_highway1``, ...) and ends with 2x2 max pooling. The head is global average
    pooling, one dense highway layer (``fc_highway``) and the softmax ``predictions``. Inputs of
    96 pixels or more get a 7x7/2 stem with 3x3/2 pooling.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``stage3_pool``).
    layers_per_stage : int
        Highway layers per stage.
    transform_bias : float
        Initial transform-gate bias; negative values start the net near the identity (the
        carry behaviour that makes very deep highway nets trainable).
    dropout : float
        Dropout before the classifier.
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """
    width = check_width(width)
    if int(layers_per_stage) < 1:
        raise ValueError(f"layers_per_stage must be >= 1, got {layers_per_stage!r}")
    inputs = keras.Input(shape=input_shape, name="input")
    if is_small(input_shape, small_inputs):
        x = layers.Conv2D(channels(32, width), 3, padding="same", activation="relu", name="conv1")(
            inputs
        )
    else:
        x = layers.Conv2D(
            channels(64, width), 7, strides=2, padding="same", activation="relu", name="conv1"
        )(inputs)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for s, n_ch in enumerate(_STAGES, start=1):
        x = layers.Conv2D(channels(n_ch, width), 1, activation="relu", name=f"stage{s}_proj")(x)
        for i in range(1, int(layers_per_stage) + 1):
            x = Highway(kernel_size=3, transform_bias=transform_bias, name=f"stage{s}_highway{i}")(
                x
            )
        x = layers.MaxPooling2D(2, padding="same", name=f"stage{s}_pool")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = Highway(transform_bias=transform_bias, name="fc_highway")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="highway")


__all__ = ["highway"]
