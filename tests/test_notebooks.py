"""The notebooks of docs/notebooks run top to bottom; the asserts in their cells check the numbers."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "docs" / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there_and_stored_without_outputs() -> None:
    expected = {"quickstart.ipynb", "uncertainty.ipynb", "finetune_and_distill.ipynb"}
    assert {path.name for path in NOTEBOOKS} >= expected
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code and all(not cell.outputs and cell.execution_count is None for cell in code), path.name
        assert any("assert " in cell.source for cell in code), f"{path.name} checks no number"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executed in a fresh kernel of this Python, in an empty folder; the outputs are not saved back."""
    # the kernel inherits the environment: one thread each, as the tests run two at a time on 2 cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # a failing cell (an assert included) raises CellExecutionError naming it
    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "Error" not in printed
