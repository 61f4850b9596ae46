"""The dataset jobs of :func:`vizkit.top_activating` and :func:`vizkit.diagnose`.

Each job is a small picklable description; ``partial`` runs the method's compiled pass on one
chunk (the method modules own how activations are extracted), ``merge`` is a reduction from
:mod:`vizkit.engines.reductions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .chunks import Chunk
from .reductions import ChannelStats, TopK, merge_layers


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
        if acc is None:
            return part
        return {path: acc[path].merge(best) for path, best in part.items()}


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
