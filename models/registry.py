"""Architecture registry: ``@register_model`` builders, ``list_models`` and ``create_model``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

import keras

Builder = Callable[..., keras.Model]
_REGISTRY: dict[str, Builder] = {}


def register_model(name: str | None = None) -> Callable[[Builder], Builder]:
    """Register a builder function under ``name`` (default: the function's name).

    A builder takes ``input_shape`` and ``num_classes`` (plus its own keyword options) and
    returns a functional ``keras.Model`` with stable, readable layer names.
    """

    def decorate(fn: Builder) -> Builder:
        key = (name or fn.__name__).lower()
        if key in _REGISTRY and _REGISTRY[key] is not fn:
            raise ValueError(f"model name {key!r} is already registered")
        _REGISTRY[key] = fn
        return fn

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered architectures matching a shell-style ``pattern``, sorted."""
    _import_builders()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern.lower()))


def get_builder(name: str) -> Builder:
    """The builder registered as ``name``; a ``ValueError`` lists the known names otherwise."""
    _import_builders()
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[key]


def create_model(
    name: str, input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10, **kwargs
) -> keras.Model:
    """Build the registered architecture ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`list_models` (case-insensitive).
    input_shape : tuple of int
        ``(H, W, C)`` of one image.
    num_classes : int
        Size of the softmax output.
    **kwargs
        Builder-specific options (``include_top``, ``width``, ...).
    """
    if len(tuple(input_shape)) != 3 or any(int(d) <= 0 for d in input_shape):
        raise ValueError(
            f"input_shape must be (height, width, channels) of positive ints, got {input_shape!r}"
        )
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
    builder = get_builder(name)
    shape = tuple(int(d) for d in input_shape)
    try:
        return builder(input_shape=shape, num_classes=int(num_classes), **kwargs)
    except ValueError as exc:
        if "negative" not in str(exc) and "zero" not in str(exc):
            raise
        # Keras reports a collapsed spatial size deep inside one layer; say which argument did it.
        raise ValueError(
            f"model {name!r} cannot be built for input_shape={shape}: the image is too small for "
            f"its downsampling (Keras: {str(exc).splitlines()[0]})"
        ) from exc


def _import_builders() -> None:
    # Builders register themselves on import; importing the zoo here keeps the registry complete
    # whichever entry point the user came through.
    from . import zoo  # noqa: F401
