"""The mtl notebook runs top to bottom with small settings (a notebook that does not run is a bug)."""

import pytest
from notebook_runner import run_notebook


@pytest.mark.slow
def test_mtl_notebook_runs(tmp_path, monkeypatch):
    outputs = run_notebook("mtl.ipynb", tmp_path, monkeypatch,
                           {"MTL_VARIANT": "small", "MTL_LOSSES": "ce,focal", "MTL_SEEDS": "1",
                            "MTL_FREEZING": "encoder", "MTL_WORKDIR": str(tmp_path / "work")})
    assert "focal" in outputs and "macro-F1" in outputs
    assert "2,695 trainable" in outputs  # heads only: 384*4+4 + 384*3+3
    assert (tmp_path / "work" / "results.json").exists() and (tmp_path / "work" / "mtl_losses.png").exists()
