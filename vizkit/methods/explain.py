"""One call for every explanation map: saliency variants, Grad-CAM (++) and occlusion by name.

The names are :data:`vizkit.registry.EXPLANATIONS`; the trust metrics, the report card and the
comparison grids iterate over them instead of keeping lists of their own.
"""

from __future__ import annotations

import keras
import numpy as np

from ..registry import explanation, method


def explain(model: keras.Model, images, name: str, target=None, **options) -> np.ndarray:
    """The ``(N, H, W)`` map of explanation method ``name`` for the target class.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like
        ``(N, H, W[, C])`` or one image (uint8 scaled to [0, 1], floats used as given).
    name : str
        A name from :data:`vizkit.registry.EXPLANATIONS`: ``"vanilla"``, ``"gradxinput"``,
        ``"smoothgrad"``, ``"integrated"``, ``"guided"``, ``"deconvnet"``, ``"gradcam"``,
        ``"gradcam++"`` or ``"occlusion"``.
    target : int, sequence of int or None
        Class per image; None explains each image's predicted class.
    **options
        Passed on to the method (e.g. ``layer=`` for Grad-CAM, ``patch=`` for occlusion).

    Returns
    -------
    ndarray, float32, ``(N, H, W)``: larger values mark more evidence for the class (saliency
    maps are the channel max of absolute attributions, Grad-CAM is in [0, 1], occlusion is the
    drop of the class score; pixels no occlusion window covers are NaN).

    Raises
    ------
    ValueError
        For an unknown ``name`` (the message lists the known ones) or bad arguments.
    """
    method_name, fixed = explanation(name)
    function = method(method_name).load()
    return np.asarray(function(model, images, target, **fixed, **options), dtype=np.float32)
