"""Maxout network (Goodfellow et al., 2013): convolutional maxout layers with dropout."""

from __future__ import annotations

import keras
from keras import layers

from ..custom_layers import Maxout
from ..registry import register_model
from .blocks import channels, check_width, is_small

# (units, pieces, kernel) of the three conv maxout layers of the paper's CIFAR-10 net
_CONV = ((96, 2, 5), (192, 2, 5), (192, 2, 3))


@register_model("maxout")
def maxout(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    dense_units: int = 500,
    dense_pieces: int = 5,
    dropout: float = 0.5,
    small_inputs: bool | None = None,
) -> keras.Model:
    """Maxout CIFAR-10 network: three conv maxout layers + max pooling, a dense maxout layer.

    Each conv maxout layer is a ``Conv2D`` with ``units * pieces`` filters (``maxout1_conv``)
    followed by :class:`~models.custom_layers.Maxout` (``maxout1``), 2x2 max pooling (``pool1``)
    and dropout, as in the paper (96/192/192 units, 2 pieces). The head is a dense maxout
    layer (``fc1_dense`` -> ``fc1``: 500 units x 5 pieces), dropout and the softmax
    ``predictions``. Inputs of 96 pixels or more get a 7x7/2 + 3x3/2 pooling stem.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``pool3``).
    dense_units, dense_pieces : int
        Size of the dense maxout layer.
    dropout : float
        Dropout after every maxout layer (maxout was designed to be trained with dropout).
    small_inputs : bool or None
        Force or forbid the small-input layout; None decides by input size.
    """
    width = check_width(width)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    if not is_small(input_shape, small_inputs):
        # A maxout stem: 7x7/2 conv with 2 pieces, then pooling, to bring 224 down to 56.
        x = layers.Conv2D(channels(64, width) * 2, 7, strides=2, padding="same", name="stem_conv")(
            x
        )
        x = Maxout(2, name="stem_maxout")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for i, (units, pieces, kernel) in enumerate(_CONV, start=1):
        x = layers.Conv2D(
            channels(units, width) * pieces, kernel, padding="same", name=f"maxout{i}_conv"
        )(x)
        x = Maxout(pieces, name=f"maxout{i}")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
        x = layers.Dropout(dropout, name=f"drop{i}")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(channels(dense_units, width) * int(dense_pieces), name="fc1_dense")(x)
        x = Maxout(int(dense_pieces), name="fc1")(x)
        x = layers.Dropout(dropout, name="fc1_drop")(x)
        x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="maxout")


__all__ = ["maxout"]
