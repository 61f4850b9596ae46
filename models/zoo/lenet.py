"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition"), classic and modern flavours.

Layer names are fixed so that visualisation code can target them::

    input -> c1_conv [c1_bn c1_act] -> s2_pool -> c3_conv [c3_bn c3_act] -> s4_pool
          -> c5_conv [c5_bn c5_act] -> flatten -> f6_dense [f6_dropout] -> predictions

``c1_conv``, ``c3_conv`` and ``c5_conv`` carry their activation themselves unless batch
normalisation is on; then the convolution is linear and ``cN_bn`` + ``cN_act`` follow it.
``predictions`` is a ``Dense`` layer with a softmax activation.

Parameter counts follow the paper (and seed 001, section 5.4): C1 has (5*5+1)*6 = 156, C3 (with
every S2 map connected to every C3 map, as the seed's "simplest" scheme) (5*5*6+1)*16 = 2416,
C5 is a convolution whose kernel covers the whole S4 map (5x5 for 28x28 or 32x32 inputs:
(5*5*16+1)*120 = 48120), F6 has 84 units. Deviations from the paper, as in today's tutorials:
S2/S4 are plain average (classic) or max (modern) pooling without trainable coefficients, and the
output is a softmax instead of Euclidean RBF units.
"""

from __future__ import annotations

import keras
from keras import layers

from ..registry import register_model

__all__ = ["lenet5", "lenet5_relu"]


@register_model("lenet5")
def lenet5(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    padding: str = "auto",
    activation: str = "tanh",
    pooling: str = "avg",
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> keras.Model:
    """Classic LeNet-5: tanh units and average pooling.

    Parameters
    ----------
    input_shape : (H, W, C)
        Image shape. 32x32 is the paper's size; 28x28 MNIST works through ``padding``.
    num_classes : int
        Units of the softmax ``predictions`` layer.
    include_top : bool
        Without the top the model ends at ``c5_conv``'s output (after its activation), shape
        (N, h, w, 120).
    padding : {"auto", "same", "valid"}
        ``"auto"``: C1 pads (``"same"``) when the image is smaller than 32x32 so a 28x28 MNIST
        digit reaches C5 as a 5x5 map, exactly like the paper's 32x32 input; C3 is ``"valid"``.
        ``"same"`` pads C1 and C3 (needed below 12x12, e.g. 8x8 digits); ``"valid"`` pads none.
    activation : str
        Activation of C1, C3, C5 and F6.
    pooling : {"avg", "max"}
        S2 and S4.
    batch_norm : bool
        Batch normalisation after each convolution (before its activation).
    dropout : float
        Dropout rate after F6 (0 = no dropout layer).

    Returns
    -------
    keras.Model
        Functional model named ``"lenet5"``.
    """
    return _build(
        "lenet5",
        input_shape,
        num_classes,
        include_top=include_top,
        padding=padding,
        activation=activation,
        pooling=pooling,
        batch_norm=batch_norm,
        dropout=dropout,
    )


@register_model("lenet5_relu")
def lenet5_relu(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    *,
    include_top: bool = True,
    padding: str = "auto",
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> keras.Model:
    """LeNet-5 with today's parts: ReLU units and max pooling (the layout of seeds 001 and 002).

    Same layers, names and parameter counts as :func:`lenet5`; see it for the options.
    With ``batch_norm=True``, ``dropout=0.25`` and shift augmentation it reaches 99.4% on MNIST
    in 15 epochs (``benchmarks/results/accuracy.md``).
    """
    return _build(
        "lenet5_relu",
        input_shape,
        num_classes,
        include_top=include_top,
        padding=padding,
        activation="relu",
        pooling="max",
        batch_norm=batch_norm,
        dropout=dropout,
    )


def _build(
    name,
    input_shape,
    num_classes,
    *,
    include_top,
    padding,
    activation,
    pooling,
    batch_norm,
    dropout,
) -> keras.Model:
    height, width, _ = _check(input_shape, padding, pooling, dropout)
    pads = _paddings(padding, height, width)
    pool = {"avg": layers.AveragePooling2D, "max": layers.MaxPooling2D}[pooling]
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = _conv(inputs, "c1", 6, 5, pads[0], activation, batch_norm)
    x = pool(2, name="s2_pool")(x)
    x = _conv(x, "c3", 16, 5, pads[1], activation, batch_norm)
    x = pool(2, name="s4_pool")(x)
    # C5 sees the whole S4 map, which makes it the paper's "convolutional" fully connected layer.
    x = _conv(x, "c5", 120, min(x.shape[1], x.shape[2]), "valid", activation, batch_norm)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(84, activation=activation, name="f6_dense")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name="f6_dropout")(x)
        x = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=name)


def _conv(x, prefix, filters, kernel, padding, activation, batch_norm):
    if not batch_norm:
        conv = layers.Conv2D(
            filters, kernel, padding=padding, activation=activation, name=f"{prefix}_conv"
        )
        return conv(x)
    # The bias stays (redundant before BN) so parameter counts match the paper's in every variant.
    x = layers.Conv2D(filters, kernel, padding=padding, name=f"{prefix}_conv")(x)
    # momentum 0.9 (Keras: 0.99) so the moving statistics settle within a short training run
    x = layers.BatchNormalization(momentum=0.9, name=f"{prefix}_bn")(x)
    return layers.Activation(activation, name=f"{prefix}_act")(x)


def _paddings(padding: str, height: int, width: int) -> tuple[str, str]:
    if padding == "auto":
        return ("same" if min(height, width) < 32 else "valid", "valid")
    return (padding, padding)


def _check(input_shape, padding, pooling, dropout) -> tuple[int, int, int]:
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    if padding not in ("auto", "same", "valid"):
        raise ValueError(f"padding must be 'auto', 'same' or 'valid', got {padding!r}")
    if pooling not in ("avg", "max"):
        raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    height, width, channels = (int(d) for d in input_shape)
    side = min(height, width)
    c1, c3 = _paddings(padding, height, width)
    # spatial size reaching S4's output: C1 (valid: -4), pool /2, C3 (valid: -4), pool /2
    after_c3 = (side - (4 if c1 == "valid" else 0)) // 2 - (4 if c3 == "valid" else 0)
    if after_c3 < 2:
        minimum = {"valid": 16, "same": 4, "auto": 12}[padding]
        raise ValueError(
            f"input_shape {tuple(input_shape)!r} is too small for LeNet-5 with padding={padding!r}: "
            f"needs at least {minimum}x{minimum}; use padding='same' for smaller images"
        )
    return height, width, channels
