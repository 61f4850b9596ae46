"""Planning an export: which method runs on which layers under which file names, and the
checks of :func:`vizkit.export`'s arguments (all before anything is written)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.checks import positive_int
from ..core.files import UniqueNames
from ..core.images import as_array
from ..core.layers import iter_layers, layer_paths, resolve_layers
from ..registry import METHODS
from .compute import default_layers, spatial_conv_paths, suitable_layers, suits
from .html import INDEX_NAME
from .inputs import is_classifier
from .manifest import Manifest, normalize

FORMATS = ("png", "pdf", "svg")
MODEL_LEVEL = "_model"  # folder of whole-model (input attribution) figures
# Folder names a model slug may not take (they hold the report's own files).
RESERVED = ("thumbs", "pages", "manifest.json", "manifest.journal", INDEX_NAME)
# The option that names a method's variant in file names and titles (saliency-smoothgrad).
VARIANTS = {"saliency": "method", "gradcam": "plus_plus"}


@dataclass(frozen=True)
class Settings:
    """How an export draws: file formats, style, resolution, thumbnails, page size, names."""

    formats: tuple[str, ...]
    style: str
    dpi: int
    thumbnail_size: int
    page_size: int
    class_names: list[str] | None

    @property
    def matplotlib(self) -> bool:
        """Whether any file is a matplotlib figure (drawn in worker processes)."""
        return self.style == "matplotlib" or any(f != "png" for f in self.formats)

    def recorded(self) -> dict[str, Any]:
        return {"page_size": self.page_size, "style": self.style, "class_names": self.class_names}


@dataclass
class Job:
    """One figure: its files (one per format) and its thumbnail.

    ``image`` is the image's position in the stream, ``row`` its row in the current chunk.
    """

    image: int | None
    files: dict[str, str]  # format -> relative path
    thumbnail: str
    parameters: dict[str, Any]
    image_id: str | None = None
    row: int | None = None


@dataclass
class Group:
    """Figures of one model, method and layer, computed together."""

    model: str
    method: str
    layer: str | None
    options: dict[str, Any]
    parameters: dict[str, Any]  # shared by every figure of the group
    folder: tuple[str, str]
    variant: str | None
    jobs: list[Job] = field(default_factory=list)  # per-layer groups: their one figure

    @property
    def stem(self) -> str:
        return self.method if self.variant is None else f"{self.method}-{self.variant}"

    def key(self, image_id: str | None, fmt: str) -> tuple:
        return (self.model, self.method, self.layer, image_id, fmt)


@dataclass
class Plan:
    """What one model's export will do."""

    name: str
    model: Any
    slug: str
    info: dict[str, Any]
    groups: list[Group]
    layers: list[str]  # the layers hypercolumns stack
    targets: list[int] | None
    preprocess: Any
    image_names: UniqueNames = field(default_factory=UniqueNames)

    @property
    def image_groups(self) -> list[Group]:
        return [g for g in self.groups if METHODS[g.method].per_image]

    @property
    def layer_groups(self) -> list[Group]:
        return [g for g in self.groups if not METHODS[g.method].per_image]


def plan_model(
    name,
    model,
    slug,
    targets,
    layers,
    methods,
    options,
    formats,
    pre_name=None,
    pre_fn=None,
    *,
    exact_layers=False,
) -> Plan:
    every = isinstance(layers, str) and layers == "all"
    wanted = None if layers is None or every else resolve_layers(model, layers)
    check_target_range(model, targets)
    info = {
        "slug": slug,
        "weights_sha1": weights_digest(model),
        "images": None,
        "layers": layer_paths(model),
        "preprocess": pre_name,
        "classifier": is_classifier(model),
    }
    layer_names = UniqueNames(info["layers"])
    layer_objects = None
    conv_or_wanted = wanted if wanted is not None else spatial_conv_paths(model)
    groups = []
    for method_name in methods:
        method = METHODS[method_name]
        if method.layers is None:
            method_layers: list[str | None] = [None]
        elif every:
            method_layers = suitable_layers(method, model)
        elif wanted is None:
            method_layers = list(default_layers(method, model))
        elif exact_layers:
            method_layers = list(wanted)
        else:
            layer_objects = layer_objects or dict(iter_layers(model))
            method_layers = [p for p in wanted if suits(method, layer_objects[p])]
        params = dict(options[method_name])
        params["weights_sha1"] = info["weights_sha1"]
        if pre_name is not None and method_name != "filters":
            params["preprocess"] = pre_name
        if method.target:
            params["targets"] = targets if not isinstance(targets, list) else "per image"
        if method.layers is None and method_name == "hypercolumns":
            params["layers"] = conv_or_wanted
        variant = variant_of(method_name, options[method_name])
        for layer in method_layers:
            folder = (slug, MODEL_LEVEL if layer is None else layer_names(layer))
            group = Group(name, method_name, layer, dict(options[method_name]),
                          normalize(params), folder, variant)  # fmt: skip
            if not method.per_image:
                group.jobs = [make_job(group, None, None, None, formats)]
            groups.append(group)
    return Plan(name, model, slug, info, groups, conv_or_wanted, targets, pre_fn)


def variant_of(method: str, options: Mapping[str, Any]) -> str | None:
    value = options.get(VARIANTS.get(method, ""))
    if value is None or value is False:
        return None
    return "plusplus" if value is True else str(value)


def make_job(group: Group, image, image_id, file_id, formats, params=None, row=None) -> Job:
    stem = group.stem if file_id is None else f"{file_id}_{group.stem}"
    files = {fmt: "/".join((*group.folder, f"{stem}.{fmt}")) for fmt in formats}
    thumb = "/".join(("thumbs", *group.folder, f"{stem}.png"))
    return Job(image, files, thumb, params or group.parameters, image_id, row)


