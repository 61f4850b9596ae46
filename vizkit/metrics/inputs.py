"""What every trust metric validates: attribution maps, baselines and the explanation to test.

The explanation methods themselves are not listed here: names come from
:data:`vizkit.registry.EXPLANATIONS` and maps from :func:`vizkit.explain`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from ..attribution.integrated import make_baseline
from ..core.graph import check_batch_size
from ..core.images import as_array
from ..registry import EXPLANATIONS, explanation

#: ``f(model, images (N, H, W, C) float32, targets (N,) int32) -> maps (N, H, W)``.
MapFunction = Callable[[keras.Model, np.ndarray, np.ndarray], np.ndarray]


def check_attributions(attributions, x: np.ndarray, name: str = "attributions") -> np.ndarray:
    """``attributions`` as ``(N, H, W)`` float64 maps matching the image batch ``x``.

    ``(N, H, W, C)`` attributions are averaged over channels (the deletion convention of
    Petsiuk et al., 2018); ``(N, H, W)`` maps are used as they are. NaN (pixels a method did not
    cover, e.g. occlusion with ``stride > patch``) is kept for the caller to handle.

    Raises
    ------
    ValueError
        When the shape does not match the images; the message gives both shapes.
    """
    arr = as_array(attributions, name).astype(np.float64)
    n, h, w = x.shape[:3]
    if arr.ndim == 4 and arr.shape[:3] == (n, h, w):
        arr = arr.mean(axis=-1)
    if arr.shape != (n, h, w):
        raise ValueError(
            f"{name} must have shape (N, H, W) = {(n, h, w)} or (N, H, W, C) matching the "
            f"images {x.shape}, got {arr.shape}"
        )
    if np.isinf(arr).any():
        raise ValueError(
            f"{name} contains infinite values; only finite values (or NaN) are allowed"
        )
    return arr


def check_baseline(baseline, x: np.ndarray, blur_sigma: float | None = None) -> np.ndarray:
    """The baseline batch for ``x``: a number, ``"blur"``, one image or one image per image.

    Arrays are in the scale the model sees (uint8 images are scaled to [0, 1] first; a uint8
    baseline is scaled the same way).

    Raises
    ------
    ValueError
        For anything else, naming what is allowed and the shapes that fit.
    """
    h, w, c = x.shape[1:]
    allowed = (
        f"baseline must be a number, 'blur', an image of shape (H, W, C) = {(h, w, c)} "
        f"(or (H, W) = {(h, w)} for one channel) or one image per image {x.shape}"
    )
    if isinstance(baseline, str):
        if baseline != "blur":
            raise ValueError(f"{allowed}; got {baseline!r}")
        return make_baseline("blur", x, blur_sigma)
    if isinstance(baseline, bool) or baseline is None:
        raise ValueError(f"{allowed}; got {baseline!r}")
    arr = as_array(baseline, "baseline")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if arr.ndim == 2 and c == 1:
        arr = arr[..., None]
    if arr.ndim not in (0, 3, 4) or (arr.ndim == 3 and arr.shape != (h, w, c)):
        raise ValueError(f"{allowed}; got an array of shape {arr.shape}")
    if arr.ndim == 4 and arr.shape != x.shape:
        raise ValueError(f"{allowed}; got an array of shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("baseline must be finite, got NaN or infinite values")
    return np.ascontiguousarray(np.broadcast_to(arr, x.shape), dtype=np.float32)


@dataclass(frozen=True)
class Explainer:
    """An explanation method to test: a name of :data:`~vizkit.registry.EXPLANATIONS` (computed
    with :func:`vizkit.explain` and ``options``) or the caller's own map function."""

    name: str
    function: MapFunction | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, model: keras.Model, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` float32 maps of ``x`` for ``targets`` (channels averaged if any)."""
        if self.function is not None:
            maps = np.asarray(self.function(model, x, targets), dtype=np.float32)
        else:
            from ..methods.explain import explain

            maps = explain(model, x, self.name, targets, **self.options)
        if maps.ndim == 4 and maps.shape[:3] == x.shape[:3]:
            maps = maps.mean(axis=-1)
        if maps.shape != x.shape[:3]:
            raise ValueError(
                f"explanation {self.name!r} returned maps of shape {maps.shape}; expected "
                f"(N, H, W) = {x.shape[:3]}"
            )
        return maps


def explainer(
    method, options: Mapping[str, Any] | None = None, batch_size: int | None = None
) -> Explainer:
    """``method`` (an :data:`~vizkit.registry.EXPLANATIONS` name or a callable
    ``f(model, images, targets) -> (N, H, W)``) as an :class:`Explainer`.

    ``batch_size`` (None: the method's default) joins ``options`` unless they set their own;
    an :class:`Explainer` is returned as it is.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or a bad ``batch_size``.
    """
    if isinstance(method, Explainer):
        return method
    if batch_size is not None:
        options = {"batch_size": check_batch_size(batch_size), **(options or {})}
    if callable(method) and not isinstance(method, str):
        return Explainer(getattr(method, "__name__", "custom"), method, dict(options or {}))
    if not isinstance(method, str) or method not in EXPLANATIONS:
        explanation(method if isinstance(method, str) else repr(method))  # raises, listing names
    return Explainer(method, None, dict(options or {}))
