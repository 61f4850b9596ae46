"""Model debugging: dead, constant and input-copying channels, layer by layer.

A channel that is zero for every image never passes a gradient through its ReLU and learns
nothing ("dying ReLU", Lu et al., 2019); a constant channel ignores its input; a channel that is
a near-copy of the input means the layer has not transformed anything yet — seed 001 reads
"empty or input-like feature maps" as the sign of a badly sized layer.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import tensorflow as tf

from ..core.graph import Tap, compiled, forward, image_spec
from ..core.layers import check_built, iter_layers, output_rank, output_shape, resolve_layers
from ..core.tokens import check_grid_args, grid_rank, layer_grid
from ..engines import run
from ..engines.jobs import DiagnoseJob

MEANINGS = {
    "dead": "zero for every image and position: the unit never fires and gets no gradient "
    "(dying ReLU: too high a learning rate, a large negative bias, bad initialisation); "
    "remove or re-initialise it. Judged on these images only: use a few hundred typical ones",
    "constant": "the same nonzero value everywhere: it ignores the input and only adds a bias",
    "input-like": "a near-copy of the input (|correlation| with the luminance above the "
    "threshold): the layer passes the image through instead of extracting features, a sign "
    "of a badly sized layer (too few or too small filters, or too shallow a stack)",
}
# Longer diagnoses fold their full table in a notebook (a MobileNetV2 has 150 layers).
HTML_ROWS = 30


@dataclass(frozen=True)
class LayerReport:
    """Findings for one layer; channel indices are sorted ascending."""

    path: str
    shape: tuple[int, ...]
    channels: int
    dead: tuple[int, ...]
    constant: tuple[int, ...]
    constant_values: tuple[float, ...]
    input_like: tuple[int, ...]
    input_correlation: tuple[float, ...]
    sparsity: float

    @property
    def has_findings(self) -> bool:
        return bool(self.dead or self.constant or self.input_like)


@dataclass(frozen=True)
class Diagnosis:
    """Result of :func:`diagnose`: one :class:`LayerReport` per layer, in model order."""

    model_name: str
    n_images: int
    layers: tuple[LayerReport, ...]
    settings: dict = field(default_factory=dict)

    def __getitem__(self, path: str) -> LayerReport:
        for report in self.layers:
            if report.path == path:
                return report
        raise KeyError(f"no report for layer {path!r}; reports: {[r.path for r in self.layers]}")

    @property
    def problems(self) -> dict[str, LayerReport]:
        """``{path: report}`` of the layers with dead, constant or input-like channels."""
        return {r.path: r for r in self.layers if r.has_findings}

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (lists instead of tuples)."""
        return json.loads(self.to_json())

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(
            {
                "model": self.model_name,
                "n_images": self.n_images,
                "settings": self.settings,
                "layers": [asdict(r) for r in self.layers],
            },
            indent=indent,
        )

    def summary(self) -> str:
        """A readable table (one row per layer), each layer's findings with channel indices, and
        what each kind of finding means."""
        width = max([5, *(len(r.path) for r in self.layers)])
        head = f"{'layer':<{width}} {'shape':<14} {'ch':>5} {'dead':>5} {'const':>5} {'input':>5} {'zeros':>6}"
        rows = [
            f"Diagnosis of model {self.model_name!r} on {self.n_images} images",
            head,
            "-" * len(head),
        ]
        for r in self.layers:
            shape = "x".join(str(s) for s in r.shape)
            rows.append(
                f"{r.path:<{width}} {shape:<14} {r.channels:>5} {len(r.dead):>5} "
                f"{len(r.constant):>5} {len(r.input_like):>5} {r.sparsity:>6.1%}"
            )
        rows.append("")
        if not self.problems:
            rows.append("No dead, constant or input-like channels found.")
        seen: set[str] = set()
        for r in self.problems.values():
            rows.append(f"{r.path}:")
            for kind, channels, detail in _findings(r):
                rows.append(f"  {kind} channels {channel_list(channels)}{detail}")
                seen.add(kind)
        if seen:
            rows.append("")
            rows.append("What the findings mean:")
            rows.extend(f"  {kind}: {MEANINGS[kind]}" for kind in MEANINGS if kind in seen)
        rows.append("zeros: sparsity, the fraction of activations that are zero (|a| <= dead_tol).")
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        """HTML for notebooks, laid out like :meth:`summary`: a table of channel counts per layer,
        then each finding with its channel indices and what it means. Past :data:`HTML_ROWS`
        layers the full table is folded (``<details>``) under a table of the layers with
        findings. Every value is escaped; no scripts, no styles fetched."""
        esc = html.escape
        table = _html_table(self.layers)
        if len(self.layers) > HTML_ROWS:
            flagged = [r for r in self.layers if r.has_findings]
            table = (
                _html_table(flagged) if flagged else ""
            ) + f"<details><summary>all {len(self.layers)} layers</summary>{table}</details>"
        found = [
            f"<li>{esc(r.path)}: {esc(kind)} channels "
            f"{esc(channel_list(channels))}{esc(detail)}</li>"
            for r in self.layers
            for kind, channels, detail in _findings(r)
        ]
        kinds = [k for k in MEANINGS if any(f[0] == k for r in self.layers for f in _findings(r))]
        notes = "".join(f"<li><b>{esc(k)}</b>: {esc(MEANINGS[k])}</li>" for k in kinds)
        verdict = (
            f"<ul>{''.join(found)}</ul><p>What the findings mean:</p><ul>{notes}</ul>"
            if kinds
            else "<p>No dead, constant or input-like channels found.</p>"
        )
        return (
            f"<p><b>Diagnosis of model {esc(repr(self.model_name))} on {self.n_images} "
            f"images</b></p>{table}{verdict}"
        )


