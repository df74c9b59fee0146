"""The cyclegan notebook runs top to bottom with small settings (a notebook that does not run is a bug)."""

import pytest
from notebook_runner import run_notebook


@pytest.mark.slow
def test_cyclegan_notebook_runs(tmp_path, monkeypatch):
    outputs = run_notebook("cyclegan.ipynb", tmp_path, monkeypatch,
                           {"CG_VARIANT": "small", "CG_TRANSFORM": "invert", "CG_WORKDIR": str(tmp_path / "work")},
                           fast_compile=True)
    # where D rejects the fake, the minimax gradient vanishes (-0.018), the non-saturating one does not (-0.982),
    # and the course text's form points the wrong way (+0.018)
    assert "score -4: minimax -0.018, nonsaturating -0.982, lsgan -10.000, -log(1-D) (wrong) +0.018" in outputs
    assert "stored 50;" in outputs and "translation error A->B" in outputs
    assert (tmp_path / "work" / "results.json").exists() and (tmp_path / "work" / "cyclegan_ab.png").exists()
