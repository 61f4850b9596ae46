"""Gradient attribution: which pixels the class score depends on.

:func:`saliency` is the one entry point (``vizkit.saliency``); each method also has its own
function returning the raw signed ``(N, H, W, C)`` attributions, and :func:`normalize_map`
scales any map to [0, 1] for display.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import keras
import numpy as np

from ..core.checks import choice
from ..core.targets import prepare
from .guided import deconvnet, guided_backprop
from .integrated import IntegratedGradients, integrated_gradients, path_integral
from .normalize import REDUCTIONS, normalize_map, reduce_channels
from .smoothgrad import noisy_gradients, smooth_gradients
from .vanilla import gradient_x_input, input_gradients, times_input, vanilla_gradients

__all__ = [
    "METHODS",
    "IntegratedGradients",
    "deconvnet",
    "gradient_x_input",
    "guided_backprop",
    "integrated_gradients",
    "normalize_map",
    "reduce_channels",
    "saliency",
    "smooth_gradients",
    "vanilla_gradients",
]

METHODS = ("vanilla", "gradxinput", "smoothgrad", "integrated", "guided", "deconvnet")
# Options each method accepts besides the common ones (logits, preprocess, batch_size).
_OPTIONS = {
    "vanilla": (),
    "gradxinput": (),
    "smoothgrad": ("samples", "noise", "squared", "seed"),
    "integrated": ("baseline", "steps", "rule", "blur_sigma", "warn"),
    "guided": (),
    "deconvnet": (),
}


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
        Model inputs per compiled call (default 32); noisy copies and path points count.
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
    choice(method, "method", METHODS)
    choice(reduce, "reduce", REDUCTIONS)
    unknown = sorted(set(options) - set(_OPTIONS[method]))
    if unknown:
        raise TypeError(
            f"saliency(method={method!r}) got unexpected options {unknown}; "
            f"it accepts {list(_OPTIONS[method]) or 'no extra options'}"
        )
    relu = {"guided": "guided", "deconvnet": "deconv"}.get(method, "normal")
    p = prepare(
        model,
        images,
        target,
        logits=logits,
        preprocess=preprocess,
        batch_size=batch_size,
        relu=relu,
    )
    return reduce_channels(_raw(model, p, method, options), reduce)


def _raw(model: keras.Model, p, method: str, options: dict) -> np.ndarray:
    if method == "gradxinput":
        return times_input(model, p)
    if method == "smoothgrad":
        return noisy_gradients(model, p, **_with_defaults(smooth_gradients, method, options))
    if method == "integrated":
        opts = _with_defaults(integrated_gradients, method, options)
        return path_integral(model, p, **opts).attributions
    return input_gradients(model, p)


def _with_defaults(public: Callable, method: str, options: dict) -> dict:
    """``options`` completed with the defaults of the method's public function."""
    params = inspect.signature(public).parameters
    return {name: options.get(name, params[name].default) for name in _OPTIONS[method]}
