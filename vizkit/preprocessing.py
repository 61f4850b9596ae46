"""Bring your own model: named input preprocessing presets, and class names for figures.

vizkit feeds every model images in [0, 1] (uint8 files are divided by 255). A model trained on
another range needs its preprocessing inside the graph, ``preprocess=``: these presets are the
conventions of Keras' ``keras.applications.imagenet_utils.preprocess_input`` rewritten for
inputs in [0, 1], traceable on ``tf.Tensor`` and NumPy arrays alike.

=========== ========================================================== ==========================
preset      model input                                                keras.applications
=========== ========================================================== ==========================
``none``    the [0, 1] image as it is                                  (models trained on [0, 1])
``scale255`` ``255 x``: [0, 255] (the model rescales inside)           EfficientNet(V2), ConvNeXt,
                                                                       MobileNetV3
``tf``      ``2 x - 1``: [-1, 1]                                       MobileNet(V2), Xception,
                                                                       Inception V3,
                                                                       Inception-ResNet V2,
                                                                       NASNet, ResNet V2
``torch``   ``(x - mean) / std``, ImageNet RGB mean and std            DenseNet
``caffe``   ``255 x`` in BGR order minus the ImageNet BGR mean         ResNet (V1), VGG16/19
=========== ========================================================== ==========================

Each keras.applications family is also a preset name (``get_preset("resnet50")`` is ``caffe``).
:func:`detect_rescaling` finds a model that rescales its input itself, :func:`likely_preset`
guesses the preset a model expects, and :func:`check_preset` warns when the chosen one differs.

Labels: :func:`load_labels` reads class names (one per line, or JSON); ``"imagenet"`` gives the
1000 ImageNet-1k class names shipped with vizkit (the first WordNet lemma of each class, in the
standard class-index order: 967 is "espresso"; taken from the synset lists bundled with timm).

Importing this module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

# ImageNet statistics used by keras.applications.imagenet_utils (RGB in [0, 1]; BGR in [0, 255]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Preset:
    """A named input preprocessing: a traceable function of images in [0, 1].

    Attributes
    ----------
    name : str
        ``"none"``, ``"scale255"``, ``"tf"``, ``"torch"`` or ``"caffe"``.
    description : str
        What the model receives.
    value_range : (low, high)
        Range of the model input over all channels for images in [0, 1].
    channels : int or None
        Channels the preset needs (3 for ImageNet statistics), None for any.
    """

    name: str
    description: str
    value_range: tuple[float, float]
    channels: int | None = None

    def __call__(self, x):
        """``x`` (``(..., C)`` in [0, 1], a ``tf.Tensor`` or an array) as the model expects."""
        if self.channels is not None and x.shape[-1] != self.channels:
            raise ValueError(
                f"preprocess preset {self.name!r} needs {self.channels}-channel (RGB) images, "
                f"got {x.shape[-1]} channels"
            )
        return _FUNCTIONS[self.name](x)


def _none(x):
    return x


def _scale255(x):
    return x * 255.0


def _tf(x):
    return x * 2.0 - 1.0


def _torch(x):
    return (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)


def _caffe(x):
    return x[..., ::-1] * 255.0 - np.array(CAFFE_MEAN_BGR, np.float32)


_FUNCTIONS: dict[str, Callable] = {
    "none": _none,
    "scale255": _scale255,
    "tf": _tf,
    "torch": _torch,
    "caffe": _caffe,
}

PRESETS: dict[str, Preset] = {
    "none": Preset("none", "the image in [0, 1] as it is", (0.0, 1.0)),
    "scale255": Preset("scale255", "pixels in [0, 255] (the model rescales them)", (0.0, 255.0)),
    "tf": Preset("tf", "pixels scaled to [-1, 1]", (-1.0, 1.0)),
    "torch": Preset(
        "torch",
        "RGB in [0, 1] normalised by the ImageNet mean and standard deviation",
        (
            min((0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)),
            max((1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)),
        ),
        channels=3,
    ),
    "caffe": Preset(
        "caffe",
        "BGR in [0, 255] minus the ImageNet mean (no scaling)",
        (-max(CAFFE_MEAN_BGR), 255.0 - min(CAFFE_MEAN_BGR)),
        channels=3,
    ),
}

# keras.applications families -> preset (each module's preprocess_input mode; the families that
# rescale inside the model take [0, 255] pixels).
FAMILIES: dict[str, str] = {
    **dict.fromkeys(("resnet", "resnet50", "resnet101", "resnet152", "vgg16", "vgg19"), "caffe"),
    **dict.fromkeys(
        (
            "resnet_v2",
            "resnet50v2",
            "resnet101v2",
            "resnet152v2",
            "mobilenet",
            "mobilenet_v2",
            "xception",
            "inception_v3",
            "inception_resnet_v2",
            "nasnet",
        ),
        "tf",
    ),
    **dict.fromkeys(("densenet", "densenet121", "densenet169", "densenet201"), "torch"),
    **dict.fromkeys(("efficientnet", "efficientnet_v2", "convnext", "mobilenet_v3"), "scale255"),
}

# Model names keras.applications gives its builders (lower case) -> family preset.
_NAME_PATTERNS = (
    ("resnet", "v2", "tf"),
    ("resnet", "", "caffe"),
    ("vgg", "", "caffe"),
    ("mobilenetv3", "", "scale255"),
    ("mobilenet", "", "tf"),
    ("densenet", "", "torch"),
    ("xception", "", "tf"),
    ("inception", "", "tf"),
    ("nasnet", "", "tf"),
    ("efficientnet", "", "scale255"),
    ("convnext", "", "scale255"),
)


def preset_names() -> list[str]:
    """Every accepted name: the five presets, then the keras.applications families."""
    return [*PRESETS, *FAMILIES]


def get_preset(name: str | Preset) -> Preset:
    """The :class:`Preset` called ``name`` (a preset or a keras.applications family name,
    case-insensitive, ``-`` and ``_`` alike).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(name, Preset):
        return name
    if not isinstance(name, str):
        raise TypeError(f"preprocess preset must be a name (str), got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = FAMILIES.get(key, key)
    if key not in PRESETS:
        raise ValueError(
            f"unknown preprocess preset {name!r}; presets: {', '.join(PRESETS)}; "
            f"keras.applications families: {', '.join(FAMILIES)}"
        )
    return PRESETS[key]


@dataclass(frozen=True)
class InputScaling:
    """A model's own input scaling, found by :func:`detect_rescaling`.

    ``layer`` is the path of the Rescaling or Normalization layer; ``expects`` the input range
    it is built for, ``(0, 1)`` or ``(0, 255)``; ``preset`` the preset that feeds it that range.
    """

    layer: str
    expects: tuple[float, float]
    preset: str


def detect_rescaling(model) -> InputScaling | None:
    """The ``Rescaling``/``Normalization`` layer at the start of ``model``, if it has one.

    Looks at the layers before the first layer with a kernel (nested models included, e.g. a
    keras.applications backbone inside a Sequential). A scale below 0.1 (``1/255``,
    ``1/127.5``) or a normalisation mean above 2 means the model takes [0, 255] pixels.
    """
    from .core.layers import iter_layers

    for path, layer in iter_layers(model):
        kind = type(layer).__name__
        if kind == "Rescaling":
            scale = float(np.max(np.abs(np.asarray(layer.scale, np.float64))))
            big = scale < 0.1
        elif kind == "Normalization":
            mean = getattr(layer, "mean", None)
            mean = getattr(layer, "input_mean", None) if mean is None else mean
            if mean is None:
                continue
            big = float(np.max(np.abs(np.asarray(mean, np.float64)))) > 2.0
        elif getattr(layer, "kernel", None) is not None or hasattr(layer, "depthwise_kernel"):
            return None  # computation started without a rescaling layer
        else:
            continue
        return InputScaling(
            path, (0.0, 255.0) if big else (0.0, 1.0), "scale255" if big else "none"
        )
    return None


def likely_preset(model) -> str | None:
    """The preset ``model`` most likely expects: from its own rescaling layer, else from a
    keras.applications model name (``resnet50`` -> ``caffe``); None when unknown."""
    found = detect_rescaling(model)
    if found is not None:
        return found.preset
    names = [model.name, *(getattr(inner, "name", "") for inner in _nested_models(model))]
    for name in (n.lower() for n in names):
        for start, part, preset in _NAME_PATTERNS:
            if name.startswith(start) and part in name:
                return preset
    return None


def check_preset(model, preset: str | Preset | None, images=None) -> str | None:
    """Warn when ``preset`` does not match what ``model`` expects; returns the likely preset.

    Parameters
    ----------
    model : keras.Model
    preset : str, Preset or None
        The preset about to be used (None is ``"none"``).
    images : array_like, optional
        The images about to be fed: float images above 1.5 are flagged (vizkit expects [0, 1]
        and scales uint8 itself, so a preset would scale them twice).

    Returns
    -------
    str or None
        The likely preset's name (None when the model gives no clue).
    """
    chosen = get_preset("none" if preset is None else preset)
    if images is not None:
        arr = np.asarray(images)
        if arr.dtype != np.uint8 and arr.size and float(np.max(arr)) > 1.5:
            warnings.warn(
                f"images reach {float(np.max(arr)):.4g}: vizkit expects float images in [0, 1] "
                "(uint8 images are scaled by 255 automatically), and the preprocess preset is "
                "applied after that; divide float images in [0, 255] by 255 first",
                UserWarning,
                stacklevel=2,
            )
    likely = likely_preset(model)
    if likely is not None and likely != chosen.name:
        found = detect_rescaling(model)
        why = (
            f"its layer {found.layer!r} rescales inputs it expects in {list(found.expects)}"
            if found is not None
            else f"its name says it is a keras.applications model expecting '{likely}' inputs"
        )
        warnings.warn(
            f"preprocess preset {chosen.name!r} does not match model {model.name!r}: {why}; "
            f"the likely preset is {likely!r} ({PRESETS[likely].description})",
            UserWarning,
            stacklevel=2,
        )
    return likely


def load_labels(source: str | Path | Sequence[str]) -> list[str]:
    """Class names, index = class.

    Parameters
    ----------
    source : str, path or list of str
        ``"imagenet"`` for the 1000 ImageNet-1k names shipped with vizkit; a text file with one
        name per line; a JSON file holding a list of names, a ``{"0": name}`` dict, or Keras'
        ``imagenet_class_index.json`` form ``{"0": ["n01440764", "tench"]}``; or a list of names.

    Raises
    ------
    FileNotFoundError
        For a missing file (the message says ``"imagenet"`` is built in).
    ValueError
        For an empty list, blank names or a dict whose keys are not the indices 0..n-1.
    """
    if isinstance(source, (list, tuple)):
        return _check_labels([str(s) for s in source], "the list")
    if not isinstance(source, (str, Path)):
        raise TypeError(
            f"labels must be 'imagenet', a file path or a list of names, got {type(source).__name__}"
        )
    if str(source).lower() == "imagenet" and not Path(source).exists():
        text = resources.files("vizkit").joinpath("data/imagenet_classes.txt").read_text("utf-8")
        return text.splitlines()
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"no labels file at {str(path)!r}; pass a text file (one name per line), a JSON "
            "file, or 'imagenet' for the built-in ImageNet class names"
        )
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return _check_labels(_json_labels(json.loads(text), path), str(path))
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return _check_labels([line.strip() for line in lines], str(path))


