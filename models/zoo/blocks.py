"""Block helpers shared by the zoo's builders: width multipliers, small-input stems, conv+BN, heads."""

from __future__ import annotations

from keras import layers

__all__ = ["SMALL_INPUT_SIDE", "channels", "check_width", "classifier", "conv_bn", "is_small"]

# Below this input side the builders switch to the stride-1 "small input" stems that seed 001
# uses for CIFAR-10 (``small_mode``), so 28x28 and 32x32 images do not collapse to nothing.
SMALL_INPUT_SIDE = 96


def is_small(input_shape: tuple[int, ...], small_inputs: bool | None = None) -> bool:
    """Whether a builder should use its small-input stem (auto: smaller side < 96 pixels)."""
    if small_inputs is not None:
        return bool(small_inputs)
    return min(int(input_shape[0]), int(input_shape[1])) < SMALL_INPUT_SIDE


def channels(n: int, width: float) -> int:
    """``n`` channels scaled by the width multiplier ``width``, at least 1."""
    return max(1, round(n * width))


def check_width(width: float) -> float:
    """Validate the width multiplier shared by all builders."""
    if not isinstance(width, int | float) or not width > 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    return float(width)


def conv_bn(
    x,
    filters: int,
    kernel_size,
    name: str,
    *,
    strides=1,
    padding: str = "same",
    activation: str | None = "relu",
    use_bias: bool = False,
    scale: bool = False,
):
    """Conv2D (no bias) -> BatchNorm -> activation, named ``name``, ``name_bn``, ``name_relu``.

    ``scale=False`` follows the Inception reference implementations (the following ReLU makes
    gamma redundant), which is also what the published parameter counts assume.
    """
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias, name=name
    )(x)
    x = layers.BatchNormalization(axis=-1, scale=scale, epsilon=1e-3, name=f"{name}_bn")(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def classifier(
    x,
    num_classes: int,
    *,
    dropout: float = 0.0,
    flatten: bool = False,
):
    """Global average pooling (or flatten), optional dropout, softmax ``predictions`` layer."""
    if flatten:
        x = layers.Flatten(name="flatten")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)
