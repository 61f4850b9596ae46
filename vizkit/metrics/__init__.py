"""Can I trust this map? Faithfulness metrics, sanity checks and a report card.

* Perturbation (faithfulness): :func:`deletion`, :func:`insertion` (Petsiuk et al., 2018),
  :func:`mufidelity` (Bhatt et al., 2020).
* Robustness: :func:`sensitivity` (max-sensitivity, Yeh et al., 2019).
* Sanity checks: :func:`randomization_test` (Adebayo et al., 2018),
  :func:`random_logit_test` (Sixt et al., 2020).
* Axioms: :func:`completeness` (Sundararajan et al., 2017).
* Readability: :func:`sparseness` (Gini index), :func:`complexity` (entropy).
* Map similarity: :func:`similarity` (Spearman, SSIM, HOG).
* The report card: :func:`evaluate` -> :class:`TrustTable` (also ``vizkit.evaluate``).

Every metric takes ``targets=None`` (the predicted class) or class indices and returns one
float32 value per image; maps come from :func:`vizkit.explain`. Names are imported on first use,
so that :mod:`vizkit.metrics.names` (read by the command line) loads no TensorFlow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "completeness": "axioms",
    "complexity": "map_statistics",
    "sparseness": "map_statistics",
    "deletion": "perturbation",
    "insertion": "perturbation",
    "mufidelity": "perturbation",
    "RandomizationResult": "randomization",
    "random_logit_test": "randomization",
    "randomization_test": "randomization",
    "randomization_tests": "randomization",
    "TrustTable": "report_card",
    "evaluate": "report_card",
    "write_trust_figures": "report_files",
    "write_trust_report": "report_files",
    "sensitivity": "robustness",
    "MEASURES": "map_similarity",
    "hog_similarity": "map_similarity",
    "similarity": "map_similarity",
    "spearman": "map_similarity",
    "ssim": "map_similarity",
    "METRICS": "names",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vizkit.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