def label_of(labels: Sequence[str] | None, index: int) -> str:
    """``"967 espresso"``-style text for class ``index`` (the index alone without a name)."""
    index = int(index)
    if labels is None or not 0 <= index < len(labels):
        return str(index)
    return f"{index} {labels[index]}"


# --------------------------------------------------------------------------------------------
def _nested_models(model) -> list:
    return [layer for layer in getattr(model, "layers", []) if hasattr(layer, "layers")]


def _json_labels(data, path: Path) -> list[str]:
    if isinstance(data, list):
        return [str(item) for item in data]
    if isinstance(data, dict):
        try:
            keys = sorted(int(k) for k in data)
        except (TypeError, ValueError):
            raise ValueError(f"{str(path)!r}: a labels dict needs integer keys") from None
        if keys != list(range(len(keys))):
            raise ValueError(f"{str(path)!r}: labels dict keys must be 0..{len(keys) - 1}")
        names = []
        for k in keys:
            value = data.get(str(k), data.get(k))
            names.append(str(value[-1]) if isinstance(value, (list, tuple)) else str(value))
        return names
    raise ValueError(f"{str(path)!r} holds a {type(data).__name__}; expected a list or a dict")


def _check_labels(names: list[str], where: str) -> list[str]:
    if not names:
        raise ValueError(f"{where} holds no class names")
    blank = [i for i, name in enumerate(names) if not name.strip()]
    if blank:
        raise ValueError(f"{where}: class {blank[0]} has an empty name")
    return names


def resolve_preprocess(spec) -> tuple[str | None, Callable | None]:
    """``(name, function)`` for ``preprocess=``: None, a preset (or its name) or a callable.

    The name is what the manifest records (a callable is named by its module and qualified
    name, so that a rerun with the same function resumes).

    Raises
    ------
    TypeError
        For anything else.
    ValueError
        For an unknown preset name (the message lists the known ones).
    """
    if spec is None:
        return None, None
    if isinstance(spec, (str, Preset)):
        preset = get_preset(spec)
        return preset.name, preset
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or type(spec).__qualname__
        return f"{getattr(spec, '__module__', '') or ''}.{name}".lstrip("."), spec
    raise TypeError(
        f"preprocess must be None, a preset name or a callable, got {type(spec).__name__}"
    )


__all__ = [
    "CAFFE_MEAN_BGR",
    "FAMILIES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PRESETS",
    "InputScaling",
    "Preset",
    "check_preset",
    "detect_rescaling",
    "get_preset",
    "label_of",
    "likely_preset",
    "load_labels",
    "preset_names",
    "resolve_preprocess",
]
