"""The method table drives every surface: one walk over it checks Python, CLI, export and report."""

import argparse
import json

import numpy as np
import pytest
from helpers import random_images, small_cnn

import vizkit
from vizkit import registry
from vizkit.cli import COMMANDS, build_parser
from vizkit.report.compute import default_layers

SPECS = list(registry.METHODS.values())
FAST_OPTIONS = {
    "maximize": {"steps": 2, "first": 2},
    "deepdream": {"steps": 1, "octaves": 1},
    "top_activating": {"first": 2, "k": 2},
}


# Methods that need a transformer are exported on a tiny ViT (same 12x12x1 images).
TRANSFORMER_METHODS = {"attention_maps", "attention_rollout"}


@pytest.fixture(scope="module")
def model():
    return small_cnn(input_shape=(12, 12, 1), num_classes=3)


@pytest.fixture(scope="module")
def vit():
    from transformer_helpers import tiny_vit

    return tiny_vit()


def _subparser(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_spec_is_well_formed(spec):
    assert spec.renderer in registry.RENDERERS
    assert spec.layers is None or spec.layers in registry.LAYER_KINDS
    assert spec.default_layers in ("representative", "last", "all")
    assert callable(spec.load()) and callable(spec.load_compute())
    for option in spec.options:
        assert option.type in registry.OPTION_TYPES
    assert set(spec.export_defaults) <= {o.name for o in spec.options}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_python_surface(spec):
    assert getattr(vizkit, spec.name) is spec.load()
    assert spec.name in vizkit.__all__


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_command_line_surface(spec):
    assert spec.command in COMMANDS
    flags = {f for action in _subparser(spec.command)._actions for f in action.option_strings}
    assert ("--layer" in flags) == (spec.layers is not None)
    assert ("--target" in flags) == spec.target
    assert ("--images" in flags) == spec.needs_images
    assert {o.cli_flag for o in spec.options} <= flags


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_export_and_report_surface(spec, model, vit, tmp_path):
    model = vit if spec.name in TRANSFORMER_METHODS else model
    images = random_images(2, (12, 12, 1), seed=1)
    index = vizkit.export(
        model,
        images,
        tmp_path,
        methods=[spec.name],
        method_options={spec.name: FAST_OPTIONS.get(spec.name, {})},
        progress=False,
        diagnose=False,
    )
    files = json.loads((tmp_path / "manifest.json").read_text())["files"]
    layers = default_layers(spec, model) if spec.layers else [None]
    per_layer = len(images) if spec.per_image else 1
    assert sorted({f["layer"] for f in files}, key=str) == sorted(layers, key=str)
    assert len(files) == len(layers) * per_layer
    assert all(f["method"] == spec.name for f in files)
    assert spec.title in index.read_text()


def test_methods_and_explanations_are_declared_once():
    # Every explanation map is computed by a method of the table with options it declares.
    for name, (method, options) in registry.EXPLANATIONS.items():
        spec = registry.method(method)
        assert spec.target, name
        declared = {o.name for o in spec.options}
        assert set(options) <= declared, name
    saliency = registry.method("saliency")
    assert next(o for o in saliency.options if o.name == "method").choices == (
        registry.SALIENCY_VARIANTS
    )
    from vizkit.methods.saliency import VARIANTS

    assert tuple(VARIANTS) == registry.SALIENCY_VARIANTS


@pytest.mark.parametrize("name", list(registry.EXPLANATIONS))
def test_every_explanation_gives_one_map_per_image(name, model):
    images = random_images(3, (12, 12, 1), seed=2)
    maps = vizkit.explain(model, images, name, target=[0, 1, 2])
    assert maps.shape == (3, 12, 12) and maps.dtype == np.float32


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="known methods: filters, feature_maps"):
        registry.method("lrp")
    with pytest.raises(ValueError, match="known: vanilla, gradxinput"):
        registry.explanation("lrp")
