"""The architecture zoo: one module per family, each registering its builders with
``@register_model``.

Every module in this package is imported here, so a new architecture file registers itself just
by being added to the folder (no hand-kept import list to forget).
"""

from __future__ import annotations

import importlib
import pkgutil

# Helper modules hold shared blocks, not architectures; importing them is harmless either way.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
