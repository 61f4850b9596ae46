"""Where images come from: arrays, image files, folders, generators, ``tf.data`` and Ray datasets.

:func:`open_source` turns whatever a user passes as ``images`` / ``data`` into a
:class:`Source`: an iterable of :class:`Batch` objects of at most ``batch_size`` images, each
image with a stable id (the file's path relative to its folder, or its index) and, where the
source has them, a label. Nothing holds the whole dataset in memory: files are read batch by
batch, arrays are sliced, iterators are consumed as they come. TensorFlow and Ray are never
imported here; their datasets are recognised by type name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checks import positive_int

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


@dataclass(frozen=True)
class Batch:
    """A chunk of images from a source.

    Attributes
    ----------
    images : ndarray, shape (n, H, W[, C])
        As the source holds them: uint8 or float (files are read as float32 in [0, 1]).
    ids : tuple of str
        One stable name per image: the file path relative to the folder (without suffix) for
        files, ``"000042"``-style zero-padded indices otherwise.
    labels : ndarray or None
        One label per image when the source has them (``(x, y)`` tuples, label columns).
    start : int
        Position of the first image in the whole stream.
    """

    images: np.ndarray
    ids: tuple[str, ...]
    labels: np.ndarray | None
    start: int

    def __len__(self) -> int:
        return len(self.images)


class Source:
    """An iterable of :class:`Batch`; ``count`` is the number of images when it is known."""

    def __init__(
        self,
        chunks: Iterable,
        *,
        count: int | None,
        kind: str,
        batch_size: int,
        array: np.ndarray | None = None,
        files: Sequence[Path] | None = None,
        ids: Sequence[str] | None = None,
    ):
        self._chunks = chunks
        self.count = count
        self.kind = kind
        self.batch_size = batch_size
        # What distributed engines hand to their workers instead of the batches: the whole
        # array (kind "array"), or the image files and their ids (kinds "folder" and "files").
        self.array = array
        self.files = None if files is None else list(files)
        self.ids = None if ids is None else list(ids)

    def __iter__(self) -> Iterator[Batch]:
        start = 0
        for images, ids, labels in self._chunks():
            images = as_image_batch(np.asarray(images))
            for lo in range(0, len(images), self.batch_size):
                hi = min(lo + self.batch_size, len(images))
                names = tuple(ids[lo:hi]) if ids is not None else None
                if names is None:
                    names = tuple(index_id(start + i, self.count) for i in range(hi - lo))
                part = None if labels is None else np.asarray(labels)[lo:hi]
                yield Batch(images[lo:hi], names, part, start)
                start += hi - lo

    def __repr__(self) -> str:
        count = "unknown" if self.count is None else self.count
        return f"Source(kind={self.kind!r}, count={count}, batch_size={self.batch_size})"


def open_source(
    data,
    *,
    batch_size: int = 32,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    name: str = "images",
) -> Source:
    """A :class:`Source` over ``data``.

    Parameters
    ----------
    data
        An array ``(N, H, W[, C])`` (or one image); a folder of image files (searched
        recursively, sorted by path); a list of image file paths; a ``tf.data.Dataset`` (batched
        or not, yielding ``x``, ``(x, y, ...)`` or dicts with an ``"image"`` key); a
        ``ray.data.Dataset`` (column ``"image"`` or its first column, ``"label"`` if present);
        or any other iterable of batches ``x`` or ``(x, y, ...)``.
    batch_size : int
        Images per :class:`Batch`.
    size : (height, width) or None
        Files are resized to this size (area interpolation); None keeps each file's size.
    channels : 1, 3 or None
        Files are converted to luminance (1) or RGB (3); None keeps what the file holds.
    name : str
        What to call ``data`` in error messages (``"images"``, ``"data"``).

    Raises
    ------
    ValueError
        For a folder with no image files, a file that is not an image, an empty array.
    TypeError
        For anything that is none of the above.
    FileNotFoundError
        For a path that does not exist.
    """
    size_ = positive_int(batch_size, "batch_size")
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        if path.is_dir():
            return _files(image_files(path), size_, size, channels, "folder", root=path)
        if path.is_file():
            return _files([path], size_, size, channels, "files")
        raise FileNotFoundError(f"{name}: no image file or folder at {str(path)!r}")
    if _is_path_list(data):
        paths = [Path(p).expanduser() for p in data]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{name}: no image file at {missing[0]!r}")
        return _files(paths, size_, size, channels, "files")
    module = type(data).__module__
    if module.startswith("ray.data"):
        return _ray(data, size_)
    if module.startswith("tensorflow") and hasattr(data, "element_spec"):
        return _tf_data(data, size_)
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        return _array(np.asarray(data), size_, name)
    if isinstance(data, Iterable) and not isinstance(data, (bytes, dict)):
        return Source(lambda: (_split(item) for item in data), count=None, kind="iterable",
                      batch_size=size_)  # fmt: skip
    raise TypeError(
        f"{name} must be an image array, a folder or list of image files, a tf.data or "
        f"ray.data Dataset, or an iterable of batches; got {type(data).__name__}"
    )


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden files skipped), sorted by path."""
    root = Path(folder)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise ValueError(f"folder {str(root)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_image(
    path: str | os.PathLike, *, size: tuple[int, int] | None = None, channels: int | None = None
) -> np.ndarray:
    """One image file as float32 ``(H, W, C)`` in [0, 1], RGB order.

    16-bit files are scaled by 65535; an alpha channel is dropped; ``size`` resizes with area
    interpolation; ``channels`` converts to luminance (1) or repeats gray (3).
    """
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read {str(path)!r} as an image (png, jpg, bmp, tif, webp)")
    scale = float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else 1.0
    if image.ndim == 3 and image.shape[2] >= 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    elif image.ndim == 3:
        image = image[..., 0]
    if size is not None and image.shape[:2] != tuple(size):
        image = cv2.resize(image, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    image = image.astype(np.float32) / scale
    image = image if image.ndim == 3 else image[..., None]
    if channels == 1 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    elif channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def index_id(index: int, count: int | None = None) -> str:
    """``"000042"``: an image index padded to the width of ``count`` (at least 3 digits)."""
    width = max(3, len(str(max(0, (count or 0) - 1))))
    return f"{index:0{width}d}"


# -- kinds ----------------------------------------------------------------------------------------
def _files(paths: Sequence[Path], batch_size, size, channels, kind, root: Path | None = None):
    base = root if root is not None else None
    ids = [_file_id(p, base) for p in paths]

    def chunks():
        for lo in range(0, len(paths), batch_size):
            group = paths[lo : lo + batch_size]
            images = [read_image(p, size=size, channels=channels) for p in group]
            shapes = {im.shape for im in images}
            if len(shapes) > 1:
                raise ValueError(
                    f"image files have different sizes {sorted(shapes)}; pass a size to resize "
                    "them (the command line resizes to the model's input)"
                )
            yield np.stack(images), ids[lo : lo + batch_size], None

    return Source(chunks, count=len(paths), kind=kind, batch_size=batch_size, files=paths, ids=ids)


def _file_id(path: Path, root: Path | None) -> str:
    rel = path.relative_to(root) if root is not None else Path(path.name)
    return rel.with_suffix("").as_posix()


def as_image_batch(arr: np.ndarray) -> np.ndarray:
    """``arr`` with a batch axis: one image ``(H, W)`` or ``(H, W, C<=4)`` becomes a batch of one;
    ``(N, H, W)`` and ``(N, H, W, C)`` stay as they are (channels are fitted later)."""
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] <= 4):
        return arr[None]
    return arr


