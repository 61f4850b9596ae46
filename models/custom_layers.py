"""Serialisable custom layers of the model zoo (LRN, Maxout, Highway, scaled residual sums, and
the class token and learned position embedding of vision transformers).

Every layer here is registered with ``keras.saving.register_keras_serializable(package="models")``
and has a complete ``get_config``, so a model that uses it saves to ``.keras`` and reloads with
``safe_mode=True`` and no ``custom_objects`` (nothing here is a ``Lambda``).
"""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = [
    "ClassToken",
    "Highway",
    "LocalResponseNormalization",
    "Maxout",
    "PositionEmbedding",
    "ScaledResidual",
]


@keras.saving.register_keras_serializable(package="models")
class LocalResponseNormalization(layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al., 2012, section 3.3).

    ``y_c = x_c / (bias + alpha * sum_{j=c-r}^{c+r} x_j**2) ** beta`` with the sum running over
    the ``2 * depth_radius + 1`` neighbouring channels that exist (the same formula as
    ``tf.nn.local_response_normalization``; note that ``alpha`` is *not* divided by the window).
    AlexNet used ``depth_radius=2, bias=2, alpha=1e-4, beta=0.75``.
    """

    def __init__(
        self,
        depth_radius: int = 2,
        bias: float = 2.0,
        alpha: float = 1e-4,
        beta: float = 0.75,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(depth_radius) < 0:
            raise ValueError(f"depth_radius must be >= 0, got {depth_radius!r}")
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        r = self.depth_radius
        channels = inputs.shape[-1]
        squared = ops.square(inputs)
        rank = len(inputs.shape)
        padded = ops.pad(squared, [[0, 0]] * (rank - 1) + [[r, r]])
        # A sum of 2r+1 shifted slices: exact, cheap for the small radii LRN uses, any backend.
        window = padded[..., 0:channels]
        for shift in range(1, 2 * r + 1):
            window = window + padded[..., shift : shift + channels]
        return inputs / ops.power(self.bias + self.alpha * window, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


@keras.saving.register_keras_serializable(package="models")
class Maxout(layers.Layer):
    """Maxout activation (Goodfellow et al., 2013): the max over groups of ``num_pieces`` units.

    The last axis of size ``C`` is split into ``C // num_pieces`` groups of consecutive units;
    output unit ``i`` is ``max(x[..., i*k : (i+1)*k])``. Put it after a ``Dense`` or ``Conv2D``
    with ``units * num_pieces`` outputs.
    """

    def __init__(self, num_pieces: int = 2, **kwargs):
        super().__init__(**kwargs)
        if int(num_pieces) < 1:
            raise ValueError(f"num_pieces must be >= 1, got {num_pieces!r}")
        self.num_pieces = int(num_pieces)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.num_pieces:
            raise ValueError(
                f"Maxout needs a last axis divisible by num_pieces={self.num_pieces}, "
                f"got input shape {tuple(input_shape)}"
            )
        super().build(input_shape)

    def call(self, inputs):
        channels = inputs.shape[-1]
        dynamic = ops.shape(inputs)
        grouped_shape = (*dynamic[:-1], channels // self.num_pieces, self.num_pieces)
        return ops.max(ops.reshape(inputs, grouped_shape), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.num_pieces)

    def get_config(self):
        return {**super().get_config(), "num_pieces": self.num_pieces}


@keras.saving.register_keras_serializable(package="models")
class Highway(layers.Layer):
    """Highway layer (Srivastava et al., 2015): ``y = H(x) * T(x) + x * (1 - T(x))``.

    ``H`` is an affine map plus ``activation``; ``T = sigmoid(.)`` is the transform gate and
    ``1 - T`` the carry gate. With ``kernel_size=None`` both are dense maps over the last axis;
    with an int they are ``'same'``-padded 2D convolutions (a convolutional highway layer), so
    the output has the input's shape. ``transform_bias`` (negative) makes the layer start close
    to the identity, as the paper recommends (-1 to -3).
    """

    def __init__(
        self,
        kernel_size: int | None = None,
        activation: str = "relu",
        transform_bias: float = -2.0,
        kernel_initializer: str = "he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel_size is not None and int(kernel_size) < 1:
            raise ValueError(f"kernel_size must be None or >= 1, got {kernel_size!r}")
        self.kernel_size = None if kernel_size is None else int(kernel_size)
        self.activation = keras.activations.get(activation)
        self.transform_bias = float(transform_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        units = int(input_shape[-1])
        shape = (units, units)
        if self.kernel_size is not None:
            shape = (self.kernel_size, self.kernel_size, units, units)
        self.h_kernel = self.add_weight(
            name="h_kernel", shape=shape, initializer=self.kernel_initializer
        )
        self.h_bias = self.add_weight(name="h_bias", shape=(units,), initializer="zeros")
        self.t_kernel = self.add_weight(
            name="t_kernel", shape=shape, initializer=self.kernel_initializer
        )
        self.t_bias = self.add_weight(
            name="t_bias",
            shape=(units,),
            initializer=keras.initializers.Constant(self.transform_bias),
        )

    def _affine(self, x, kernel, bias):
        if self.kernel_size is None:
            return ops.matmul(x, kernel) + bias
        return ops.conv(x, kernel, strides=1, padding="same") + bias

    def call(self, inputs):
        h = self.activation(self._affine(inputs, self.h_kernel, self.h_bias))
        t = ops.sigmoid(self._affine(inputs, self.t_kernel, self.t_bias))
        # x + T (H - x) == H T + x (1 - T), one multiply fewer.
        return inputs + t * (h - inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "activation": keras.activations.serialize(self.activation),
            "transform_bias": self.transform_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="models")
class ScaledResidual(layers.Layer):
    """``shortcut + scale * residual`` for inputs ``[shortcut, residual]`` of equal shape.

    Szegedy et al. (2016) scale the residual of Inception-ResNet blocks by 0.1-0.3 to keep very
    wide residual networks stable; a layer (not a ``Lambda``) so that models load in safe mode.
    """

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + self.scale * residual

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="models")
class ClassToken(layers.Layer):
    """Prepend ``count`` learned tokens to a ``(N, T, D)`` sequence -> ``(N, count + T, D)``.

    The class token of ViT (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words"); with
    ``count=2`` the class and distillation tokens of DeiT. Initialised to zeros, as in the paper's
    reference code.
    """

    def __init__(self, count: int = 1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(count, bool) or int(count) < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        self.count = int(count)

    def build(self, input_shape):
        self.token = self.add_weight(
            name="token", shape=(1, self.count, int(input_shape[-1])), initializer="zeros"
        )

    def call(self, inputs):
        batch = ops.shape(inputs)[0]
        tokens = ops.broadcast_to(
            ops.cast(self.token, inputs.dtype), (batch, *self.token.shape[1:])
        )
        return ops.concatenate([tokens, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + self.count
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package="models")
class PositionEmbedding(layers.Layer):
    """Add a learned position embedding ``(T, D)`` to a ``(N, T, D)`` token sequence.

    ViT's 1-D learned position embedding (Dosovitskiy et al., 2021, section 3.1), initialised
    from a truncated normal with standard deviation ``stddev`` (0.02 in the reference code).
    """

    def __init__(self, stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        if not float(stddev) >= 0:
            raise ValueError(f"stddev must be >= 0, got {stddev!r}")
        self.stddev = float(stddev)

    def build(self, input_shape):
        if input_shape[1] is None:
            raise ValueError(
                f"PositionEmbedding needs a fixed number of tokens, got input shape {input_shape}"
            )
        self.embedding = self.add_weight(
            name="embedding",
            shape=(int(input_shape[1]), int(input_shape[2])),
            initializer=keras.initializers.TruncatedNormal(stddev=self.stddev),
        )

    def call(self, inputs):
        return inputs + ops.cast(self.embedding, inputs.dtype)[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}
