"""JSON conversion shared by manifests, model sidecars and ``--json`` output (Keras-free)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """A JSON-ready stand-in for ``value``; use as ``json.dumps(..., default=jsonable)``.

    NumPy scalars become Python numbers, arrays lists, paths strings, tuples and sets lists
    (sets sorted, so that equal sets write equal JSON).

    Raises
    ------
    TypeError
        For anything else, naming its type (use :func:`describe` where any value is allowed).
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r:.80}")


def describe(value: Any) -> Any:
    """Like :func:`jsonable`, but any other value (a callable, an object) becomes its ``repr``.

    For records such as export parameters, where an option like ``preprocess=`` must be noted,
    not refused.
    """
    try:
        return jsonable(value)
    except TypeError:
        return repr(value)
