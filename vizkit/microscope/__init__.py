"""The model atlas (:func:`vizkit.atlas`): every channel of every conv layer, browsable.

The package is not called ``vizkit.atlas`` because that name is the function: importing a
submodule ``vizkit.atlas`` would put the module where ``vizkit.atlas`` must be the function.

* :mod:`~vizkit.microscope.compute`: the compiled pass of the atlas's dataset job (top-k
  scores, channel statistics and histograms of every layer from one forward pass).
* :mod:`~vizkit.microscope.build`: :func:`atlas` (the data pass on any engine, then
  maximisation).
* :mod:`~vizkit.microscope.pictures` and :mod:`~vizkit.microscope.site`: pixels and pages.
"""

from .build import LayerAtlas, atlas, atlas_layers

__all__ = ["LayerAtlas", "atlas", "atlas_layers"]
