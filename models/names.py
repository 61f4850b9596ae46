"""The zoo's architecture names without importing Keras: read from the zoo modules' source.

``vizkit models`` lists names in a fraction of a second this way instead of importing TensorFlow
(seconds) to fill the registry. Registration itself stays automatic (:mod:`models.zoo` imports
every module, each decorating its builders with ``@register_model("name")``); a test checks that
this static index equals the imported registry, so a builder registered in a way this reader
cannot see (a computed name) fails that test rather than going missing from the listing.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

ZOO = Path(__file__).with_name("zoo")


def zoo_names(pattern: str = "*") -> list[str]:
    """Names registered by the zoo modules that match a shell-style ``pattern``, sorted.

    Same answer as :func:`models.list_models` in a fresh process (only the zoo registered),
    without importing Keras.
    """
    names: set[str] = set()
    for file in sorted(ZOO.glob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.update(_registered(node))
    return sorted(n for n in names if fnmatch.fnmatch(n, str(pattern).lower()))


def _registered(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """Names under which ``@register_model(...)`` decorators register ``node``."""
    out = []
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call is not None else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name != "register_model":
            continue
        given = None
        if call is not None:
            args = [*call.args, *(k.value for k in call.keywords if k.arg == "name")]
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                given = args[0].value
        out.append((given or node.name).lower())
    return out


__all__ = ["zoo_names"]
