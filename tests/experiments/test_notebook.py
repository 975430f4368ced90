"""The notebooks: stored without outputs, and each one runs (nbclient) on a smoke output of the
synthetic set, labeled by two raters."""
import ast
import json
import pathlib

import pytest

from gone import label_app, labeling

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = ["inspect_data.ipynb", "inspect_inpainting.ipynb", "paper_tables.ipynb",
            "table2_analysis.ipynb"]


def test_notebooks_are_valid_and_stored_without_outputs():
    import nbformat

    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        nbformat.validate(nbformat.from_dict(nb))
        assert nb["nbformat"] == 4 and nb["cells"], path.name
        for cell in nb["cells"]:
            assert cell["cell_type"] in ("markdown", "code")
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
                ast.parse("".join(cell["source"]))


@pytest.fixture(scope="module")
def labeled_output(tmp_path_factory, smoke_builder):
    out = smoke_builder(tmp_path_factory.mktemp("nb") / "table2")
    state = label_app.Labeler([out], warn=lambda m: None)
    for i, item in enumerate(sorted(state.items.values(), key=lambda it: it.result_id)):
        state.put("alice", item, labeling.LABELS[i % 4], ["limbs"] if i % 2 else [])
        state.put("bob", item, labeling.LABELS[(i // 2) % 4])
    assert label_app.export([out], out=lambda m: None) == 0
    return out


def _execute(name, monkeypatch, env):
    import nbformat
    from nbclient import NotebookClient

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return "\n".join(o.get("text", "") or json.dumps(o.get("data", {}).get("text/markdown", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_inspect_data_runs(labeled_output, monkeypatch):
    text = _execute("inspect_data.ipynb", monkeypatch,
                    {"GONE_NOTEBOOK_OUTPUT": str(labeled_output)})
    assert "all images: 3" in text and "synthetic set: 3 scenes" in text
    assert (labeled_output / "notebook_figures" / "large_crop_distribution.png").is_file()
    assert (labeled_output / "notebook_figures" / "samples.png").is_file()


def test_inspect_inpainting_runs(labeled_output, monkeypatch, tmp_path):
    text = _execute("inspect_inpainting.ipynb", monkeypatch,
                    {"GONE_NOTEBOOK_OUTPUT": str(labeled_output),
                     "GONE_WEIGHTS_DIR": str(tmp_path / "no_weights")})
    assert "RANDOM INPAINTING WEIGHTS" in text and "offsets (1, " in text
    assert (labeled_output / "notebook_figures" / "inpainting_stages.png").is_file()


def test_paper_tables_and_table2_analysis_run(labeled_output, monkeypatch):
    text = _execute("paper_tables.ipynb", monkeypatch,
                    {"GONE_NOTEBOOK_OUTPUTS": str(labeled_output)})
    assert "Fleiss' kappa = " in text and "Rater alice:" in text
    text = _execute("table2_analysis.ipynb", monkeypatch,
                    {"GONE_NOTEBOOK_OUTPUT": str(labeled_output)})
    assert "gradient_norm" in text
