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
#: What each metric measures (the report card's legend).
MEANINGS = {
    "deletion": "area under the target score as the top-ranked pixels are replaced by the "
    "baseline (Petsiuk et al., 2018)",
    "insertion": "area under the target score as the top-ranked pixels are revealed on the "
    "baseline (Petsiuk et al., 2018)",
    "mufidelity": "correlation between the attribution of random superpixel subsets and the "
    "score drop when they are removed (Bhatt et al., 2020)",
    "sensitivity": "largest relative change of the map under small uniform input noise "
    "(Yeh et al., 2019)",
    "randomization": "rank correlation of the absolute map with the trained model's once every "
    "layer is re-initialised, cascading from the top (Adebayo et al., 2018)",
    "random_logit": "rank correlation of the absolute maps of the target class and a random "
    "other class (Sixt et al., 2020)",
    "sparseness": "Gini index of the absolute map (Chalasani et al., 2020)",
    "complexity": "entropy of the normalised absolute map (Bhatt et al., 2020)",
}
#: Sanity checks: a method fails when its mean similarity is at or above the threshold.
SANITY = ("randomization", "random_logit")
#: How the verdict words a failed sanity check (the report marks these lines).
FAILED = ("Randomisation check: FAILED", "Random-logit check: FAILED")
SPREAD = "standard deviation (ddof=0)"
#: The row of a random pixel order, what a map no better than chance scores.
REFERENCE_ROW = "random pixel order (reference)"


def arrow(metric: str) -> str:
    """``"↑"`` when higher values of ``metric`` are better, else ``"↓"``."""
    return "↑" if HIGHER_IS_BETTER[metric] else "↓"


def column(metric: str) -> str:
    """The table heading of ``metric``: its label and arrow (``"insertion ↑"``)."""
    return f"{LABELS[metric]} {arrow(metric)}"


def cell(mean: float | None, spread: float | None) -> str:
    """``"0.123 ± 0.045"`` (3 and 2 significant digits), ``"n/a"`` for a missing mean."""
    if mean is None or mean != mean:  # None (from JSON) or NaN
        return "n/a"
    spread = float("nan") if spread is None else spread
    return f"{mean:.3g} ± {spread:.2g}"


def legend(settings: dict, metrics) -> str:
    """The report card's legend: what the cells are, what each metric measures, the curves'
    settings (``settings`` as :attr:`vizkit.metrics.TrustTable.settings`)."""
    parts = [
        f"Mean ± {SPREAD} over {settings.get('images', '?')} images, explaining "
        f"{settings.get('targets', 'the predicted classes')}; ↓ lower is better, ↑ higher is "
        "better."
    ]
    parts += [f"{LABELS[k]}: {MEANINGS[k]}." for k in metrics]
    if {"deletion", "insertion"} & set(metrics):
        parts.append(
            f"Curves: {settings.get('steps')} steps, baseline {settings.get('baseline')}, score "
            "= the model's own output (a probability for a softmax model)."
        )
    return " ".join(parts)