def diagnose(
    model: keras.Model,
    data,
    *,
    layers=None,
    dead_tol: float = 0.0,
    constant_tol: float = 1e-6,
    copy_threshold: float = 0.98,
    batch_size: int | None = None,
    preprocess: Callable | None = None,
    token_grid: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
    engine="local",
    address: str | None = None,
    workers: int | None = None,
) -> Diagnosis:
    """Find dead, constant and input-copying channels in every layer.

    Streams over ``data`` once, keeping per-channel running min, max, sums and co-moments with
    the input, so memory is bounded by one batch whatever the dataset size.

    Parameters
    ----------
    model : keras.Model
    data : array_like (N, H, W[, C]), folder, file list, tf.data / ray.data Dataset or iterable
        Anything :func:`vizkit.core.sources.open_source` reads; uint8 is scaled to [0, 1],
        floats are used as given; an iterable may yield ``x`` or ``(x, y)``.
    layers : str, int, Layer or list of them, optional
        Default: every layer with a 4-D output, every transformer token layer and every Dense
        layer. Token layers ``(N, T, C)`` are judged on their patch tokens as an ``(N, h, w,
        C)`` map (prefix tokens left out).
    dead_tol : float
        A channel is dead when ``|a| <= dead_tol`` for every image and position.
    constant_tol : float
        A channel (not dead) is constant when ``max(a) - min(a) <= constant_tol``.
    copy_threshold : float
        A spatial channel is input-like when the absolute Pearson correlation between the channel
        (bilinearly upsampled to the input size) and the input luminance (of the images as given,
        before ``preprocess``) exceeds this. An inverted copy counts too: it carries the same
        information.
    batch_size : int, optional
        Images per forward pass (default 32).
    preprocess : callable, optional
        Applied to the batch inside the graph before the model.
    token_grid : (h, w), optional
        Patch grid of token layers when it cannot be inferred from the token count.
    prefix_tokens : int, optional
        Class/distillation/register tokens in front of the patch tokens.
    engine : {"local", "ray"} or an engine object
        Where the pass runs: this process, or Ray Data workers
        (:class:`vizkit.engines.RayEngine`); both return the same statistics.
    address : str, optional
        Ray cluster address for ``engine="ray"`` (a local Ray when None).
    workers : int, optional
        Number of Ray workers for ``engine="ray"``.

    Returns
    -------
    Diagnosis
    """
    _check_settings(dead_tol, constant_tol, copy_threshold)
    grid_args = check_grid_args(token_grid, prefix_tokens)
    paths = _default_layers(model, grid_args) if layers is None else resolve_layers(model, layers)
    job = DiagnoseJob(tuple(paths), float(dead_tol), preprocess, grid_args)
    stats, n_images = run(
        job, model, data, batch_size=batch_size, engine=engine, address=address, workers=workers
    )
    grids = _grids(model, paths, grid_args)
    shapes = _shapes(model, paths)
    for p, grid in grids:
        if grid is not None:
            shapes[p] = (grid.height, grid.width, shapes[p][-1])
    reports = tuple(
        LayerReport(
            path=p, shape=shapes[p], **stats[p].findings(dead_tol, constant_tol, copy_threshold)
        )
        for p in paths
    )
    settings = {
        "dead_tol": float(dead_tol),
        "constant_tol": float(constant_tol),
        "copy_threshold": float(copy_threshold),
    }
    return Diagnosis(model.name, n_images, reports, settings)


