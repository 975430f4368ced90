"""The notebooks: stored without outputs, and each one runs (nbclient) on a smoke run of
experiments/table2_crop_strategy.py on the synthetic set, labeled by two raters."""
import ast
import json
import pathlib

import pytest

from gone import labeling
from gone.labeling import app as label_app

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
def labeled_output(tmp_path_factory, _experiment_template):
    import shutil

    out = pathlib.Path(shutil.copytree(_experiment_template,
                                       tmp_path_factory.mktemp("nb") / "table2"))
    state = label_app.Labeler([out], warn=lambda m: None)
    for i, item in enumerate(sorted(state.items.values(), key=lambda it: it.result_id)):
        state.put("alice", item, labeling.LABELS[i % 4], ["limbs"] if i % 2 else [])
        state.put("bob", item, labeling.LABELS[(i // 2) % 4])
    assert label_app.export([out], out=lambda m: None) == 0
    return out


@pytest.fixture(scope="module")
def executed(labeled_output, tmp_path_factory):
    """name -> text of the outputs, every notebook run in order in ONE kernel (saves a kernel
    start and the shared imports per notebook; each notebook sets up its own names)."""
    import os

    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    env = {"GONE_NOTEBOOK_OUTPUT": str(labeled_output),
           "GONE_NOTEBOOK_OUTPUTS": str(labeled_output),
           "GONE_WEIGHTS_DIR": str(tmp_path_factory.mktemp("no_weights"))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    km = KernelManager(kernel_name="python3")
    texts = {}
    try:
        km.start_kernel(cwd=str(NOTEBOOKS))
        for name in EXPECTED:
            nb = nbformat.read(NOTEBOOKS / name, as_version=4)
            NotebookClient(nb, km=km, timeout=180,
                           resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
            texts[name] = "\n".join(
                o.get("text", "") or json.dumps(o.get("data", {}).get("text/markdown", ""))
                for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    finally:
        km.shutdown_kernel(now=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return texts


def test_inspect_data_runs(executed, labeled_output):
    text = executed["inspect_data.ipynb"]
    assert "all images: 2" in text and "synthetic set: 2 scenes" in text
    assert (labeled_output / "notebook_figures" / "large_crop_distribution.png").is_file()
    assert (labeled_output / "notebook_figures" / "samples.png").is_file()


def test_inspect_inpainting_runs(executed, labeled_output):
    text = executed["inspect_inpainting.ipynb"]
    assert "RANDOM INPAINTING WEIGHTS" in text and "offsets (1, " in text
    assert (labeled_output / "notebook_figures" / "inpainting_stages.png").is_file()


def test_paper_tables_and_table2_analysis_run(executed):
    text = executed["paper_tables.ipynb"]
    assert "Fleiss' kappa = " in text and "Rater alice:" in text
    assert "gradient_norm" in executed["table2_analysis.ipynb"]
