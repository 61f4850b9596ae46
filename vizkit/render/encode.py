"""Encoding pictures: PNG bytes and thumbnails (OpenCV, no matplotlib)."""

from __future__ import annotations

import cv2
import numpy as np


def png_thumbnail(png: bytes, size: int) -> bytes:
    """A PNG no larger than ``size`` pixels on its longest side (area-averaged) from PNG bytes."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    scale = size / max(image.shape[:2])
    if scale < 1:
        shape = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, shape, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return encoded.tobytes()
