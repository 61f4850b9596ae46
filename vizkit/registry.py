"""The method table: every visualisation method declared once.

One :class:`MethodSpec` per method says where its function lives (an import path, so this module
imports neither Keras nor matplotlib), whether it draws one figure per image or per layer,
whether it explains a class (``target``), which layers it applies to, its options with types,
defaults and help, its report title and how its result is drawn. Everything else is generated
from this table:

* ``vizkit.<name>`` (``vizkit.__getattr__``),
* the command line's method subcommands and their options (``vizkit.cli``),
* :func:`vizkit.export`'s methods, their titles in ``index.html`` and their renderers,
* the contract tests in ``tests/test_registry.py``.

Adding a method is one function module in :mod:`vizkit.methods` plus one entry here
(``docs/ARCHITECTURE.md`` walks through it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Which layers a per-layer method applies to (predicates live in vizkit.report.compute):
#   "conv2d"   convolution layers with a 4-D output (kernels to draw),
#   "spatial"  any layer with a 4-D (N, H, W, C) output,
#   "units"    4-D or 2-D outputs (channels or dense units),
#   "gradcam"  spatial layers larger than 1x1 (a 1x1 map carries no "where"),
#   "attention" MultiHeadAttention layers (their attention weights).
# Transformer token layers (N, T, C) whose tokens form a patch grid count as spatial.
LAYER_KINDS = ("conv2d", "spatial", "units", "gradcam", "attention")
# How a result is drawn (vizkit.render.raster for the fast path, vizkit.plot for matplotlib).
RENDERERS = ("filters", "feature_maps", "heatmap", "hypercolumn", "grid", "pair", "top")


@dataclass(frozen=True)
class Option:
    """One option of a method: its keyword, type, default, help and command-line form.

    ``type`` is a name from :data:`OPTION_TYPES` (so that the command line can parse it without
    importing the method); ``default=None`` means "the function's own default".
    """

    name: str
    type: str
    help: str
    default: Any = None
    choices: tuple[str, ...] | None = None
    flag: str | None = None  # command-line flag; default --name-with-dashes

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


OPTION_TYPES = ("int", "float", "str", "units", "bool")


@dataclass(frozen=True)
class MethodSpec:
    """One row of the method table.

    Attributes
    ----------
    name : str
        Public name: ``vizkit.<name>``, the key in :func:`vizkit.export`'s ``methods``.
    function : str
        ``"module:attribute"`` of the public function.
    compute : str
        ``"module:attribute"`` of the report adapter ``compute(ctx, layer, **options)`` that
        :func:`vizkit.export` and the command line call (:mod:`vizkit.report.compute`).
    title : str
        Heading in the HTML report.
    help : str
        One line for ``vizkit --help``.
    per_image : bool
        One figure per image (True) or one per layer (False).
    target : bool
        Explains a class score, so ``--target`` / ``targets=`` apply.
    layers : str or None
        Which layers it applies to (a :data:`LAYER_KINDS` name); None for whole-model methods
        (input attributions) that draw one figure per image.
    default_layers : str
        Which layers the export uses when none are given: ``"representative"`` (a few, one per
        resolution stage), ``"last"`` (the last suitable layer) or ``"all"`` (every suitable one).
    needs_images : bool
        Whether the command line must be given images.
    renderer : str
        A :data:`RENDERERS` name.
    options : tuple of Option
        Options exposed on the command line and recorded in the manifest.
    export_defaults : dict
        Option values the export uses when the caller gives none (e.g. how many units).
    engines : bool
        Runs over a dataset on :mod:`vizkit.engines` (its function takes ``engine``,
        ``address`` and ``workers``), so the command line offers ``--engine``.
    """

    name: str
    function: str
    compute: str
    title: str
    help: str
    per_image: bool
    target: bool = False
    layers: str | None = None
    default_layers: str = "representative"
    needs_images: bool = True
    renderer: str = "heatmap"
    options: tuple[Option, ...] = ()
    export_defaults: Mapping[str, Any] = field(default_factory=dict)
    engines: bool = False

    @property
    def command(self) -> str:
        """The command-line subcommand (``feature-maps`` for ``feature_maps``)."""
        return self.name.replace("_", "-")

    def load(self) -> Callable:
        """The public function (imports the method's module)."""
        return load(self.function)

    def load_compute(self) -> Callable:
        """The report adapter (imports the method's module)."""
        return load(self.compute)


def load(path: str) -> Any:
    """The object at ``"package.module:attribute"``."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


_C = "vizkit.report.compute"
_UNITS = Option("units", "units", "unit (channel) indices, e.g. '0 1 2' or '0-7'")
_FIRST = Option("first", "int", "draw the first N units of each layer (instead of --units)")

_QUERY = Option(
    "query",
    "str",
    "query token: cls (the class token), mean (every patch), a token index or ROW,COL "
    "(default: cls if the model has one, else mean)",
)
HEAD_FUSIONS = ("mean", "max", "min")

SALIENCY_VARIANTS = ("vanilla", "gradxinput", "smoothgrad", "integrated", "guided", "deconvnet")

METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "filters",
            "vizkit.methods.filters:filters",
            f"{_C}:filters",
            "Filters (kernel weights)",
            "draw the convolution kernels of a layer as image tiles",
            per_image=False,
            layers="conv2d",
            needs_images=False,
            renderer="filters",
        ),
        MethodSpec(
            "feature_maps",
            "vizkit.methods.feature_maps:feature_maps",
            f"{_C}:feature_maps",
            "Feature maps",
            "draw the feature maps (activations) of a layer per image",
            per_image=True,
            layers="spatial",
            renderer="feature_maps",
        ),
        MethodSpec(
            "hypercolumns",
            "vizkit.methods.hypercolumns:hypercolumns",
            f"{_C}:hypercolumns",
            "Hypercolumns",
            "stack upsampled activations of several layers per pixel (hypercolumns)",
            per_image=True,
            renderer="hypercolumn",
        ),
        MethodSpec(
            "saliency",
            "vizkit.methods.saliency:saliency",
            f"{_C}:saliency",
            "Saliency (input gradients)",
            "pixel attributions: gradients of the class score with respect to the input",
            per_image=True,
            target=True,
            options=(
                Option(
                    "method",
                    "str",
                    "attribution method",
                    default="vanilla",
                    choices=SALIENCY_VARIANTS,
                ),
            ),
            export_defaults={"method": "vanilla"},
        ),
        MethodSpec(
            "gradcam",
            "vizkit.methods.gradcam:gradcam",
            f"{_C}:gradcam",
            "Grad-CAM",
            "Grad-CAM class activation heat maps",
            per_image=True,
            target=True,
            layers="gradcam",
            default_layers="last",
            options=(Option("plus_plus", "bool", "use the Grad-CAM++ weights", default=False),),
        ),
        MethodSpec(
            "occlusion",
            "vizkit.methods.occlusion:occlusion",
            f"{_C}:occlusion",
            "Occlusion sensitivity",
            "drop in the class score when a sliding patch is greyed out",
            per_image=True,
            target=True,
            options=(
                Option("patch", "int", "patch side in pixels (default: image side / 7)"),
                Option("stride", "int", "patch stride in pixels (default: patch / 2)"),
            ),
        ),
        MethodSpec(
            "maximize",
            "vizkit.methods.maximize:maximize",
            f"{_C}:maximize",
            "Activation maximisation",
            "synthesise inputs that maximally activate units of a layer (activation maximisation)",
            per_image=False,
            layers="units",
            needs_images=False,
            renderer="grid",
            options=(_UNITS, _FIRST, Option("steps", "int", "gradient-ascent steps")),
            export_defaults={"first": 8},
        ),
        MethodSpec(
            "deepdream",
            "vizkit.methods.deepdream:deepdream",
            f"{_C}:deepdream",
            "DeepDream",
            "amplify what a layer sees in each image (DeepDream)",
            per_image=True,
            layers="spatial",
            default_layers="last",
            renderer="pair",
            options=(
                Option("octaves", "int", "number of image scales"),
                Option("steps", "int", "gradient-ascent steps per octave"),
                Option("step_size", "float", "gradient-ascent step size"),
            ),
        ),
        MethodSpec(
            "top_activating",
            "vizkit.methods.top_activating:top_activating",
            f"{_C}:top_activating",
            "Top-activating images",
            "the images that activate each unit of a layer most",
            per_image=False,
            layers="units",
            renderer="top",
            options=(_UNITS, _FIRST, Option("k", "int", "images per unit", flag="-k")),
            export_defaults={"first": 4, "k": 9},
            engines=True,
        ),
        MethodSpec(
            "attention_maps",
            "vizkit.methods.attention:attention_maps",
            f"{_C}:attention_maps",
            "Attention maps",
            "attention of the class token (or a chosen patch) over the image, from a "
            "MultiHeadAttention layer of a vision transformer (heads averaged in figures)",
            per_image=True,
            layers="attention",
            default_layers="last",
            options=(_QUERY, Option("heads", "units", "heads to average (default: all)")),
        ),
        MethodSpec(
            "attention_rollout",
            "vizkit.methods.attention:attention_rollout",
            f"{_C}:attention_rollout",
            "Attention rollout",
            "attention flow from every patch to the class token through the attention "
            "layers of a vision transformer up to the given one (attention rollout)",
            per_image=True,
            layers="attention",
            default_layers="last",
            options=(
                Option(
                    "head_fusion",
                    "str",
                    "how the heads of a layer are combined",
                    default="mean",
                    choices=HEAD_FUSIONS,
                ),
                Option("discard_ratio", "float", "fraction of the weakest weights dropped"),
                _QUERY,
            ),
        ),
    )
}

# Explanation maps: every way of getting an (N, H, W) map of "where the class evidence is",
# as (method, fixed options). The trust metrics and the report card iterate over these.
EXPLANATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    **{variant: ("saliency", {"method": variant}) for variant in SALIENCY_VARIANTS},
    "gradcam": ("gradcam", {}),
    "gradcam++": ("gradcam", {"plus_plus": True}),
    "occlusion": ("occlusion", {}),
}

# Public names that are not methods: name -> "module:attribute".
EXTRAS: dict[str, str] = {
    "hypercolumn_average": "vizkit.methods.hypercolumns:hypercolumn_average",
    "receptive_field": "vizkit.methods.top_activating:receptive_field",
    "diagnose": "vizkit.methods.diagnose:diagnose",
    "Diagnosis": "vizkit.methods.diagnose:Diagnosis",
    "explain": "vizkit.methods.explain:explain",
    "export": "vizkit.report.export:export",
    "add_figures": "vizkit.report.extra:add_figures",
    "add_section": "vizkit.report.extra:add_section",
    "VisualizationCallback": "vizkit.callbacks:VisualizationCallback",
    "layer_paths": "vizkit.core.layers:layer_paths",
    "style_transfer": "vizkit.methods.style_transfer:style_transfer",
    "show": "vizkit.plot.show:show",
    "map_to_disk": "vizkit.engines.maps:map_to_disk",
    "load_maps": "vizkit.engines.maps:load_maps",
    "evaluate": "vizkit.metrics.report_card:evaluate",
    "TrustTable": "vizkit.metrics.report_card:TrustTable",
    "atlas": "vizkit.microscope.build:atlas",
}


def public_api() -> dict[str, str]:
    """Every public name of :mod:`vizkit` -> ``"module:attribute"``."""
    return {**{name: spec.function for name, spec in METHODS.items()}, **EXTRAS}


def method(name: str) -> MethodSpec:
    """The spec of ``name``; a ValueError lists the known methods otherwise."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def check_methods(methods) -> list[str]:
    """``methods`` (a name, a list of names or ``"all"``) as a list of known names, in order.

    Raises
    ------
    ValueError
        For an empty list or unknown names; the message lists the known ones.
    """
    if isinstance(methods, str):
        methods = list(METHODS) if methods == "all" else [methods]
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"methods must be a non-empty list of {sorted(METHODS)} or 'all', "
            f"got {unknown or methods!r}"
        )
    return methods


def explanation(name: str) -> tuple[str, dict[str, Any]]:
    """``(method, options)`` of the explanation map ``name``; a ValueError lists the names."""
    if not isinstance(name, str) or name not in EXPLANATIONS:
        raise ValueError(f"unknown explanation method {name!r}; known: {', '.join(EXPLANATIONS)}")
    method_name, options = EXPLANATIONS[name]
    return method_name, dict(options)
