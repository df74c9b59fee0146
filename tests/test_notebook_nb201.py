"""The nb201 notebook runs top to bottom with small settings (a notebook that does not run is a bug)."""

import pytest
from notebook_runner import run_notebook


@pytest.mark.slow
def test_nb201_notebook_runs(tmp_path, monkeypatch):
    outputs = run_notebook("nb201_search.ipynb", tmp_path, monkeypatch,
                           {"NB201_RUNS": "16", "NB201_BUDGET_S": "3000", "NB201_WORKDIR": str(tmp_path / "work")},
                           timeout=300, fast_compile=True)
    assert "best after 40 evaluations" in outputs
    assert (tmp_path / "work" / "best_so_far.png").exists()
    assert (tmp_path / "work" / "comparison.json").exists()
