"""Image parametrisations: what the optimiser actually changes, and how it maps to an image.

A parametrisation owns a tensor of parameters and maps it to images in [0, 1] (the optimisation
core then scales them to the model's input range). ``pixel`` optimises pixels directly;
``fourier`` optimises a 1/f-scaled spectrum with decorrelated colours, which equalises the
gradient over frequencies and gives far less high-frequency noise (Olah et al., 2017, "Feature
Visualization", Distill, section "Preconditioning and Parameterization"; lucid's
``param.spatial.fft_image`` and ``param.color``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

SQUASHES = ("sigmoid", "clip")

# Square root of the colour correlation of natural (ImageNet) images, from lucid's
# ``param.color``: a published constant, turning independent parameters into correlated RGB.
_COLOR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64
)
_COLOR_SQRT /= np.max(np.linalg.norm(_COLOR_SQRT, axis=0))
_EPS = 1e-4


@dataclass(frozen=True)
class _Param:
    sd: float = 0.01
    squash: str = "sigmoid"

    def __post_init__(self) -> None:
        if self.squash not in SQUASHES:
            raise ValueError(f"squash must be one of {SQUASHES}, got {self.squash!r}")
        if not (isinstance(self.sd, (int, float)) and self.sd >= 0):
            raise ValueError(f"sd must be a non-negative float, got {self.sd!r}")

    def init(self, keys, shape: tuple[int, int, int], seed: int) -> np.ndarray:
        """Random parameters for one image per key, of ``shape = (H, W, C)``.

        Image ``i`` is drawn from a generator seeded by ``(seed, *keys[i])`` (a key is an int or
        a tuple of ints), so it does not depend on which other images share the batch.
        """
        pshape = self.param_shape(shape)
        draws = [
            np.random.default_rng([seed, *np.atleast_1d(k).tolist()]).standard_normal(pshape)
            for k in keys
        ]
        return (np.stack(draws) * self.sd).astype(np.float32)

    def _squash(self, x: tf.Tensor) -> tf.Tensor:
        # Sigmoid keeps a gradient everywhere; clipping is the identity inside the range.
        return tf.sigmoid(x) if self.squash == "sigmoid" else tf.clip_by_value(x + 0.5, 0.0, 1.0)

    def _unsquash(self, images: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(images, np.float64), _EPS, 1.0 - _EPS)
        return np.log(x / (1.0 - x)) if self.squash == "sigmoid" else x - 0.5


@dataclass(frozen=True)
class Pixel(_Param):
    """One parameter per pixel and channel."""

    def param_shape(self, shape: tuple[int, int, int]) -> tuple[int, ...]:
        return tuple(shape)

    def to_image(self, params: tf.Tensor, shape: tuple[int, int, int]) -> tf.Tensor:
        """Images ``(N, H, W, C)`` in [0, 1]."""
        return self._squash(params)

    def inverse(self, images: np.ndarray) -> np.ndarray:
        """Parameters that map to ``images`` ``(N, H, W, C)`` in (0, 1)."""
        return self._unsquash(images).astype(np.float32)


@dataclass(frozen=True)
class Fourier(_Param):
    """A real spectrum per channel, scaled by ``1 / f**decay_power``, with decorrelated colour.

    Parameters have shape ``(C, H, W // 2 + 1, 2)`` per image (real and imaginary parts).
    Colour decorrelation applies to 3-channel images only.
    """

    decay_power: float = 1.0
    decorrelate: bool = True

    def param_shape(self, shape: tuple[int, int, int]) -> tuple[int, ...]:
        h, w, c = shape
        return (c, h, w // 2 + 1, 2)

    def to_image(self, params: tf.Tensor, shape: tuple[int, int, int]) -> tf.Tensor:
        """Images ``(N, H, W, C)`` in [0, 1]."""
        h, w, c = shape
        spectrum = tf.complex(params[..., 0], params[..., 1]) * tf.cast(
            freq_scale(h, w, self.decay_power), tf.complex64
        )
        # The scale keeps the spatial image's variance independent of its size.
        spatial = tf.signal.irfft2d(spectrum, fft_length=[h, w])  # (N, C, H, W)
        image = tf.transpose(spatial, (0, 2, 3, 1)) / 4.0
        if self._colours(c):
            image = tf.tensordot(image, tf.constant(_COLOR_SQRT.T, tf.float32), 1)
        return self._squash(image)

    def inverse(self, images: np.ndarray) -> np.ndarray:
        """Parameters that map to ``images`` ``(N, H, W, C)`` in (0, 1) (up to rounding)."""
        images = np.asarray(images, np.float64)
        _, h, w, c = images.shape
        x = self._unsquash(images)
        if self._colours(c):
            x = x @ np.linalg.inv(_COLOR_SQRT.T)
        spectrum = np.fft.rfft2(np.transpose(x * 4.0, (0, 3, 1, 2)), s=(h, w))
        spectrum /= freq_scale(h, w, self.decay_power)
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)

    def _colours(self, channels: int) -> bool:
        return self.decorrelate and channels == 3


def freq_scale(h: int, w: int, decay_power: float) -> np.ndarray:
    """``(H, W // 2 + 1)`` amplitude scale: 1/f, the zero frequency clamped to 1/max(H, W)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power
    return (scale * np.sqrt(h * w)).astype(np.float32)


def pixel(*, sd: float = 0.01, squash: str = "sigmoid") -> Pixel:
    """Pixel parametrisation; ``squash`` maps parameters to [0, 1] ("sigmoid" or "clip")."""
    return Pixel(sd=float(sd), squash=squash)


def fourier(
    *, sd: float = 0.01, decay_power: float = 1.0, decorrelate: bool = True, squash: str = "sigmoid"
) -> Fourier:
    """Decorrelated Fourier parametrisation (1/f frequency scaling, colour decorrelation)."""
    return Fourier(
        sd=float(sd), squash=squash, decay_power=float(decay_power), decorrelate=bool(decorrelate)
    )


def get_param(spec) -> Pixel | Fourier:
    """``"pixel"``, ``"fourier"`` or a parametrisation object -> a parametrisation object."""
    if isinstance(spec, (Pixel, Fourier)):
        return spec
    if spec == "pixel":
        return pixel()
    if spec == "fourier":
        return fourier()
    raise ValueError(f"param must be 'fourier', 'pixel' or a parametrisation object, got {spec!r}")
