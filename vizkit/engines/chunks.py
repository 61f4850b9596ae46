"""The unit of work of a dataset job: a chunk of consecutive images at a fixed place in the data.

Chunk ``c`` holds the images ``[c * B, min((c + 1) * B, N))`` of the stream, ``B`` the chunk
size. Every engine cuts the data at the same places, whatever the source hands out (an iterable
yielding batches of 10 is re-cut into chunks of ``B``), so each chunk's partial result is
computed on the same images by the same compiled call in every engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..core.sources import Source


@dataclass(frozen=True)
class Chunk:
    """Images ``start .. start + n - 1`` of the data, fitted to the model.

    Attributes
    ----------
    index : int
        Chunk number ``c`` (``start == c * chunk_size``).
    start : int
        Global index of the first image.
    images : ndarray, float32, shape (n, H, W, C)
        As the model takes them (uint8 scaled to [0, 1], channels matched).
    ids : tuple of str
        One stable name per image (file path relative to its folder, or the padded index).
    labels : ndarray or None
        One label per image when the source has them (``(x, y)`` batches, a label column).
    """

    index: int
    start: int
    images: np.ndarray
    ids: tuple[str, ...]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)


def chunk_count(count: int, chunk_size: int) -> int:
    """How many chunks ``count`` images make."""
    return -(-int(count) // int(chunk_size))


def iter_chunks(source: Source, model, chunk_size: int, *, name: str = "data") -> Iterator[Chunk]:
    """Cut ``source`` into :class:`Chunk` objects of ``chunk_size`` images (the last may be
    shorter), each converted with :func:`vizkit.core.images.to_batch`.

    Batches the source hands out are re-cut at multiples of ``chunk_size`` (arrays and files
    already come cut there; iterables and ``tf.data`` may not). A chunk carries labels when
    every batch it was cut from had them.
    """
    from ..core.images import to_batch

    images: list[np.ndarray] = []
    labels: list[np.ndarray | None] = []
    ids: list[str] = []
    held = 0
    start = 0
    for batch in source:
        if len(batch) == 0:
            continue
        images.append(to_batch(batch.images, model, name=name, allow_empty=True))
        labels.append(None if batch.labels is None else np.asarray(batch.labels))
        ids.extend(batch.ids)
        held += len(batch)
        while held >= chunk_size:
            block, tags = _joined(images), _joined(labels)
            yield Chunk(start // chunk_size, start, block[:chunk_size], tuple(ids[:chunk_size]),
                        None if tags is None else tags[:chunk_size])  # fmt: skip
            images, ids = [block[chunk_size:]], ids[chunk_size:]
            labels = [None if tags is None else tags[chunk_size:]]
            held -= chunk_size
            start += chunk_size
    if held:
        yield Chunk(start // chunk_size, start, _joined(images), tuple(ids), _joined(labels))


def _joined(parts: list) -> np.ndarray | None:
    """The parts end to end; None if any part is None (labels missing somewhere)."""
    if any(p is None for p in parts):
        return None
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
