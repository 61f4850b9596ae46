"""vizkit: see inside convolutional networks.

Every public function takes a Keras model (Sequential, functional, nested or subclassed) and
returns NumPy arrays; drawing lives in :mod:`vizkit.plot`. Submodules are imported on first use
so that ``import vizkit`` (and the command line's ``--help``) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "filters": "methods.filters",
    "feature_maps": "methods.feature_maps",
    "hypercolumns": "methods.hypercolumns",
    "hypercolumn_average": "methods.hypercolumns",
    "receptive_field": "methods.top_activating",
    "top_activating": "methods.top_activating",
    "diagnose": "methods.diagnose",
    "Diagnosis": "methods.diagnose",
    "saliency": "attribution",
    "gradcam": "methods.gradcam",
    "occlusion": "methods.occlusion",
    "maximize": "methods.maximize",
    "deepdream": "methods.deepdream",
    "export": "report",
    "add_figures": "report",
    "VisualizationCallback": "callbacks",
    "layer_paths": "core.layers",
}

_SUBPACKAGES = ("plot", "optimize", "attribution")

__all__ = [*_API, *_SUBPACKAGES, "__version__"]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name not in _API:
        raise AttributeError(f"module 'vizkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