def model_slugs(named: Mapping[str, Any], manifest: Manifest) -> dict[str, str]:
    """A folder name per model: the one recorded by an earlier export, else a new readable one
    (never one of the report's own names, :data:`RESERVED`)."""
    names = UniqueNames(reserved=RESERVED)
    for name, info in manifest.models.items():
        slug = info.get("slug")
        # Only a plain slug is reused: a manifest edited to say "../x" cannot move a folder.
        if isinstance(slug, str) and re.fullmatch(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?", slug):
            names.claim(name, slug)
    return {name: names(name) for name in named}


def matplotlib_title(group: Group, image: int | None) -> str:
    where = "whole model" if group.layer is None else group.layer
    text = f"{group.method} - {group.model} - {where}"
    text += "" if image is None else f" - image {image}"
    # Control characters (NUL, bidi overrides) in user names have no glyph in the figure font.
    return "".join(c if c.isprintable() else "?" for c in text)


# -- argument checks ----------------------------------------------------------------------------
def named_models(model, model_name: str | None) -> dict[str, Any]:
    if isinstance(model, Mapping):
        if model_name is not None:
            raise ValueError("model_name is only for a single model; a dict already names them")
        named = {str(k): v for k, v in model.items()}
    elif isinstance(model, (list, tuple)):
        if model_name is not None:
            raise ValueError("model_name is only for a single model; pass a dict name -> model")
        named = {}
        for m in model:
            name, n = getattr(m, "name", "model"), 2
            while name in named:
                name, n = f"{getattr(m, 'name', 'model')}_{n}", n + 1
            named[name] = m
    else:
        named = {
            str(model_name) if model_name is not None else getattr(model, "name", "model"): model
        }
    if not named:
        raise ValueError("model is empty; pass a keras.Model, a list or a dict of them")
    for name, m in named.items():
        if not hasattr(m, "layers") or not callable(m):
            raise TypeError(f"model {name!r} must be a keras.Model, got {type(m).__name__}")
    return named


def check_formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(dict.fromkeys(str(f).lower().lstrip(".") for f in formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {bad or formats!r}")
    return formats


def check_options(method_options, methods: Iterable[str]) -> dict[str, dict[str, Any]]:
    given = dict(method_options or {})
    unknown = [k for k in given if k not in METHODS]
    if unknown:
        raise ValueError(f"method_options has unknown methods {unknown}; known: {sorted(METHODS)}")
    for name, opts in given.items():
        if not isinstance(opts, Mapping):
            raise TypeError(f"method_options[{name!r}] must be a dict, got {type(opts).__name__}")
    return {m: {**METHODS[m].export_defaults, **dict(given.get(m, {}))} for m in methods}


def image_list(images):
    """A list of single images (``(H, W[, C])`` arrays or nested lists; not file paths, batches
    or ``(x, y)`` pairs) as one array, so that a ragged list is refused by name as
    :func:`vizkit.core.images.to_batch` refuses it."""
    if not (isinstance(images, list) and images):
        return images
    if all(isinstance(i, (np.ndarray, list)) and _rank(i) <= 3 for i in images):
        return as_array(images, "images")
    return images


def _rank(item) -> int:
    try:
        return np.ndim(item)
    except ValueError:  # a ragged nested list: as_array says so by name
        return 0


def check_targets(targets, n: int | None) -> int | list[int] | None:
    """None, one class for every image, or one per image (needs a known number of images)."""
    if targets is None:
        return None
    if isinstance(targets, (int, np.integer)) and not isinstance(targets, bool):
        return int(targets)
    values = np.asarray(targets)
    if n is None:
        raise ValueError(
            "targets must be None or one class index for a stream of images of unknown "
            f"number; got {targets!r}"
        )
    if values.ndim != 1 or len(values) != n or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"targets must be None, a class index or {n} class indices (one per image), got {targets!r}"
        )
    return [int(v) for v in values]


def target_at(targets: int | list[int], index: int) -> int:
    return targets if isinstance(targets, int) else targets[index]


def check_target_range(model, targets) -> None:
    if targets is None:
        return
    outputs = getattr(model, "outputs", None)
    if not outputs or any(d is None for d in outputs[0].shape[1:]):
        return
    classes = int(np.prod(outputs[0].shape[1:]))
    bad = [t for t in np.atleast_1d(targets) if not 0 <= t < classes]
    if bad:
        raise ValueError(
            f"target {bad[0]} is out of range: model {model.name!r} has {classes} "
            f"output classes (0..{classes - 1})"
        )


def check_workers(workers) -> int:
    if workers is None:
        return min(4, os.cpu_count() or 1)
    return positive_int(workers, "workers", minimum=0)


def describe_labels(labels) -> Any:
    if labels is None or isinstance(labels, (str, os.PathLike)):
        return None if labels is None else os.fspath(labels)
    return "list"


def weights_digest(model) -> str:
    digest = hashlib.sha1()
    for w in model.weights:
        digest.update(np.ascontiguousarray(w.numpy()).tobytes())
    return digest.hexdigest()[:16]


__all__ = [
    "FORMATS",
    "MODEL_LEVEL",
    "Group",
    "Job",
    "Plan",
    "Settings",
    "check_formats",
    "check_options",
    "check_target_range",
    "check_targets",
    "check_workers",
    "describe_labels",
    "image_list",
    "make_job",
    "matplotlib_title",
    "model_slugs",
    "named_models",
    "plan_model",
    "target_at",
    "variant_of",
    "weights_digest",
]
