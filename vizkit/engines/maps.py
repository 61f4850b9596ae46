"""Explanation maps over a whole dataset, written to disk in shards with the image ids.

For people who analyse the maps themselves: :func:`map_to_disk` runs any explanation method
(:data:`vizkit.registry.EXPLANATIONS`) chunk by chunk on either engine; each chunk's maps are
written by whoever computed them (a Ray worker writes its own shards) and the driver writes one
``index.json`` at the end. :func:`load_maps` reads them back.

Layout of ``out``::

    index.json                  format, method, options, count, map shape, shards in order
    part-00000.npy              float32 (n, H, W) maps of chunk 0        (format="npy")
    part-00000.ids.json         the n image ids of chunk 0
    part-00000.parquet          columns index, id, map (H*W floats)     (format="parquet")
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.checks import choice
from ..core.files import atomic_path, atomic_write, ensure_writable
from .chunks import Chunk

FORMATS = ("npy", "parquet")
INDEX = "index.json"


def map_to_disk(
    model,
    data,
    out: str | os.PathLike,
    *,
    method: str = "saliency",
    target=None,
    format: str = "npy",
    batch_size: int | None = None,
    overwrite: bool = False,
    engine="local",
    address: str | None = None,
    workers: int | None = None,
    **options,
) -> Path:
    """Compute an explanation map for every image of ``data`` and write them to ``out``.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    data
        Anything :func:`vizkit.core.sources.open_source` reads (an array, a folder or list of
        image files, a ``tf.data`` or ``ray.data`` dataset, an iterable of batches).
    out : path
        Output folder; with the Ray engine it must be one that every worker can write to.
    method : str
        ``"saliency"`` (vanilla gradients) or a name from :data:`vizkit.registry.EXPLANATIONS`
        (``"smoothgrad"``, ``"integrated"``, ``"gradcam"``, ``"occlusion"``, ...).
    target : int, sequence of int or None
        One class for every image, one per image (in data order), or None for each image's
        predicted class.
    format : {"npy", "parquet"}
        ``.npy`` shards with a JSON list of ids beside each, or Parquet shards (needs pyarrow,
        which ``vizkit[ray]`` brings) with ``index``, ``id`` and ``map`` columns.
    batch_size : int, optional
        Images per chunk and shard (default 32).
    overwrite : bool
        Replace the maps of an earlier run in ``out``; without it, an existing ``index.json``
        is an error.
    engine, address, workers
        As in :func:`vizkit.top_activating`: ``"local"`` or ``"ray"`` (each Ray worker writes
        its own shards).
    **options
        Passed to the method (``layer=`` for Grad-CAM, ``patch=`` for occlusion, ...).

    Returns
    -------
    Path
        The ``index.json`` file.
    """
    from ..core.images import check_model
    from ..registry import EXPLANATIONS
    from . import run

    check_model(model)
    name = "vanilla" if method == "saliency" else method
    if not isinstance(name, str) or name not in EXPLANATIONS:
        raise ValueError(
            f"method must be 'saliency' or one of {sorted(EXPLANATIONS)}, got {method!r}"
        )
    choice(format, "format", FORMATS)
    if format == "parquet":
        _require_pyarrow()
    targets = _check_target(target)
    folder = ensure_writable(Path(out).expanduser())
    index_path = folder / INDEX
    if index_path.exists():
        if not overwrite:
            raise FileExistsError(
                f"{str(index_path)!r} already exists; pass overwrite=True to replace those maps"
            )
        _remove_shards(folder)
    job = MapsJob(str(folder), name, dict(options), targets, format)
    shards, n_images = run(
        job, model, data, batch_size=batch_size, engine=engine, address=address, workers=workers
    )
    if isinstance(targets, np.ndarray) and len(targets) != n_images:
        raise ValueError(
            f"target has {len(targets)} classes but data holds {n_images} images; pass one per "
            "image, one class for all, or None"
        )
    index = {
        "format": format,
        "method": method,
        "options": options,
        "target": target if target is None or isinstance(target, int) else "per image",
        "count": n_images,
        "shape": shards[0]["shape"],
        "dtype": "float32",
        "shards": [{k: v for k, v in s.items() if k != "shape"} for s in shards],
    }
    atomic_write(index_path, json.dumps(index, indent=1, default=_json_default))
    return index_path


def load_maps(out: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """``(maps, ids)`` written by :func:`map_to_disk`: float32 ``(N, H, W)`` and N ids."""
    folder = Path(out).expanduser()
    index_path = folder / INDEX
    if not index_path.is_file():
        raise FileNotFoundError(f"no {INDEX} in {str(folder)!r}: not a map_to_disk folder")
    index = json.loads(index_path.read_text(encoding="utf-8"))
    maps, ids = [], []
    for shard in index["shards"]:
        if index["format"] == "npy":
            maps.append(np.load(folder / shard["maps"], allow_pickle=False))
            ids.extend(json.loads((folder / shard["ids"]).read_text(encoding="utf-8")))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(folder / shard["maps"])
            flat = np.asarray(table.column("map").combine_chunks().flatten(), np.float32)
            maps.append(flat.reshape(len(table), *index["shape"]))
            ids.extend(table.column("id").to_pylist())
    return np.concatenate(maps), ids


@dataclass(frozen=True)
class MapsJob:
    """Explain each chunk and write its shard; the partial result is the shard's record."""

    out: str
    method: str
    options: dict = field(default_factory=dict)
    target: Any = None  # None, an int or an int64 array with one class per image
    format: str = "npy"

    def partial(self, model, chunk: Chunk) -> dict:
        from ..methods.explain import explain

        target = self.target
        if isinstance(target, np.ndarray):
            target = target[chunk.start : chunk.start + len(chunk)]
            if len(target) != len(chunk):
                raise ValueError(
                    f"target has {len(self.target)} classes but data holds more images "
                    f"(at least {chunk.start + len(chunk)}); pass one per image"
                )
            target = [int(t) for t in target]
        maps = explain(model, chunk.images, self.method, target, **self.options)
        stem = f"part-{chunk.index:05d}"
        folder = Path(self.out)
        record = {"start": chunk.start, "count": len(chunk), "shape": list(maps.shape[1:])}
        if self.format == "npy":
            with atomic_path(folder / f"{stem}.npy") as tmp:
                np.save(tmp, maps, allow_pickle=False)
            atomic_write(folder / f"{stem}.ids.json", json.dumps(list(chunk.ids)))
            return {**record, "maps": f"{stem}.npy", "ids": f"{stem}.ids.json"}
        import pyarrow as pa
        import pyarrow.parquet as pq

        flat = pa.FixedSizeListArray.from_arrays(
            pa.array(maps.reshape(-1), pa.float32()), int(np.prod(maps.shape[1:]))
        )
        table = pa.table(
            {
                "index": pa.array(np.arange(chunk.start, chunk.start + len(chunk))),
                "id": pa.array(list(chunk.ids), pa.string()),
                "map": flat,
            },
            metadata={"shape": json.dumps(list(maps.shape[1:])), "method": self.method},
        )
        with atomic_path(folder / f"{stem}.parquet") as tmp:
            pq.write_table(table, tmp)
        return {**record, "maps": f"{stem}.parquet"}

    def merge(self, acc, part):
        return [*(acc or []), part]


def _check_target(target):
    if target is None:
        return None
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return int(target)
    values = np.asarray(target)
    if values.ndim != 1 or values.dtype.kind not in "iu" or not len(values):
        raise ValueError(
            f"target must be None, a class index or a list of class indices, got {target!r:.80}"
        )
    return values.astype(np.int64)


def _remove_shards(folder: Path) -> None:
    for path in folder.glob("part-*"):
        if path.is_file():
            path.unlink()
    (folder / INDEX).unlink(missing_ok=True)


def _require_pyarrow() -> None:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ImportError(
            'format="parquet" needs pyarrow: pip install pyarrow (or "vizkit[ray]")'
        ) from None


def _json_default(value):
    from ..core.jsonutil import jsonable

    return jsonable(value)
