"""The dataset jobs of :func:`vizkit.top_activating`, :func:`vizkit.diagnose` and
:func:`vizkit.atlas`.

Each job is a small picklable description; ``partial`` runs the method's compiled pass on one
chunk (the method modules own how activations are extracted), ``merge`` is a reduction from
:mod:`vizkit.engines.reductions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .chunks import Chunk
from .reductions import HIST_BINS, ChannelStats, Histogram, TopK, merge_layers


@dataclass(frozen=True)
class TopKJob:
    """The ``k`` images that activate each unit of each layer most (one pass for all layers).

    ``units[i]`` are the units of ``layers[i]``; ``fields[i]`` (a
    :class:`vizkit.methods.top_activating.ReceptiveField` or None) asks for the receptive-field
    crop around each kept image's strongest location as the payload.
    """

    layers: tuple[str, ...]
    units: tuple[tuple[int, ...], ...]
    k: int
    reduce: str = "max"
    preprocess: Callable | None = None
    fields: tuple[Any, ...] = ()
    grids: tuple[Any, ...] = ()  # TokenGrid per layer for transformer token layers, else None

    def partial(self, model, chunk: Chunk) -> dict[str, TopK]:
        from ..methods.top_activating import receptive_crop, unit_scores

        found = unit_scores(
            model,
            self.layers,
            self.units,
            chunk.images,
            reduce=self.reduce,
            preprocess=self.preprocess,
            grids=self.grids or None,
        )
        fields = self.fields or (None,) * len(self.layers)
        out = {}
        for path, (scores, locations), field in zip(self.layers, found, fields, strict=True):
            extra = None
            if field is not None:

                def extra(row: int, unit: int, locations=locations, field=field):
                    return receptive_crop(chunk.images[row], locations[row, unit], field)

            out[path] = TopK.of_batch(scores, chunk.start, self.k, extra)
        return out

    def merge(self, acc: dict[str, TopK] | None, part: dict[str, TopK]) -> dict[str, TopK]:
        return merge_layers(acc, part)


@dataclass(frozen=True)
class DiagnoseJob:
    """Per-channel statistics of every layer in ``paths`` (see :func:`vizkit.diagnose`)."""

    paths: tuple[str, ...]
    dead_tol: float = 0.0
    preprocess: Callable | None = None
    grid_args: tuple = (None, None)  # (token_grid, prefix_tokens) for transformer token layers

    def partial(self, model, chunk: Chunk) -> dict[str, ChannelStats]:
        from ..methods.diagnose import batch_stats

        stats = batch_stats(
            model,
            self.paths,
            chunk.images,
            dead_tol=self.dead_tol,
            preprocess=self.preprocess,
            grid_args=self.grid_args,
        )
        return {path: ChannelStats.of_batch(values) for path, values in stats.items()}

    def merge(self, acc, part):
        return merge_layers(acc, part)


@dataclass(frozen=True)
class LayerSummary:
    """What the atlas keeps of one layer: the top-k images of every channel (payload: the
    receptive-field crop, its box, the argmax location and the image id), the channel
    statistics and the activation histograms."""

    top: TopK
    stats: ChannelStats
    hist: Histogram

    def merge(self, other: LayerSummary) -> LayerSummary:
        return LayerSummary(
            self.top.merge(other.top), self.stats.merge(other.stats), self.hist.merge(other.hist)
        )


@dataclass(frozen=True)
class AtlasJob:
    """The atlas's single pass: for every layer in ``layers`` (4-D outputs) a
    :class:`LayerSummary` of every channel, from one forward pass per chunk.

    ``fields[i]`` is the :class:`vizkit.methods.top_activating.ReceptiveField` of
    ``layers[i]``; the crops are cut as :func:`vizkit.top_activating` with ``crops=True`` cuts
    them, and the top-k follows the same order (higher score first, then lower index).
    """

    layers: tuple[str, ...]
    fields: tuple[Any, ...]
    k: int = 9
    preprocess: Callable | None = None
    dead_tol: float = 0.0
    bins: int = HIST_BINS

    def partial(self, model, chunk: Chunk) -> dict[str, LayerSummary]:
        from ..methods.top_activating import receptive_crop
        from ..microscope.compute import layer_summaries

        found = layer_summaries(
            model,
            self.layers,
            chunk.images,
            preprocess=self.preprocess,
            dead_tol=self.dead_tol,
            bins=self.bins,
        )
        out = {}
        for path, field in zip(self.layers, self.fields, strict=True):
            summary = found[path]
            locations = summary["top"]["locations"]

            def extra(row: int, unit: int, locations=locations, field=field):
                patch, box, loc = receptive_crop(chunk.images[row], locations[row, unit], field)
                return patch, box, loc, chunk.ids[row]

            out[path] = LayerSummary(
                TopK.of_batch(summary["top"]["scores"], chunk.start, self.k, extra),
                ChannelStats.of_batch(summary["stats"]),
                Histogram.of_batch(summary["hist"]),
            )
        return out

    def merge(self, acc, part: dict[str, LayerSummary]) -> dict[str, LayerSummary]:
        return merge_layers(acc, part)
