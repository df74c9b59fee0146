"""The metaqnn notebook runs top to bottom with small settings (a notebook that does not run is a bug)."""

import pytest
from notebook_runner import run_notebook


@pytest.mark.slow
def test_metaqnn_notebook_runs(tmp_path, monkeypatch):
    outputs = run_notebook("metaqnn.ipynb", tmp_path, monkeypatch,
                           {"METAQNN_VARIANT": "small", "METAQNN_WORKDIR": str(tmp_path / "work")})
    assert "best: [" in outputs and "model 60  epsilon" in outputs
    assert (tmp_path / "work" / "q_values.png").exists()
