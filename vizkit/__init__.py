"""vizkit: see inside convolutional networks.

Every public function takes a Keras model (Sequential, functional, nested or subclassed) and
returns NumPy arrays; drawing lives in :mod:`vizkit.plot`. The public names come from the method
table (:mod:`vizkit.registry`) and are imported on first use, so that ``import vizkit`` (and the
command line's ``--help``) stays fast and never loads TensorFlow by itself.
"""

from __future__ import annotations

import importlib

from .registry import load, public_api

__version__ = "0.1.0"

_API = public_api()
_SUBPACKAGES = ("plot", "optimize", "attribution", "preprocessing", "metrics")

__all__ = [*_API, *_SUBPACKAGES, "__version__"]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name not in _API:
        raise AttributeError(f"module 'vizkit' has no attribute {name!r}")
    value = load(_API[name])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
