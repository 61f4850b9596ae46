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
float32 value per image; maps come from :func:`vizkit.explain`.
"""

from .axioms import completeness
from .complexity import complexity, sparseness
from .perturbation import deletion, insertion, mufidelity
from .randomization import (
    RandomizationResult,
    random_logit_test,
    randomization_test,
    randomization_tests,
)
from .report_card import METRICS, TrustTable, evaluate, write_trust_figures, write_trust_report
from .robustness import sensitivity
from .similarity import MEASURES, hog_similarity, similarity, spearman, ssim

__all__ = [
    "MEASURES",
    "METRICS",
    "RandomizationResult",
    "TrustTable",
    "completeness",
    "complexity",
    "deletion",
    "evaluate",
    "hog_similarity",
    "insertion",
    "mufidelity",
    "random_logit_test",
    "randomization_test",
    "randomization_tests",
    "sensitivity",
    "similarity",
    "sparseness",
    "spearman",
    "ssim",
    "write_trust_figures",
    "write_trust_report",
]
