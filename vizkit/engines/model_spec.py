"""How a worker gets the model: from a file or a builder, never by pickling a live model.

A :class:`ModelSpec` is small and picklable. A live ``keras.Model`` handed to a distributed engine
is saved once by the driver in Keras' own ``.keras`` format and its bytes travel to the workers,
which load them in safe mode (no Python code runs on loading); a path is loaded where the worker
runs (shared storage); a zero-argument builder function runs on the worker.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the model.

    Attributes
    ----------
    kind : {"path", "archive", "builder"}
    path : str or None
        A ``.keras`` (or legacy ``.h5``) file the workers can read (``kind="path"``).
    archive : bytes or None
        The bytes of a ``.keras`` file written by the driver (``kind="archive"``).
    builder : callable or None
        A zero-argument function returning a built ``keras.Model`` (``kind="builder"``).
    name : str
        The model's name, for messages.
    safe_mode : bool
        Keras' safe mode when loading files (refuses ``Lambda`` layers).
    key : str
        Identifies the model a worker builds, so that a worker process that already holds it
        (from an earlier task or job) reuses it: a digest of the architecture and weights for a
        live model, the file's path, size and modification time for a path, and a fresh id for
        a builder (whose result cannot be known in advance).
    """

    kind: str
    name: str
    path: str | None = None
    archive: bytes | None = field(default=None, repr=False)
    builder: Callable | None = None
    safe_mode: bool = True
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The archive in Ray's object store (a reference inside the spec keeps the arguments of
    # every task small).
    archive_ref: Any = field(default=None, repr=False)

    def load(self):
        """The model, built in this process."""
        import keras

        if self.kind == "builder":
            model = self.builder()
            if not isinstance(model, keras.layers.Layer):
                raise TypeError(
                    f"the model builder must return a keras.Model, got {type(model).__name__}"
                )
            return model
        if self.kind == "path":
            return _load_file(self.path, self.safe_mode)
        archive = self.archive
        if archive is None:
            import ray

            archive = ray.get(self.archive_ref)
        with tempfile.TemporaryDirectory(prefix="vizkit-model-") as folder:
            path = Path(folder) / "model.keras"
            path.write_bytes(archive)
            return _load_file(path, self.safe_mode)


def spec_for(model, *, safe_mode: bool = True) -> ModelSpec:
    """A :class:`ModelSpec` for ``model``: a ``keras.Model``, a model file path or a builder.

    Raises
    ------
    TypeError
        For anything else (the message says what to pass).
    ValueError
        For a path that is not a model file.
    """
    import keras

    if isinstance(model, keras.layers.Layer):
        with tempfile.TemporaryDirectory(prefix="vizkit-model-") as folder:
            path = Path(folder) / "model.keras"
            try:
                model.save(path)
            except Exception as exc:
                raise ValueError(
                    f"cannot save model {model.name!r} as a .keras file for the workers "
                    f"({type(exc).__name__}: {exc}); give the engine a model_source: a "
                    "zero-argument function that builds the model"
                ) from None
            archive = path.read_bytes()
        key = f"archive:{model_digest(model)}:{safe_mode}"
        return ModelSpec("archive", model.name, archive=archive, safe_mode=safe_mode, key=key)
    if isinstance(model, (str, os.PathLike)):
        path = str(Path(model).expanduser())
        if Path(path).suffix.lower() not in MODEL_SUFFIXES:
            raise ValueError(
                f"model {str(model)!r} is not a model file: expected a path ending in "
                f"{', '.join(MODEL_SUFFIXES)}"
            )
        stat = Path(path).stat() if Path(path).exists() else None
        stamp = "missing" if stat is None else f"{stat.st_size}:{stat.st_mtime_ns}"
        key = f"path:{path}:{stamp}:{safe_mode}"
        return ModelSpec("path", Path(path).stem, path=path, safe_mode=safe_mode, key=key)
    if callable(model):
        return ModelSpec("builder", getattr(model, "__name__", "builder"), builder=model)
    raise TypeError(
        "model must be a keras.Model, a path to a .keras file or a zero-argument function "
        f"returning a model; got {type(model).__name__}"
    )


def model_digest(model) -> str:
    """SHA-1 of a model's architecture (its JSON config) and weights: equal for equal models."""
    digest = hashlib.sha1(model.to_json().encode("utf-8"))
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def _load_file(path, safe_mode: bool):
    import models

    return models.load_model(path, safe_mode=safe_mode)
