"""Imports every architecture module so that their ``@register_model`` decorators run."""

from . import lenet  # noqa: F401
