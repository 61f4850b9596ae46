"""Gradient attribution: which pixels the class score depends on.

:func:`vizkit.saliency` (:mod:`vizkit.methods.saliency`) is the one entry point; each variant
also has its own function here returning the raw signed ``(N, H, W, C)`` attributions, and
:func:`normalize_map` scales any map to [0, 1] for display.
"""

from __future__ import annotations

from ..registry import SALIENCY_VARIANTS as METHODS
from .guided import deconvnet, guided_backprop
from .integrated import IntegratedGradients, integrated_gradients, path_integral
from .normalize import REDUCTIONS, normalize_map, reduce_channels
from .smoothgrad import noisy_gradients, smooth_gradients
from .vanilla import gradient_x_input, input_gradients, times_input, vanilla_gradients

__all__ = [
    "METHODS",
    "REDUCTIONS",
    "IntegratedGradients",
    "deconvnet",
    "gradient_x_input",
    "guided_backprop",
    "input_gradients",
    "integrated_gradients",
    "noisy_gradients",
    "normalize_map",
    "path_integral",
    "reduce_channels",
    "saliency",
    "smooth_gradients",
    "times_input",
    "vanilla_gradients",
]


def __getattr__(name: str):
    # The entry point lives in vizkit.methods.saliency, which imports this package's modules.
    if name == "saliency":
        from ..methods.saliency import saliency

        return saliency
    raise AttributeError(f"module 'vizkit.attribution' has no attribute {name!r}")
