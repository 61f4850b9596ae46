"""Imports every architecture module so that their ``@register_model`` decorators run."""

from . import (
    alexnet,  # noqa: F401
    highway,  # noqa: F401
    inception,  # noqa: F401
    inception_resnet,  # noqa: F401
    lenet,  # noqa: F401
    maxout,  # noqa: F401
    msranet,  # noqa: F401
    nin,  # noqa: F401
    resnet,  # noqa: F401
    vgg,  # noqa: F401
)
