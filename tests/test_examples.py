"""Every script in examples/ runs offline with --quick and writes its figures."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script -> files it must write
EXPECTED = {
    "rbm_mnist.py": ["rbm_error.png", "rbm_filters.png", "rbm_reconstructions.png", "rbm.npz"],
    "alexnet_mnist.py": ["alexnet_mnist.keras", "conv1_filters.png"],
    "lenet5_feature_maps.py": [
        "misclassified.png",
        "feature_maps_c1_conv.png",
        "feature_maps_s4_pool.png",
        "hypercolumns.png",
    ],
    "what_cnn_learns.py": [
        "filters.png",
        "maximize_c3_conv.png",
        "maximize_predictions.png",
        "saliency_smoothgrad.png",
        "occlusion.png",
        "top_activating.png",
        "deepdream.png",
    ],
    "style_transfer.py": ["style_transfer.png", "result.png", "losses.json"],
}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_quick(script, tmp_path):
    main = runpy.run_path(str(EXAMPLES / script), run_name="example")["main"]
    out = main(["--quick", "--out", str(tmp_path / "out")])
    assert Path(out) == tmp_path / "out"
    for name in EXPECTED[script]:
        path = tmp_path / "out" / name
        assert path.is_file() and path.stat().st_size > 100, name
