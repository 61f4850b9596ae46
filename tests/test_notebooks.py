"""The example notebooks: committed without outputs, and every cell runs in a real Jupyter kernel.

The notebooks run headless with nbclient in quick mode (``VIZKIT_NOTEBOOK_QUICK=1``, optimisation
steps capped by ``VIZKIT_MAX_STEPS``). The kernel is the ``python3`` kernel of ipykernel, whose
``python`` command jupyter_client replaces with this interpreter (``sys.executable``), and it
imports vizkit from this checkout (``PYTHONPATH``): both are checked from inside the kernel.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "examples" / "notebooks"
NAMES = ("tour.ipynb", "bring_your_own_model.ipynb")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMEOUT = 600  # seconds per cell: generous for a loaded CI machine; the whole run takes ~1 min

# Run first in the kernel: where it runs from, for the assertions below.
WHERE = "import sys, vizkit\nprint(sys.prefix)\nprint(vizkit.__file__)"


def test_committed_notebooks_have_no_outputs():
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert found == sorted(NAMES)
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, name
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, (name, cell.source[:60])
            assert "execution" not in cell.metadata, (name, cell.source[:60])


def test_figures_of_vizkit_plot_display_as_pictures_in_ipython():
    # What a kernel gets on `import vizkit.plot`, on a fresh IPython display formatter: a
    # kernel's shows pictures, a terminal's (text/plain only) does not and is left alone.
    from IPython.core import formatters
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from vizkit.plot.notebook import enable_inline

    fig = Figure(figsize=(1, 1))
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0])
    terminal = SimpleNamespace(display_formatter=formatters.DisplayFormatter())
    terminal.display_formatter.active_types = ["text/plain"]
    assert enable_inline(terminal) is False
    kernel = SimpleNamespace(display_formatter=formatters.DisplayFormatter())
    display = kernel.display_formatter
    assert "image/png" in display.active_types
    assert "image/png" not in display.format(fig)[0]
    assert enable_inline(kernel) is True
    for shown in (fig, ax):
        data = display.format(shown)[0]["image/png"]
        raw = data if isinstance(data, bytes) else base64.b64decode(data)
        assert raw.startswith(PNG_MAGIC)
    # A figure with nothing drawn stays text; a second call leaves the formatters alone, and so
    # does a shell that already shows figures (as %matplotlib inline would have set up).
    assert "image/png" not in display.format(Figure())[0]
    assert enable_inline(kernel) is False
    inline = SimpleNamespace(display_formatter=formatters.DisplayFormatter())
    inline.display_formatter.formatters["image/svg+xml"].for_type(Figure, lambda f: "<svg/>")
    assert enable_inline(inline) is False
    assert Axes not in inline.display_formatter.formatters["image/png"].type_printers


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    """The kernel inherits this environment: quick mode, this checkout first on the path, and
    temporary files (the report, the weights file) under ``tmp_path``."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *([path] if path else [])]))
    monkeypatch.setenv("VIZKIT_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("VIZKIT_MAX_STEPS", os.environ.get("VIZKIT_MAX_STEPS", "40"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv("VIZKIT_NOTEBOOK_WEIGHTS", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)


def execute(name: str, extra: tuple[str, ...] = ()):
    """Run notebook ``name`` (after the WHERE cell), then the cells ``extra`` in the same kernel.

    Returns the executed notebook; a failing cell raises ``nbclient.exceptions.CellExecutionError``
    naming the cell and the error.
    """
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(WHERE))
    client = nbclient.NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        for source in extra:
            cell = nbformat.v4.new_code_cell(source)
            nb.cells.append(cell)
            client.execute_cell(cell, len(nb.cells) - 1)
    return nb


def outputs(cell) -> list[dict]:
    return list(cell.get("outputs", []))


def text_of(cell) -> str:
    """What the cell printed."""
    return "".join(o["text"] for o in outputs(cell) if o.get("name") == "stdout")


def pictures(cell) -> list[bytes]:
    return [
        base64.b64decode(o["data"]["image/png"])
        for o in outputs(cell)
        if "image/png" in o.get("data", {})
    ]


def html_of(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in outputs(cell))


def cell_with(cells, snippet: str):
    found = [c for c in cells if c.cell_type == "code" and snippet in c.source]
    assert len(found) == 1, f"{len(found)} cells contain {snippet!r}"
    return found[0]


