"""Pixel saliency: one entry point for every gradient attribution variant.

Each variant is one row of :data:`VARIANTS` (how to compute the raw ``(N, H, W, C)`` map, which
ReLU backward rule it traces with, which options it takes); its name is listed once, in
:data:`vizkit.registry.SALIENCY_VARIANTS`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from ..attribution.integrated import integrated_gradients, path_integral
from ..attribution.normalize import REDUCTIONS, reduce_channels
from ..attribution.smoothgrad import noisy_gradients, smooth_gradients
from ..attribution.vanilla import input_gradients, times_input
from ..core.checks import choice
from ..core.targets import Prepared, prepare
from ..registry import SALIENCY_VARIANTS


@dataclass(frozen=True)
class Variant:
    """How one saliency variant computes its raw signed ``(N, H, W, C)`` attributions.

    ``compute(model, prepared, **options)``; ``public`` is the variant's own function, whose
    signature gives the defaults of ``options``; ``relu`` is the backward rule for ReLUs.
    """

    compute: Callable[..., np.ndarray]
    options: tuple[str, ...] = ()
    public: Callable | None = None
    relu: str = "normal"

    def run(self, model: keras.Model, p: Prepared, options: dict) -> np.ndarray:
        if self.public is None:
            return self.compute(model, p)
        params = inspect.signature(self.public).parameters
        return self.compute(
            model, p, **{k: options.get(k, params[k].default) for k in self.options}
        )


def _integrated(model: keras.Model, p: Prepared, **options) -> np.ndarray:
    return path_integral(model, p, **options).attributions


VARIANTS: dict[str, Variant] = {
    "vanilla": Variant(input_gradients),
    "gradxinput": Variant(times_input),
    "smoothgrad": Variant(
        noisy_gradients, ("samples", "noise", "squared", "seed"), public=smooth_gradients
    ),
    "integrated": Variant(
        _integrated,
        ("baseline", "steps", "rule", "blur_sigma", "warn"),
        public=integrated_gradients,
    ),
    "guided": Variant(input_gradients, relu="guided"),
    "deconvnet": Variant(input_gradients, relu="deconv"),
}
if tuple(VARIANTS) != SALIENCY_VARIANTS:  # pragma: no cover - a developer error, caught by tests
    raise ImportError(f"saliency variants {tuple(VARIANTS)} differ from {SALIENCY_VARIANTS}")


def saliency(
    model: keras.Model,
    images,
    target=None,
    *,
    method: str = "vanilla",
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    reduce: str = "maxabs",
    **options,
) -> np.ndarray:
    """Attribution map of the target class score over the input pixels.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier (Sequential, functional or nested).
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1], floats are used as given.
    target : int, sequence of int or None
        Class per image (one int for all images); None uses each image's predicted class.
    method : str
        ``"vanilla"`` gradient (Simonyan et al., 2014); ``"gradxinput"`` gradient x input;
        ``"smoothgrad"`` (Smilkov et al., 2017; options ``samples=50``, ``noise=0.15``,
        ``squared=False``, ``seed=0``); ``"integrated"`` gradients (Sundararajan et al., 2017;
        options ``baseline="black"``, ``steps=50``, ``rule="gauss_legendre"``, ``blur_sigma``,
        ``warn=True``: warns when the completeness error exceeds 1 %, see
        :func:`integrated_gradients` for the error itself); ``"guided"`` backpropagation
        (Springenberg et al., 2015); ``"deconvnet"`` (Zeiler & Fergus, 2014).
    logits : bool
        Score the logit instead of the softmax probability when the model ends in a softmax
        (the model is never modified).
    preprocess : callable or None
        Applied to the images inside the graph before the model.
    batch_size : int or None
        Model inputs per compiled call (default 32, up to 128 for small images); noisy copies and path points count.
    reduce : {"maxabs", "abs_mean", "sum", "none"}
        How channels are collapsed: max of absolute values (the paper's choice), mean of
        absolute values, signed sum, or not at all.

    Returns
    -------
    ndarray, float32, ``(N, H, W)`` (``(N, H, W, C)`` with ``reduce="none"``); unnormalised:
    pass it to :func:`normalize_map` for display.

    Raises
    ------
    ValueError
        For an unknown method, reduction or option, a bad target, or images the model cannot
        take.
    """
    choice(method, "method", SALIENCY_VARIANTS)
    choice(reduce, "reduce", REDUCTIONS)
    variant = VARIANTS[method]
    unknown = sorted(set(options) - set(variant.options))
    if unknown:
        raise TypeError(
            f"saliency(method={method!r}) got unexpected options {unknown}; "
            f"it accepts {list(variant.options) or 'no extra options'}"
        )
    p = prepare(
        model,
        images,
        target,
        logits=logits,
        preprocess=preprocess,
        batch_size=batch_size,
        relu=variant.relu,
    )
    return reduce_channels(variant.run(model, p, options), reduce)
