"""The report card's metric names, defaults and directions (Keras-free, for the command line)."""

from __future__ import annotations

#: Metrics the report card can compute, in table order.
METRICS = (
    "deletion",
    "insertion",
    "mufidelity",
    "sensitivity",
    "randomization",
    "random_logit",
    "sparseness",
    "complexity",
)
DEFAULT_METHODS = (
    "vanilla",
    "gradxinput",
    "smoothgrad",
    "integrated",
    "guided",
    "gradcam",
    "occlusion",
)
DEFAULT_METRICS = ("deletion", "insertion", "mufidelity", "randomization")
HIGHER_IS_BETTER = {
    "deletion": False,
    "insertion": True,
    "mufidelity": True,
    "sensitivity": False,
    "randomization": False,
    "random_logit": False,
    "sparseness": True,
    "complexity": False,
}
LABELS = {
    "deletion": "deletion",
    "insertion": "insertion",
    "mufidelity": "muFidelity",
    "sensitivity": "max-sensitivity",
    "randomization": "randomisation (Spearman)",
    "random_logit": "random logit (Spearman)",
    "sparseness": "sparseness (Gini)",
    "complexity": "complexity (entropy)",
}
