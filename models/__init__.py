"""models: the classic CNN architecture set, offline datasets, training, RBMs and DBNs.

Submodules are imported on first use so that ``import models`` stays cheap.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_API = {
    "list_models": "registry",
    "create_model": "registry",
    "register_model": "registry",
    "load_dataset": "datasets",
    "Dataset": "datasets",
    "read_idx": "datasets",
    "read_image_folder": "datasets",
    "train": "training",
    "TrainResult": "training",
    "load_model": "training",
    "save_model": "training",
    "load_sidecar": "training",
    "RBM": "rbm",
    "DBN": "dbn",
}

__all__ = list(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
