"""notebooks/table2_analysis.ipynb is a valid, output-free nbformat-4 notebook."""
import ast
import json
import pathlib

import pytest

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "notebooks" / "table2_analysis.ipynb"


@pytest.mark.jax
def test_notebook_is_valid_json_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4 and nb["cells"]
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            ast.parse("".join(cell["source"]))     # the code at least parses
