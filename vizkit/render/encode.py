"""Encoding pictures: PNG bytes and thumbnails (OpenCV, no matplotlib).

OpenCV releases the GIL while it resizes and encodes, so these run in parallel in threads.
"""

from __future__ import annotations

import cv2
import numpy as np

# zlib level 1, Huffman coding only, the "sub" row filter: about 4x faster than OpenCV's defaults
# (level 3, adaptive filters) on heat maps and overlays, for files a few % larger.
PNG_COMPRESSION = 1
_PNG_FAST = [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.10
    _PNG_FAST += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]


def encode_png(pixels: np.ndarray, *, compression: int = PNG_COMPRESSION) -> bytes:
    """PNG bytes of ``pixels``: ``(H, W, 3)`` RGB or ``(H, W)`` gray, uint8."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(
            f"pixels must be uint8 (H, W) or (H, W, 3), got {arr.dtype} of shape {arr.shape}"
        )
    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(compression), *_PNG_FAST]
    ok, encoded = cv2.imencode(".png", bgr, params)
    if not ok:
        raise ValueError(f"could not encode a {arr.shape} image as PNG")
    return encoded.tobytes()


IMAGE_FORMATS = ("png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp")


def encode_image(pixels: np.ndarray, fmt: str) -> bytes:
    """``pixels`` (RGB uint8) as an image file of format ``fmt`` (one of :data:`IMAGE_FORMATS`)."""
    fmt = str(fmt).lower().lstrip(".")
    if fmt == "png":
        return encode_png(pixels)
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"image format must be one of {IMAGE_FORMATS}, got {fmt!r}")
    arr = np.asarray(pixels)
    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
    ok, encoded = cv2.imencode(f".{fmt}", bgr)
    if not ok:
        raise ValueError(f"could not encode a {arr.shape} image as {fmt}")
    return encoded.tobytes()


def shrink(pixels: np.ndarray, size: int) -> np.ndarray:
    """``pixels`` scaled down (area-averaged) so that the longest side is at most ``size``."""
    scale = size / max(pixels.shape[:2])
    if scale >= 1:
        return pixels
    shape = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    return cv2.resize(pixels, shape, interpolation=cv2.INTER_AREA)


def png_thumbnail(png: bytes, size: int) -> bytes:
    """A PNG no larger than ``size`` pixels on its longest side (area-averaged) from PNG bytes."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("could not decode the image to make a thumbnail")
    ok, encoded = cv2.imencode(".png", shrink(image, size))
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return encoded.tobytes()