# --------------------------------------------------------------------------------------------
def _findings(r: LayerReport) -> list[tuple[str, tuple[int, ...], str]]:
    values = ", ".join(f"{v:.3g}" for v in r.constant_values)
    corr = ", ".join(f"{v:.3f}" for v in r.input_correlation)
    found = [
        ("dead", r.dead, ""),
        ("constant", r.constant, f" (values {values})"),
        ("input-like", r.input_like, f" (correlation {corr})"),
    ]
    return [f for f in found if f[1]]


def channel_list(channels: tuple[int, ...]) -> str:
    """``[0-3, 7]``: runs of consecutive indices shortened so wide layers stay readable."""
    parts, start = [], None
    for i, c in enumerate(channels):
        if start is None:
            start = c
        if i + 1 == len(channels) or channels[i + 1] != c + 1:
            parts.append(str(start) if c == start else f"{start}-{c}")
            start = None
    return "[" + ", ".join(parts) + "]"


def _html_table(reports) -> str:
    """One row per layer: channel counts of each finding (highlighted rows have findings)."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("layer", "shape", "channels", "dead", "constant", "input-like", "zeros")
    )
    rows = []
    for r in reports:
        cells = [
            html.escape(r.path),
            html.escape("x".join(str(s) for s in r.shape)),
            str(r.channels),
            str(len(r.dead)),
            str(len(r.constant)),
            str(len(r.input_like)),
            f"{r.sparsity:.1%}",
        ]
        mark = ' style="background:#fde0dd"' if r.has_findings else ""
        rows.append(f"<tr{mark}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _default_layers(model: keras.Model, grid_args) -> list[str]:
    check_built(model)
    paths = [
        p
        for p, layer in iter_layers(model)
        if not isinstance(layer, keras.Model)
        and (
            grid_rank(layer, token_grid=grid_args[0], prefix_tokens=grid_args[1]) == 4
            or (isinstance(layer, keras.layers.Dense) and output_rank(layer) == 2)
        )
    ]
    if not paths:
        raise ValueError(
            f"model {model.name!r} has no layer with a 4-D output, token grid or Dense layer"
        )
    return paths


def _shapes(model: keras.Model, paths: list[str]) -> dict[str, tuple[int, ...]]:
    layers = dict(iter_layers(model))
    shapes = {p: output_shape(layers[p]) or () for p in paths}
    return {p: tuple(int(s) for s in shape[1:] if s is not None) for p, shape in shapes.items()}


def _check_settings(dead_tol, constant_tol, copy_threshold) -> None:
    for name, value in (("dead_tol", dead_tol), ("constant_tol", constant_tol)):
        if not _is_number(value) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not _is_number(copy_threshold) or not 0 < copy_threshold <= 1:
        raise ValueError(f"copy_threshold must be in (0, 1], got {copy_threshold!r}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def luminance(x: tf.Tensor) -> tf.Tensor:
    """In-graph luminance ``(N, H, W)`` of images ``(N, H, W, C)`` (ITU-R BT.601 weights for
    RGB, the channel mean otherwise)."""
    if x.shape[-1] == 3:
        return tf.tensordot(x, tf.constant([0.299, 0.587, 0.114], x.dtype), axes=1)
    return tf.reduce_mean(x, axis=-1)


def batch_stats(
    model: keras.Model,
    paths: tuple[str, ...],
    images: np.ndarray,
    *,
    dead_tol: float = 0.0,
    preprocess: Callable | None = None,
    grid_args: tuple = (None, None),
) -> dict[str, dict[str, np.ndarray]]:
    """Per-channel reductions of one batch for every layer in ``paths`` (one forward pass):
    ``{path: {statistic: array}}``, merged across batches by
    :class:`vizkit.engines.reductions.ChannelStats`. Token layers are read as patch grids
    (``grid_args = (token_grid, prefix_tokens)`` as :func:`diagnose` takes them)."""
    fn = _stats_fn(model, _grids(model, paths, grid_args), float(dead_tol), preprocess, images)
    return {
        p: {name: v.numpy() for name, v in values.items()}
        for p, values in fn(tf.convert_to_tensor(images)).items()
    }


def _grids(model: keras.Model, paths, grid_args: tuple) -> tuple:
    """``(path, TokenGrid or None)`` per layer: how token layers map onto a patch grid."""
    objects = dict(iter_layers(model))
    token_grid, prefix_tokens = grid_args
    return tuple(
        (p, layer_grid(objects[p], token_grid=token_grid, prefix_tokens=prefix_tokens, path=p))
        for p in paths
    )


def _stats_fn(model, grids: tuple, dead_tol: float, preprocess, example):
    tap = Tap(capture=tuple(p for p, _ in grids), preprocess=preprocess)

    def make():
        def fn(x):
            captured = forward(model, x, tap)[1]
            lum = tf.cast(luminance(x), tf.float64)[..., None]  # (N, H, W, 1)
            return {
                p: activation_stats(
                    captured[p] if g is None else g.to_grid(captured[p]), lum, dead_tol
                )
                for p, g in grids
            }

        return fn, (image_spec(example),)

    return compiled(model, ("diagnose", tap, dead_tol, grids), make)


def activation_stats(act: tf.Tensor, lum: tf.Tensor, dead_tol: float) -> dict:
    """In-graph per-channel reductions of one batch of a layer's output ``act`` (``(N, h, w,
    C)`` or ``(N, C)``) against the input luminance ``lum`` ``(N, H, W, 1)`` float64: the
    statistics :class:`vizkit.engines.reductions.ChannelStats` merges (float64 sums so long
    streams stay exact enough)."""
    axes = list(range(act.shape.rank - 1))
    out = {
        "count": tf.cast(tf.reduce_prod(tf.shape(act)[:-1]), tf.float64),
        "min": tf.reduce_min(act, axis=axes),
        "max": tf.reduce_max(act, axis=axes),
        "absmax": tf.reduce_max(tf.abs(act), axis=axes),
        "zeros": tf.reduce_sum(tf.cast(tf.abs(act) <= dead_tol, tf.float64), axis=axes),
    }
    if act.shape.rank == 4:
        out.update(_upsampled_moments(act, lum[..., 0]))
        out.update(
            n_pix=tf.cast(tf.reduce_prod(tf.shape(lum)), tf.float64),
            sy=tf.reduce_sum(lum),
            syy=tf.reduce_sum(lum * lum),
        )
    return out


def _upsampled_moments(act: tf.Tensor, lum: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-channel sums ``sx``, ``sxx``, ``sxy`` of ``up = resize(act)`` (bilinear, to the input
    size) against ``lum`` ``(N, H, W)``, without building ``up``.

    ``up`` would hold ``N x H x W x C`` float64 values: 16 GB for a batch of 32 ImageNet images
    and a 1280-channel layer. Bilinear resizing is separable and linear, ``up[n, :, :, c] = Rh @
    act[n, :, :, c] @ Rw.T`` with ``Rh`` ``(H, h)`` and ``Rw`` ``(W, w)`` (read off by resizing
    identity matrices), so the sums only need ``(h, w)``-sized terms: ``sx = sum(act * outer(
    Rh.sum(0), Rw.sum(0)))``, ``sxy = sum(act * Rh.T @ lum @ Rw)`` and ``sxx = sum(act * Gh @ act
    @ Gw)`` with the Gram matrices ``Gh = Rh.T @ Rh``, ``Gw = Rw.T @ Rw``.
    """
    h, w = tf.shape(act)[1], tf.shape(act)[2]
    size_h, size_w = tf.shape(lum)[1], tf.shape(lum)[2]
    a = tf.cast(act, tf.float64)
    rh = _resize_matrix(h, size_h)
    rw = _resize_matrix(w, size_w)
    gh = tf.matmul(rh, rh, transpose_a=True)
    gw = tf.matmul(rw, rw, transpose_a=True)
    weights = tf.tensordot(tf.reduce_sum(rh, 0), tf.reduce_sum(rw, 0), axes=0)  # (h, w)
    lum_small = tf.einsum("Hk,nHW,Wl->nkl", rh, lum, rw)  # (N, h, w)
    mixed = tf.einsum("kK,nKLc,Ll->nklc", gh, a, gw)
    return {
        "sx": tf.einsum("nklc,kl->c", a, weights),
        "sxx": tf.reduce_sum(a * mixed, axis=[0, 1, 2]),
        "sxy": tf.einsum("nklc,nkl->c", a, lum_small),
    }


def _resize_matrix(n: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """``R`` ``(size, n)`` float64 with ``resize(v) = R @ v`` for bilinear resizing along one
    axis: the resized columns of the identity (resizing a length-1 axis to 1 changes nothing)."""
    eye = tf.eye(n, dtype=tf.float32)[None, :, :, None]  # an (n, n) image: column k is e_k
    return tf.cast(
        tf.image.resize(eye, tf.stack([size, n]), method="bilinear")[0, :, :, 0], tf.float64
    )
