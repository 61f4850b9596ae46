"""What every method shares, with public names: forward passes and compiled gradients (``graph``),
layer lookup (``layers``), image batches (``images``, ``batches``), target classes and chunk
plans (``targets``), argument checks (``checks``), files (``files``) and JSON (``jsonutil``).

Methods, metrics, engines and the report import from here; nothing outside a module imports its
underscore names (``tests/test_architecture.py`` checks this).
"""
