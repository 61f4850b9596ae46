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
    """The ``k`` images that activate each of ``units`` of ``layer`` most.

    ``field`` (a :class:`vizkit.methods.top_activating.ReceptiveField`) asks for the
    receptive-field crop around each kept image's strongest location as the payload.
    """

    layer: str
    units: tuple[int, ...]
    k: int
    reduce: str = "max"
    preprocess: Callable | None = None
    field: Any = None

    def partial(self, model, chunk: Chunk) -> TopK:
        from ..methods.top_activating import receptive_crop, unit_scores

        scores, locations = unit_scores(
            model,
            self.layer,
            self.units,
            chunk.images,
            reduce=self.reduce,
            preprocess=self.preprocess,
        )
        extra = None
        if self.field is not None:

            def extra(row: int, unit: int):
                return receptive_crop(chunk.images[row], locations[row, unit], self.field)

        return TopK.of_batch(scores, chunk.start, self.k, extra)

    def merge(self, acc: TopK | None, part: TopK) -> TopK:
        return part if acc is None else acc.merge(part)


@dataclass(frozen=True)
class DiagnoseJob:
    """Per-channel statistics of every layer in ``paths`` (see :func:`vizkit.diagnose`)."""

    paths: tuple[str, ...]
    dead_tol: float = 0.0
    preprocess: Callable | None = None

    def partial(self, model, chunk: Chunk) -> dict[str, ChannelStats]:
        from ..methods.diagnose import batch_stats

        stats = batch_stats(
            model, self.paths, chunk.images, dead_tol=self.dead_tol, preprocess=self.preprocess
        )
        return {path: ChannelStats.of_batch(values) for path, values in stats.items()}

    def merge(self, acc, part):
        return merge_layers(acc, part)
