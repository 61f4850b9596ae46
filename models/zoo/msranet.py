"""MSRANet (He et al., 2015, "Delving Deep into Rectifiers"): a VGG-like net with PReLU."""

from __future__ import annotations

import keras
from keras import layers

from ..registry import register_model
from .blocks import channels, check_width, is_small

_STAGES = (256, 512, 512)  # model A of the paper's Table 3


def _prelu(name: str) -> layers.PReLU:
    # Channel-wise PReLU (one slope per channel, shared over space), initialised at 0.25 as in
    # the paper.
    return layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name
    )


@register_model("msranet")
def msranet(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    width: float = 1.0,
    convs_per_stage: int = 5,
    dropout: float = 0.5,
    small_inputs: bool | None = None,
) -> keras.Model:
    """MSRANet model A: PReLU after every layer, He ("MSRA") initialisation.

    ImageNet stem: 7x7/2 conv (96) and 3x3/3 max pooling; then three stages of
    ``convs_per_stage`` 3x3 convolutions (256, 512, 512 channels) separated by 2x2 pooling and
    two PReLU FC layers of 4096. The paper's spatial pyramid pooling before the FC layers is
    replaced by a 2x2 max pooling. Small inputs use a 3x3/1 stem without pooling and a 512-wide
    head. Layer names: ``conv1``, ``prelu1``, ``block2_conv1``, ``block2_prelu1``, ...,
    ``fc1``, ``fc1_prelu``, ``predictions``.

    Parameters
    ----------
    input_shape, num_classes, include_top, width
        As for every zoo builder (``include_top=False`` ends at ``block4_pool``).
    convs_per_stage : int
        5 for model A, 6 for model B.
    dropout : float
        Dropout after each FC layer.
    small_inputs : bool or None
        Force or forbid the small-input stem; None decides by input size.
    """
    width = check_width(width)
    if int(convs_per_stage) < 1:
        raise ValueError(f"convs_per_stage must be >= 1, got {convs_per_stage!r}")
    small = is_small(input_shape, small_inputs)
    init = keras.initializers.HeNormal()
    inputs = keras.Input(shape=input_shape, name="input")
    if small:
        x = layers.Conv2D(
            channels(96, width), 3, padding="same", kernel_initializer=init, name="conv1"
        )(inputs)
        x = _prelu("prelu1")(x)
    else:
        x = layers.Conv2D(
            channels(96, width), 7, strides=2, padding="same", kernel_initializer=init, name="conv1"
        )(inputs)
        x = _prelu("prelu1")(x)
        x = layers.MaxPooling2D(3, strides=3, padding="same", name="pool1")(x)
    for s, n_ch in enumerate(_STAGES, start=2):
        for c in range(1, int(convs_per_stage) + 1):
            x = layers.Conv2D(
                channels(n_ch, width),
                3,
                padding="same",
                kernel_initializer=init,
                name=f"block{s}_conv{c}",
            )(x)
            x = _prelu(f"block{s}_prelu{c}")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"block{s}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for i in (1, 2):
            x = layers.Dense(
                channels(512 if small else 4096, width), kernel_initializer=init, name=f"fc{i}"
            )(x)
            x = layers.PReLU(
                alpha_initializer=keras.initializers.Constant(0.25), name=f"fc{i}_prelu"
            )(x)
            x = layers.Dropout(dropout, name=f"drop{i}")(x)
        x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="msranet")


__all__ = ["msranet"]
