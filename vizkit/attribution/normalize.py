"""Turning raw attributions into maps: channel reduction and display normalisation."""

from __future__ import annotations

import numpy as np

from ..core.checks import choice

REDUCTIONS = ("maxabs", "abs_mean", "sum", "none")


def reduce_channels(attributions: np.ndarray, how: str = "maxabs") -> np.ndarray:
    """Collapse the channel axis of ``(N, H, W, C)`` attributions.

    ``"maxabs"`` is the largest absolute value over channels (Simonyan et al., 2014),
    ``"abs_mean"`` the mean absolute value, ``"sum"`` the signed sum (keeps the completeness of
    integrated gradients), ``"none"`` returns the input unchanged.
    """
    choice(how, "reduce", REDUCTIONS)
    a = np.asarray(attributions, dtype=np.float32)
    if how == "none":
        return a
    if how == "maxabs":
        return _fold(np.abs(a), np.maximum)
    if how == "abs_mean":
        return _fold(np.abs(a), np.add) / np.float32(a.shape[-1])
    return _fold(a, np.add)


def _fold(a: np.ndarray, op) -> np.ndarray:
    """``op``-reduce the last axis channel by channel.

    NumPy reduces a short innermost axis (3 colour channels) element by element, about 50x
    slower than this elementwise loop over the channels.
    """
    out = np.array(a[..., 0], dtype=np.float32)
    for c in range(1, a.shape[-1]):
        op(out, a[..., c], out=out)
    return out


def normalize_map(
    maps: np.ndarray,
    *,
    absolute: bool = True,
    channels: str | None = "maxabs",
    clip_percentile: float | None = 99.5,
) -> np.ndarray:
    """Scale attribution maps to [0, 1] for display, one image at a time.

    Parameters
    ----------
    maps : ndarray
        ``(N, H, W)``, ``(H, W)``, or with a trailing channel axis ``(N, H, W, C)`` when
        ``channels`` is not None.
    absolute : bool
        True: show magnitudes, 0 -> 0 and the clip value -> 1. False: keep the sign,
        ``-clip`` -> 0, zero -> 0.5, ``+clip`` -> 1.
    channels : {"maxabs", "abs_mean", "sum"} or None
        How to collapse a channel axis first (None: ``maps`` has none).
    clip_percentile : float or None
        Percentile of the absolute values used as the top of the scale, so that a few extreme
        pixels do not wash out the rest (Smilkov et al., 2017 use 99th-percentile clipping);
        None or 100 uses the maximum.

    Returns
    -------
    ndarray, float32, the input's shape without the channel axis, values in [0, 1].
    """
    a = np.asarray(maps, dtype=np.float32)
    if channels is not None:
        if a.ndim not in (3, 4):
            raise ValueError(
                f"maps with channels must have shape (H, W, C) or (N, H, W, C), got {a.shape}"
            )
        a = reduce_channels(a, choice(channels, "channels", REDUCTIONS[:3]))
    if a.ndim not in (2, 3):
        raise ValueError(f"maps must have shape (H, W) or (N, H, W), got {a.shape}")
    if clip_percentile is not None and not 0 < clip_percentile <= 100:
        raise ValueError(f"clip_percentile must be in (0, 100] or None, got {clip_percentile!r}")
    single = a.ndim == 2
    batch = a[None] if single else a
    flat = np.abs(batch.reshape(len(batch), -1))
    top = np.percentile(flat, clip_percentile if clip_percentile else 100, axis=1)
    top = np.where(top > 0, top, 1.0).reshape(-1, 1, 1).astype(np.float32)
    if absolute:
        out = np.clip(np.abs(batch) / top, 0.0, 1.0)
    else:
        out = (np.clip(batch / top, -1.0, 1.0) + 1.0) / 2.0
    out = out.astype(np.float32)
    return out[0] if single else out
