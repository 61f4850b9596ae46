"""Sanity checks: does the map change when the model does? (Adebayo et al., 2018; Sixt et al.,
2020).

The model randomisation test re-initialises the weights of a *copy* of the model, layer by layer
from the output down (cascading) or one layer at a time, recomputes the maps and compares them
with the maps of the trained model. A map that barely changes once the weights are random shows
the image, not what the model learned. The random-logit test compares the map of the target
class with the map of another class.

The copy (``keras.models.clone_model``, weights copied from the model at every call) is kept
for the life of the model so that its compiled passes are traced once; the random weights of a
layer depend only on the seed and the layer, and are drawn from the layer's own initialisers.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from ..core.checks import flag, positive_int
from ..core.graph import Tap, check_batch_size
from ..core.images import to_batch
from ..core.layers import iter_layers, resolve_layers
from ..core.targets import num_classes, prepare
from .inputs import Explainer, explainer
from .map_similarity import MEASURES, Reference


@dataclass(frozen=True)
class RandomizationResult:
    """Similarity of the maps to the trained model's maps as layers are randomised.

    Attributes
    ----------
    method : str
        The explanation method.
    layers : tuple of str
        Layer paths in the order they were randomised (output first); with ``checkpoints``,
        the layer each compared step ended with (in a cascade, the layers above it are random
        too).
    cascade : bool
        True: step ``l`` has layers ``0 .. l`` random (cascading); False: only layer ``l``.
    similarity : dict of str -> ndarray, float32, ``(L, N)``
        Per measure, the similarity of each image's map after step ``l`` to its original map.
    maps : ndarray, float32, ``(L + 1, K, H, W)`` or None
        Maps of the kept images: the original, then after each step (Adebayo et al.'s figure 2).
    kept : tuple of int
        Indices of the images in ``maps``.
    """

    method: str
    layers: tuple[str, ...]
    cascade: bool
    similarity: dict[str, np.ndarray]
    maps: np.ndarray | None = None
    kept: tuple[int, ...] = ()

    def final(self, measure: str | None = None) -> np.ndarray:
        """``(N,)`` similarity after the last step (cascade: every chosen layer random)."""
        return self.similarity[measure or next(iter(self.similarity))][-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per measure and layer the mean and standard deviation over images, and
        the per-image values."""
        return {
            "method": self.method,
            "layers": list(self.layers),
            "cascade": self.cascade,
            "similarity": {
                name: {
                    "mean": np.nanmean(values, axis=1).tolist(),
                    "std": np.nanstd(values, axis=1).tolist(),
                    "per_image": values.tolist(),
                }
                for name, values in self.similarity.items()
            },
        }


def randomization_test(
    model: keras.Model,
    images,
    method,
    targets=None,
    *,
    cascade: bool = True,
    layers=None,
    similarity: str | Sequence[str] = "spearman",
    seed: int = 0,
    keep: int | Sequence[int] | None = 0,
    checkpoints: int | None = None,
    batch_size: int | None = None,
    progress: bool | None = False,
    **options,
) -> RandomizationResult:
    """Model parameter randomisation test (Adebayo et al., 2018, "Sanity Checks for Saliency
    Maps", arXiv:1810.03292).

    The weights of a copy of ``model`` are re-initialised with each layer's own initialisers
    (seeded; a weight without a known initialiser gets normal noise with its own mean and
    standard deviation), from the top layer down. After each layer the maps are recomputed for
    the same target classes and compared with the trained model's maps. ``model`` itself is
    never modified. A faithful method's similarity falls towards 0 as layers are randomised;
    Adebayo et al. found guided backpropagation's maps stay similar.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier that :func:`keras.models.clone_model` can copy
        (Sequential or functional, nested models included).
    images : array_like
        ``(N, H, W[, C])`` or one image.
    method : str or callable
        A name from :data:`vizkit.registry.EXPLANATIONS` or ``f(model, images, targets)``.
    targets : int, sequence of int or None
        Class per image; None uses each image's class predicted by the trained model.
    cascade : bool
        Randomise cumulatively from the top (True) or one layer at a time (False).
    layers : layer spec, list or None
        Layers to randomise (names, paths or indices), always taken from the output down; None
        means every layer with weights.
    similarity : str or sequence of str
        ``"spearman"`` (rank correlation of absolute maps), ``"ssim"``, ``"hog"``, a list of
        them, or ``"all"``.
    seed : int
        Seed of the random weights.
    keep : int, sequence of int or None
        Images whose maps are kept for the figure (``result.maps``).
    checkpoints : int or None
        Compare the maps after at most this many steps, evenly spaced from the first to the
        last (which always counts: in a cascade, every layer random); None: after every step.
        A cascade still randomises every layer; maps are what cost, so a deep model (MobileNetV2
        has 105 layers with weights) is checked at a few depths.
    batch_size : int or None
        Model inputs per compiled call, default 32.
    progress : bool or None
        Show a progress bar over the layers (None: only on a terminal).
    **options
        Passed on to the method.

    Returns
    -------
    RandomizationResult

    Raises
    ------
    ValueError
        For an unknown method or similarity (the message lists the known ones), a layer without
        weights, or a bad target.
    TypeError
        For a model that cannot be cloned (a subclassed model without ``get_config``).
    """
    name = method if isinstance(method, str) else getattr(method, "__name__", "custom")
    return randomization_tests(
        model,
        images,
        {name: explainer(method, options, batch_size)},
        targets,
        cascade=cascade,
        layers=layers,
        similarity=similarity,
        seed=seed,
        keep=keep,
        checkpoints=checkpoints,
        batch_size=batch_size,
        progress=progress,
    )[name]


def randomization_tests(
    model: keras.Model,
    images,
    methods,
    targets=None,
    *,
    cascade: bool = True,
    layers=None,
    similarity: str | Sequence[str] = "spearman",
    seed: int = 0,
    keep: int | Sequence[int] | None = 0,
    checkpoints: int | None = None,
    batch_size: int | None = None,
    progress: bool | None = False,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, RandomizationResult]:
    """:func:`randomization_test` for several methods sharing one copy and one randomisation.

    ``methods`` is a sequence of names (options from ``method_options[name]``) or a mapping of
    name -> method or :class:`~vizkit.metrics.inputs.Explainer`; returns name -> result.
    """
    cascade = flag(cascade, "cascade")
    measures = _measures(similarity)
    size = check_batch_size(batch_size)
    explainers = _explainers(methods, method_options, batch_size)
    x = to_batch(images, model)
    kept = _kept(keep, len(x))
    copy = _copy(model)
    paths = _layers(copy.model, model, layers)
    measured = checkpoint_steps(len(paths), checkpoints)
    aux = prepare(copy.model, x, targets, batch_size=size).aux
    with _quiet():
        original = {m: e(copy.model, x, aux) for m, e in explainers.items()}
    scores = {
        m: {s: np.empty((len(measured), len(x)), np.float32) for s in measures} for m in original
    }
    maps = {m: [original[m][list(kept)]] for m in original}
    # The comparisons (ranking every map for Spearman, HOG features) run in a worker thread
    # while the next maps are computed: NumPy's sorts and TensorFlow's kernels both release the
    # GIL. One worker runs the tasks in order, so each reference is built before its use.
    with ThreadPoolExecutor(max_workers=1) as worker:
        references = {m: worker.submit(Reference, v, measures) for m, v in original.items()}
        pending = []
        for step, path in enumerate(
            tqdm(paths, desc="randomising", unit="layer", disable=_off(progress))
        ):
            row = measured.get(step)
            if row is None and not cascade:
                continue  # an unmeasured layer of the independent test changes nothing
            saved = copy.randomise(path, seed, save=not cascade)
            if row is not None:
                with _quiet():
                    for m, e in explainers.items():
                        now = e(copy.model, x, aux)
                        compare = worker.submit(
                            lambda r, v: r.result().compare(v), references[m], now
                        )
                        pending.append((m, row, compare))
                        maps[m].append(now[list(kept)])
            if not cascade:
                copy.restore(path, saved)
        for m, row, compare in pending:
            for s, values in compare.result().items():
                scores[m][s][row] = values
    return {
        m: RandomizationResult(
            method=m,
            layers=tuple(paths[step] for step in measured),
            cascade=cascade,
            similarity=scores[m],
            maps=np.stack(maps[m]).astype(np.float32) if kept else None,
            kept=kept,
        )
        for m in explainers
    }


def random_logit_test(
    model: keras.Model,
    images,
    method,
    targets=None,
    *,
    similarity: str | Sequence[str] = "spearman",
    seed: int | None = 0,
    batch_size: int | None = None,
    **options,
):
    """Random-logit test (Sixt, Granz & Landgraf, 2020, "When Explanations Lie",
    arXiv:1912.09818): how alike are the maps of the target class and of a random other class?

    Each image's other class is drawn uniformly from the classes other than its target
    (seeded). A class-sensitive method gives dissimilar maps; lower is better.

    Parameters are those of :func:`randomization_test`.

    Returns
    -------
    ndarray, float32, ``(N,)`` for one similarity measure, or a dict measure -> ``(N,)``.
    """
    measures = _measures(similarity)
    size = check_batch_size(batch_size)
    explain = explainer(method, options, batch_size)
    x = to_batch(images, model)
    aux = prepare(model, x, targets, batch_size=size).aux
    classes = num_classes(model, x, Tap())
    if classes < 2:
        raise ValueError(
            f"the random-logit test needs at least 2 classes; model {model.name!r} has 1"
        )
    draw = np.random.default_rng(seed).integers(0, classes - 1, len(x))
    other = (draw + (draw >= aux)).astype(np.int32)
    # Both classes' maps in one call: the images twice, the targets then the other classes.
    both = explain(model, np.concatenate([x, x]), np.concatenate([aux, other]))
    values = Reference(both[: len(x)], measures).compare(both[len(x) :])
    return values[measures[0]] if isinstance(similarity, str) and similarity != "all" else values


# --------------------------------------------------------------------------------------------
@dataclass
class _Copy:
    """A clone of a model whose layers can be re-initialised and restored."""

    model: keras.Model
    index: dict[str, int] = field(default_factory=dict)
    draws: dict[tuple[int, str], list] = field(default_factory=dict)
    _variables: dict[str, list] = field(default_factory=dict)

    def variables(self, path: str) -> list:
        """The floating-point weights of layer ``path`` (looked up once)."""
        if path not in self._variables:
            layer = dict(iter_layers(self.model))[path]
            self._variables[path] = [
                v for v in layer.weights if np.issubdtype(np.dtype(v.dtype), np.floating)
            ]
        return self._variables[path]

    def randomise(self, path: str, seed: int, *, save: bool = True) -> list[np.ndarray]:
        """Give ``path`` its random weights; returns the values it had (none without
        ``save``: a cascade never puts them back)."""
        variables = self.variables(path)
        saved = [np.array(v.numpy()) for v in variables] if save else []
        key = (seed, path)
        if key not in self.draws:
            if any(k[0] != seed for k in self.draws):
                self.draws.clear()  # keep one seed's draws: they cost a copy of the weights
            layer = dict(iter_layers(self.model))[path]
            # Kept as tensors: assigning them later copies no NumPy array into TensorFlow.
            self.draws[key] = [
                keras.ops.convert_to_tensor(_draw(layer, v, [seed, self.index[path], j]))
                for j, v in enumerate(variables)
            ]
        for var, value in zip(variables, self.draws[key], strict=True):
            var.assign(value)
        return saved

    def restore(self, path: str, saved: list[np.ndarray]) -> None:
        """Put back the values :meth:`randomise` returned."""
        for var, value in zip(self.variables(path), saved, strict=True):
            var.assign(value)


_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _copy(model: keras.Model) -> _Copy:
    """The cached clone of ``model`` with ``model``'s current weights."""
    copy = _COPIES.get(model)
    if copy is None:
        try:
            clone = keras.models.clone_model(model)
        except Exception as exc:
            raise TypeError(
                f"the randomisation test works on a copy of the model, and model {model.name!r} "
                f"({type(model).__name__}) cannot be copied with keras.models.clone_model: "
                f"{exc}; use a Sequential or functional model (nested ones are fine)"
            ) from exc
        copy = _Copy(clone, {p: i for i, (p, _) in enumerate(iter_layers(clone))})
        _COPIES[model] = copy
    # Variable to variable: no round trip of the weights through NumPy.
    for mine, theirs in zip(copy.model.weights, model.weights, strict=True):
        mine.assign(theirs)
    return copy


def _draw(layer, variable, key: list[int]) -> np.ndarray:
    """New values for ``variable`` from ``layer``'s own initialiser, seeded by ``key``."""
    seed = int(np.random.SeedSequence(key).generate_state(1)[0] % (2**31 - 1))
    shape = tuple(variable.shape)
    init = getattr(layer, f"{variable.name}_initializer", None)
    if init is not None:
        init = keras.initializers.get(init)
        config = init.get_config()
        if "seed" in config:
            init = type(init).from_config({**config, "seed": seed})
        return np.asarray(keras.ops.convert_to_numpy(init(shape, dtype=variable.dtype)))
    current = np.asarray(variable.numpy(), np.float64)
    rng = np.random.default_rng(seed)
    return rng.normal(current.mean(), current.std(), shape).astype(np.dtype(variable.dtype))


def checkpoint_steps(n_steps: int, checkpoints: int | None) -> dict[int, int]:
    """``{step: row}`` for the steps whose maps are compared: at most ``checkpoints`` of
    ``0 .. n_steps - 1``, evenly spaced, the last always among them (None: every step)."""
    k = n_steps if checkpoints is None else positive_int(checkpoints, "checkpoints")
    if k >= n_steps:
        return {step: step for step in range(n_steps)}
    steps = np.unique(np.round(np.linspace(n_steps - 1, 0, k)).astype(int))  # the last first
    return {int(step): row for row, step in enumerate(steps)}


def _layers(clone: keras.Model, model: keras.Model, layers) -> list[str]:
    """Paths of the layers to randomise, from the output down."""
    weighted = [
        path
        for path, layer in iter_layers(clone)
        if not (isinstance(layer, keras.Model) or getattr(layer, "layers", None))
        and any(np.issubdtype(np.dtype(v.dtype), np.floating) for v in layer.weights)
    ]
    if not weighted:
        raise ValueError(f"model {model.name!r} has no layer with weights to randomise")
    if layers is None:
        return weighted[::-1]
    chosen = set(resolve_layers(model, layers))
    bare = sorted(chosen - set(weighted))
    if bare:
        raise ValueError(
            f"layers {bare} have no weights to randomise; layers with weights: {weighted}"
        )
    return [p for p in weighted[::-1] if p in chosen]


def _measures(similarity) -> list[str]:
    if similarity == "all":
        return list(MEASURES)
    names = [similarity] if isinstance(similarity, str) else list(similarity)
    if not names or any(not isinstance(s, str) or s not in MEASURES for s in names):
        raise ValueError(
            f"similarity must be one of {MEASURES}, a list of them or 'all', got {similarity!r}"
        )
    return list(dict.fromkeys(names))


def _explainers(methods, method_options, batch_size: int | None) -> dict[str, Explainer]:
    options = dict(method_options or {})
    if isinstance(methods, Mapping):
        items = list(methods.items())
    elif isinstance(methods, str):
        items = [(methods, methods)]
    else:
        items = [
            (m if isinstance(m, str) else getattr(m, "__name__", "custom"), m) for m in methods
        ]
    if not items:
        raise ValueError("methods is empty; pass at least one explanation method")
    return {name: explainer(m, options.get(name), batch_size) for name, m in items}


def _kept(keep, n: int) -> tuple[int, ...]:
    if keep is None:
        return ()
    single = isinstance(keep, (int, np.integer)) and not isinstance(keep, bool)
    idx = [keep] if single else keep
    if not isinstance(idx, (list, tuple, np.ndarray)) or any(
        isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n for i in idx
    ):
        raise ValueError(f"keep must be an image index or a list of them in [0, {n}), got {keep!r}")
    return tuple(dict.fromkeys(int(i) for i in idx))


def _off(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


class _quiet(warnings.catch_warnings):
    """Silence integrated gradients' completeness warnings: random weights make them expected."""

    def __enter__(self):
        out = super().__enter__()
        warnings.filterwarnings("ignore", message="integrated gradients", category=RuntimeWarning)
        return out