def _array(arr: np.ndarray, batch_size: int, name: str) -> Source:
    if arr.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must have shape (H, W), (H, W, C), (N, H, W) or (N, H, W, C); "
            f"got shape {arr.shape}"
        )
    arr = as_image_batch(arr)
    if arr.size == 0 or len(arr) == 0:
        raise ValueError(f"{name} is an empty batch (shape {arr.shape}); pass at least one image")
    return Source(lambda: iter([(arr, None, None)]), count=len(arr), kind="array",
                  batch_size=batch_size, array=arr)  # fmt: skip


def _split(item):
    """``(images, ids, labels)`` from one item of an iterable: ``x``, ``(x, y, ...)`` or a dict."""
    labels = None
    if isinstance(item, dict):
        labels = item.get("label")
        item = item["image"] if "image" in item else next(iter(item.values()))
    elif isinstance(item, tuple) and item:
        labels = item[1] if len(item) > 1 else None
        item = item[0]
    images = np.asarray(item)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == 0 or len(labels) != len(images):
            labels = None  # not one label per image (e.g. a sample weight): ignore it
    return images, None, labels


def _tf_data(dataset, batch_size: int) -> Source:
    spec = dataset.element_spec
    if isinstance(spec, tuple):
        spec = spec[0]
    elif isinstance(spec, dict):
        spec = spec.get("image", next(iter(spec.values())))
    if getattr(spec, "shape", None) is not None and spec.shape.rank in (2, 3):
        dataset = dataset.batch(batch_size)  # a dataset of single images

    def chunks():
        for item in dataset.as_numpy_iterator():
            yield _split(item)

    return Source(chunks, count=None, kind="tf.data", batch_size=batch_size)


def _ray(dataset, batch_size: int) -> Source:
    def chunks():
        for batch in dataset.iter_batches(batch_size=batch_size, batch_format="numpy"):
            yield _split(dict(batch))

    return Source(chunks, count=None, kind="ray.data", batch_size=batch_size)


def _is_path_list(data) -> bool:
    return (
        isinstance(data, (list, tuple))
        and len(data) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in data)
    )