def check_common(nb) -> None:
    where = text_of(nb.cells[0]).splitlines()
    assert where[0] == sys.prefix  # this environment (a venv's own prefix), not another Python
    assert Path(where[1]).resolve().is_relative_to(ROOT / "vizkit")
    for cell in nb.cells:
        assert not [o for o in outputs(cell) if o["output_type"] == "error"], cell.source[:80]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)


@pytest.mark.slow
def test_tour_runs_and_shows_every_method(kernel_env):
    nb = execute("tour.ipynb")
    check_common(nb)
    cells = nb.cells
    # Each method's cell shows its figure as a PNG picture (two in the cells that call display).
    for snippet, count in (
        ("plot_filters(kernels", 1),
        ("plot_feature_maps(maps", 2),
        ("plot_hypercolumn(", 1),
        ("vizkit.maximize(", 1),
        ("methods=saliency", 1),
        ('"gradcam++"', 1),
        ("vizkit.deepdream(", 1),
        ("plot_top_activating(pool", 2),
        ("plot_curves(table)", 1),
    ):
        shown = pictures(cell_with(cells, snippet))
        assert len(shown) == count, snippet
        assert all(p.startswith(PNG_MAGIC) for p in shown), snippet
    assert "test accuracy" in text_of(cell_with(cells, "models.train("))
    # The diagnosis and the trust table display as HTML tables naming the layers and methods.
    diagnosis = html_of(cell_with(cells, "vizkit.diagnose("))
    assert "<table>" in diagnosis and "Diagnosis of model" in diagnosis
    assert all(f"<td>{layer}</td>" in diagnosis for layer in ("c1_conv", "c3_conv", "f6_dense"))
    table = html_of(cell_with(cells, "vizkit.evaluate("))
    assert "<table>" in table and "deletion" in table and "randomisation" in table
    for method in ("vanilla", "smoothgrad", "integrated", "gradcam", "occlusion"):
        assert f"<td>{method}</td>" in table


# Run after the notebook in the same kernel: plant a bias that makes class 967 ("espresso") win,
# save the weights like a user would, and set WEIGHTS_FILE; then the loading cell runs again.
PLANT = """
import pathlib, tempfile
planted = build(None)
bias = planted.get_layer("predictions").bias
bias.assign(bias.numpy() + 50.0 * np.eye(1000, dtype="float32")[967])
WEIGHTS_FILE = str(pathlib.Path(tempfile.mkdtemp()) / "planted.weights.h5")
planted.save_weights(WEIGHTS_FILE)
"""


@pytest.mark.slow
def test_bring_your_own_model_runs_offline_and_loads_a_weights_file(kernel_env, tmp_path):
    cells = nbformat.read(NOTEBOOKS / "bring_your_own_model.ipynb", as_version=4).cells
    loading = cell_with(cells, "def build(").source
    predicting = cell_with(cells, "model.predict(").source
    nb = execute("bring_your_own_model.ipynb", extra=(PLANT, loading, predicting))
    check_common(nb)
    cells = nb.cells[:-3]  # the notebook's own cells (and the WHERE cell)
    # Default settings: random weights, said so, and nothing downloaded.
    said = text_of(cell_with(cells, "def build("))
    assert "NOTE: random weights" in said and "random weights" in said.splitlines()[-1]
    assert len(pictures(cell_with(cells, "vizkit.show("))) == 1
    assert len(pictures(cell_with(cells, "plot_layers_overview("))) == 1
    diagnosis = html_of(cell_with(cells, "vizkit.diagnose("))
    assert "<table>" in diagnosis and "<td>out_relu</td>" in diagnosis
    report = cell_with(cells, "vizkit.export(")
    index = Path(text_of(report).strip().splitlines()[-1])
    assert index.name == "index.html" and index.is_file()
    assert index.is_relative_to(tmp_path)
    assert f'href="{index.as_uri()}"' in html_of(report)
    files = json.loads((index.parent / "manifest.json").read_text())["files"]
    drawn = {(f["method"], f["image"]) for f in files if (index.parent / f["path"]).is_file()}
    assert drawn == {(m, i) for m in ("gradcam", "saliency", "occlusion") for i in (0, 1)}
    # The weights file: loaded, said so, and its planted class is every photo's top prediction.
    said, predicted = text_of(nb.cells[-2]), text_of(nb.cells[-1])
    assert "the weights file" in said and "planted.weights.h5" in said and "NOTE" not in said
    lines = predicted.strip().splitlines()
    assert len(lines) == 3 and all(line.split()[1] == "espresso" for line in lines), predicted
