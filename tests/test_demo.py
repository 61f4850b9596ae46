"""The ``vizkit demo`` job in quick mode: every figure kind linked, every link present."""

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from vizkit import cli
from vizkit.demo import run_demo

# Figure kinds of the issue: export methods (folder/file names) and the extra figures' titles.
METHOD_KINDS = (
    "filters",
    "feature_maps",
    "hypercolumns",
    "maximize",
    "saliency",
    "gradcam",
    "occlusion",
    "top_activating",
)
EXTRA_TITLES = (
    "Training curves",
    "Misclassified test digits",
    "Saliency: all methods",
    "DeepDream on a photo",
    "RBM filters",
    "RBM reconstructions",
)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    index = run_demo(out, quick=True, progress=False)
    assert index == out / "index.html"
    return out


def _links(index: Path) -> list[str]:
    text = index.read_text(encoding="utf-8")
    return [unquote(u) for u in re.findall(r'(?:href|src)="([^"#]+)"', text)]


@pytest.mark.slow
def test_index_links_every_figure_kind_and_every_link_exists(demo_dir):
    links = _links(demo_dir / "index.html")
    assert links
    for link in links:
        assert (demo_dir / link).is_file(), link
    manifest = json.loads((demo_dir / "manifest.json").read_text())
    methods = {f["method"] for f in manifest["files"]}
    assert set(METHOD_KINDS) <= methods
    assert {f["path"] for f in manifest["files"]} <= set(links)
    titles = [i["title"] for items in manifest["extras"].values() for i in items]
    assert sorted(titles) == sorted(EXTRA_TITLES)
    assert {i["path"] for items in manifest["extras"].values() for i in items} <= set(links)
    # Maximisation of conv channels and of the classes; feature maps of conv and pooling layers.
    layers = {(f["method"], f["layer"]) for f in manifest["files"]}
    assert {("maximize", "c1_conv"), ("maximize", "predictions")} <= layers
    assert {("feature_maps", "c1_conv"), ("feature_maps", "s2_pool")} <= layers
    # The dead-map diagnosis table and the trained model.
    assert manifest["diagnosis"]["lenet5"]["layers"]
    assert "Diagnosis: dead, constant" in (demo_dir / "index.html").read_text()
    assert (demo_dir / "model" / "lenet5_relu.keras").is_file()


@pytest.mark.slow
def test_which_map_to_trust_is_in_the_report(demo_dir):
    card = json.loads((demo_dir / "manifest.json").read_text())["trust"]["lenet5"]
    table = card["table"]
    assert table["methods"] == ["vanilla", "guided", "gradcam"]  # quick mode: a small card
    assert table["metrics"] == ["deletion", "randomization"]
    assert card["params"]["images"] == 4 and table["settings"]["images"] == 4
    assert table["verdict"] and [f["path"].rsplit("/", 1)[1] for f in card["figures"]] == [
        "trust_curves.png",
        "trust_randomization.png",
        "trust_layers.png",
    ]
    page = (demo_dir / "index.html").read_text(encoding="utf-8")
    assert "<h3>Which map to trust</h3>" in page and 'href="#trust-lenet5"' in page
    links = set(_links(demo_dir / "index.html"))
    for figure in card["figures"]:
        assert {figure["path"], figure["thumbnail"]} <= links
        assert (demo_dir / figure["path"]).is_file()


@pytest.mark.slow
def test_non_empty_folder_is_refused_without_overwrite(demo_dir, capsys):
    before = (demo_dir / "manifest.json").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        run_demo(demo_dir, quick=True, progress=False)
    assert cli.main(["demo", "--out", str(demo_dir), "--quick", "--quiet"]) == 1
    assert "not empty" in capsys.readouterr().err
    assert (demo_dir / "manifest.json").read_bytes() == before


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="epochs"):
        run_demo(tmp_path, epochs=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        run_demo(tmp_path / "file")


def test_cli_help_lists_demo(capsys):
    assert cli.main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--out" in text and "--quick" in text and "--overwrite" in text
