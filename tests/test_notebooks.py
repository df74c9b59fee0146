"""Notebooks are executed top to bottom with small settings (a notebook that does not run is a bug)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_nb201_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("NB201_RUNS", "16")
    monkeypatch.setenv("NB201_BUDGET_S", "3000")
    monkeypatch.setenv("NB201_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("XLA_FLAGS", "")  # the kernel is a plain single-device process
    nb = nbformat.read(os.path.join(REPO, "experiments", "notebooks", "nb201_search.ipynb"), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "best after 40 evaluations" in outputs
    assert (tmp_path / "work" / "best_so_far.png").exists()
    assert (tmp_path / "work" / "comparison.json").exists()
