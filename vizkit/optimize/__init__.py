"""Building blocks of feature visualisation by optimisation, shared by :func:`vizkit.maximize`
and :func:`vizkit.deepdream`.

* :mod:`.objectives` -- what to maximise (``channel``, ``neuron``, ``dense_unit``, ``class_logit``,
  ``direction``, ``layer_mean``, ``layer_l2``, ``diversity``; ``gram_loss`` and ``feature_loss``
  to minimise for style transfer), combined with ``+``, ``-``, ``*``;
* :mod:`.params` -- image parametrisations (``pixel``, decorrelated ``fourier``);
* :mod:`.transforms` -- random transforms inside the gradient path (``pad``, ``jitter``,
  ``random_scale``, ``random_rotate``);
* :mod:`.regularizers` -- penalties (``l2``, ``total_variation``, ``blur``);
* :mod:`.core` -- :func:`optimize`, the one compiled optimisation loop.

Example
-------
>>> from vizkit import optimize as opt
>>> objective = opt.channel("conv2", 3) - 0.5 * opt.channel("conv2", 7)
>>> result = opt.optimize(model, objective, param=opt.fourier(), steps=128)  # doctest: +SKIP
"""

from .core import MAX_STEPS_ENV, OptimizeResult, capped_steps, optimize
from .objectives import (
    Objective,
    channel,
    class_logit,
    dense_unit,
    direction,
    diversity,
    feature_loss,
    gram_loss,
    gram_matrix,
    layer_l2,
    layer_mean,
    neuron,
)
from .params import fourier, pixel
from .regularizers import blur, l2, total_variation
from .transforms import jitter, pad, random_rotate, random_scale, standard_transforms

__all__ = [
    "MAX_STEPS_ENV",
    "Objective",
    "OptimizeResult",
    "blur",
    "capped_steps",
    "channel",
    "class_logit",
    "dense_unit",
    "direction",
    "diversity",
    "feature_loss",
    "fourier",
    "gram_loss",
    "gram_matrix",
    "jitter",
    "l2",
    "layer_l2",
    "layer_mean",
    "neuron",
    "optimize",
    "pad",
    "pixel",
    "random_rotate",
    "random_scale",
    "standard_transforms",
    "total_variation",
]
