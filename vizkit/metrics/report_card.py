"""The report card: which explanation to believe for *your* model.

:func:`evaluate` computes every chosen metric for every chosen explanation method on the same
images and target classes and returns a :class:`TrustTable` (methods x metrics, mean and
standard deviation over images, the per-image values, the deletion/insertion curves and the
cascading randomisation results). :mod:`vizkit.metrics.report_files` writes it to disk.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from ..core.checks import positive_int, positive_number
from ..core.graph import check_batch_size
from ..core.images import to_batch
from ..core.jsonutil import describe, jsonable
from ..core.targets import prepare
from ..preprocessing import Preset
from .inputs import Explainer, check_baseline, explainer
from .map_statistics import complexity, sparseness
from .names import (
    DEFAULT_METHODS,
    DEFAULT_METRICS,
    HIGHER_IS_BETTER,
    LABELS,
    METRICS,
    REFERENCE_ROW,
    SANITY,
    SPREAD,
    cell,
    column,
    legend,
)
from .perturbation import deletion, insertion, mufidelity
from .randomization import RandomizationResult, random_logit_test, randomization_tests
from .robustness import sensitivity

#: Faithfulness metrics a recommendation ranks methods by.
FAITHFULNESS = ("deletion", "insertion", "mufidelity")
SANITY_THRESHOLD = 0.5
CHECKPOINTS = 8  # randomisation steps compared by default (the strip's columns after the original)


@dataclass
class TrustTable:
    """Methods x metrics of one :func:`evaluate` run.

    Attributes
    ----------
    methods, metrics : tuple of str
        Rows and columns, in order.
    values : dict
        ``values[method][metric]``: float32 ``(N,)`` per-image values.
    curves : dict
        ``curves[method]["deletion" | "insertion"]``: float32 ``(N, steps + 1)`` scores.
    randomization : dict
        ``randomization[method]``: :class:`~vizkit.metrics.RandomizationResult` of the cascade
        (per layer similarity, and the maps of the strip image).
    reference : dict
        ``reference[metric]``: per-image values of a random pixel ranking (for deletion,
        insertion and muFidelity), what a map no better than chance scores.
    reference_curves : dict
        ``reference_curves[metric]``: the random ranking's curves.
    image : ndarray or None
        ``(H, W, C)``: the image of the randomisation strip.
    settings : dict
        How the table was made (images, targets, steps, baseline, seed, ...).
    threshold : float
        A method fails a sanity check when its mean similarity is at or above this (0.5 by
        default: a convention of this report, not a published cut-off).
    """

    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    values: dict[str, dict[str, np.ndarray]]
    curves: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    randomization: dict[str, RandomizationResult] = field(default_factory=dict)
    reference: dict[str, np.ndarray] = field(default_factory=dict)
    reference_curves: dict[str, np.ndarray] = field(default_factory=dict)
    image: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    threshold: float = SANITY_THRESHOLD

    def mean(self, method: str, metric: str) -> float:
        """Mean over images (NaN values, e.g. an all-zero map's Gini index, left out)."""
        return _nan_stat(np.nanmean, self.values[method][metric])

    def spread(self, method: str, metric: str) -> float:
        """Standard deviation over images (ddof=0, NaN left out)."""
        return _nan_stat(np.nanstd, self.values[method][metric])

    def best(self, metric: str) -> str | None:
        """The method with the best mean for ``metric`` (see :data:`HIGHER_IS_BETTER`)."""
        scored = [(self.mean(m, metric), m) for m in self.methods if metric in self.values[m]]
        scored = [(v, m) for v, m in scored if not math.isnan(v)]
        if not scored:
            return None
        pick = max if HIGHER_IS_BETTER[metric] else min
        return pick(scored)[1]

    def passes(self, metric: str) -> dict[str, bool]:
        """For a sanity check (``"randomization"``, ``"random_logit"``): method -> whether its
        mean similarity is below :attr:`threshold`."""
        if metric not in SANITY:
            raise ValueError(f"metric must be one of {SANITY}, got {metric!r}")
        return {
            m: bool(self.mean(m, metric) < self.threshold)
            for m in self.methods
            if metric in self.values[m]
        }

    def recommended(self) -> str | None:
        """The method to trust first, or None.

        Candidates pass every sanity check computed and, where the random reference was
        scored, beat a random pixel order on every faithfulness metric computed; among them,
        the best mean rank over those faithfulness metrics wins.
        """
        faith = [k for k in FAITHFULNESS if k in self.metrics]
        if not faith:
            return None
        ranks = self._ranks(faith)
        candidates = [m for m in self.sane() if m in ranks and not self.no_better_than_chance(m)]
        return min(candidates, key=lambda m: ranks[m]) if candidates else None

    def sane(self) -> list[str]:
        """Methods that pass every sanity check computed (all methods if none was)."""
        sane = set(self.methods)
        for check in SANITY:
            if check in self.metrics:
                sane &= {m for m, ok in self.passes(check).items() if ok}
        return [m for m in self.methods if m in sane]

    def no_better_than_chance(self, method: str) -> list[str]:
        """Faithfulness metrics on which ``method`` does not beat the random pixel order."""
        out = []
        for k in FAITHFULNESS:
            if k in self.reference and k in self.values[method]:
                mine, chance = self.mean(method, k), _nan_stat(np.nanmean, self.reference[k])
                better = mine > chance if HIGHER_IS_BETTER[k] else mine < chance  # NaN: False
                if not better:
                    out.append(k)
        return out

    def verdict(self) -> list[str]:
        """Plainly worded conclusions, one sentence per line."""
        lines = []
        for check, what, failing in (
            (
                "randomization",
                "the map changes once the model's weights are random",
                "the map barely depends on the learned weights: it mostly shows the image",
            ),
            (
                "random_logit",
                "the map of another class looks different",
                "the map hardly depends on the class it explains",
            ),
        ):
            if check not in self.metrics:
                continue
            result = self.passes(check)
            good = [m for m, ok in result.items() if ok]
            bad = [m for m, ok in result.items() if not ok]
            name = "Randomisation check" if check == "randomization" else "Random-logit check"
            if good:
                lines.append(
                    f"{name}: passed by {_listing(good, self, check)}; {what} "
                    f"(similarity < {self.threshold:g})."
                )
            if bad:
                lines.append(
                    f"{name}: FAILED by {_listing(bad, self, check)}; {failing} "
                    f"(similarity >= {self.threshold:g}). Do not read these maps as what the "
                    "model uses."
                )
        for metric in (k for k in FAITHFULNESS if k in self.metrics):
            best = self.best(metric)
            if best is None:
                continue
            word = "highest" if HIGHER_IS_BETTER[metric] else "lowest"
            line = (
                f"Most faithful by {LABELS[metric]}: {best} ({word}, {self.mean(best, metric):.3g})"
            )
            if metric in self.reference:
                ref = _nan_stat(np.nanmean, self.reference[metric])
                line += f"; a random pixel order scores {ref:.3g}"
                worse = [m for m in self.methods if metric in self.no_better_than_chance(m)]
                if worse:
                    verb = "does" if len(worse) == 1 else "do"
                    line += f", and {', '.join(worse)} {verb} no better than that"
            lines.append(line + ".")
        faith = ", ".join(LABELS[k] for k in FAITHFULNESS if k in self.metrics)
        pick = self.recommended()
        if pick is not None:
            beats = " and beats a random pixel order" if self.reference else ""
            lines.append(
                f"Trust first: {pick} (passes the sanity checks computed{beats}; best mean "
                f"rank on {faith})."
            )
        elif faith and not self.reference:
            lines.append("No method passes every sanity check computed: trust none of these maps.")
        elif faith:
            sane = self.sane()
            lines.append(
                "No method both passes every sanity check computed and beats a random pixel "
                f"order on {faith}"
                + (
                    f" ({', '.join(sane)} pass the checks but are no more faithful than chance)"
                    if sane
                    else ""
                )
                + ": trust none of these maps for this model."
            )
        return lines

    def strip(self) -> dict[str, tuple[list[str], np.ndarray]]:
        """Method -> (column labels, ``(L + 1, H, W)`` maps) of the strip image as layers are
        randomised, for :func:`vizkit.plot.plot_randomization`."""
        return {
            m: (["original", *r.layers], r.maps[:, 0])
            for m, r in self.randomization.items()
            if r.maps is not None and r.maps.shape[1]
        }

    def rows(self) -> list[dict[str, Any]]:
        """One dict per method: ``{"method", "<metric>": mean, "<metric> std": spread}``."""
        rows = []
        for m in self.methods:
            row: dict[str, Any] = {"method": m}
            for k in self.metrics:
                row[k], row[f"{k} std"] = self.mean(m, k), self.spread(m, k)
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinity become None)."""
        out = {
            "methods": list(self.methods),
            "metrics": list(self.metrics),
            "higher_is_better": {k: HIGHER_IS_BETTER[k] for k in self.metrics},
            "sanity_threshold": self.threshold,
            "spread": SPREAD,
            "settings": self.settings,
            "table": {
                m: {
                    k: {
                        "mean": self.mean(m, k),
                        "std": self.spread(m, k),
                        "per_image": self.values[m][k],
                    }
                    for k in self.metrics
                }
                for m in self.methods
            },
            "reference": {
                k: {"mean": _nan_stat(np.nanmean, v), "per_image": v}
                for k, v in self.reference.items()
            },
            "curves": {
                m: {k: {"mean": c.mean(axis=0), "per_image": c} for k, c in curves.items()}
                for m, curves in self.curves.items()
            },
            "reference_curves": {k: c.mean(axis=0) for k, c in self.reference_curves.items()},
            "randomization": {m: r.to_dict() for m, r in self.randomization.items()},
            "verdict": self.verdict(),
        }
        return _clean(json.loads(json.dumps(out, default=jsonable)))

    def to_markdown(self) -> str:
        """The table (mean ± standard deviation), a legend and the verdict, in Markdown."""
        head = ["method", *(column(k) for k in self.metrics)]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for m in self.methods:
            cells = [cell(self.mean(m, k), self.spread(m, k)) for k in self.metrics]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        if self.reference:
            cells = [
                cell(
                    _nan_stat(np.nanmean, self.reference[k]),
                    _nan_stat(np.nanstd, self.reference[k]),
                )
                if k in self.reference
                else "-"
                for k in self.metrics
            ]
            lines.append(f"| *{REFERENCE_ROW}* | " + " | ".join(cells) + " |")
        lines += ["", self._legend(), "", "**Verdict**", ""]
        lines += [f"- {line}" for line in self.verdict()]
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(column(k))}</th>" for k in self.metrics)
        body = "".join(
            f"<tr><td>{html.escape(m)}</td>"
            + "".join(
                f"<td>{html.escape(cell(self.mean(m, k), self.spread(m, k)))}</td>"
                for k in self.metrics
            )
            + "</tr>"
            for m in self.methods
        )
        verdict = "".join(f"<li>{html.escape(line)}</li>" for line in self.verdict())
        return (
            f"<table><thead><tr><th>method</th>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p>{html.escape(self._legend())}</p><ul>{verdict}</ul>"
        )

    def _legend(self) -> str:
        return legend(self.settings, self.metrics)

    def _ranks(self, metrics: Sequence[str]) -> dict[str, float]:
        """Mean rank (1 = best) of each method over ``metrics``."""
        total: dict[str, list[float]] = {m: [] for m in self.methods}
        for k in metrics:
            scored = [(self.mean(m, k), m) for m in self.methods]
            scored = [(v, m) for v, m in scored if not math.isnan(v)]
            scored.sort(reverse=HIGHER_IS_BETTER[k])
            for rank, (_, m) in enumerate(scored, start=1):
                total[m].append(rank)
        return {m: float(np.mean(r)) for m, r in total.items() if r}


def evaluate(
    model: keras.Model,
    images,
    *,
    targets=None,
    methods: Sequence[str] = DEFAULT_METHODS,
    metrics: Sequence[str] = DEFAULT_METRICS,
    steps: int = 10,
    baseline=0.0,
    samples: int = 128,
    seed: int = 0,
    strip_image: int = 0,
    checkpoints: int | None = CHECKPOINTS,
    reference: bool = True,
    sanity_threshold: float = SANITY_THRESHOLD,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int | None = None,
    preprocess=None,
    progress: bool | None = None,
) -> TrustTable:
    """Which map to trust: every metric for every explanation method, on the same images.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like
        ``(N, H, W[, C])``; uint8 is scaled to [0, 1]. A few dozen images give stable means.
    targets : int, sequence of int or None
        Class per image; None explains each image's predicted class.
    methods : sequence of str
        Names from :data:`vizkit.registry.EXPLANATIONS`.
    metrics : sequence of str
        From :data:`METRICS`: ``"deletion"``, ``"insertion"``, ``"mufidelity"``,
        ``"sensitivity"``, ``"randomization"`` (cascading, Spearman after every layer is
        random), ``"random_logit"``, ``"sparseness"``, ``"complexity"``.
    steps : int
        Deletion / insertion steps.
    baseline : float, array_like or "blur"
        What removed pixels become (deletion, insertion, muFidelity).
    samples : int
        muFidelity's random subsets per image.
    seed : int
        Seed of muFidelity's subsets, the noise, the random classes and the random weights.
    strip_image : int
        Image whose maps are kept for the randomisation strip.
    checkpoints : int or None
        The randomisation test compares maps after at most this many of its steps, evenly
        spaced, the last (every layer random) always among them; None: after every layer.
    reference : bool
        Also score a random pixel order on deletion, insertion and muFidelity.
    sanity_threshold : float
        Mean similarity at or above which a method fails the randomisation and random-logit
        checks in the verdict (our convention; the similarities themselves are in the table).
    method_options : dict or None
        Per method name, options for :func:`vizkit.explain` (e.g. ``{"occlusion": {"patch":
        4}}``). Integrated gradients' completeness warning is off unless asked for.
    batch_size : int or None
        Model inputs per compiled call, default 32.
    preprocess : callable, preset name or None
        The model's input preprocessing, applied in the graph to the images in [0, 1] (and to
        their perturbed copies: baselines and noise stay in image space) by every method and
        metric; a method's own ``preprocess`` option wins.
    progress : bool or None
        Progress bars (None: only on a terminal).

    Returns
    -------
    TrustTable

    Raises
    ------
    ValueError
        For an unknown method or metric (the message lists the known ones) or bad arguments of
        the metrics.
    """
    explainers = _explainers(methods, method_options, batch_size, preprocess)
    chosen = _metrics(metrics)
    size = check_batch_size(batch_size)
    x = to_batch(images, model)
    if isinstance(strip_image, bool) or not isinstance(strip_image, (int, np.integer)):
        raise ValueError(f"strip_image must be an image index, got {strip_image!r}")
    if not 0 <= strip_image < len(x):
        raise ValueError(f"strip_image must be in [0, {len(x)}), got {strip_image}")
    # Fail before any map is computed.
    steps = positive_int(steps, "steps")
    samples = positive_int(samples, "samples", minimum=2)
    sanity_threshold = positive_number(sanity_threshold, "sanity_threshold")
    check_baseline(baseline, x)
    aux = prepare(model, x, targets, batch_size=size, preprocess=preprocess).aux
    common = {"batch_size": size}
    # The perturbation metrics call the model themselves; the others only through the methods.
    perturb = {"preprocess": preprocess, **common}
    curve = {"steps": steps, "baseline": baseline, "return_curve": True, **perturb}
    values: dict[str, dict[str, np.ndarray]] = {m: {} for m in explainers}
    curves: dict[str, dict[str, np.ndarray]] = {m: {} for m in explainers}
    local = [k for k in chosen if k != "randomization"]
    bar = tqdm(
        total=len(explainers) * (1 + len(local)),
        desc="vizkit evaluate",
        unit="task",
        disable=None if progress is None else not progress,
    )
    with bar:
        for name, explain in explainers.items():
            bar.set_postfix_str(name)
            maps = explain(model, x, aux)
            bar.update()
            for k in local:
                if k in ("deletion", "insertion"):
                    fn = deletion if k == "deletion" else insertion
                    values[name][k], curves[name][k] = fn(model, x, maps, aux, **curve)
                elif k == "mufidelity":
                    values[name][k] = mufidelity(
                        model,
                        x,
                        maps,
                        aux,
                        samples=samples,
                        baseline=baseline,
                        seed=seed,
                        **perturb,
                    )
                elif k == "sensitivity":
                    values[name][k] = sensitivity(model, x, explain, aux, seed=seed, **common)
                elif k == "random_logit":
                    values[name][k] = random_logit_test(model, x, explain, aux, seed=seed, **common)
                elif k == "sparseness":
                    values[name][k] = sparseness(maps)
                else:
                    values[name][k] = complexity(maps)
                bar.update()
    randomised: dict[str, RandomizationResult] = {}
    if "randomization" in chosen:
        randomised = randomization_tests(
            model, x, explainers, aux, seed=seed, keep=strip_image, checkpoints=checkpoints,
            progress=progress, **common,
        )  # fmt: skip
        for name, result in randomised.items():
            values[name]["randomization"] = result.final()
    ref, ref_curves = {}, {}
    if reference:
        ref, ref_curves = _reference(model, x, aux, chosen, curve, samples, baseline, seed, perturb)
    return TrustTable(
        methods=tuple(explainers),
        metrics=chosen,
        values=values,
        curves={m: c for m, c in curves.items() if c},
        randomization=randomised,
        reference=ref,
        reference_curves=ref_curves,
        image=x[strip_image].copy(),
        threshold=sanity_threshold,
        settings={
            "model": model.name,
            "images": len(x),
            "targets": "the predicted classes" if targets is None else "the given classes",
            "target_classes": aux.tolist(),
            "steps": steps,
            "baseline": baseline if not isinstance(baseline, np.ndarray) else "array",
            "mufidelity_samples": samples,
            "seed": seed,
            "strip_image": strip_image,
            "method_options": {
                m: {k: _recorded(v) for k, v in e.options.items()} for m, e in explainers.items()
            },
        },
    )


# --------------------------------------------------------------------------------------------
def _recorded(value):
    """An option as the table records it: a preset by its name, other objects by their repr."""
    return value.name if isinstance(value, Preset) else describe(value)


def _explainers(methods, method_options, batch_size, preprocess=None) -> dict[str, Explainer]:
    if isinstance(methods, str):
        methods = [methods]
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ValueError("methods is empty; pass at least one explanation method")
    options = dict(method_options or {})
    unknown = sorted(set(options) - set(methods))
    if unknown:
        raise ValueError(f"method_options names methods that are not evaluated: {unknown}")
    out = {}
    for name in methods:
        if not isinstance(name, str):
            raise ValueError(f"methods must be explanation method names, got {name!r}")
        wanted = dict(options.get(name, {}))
        if name == "integrated":
            wanted.setdefault("warn", False)
        if preprocess is not None:
            wanted.setdefault("preprocess", preprocess)
        out[name] = explainer(name, wanted, batch_size)
    return out


def _metrics(metrics) -> tuple[str, ...]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    bad = [k for k in names if k not in METRICS]
    if bad or not names:
        raise ValueError(f"metrics must be a non-empty list of {METRICS}, got {bad or names!r}")
    return tuple(k for k in METRICS if k in names)


def _reference(model, x, aux, chosen, curve, samples, baseline, seed, perturb):
    """A random pixel order's deletion, insertion and muFidelity: the chance level."""
    noise = np.random.default_rng(seed).random(x.shape[:3])
    ref, ref_curves = {}, {}
    for k in ("deletion", "insertion"):
        if k in chosen:
            fn = deletion if k == "deletion" else insertion
            ref[k], ref_curves[k] = fn(model, x, noise, aux, **curve)
    if "mufidelity" in chosen:
        ref["mufidelity"] = mufidelity(
            model, x, noise, aux, samples=samples, baseline=baseline, seed=seed, **perturb
        )
    return ref, ref_curves


def _nan_stat(fn, values) -> float:
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    return float(fn(v)) if v.size else float("nan")


def _listing(methods: list[str], table: TrustTable, metric: str) -> str:
    return ", ".join(f"{m} ({table.mean(m, metric):.2f})" for m in methods)


def _clean(value):
    """NaN and infinity (which JSON has no words for) as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
