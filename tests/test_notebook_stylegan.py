"""The stylegan notebook runs top to bottom with small settings (a notebook that does not run is a bug)."""

import pytest
from notebook_runner import run_notebook


@pytest.mark.slow
def test_stylegan_notebook_runs(tmp_path, monkeypatch):
    outputs = run_notebook("stylegan.ipynb", tmp_path, monkeypatch,
                           {"SG_VARIANT": "small", "SG_NO_MAPPING": "0", "SG_WORKDIR": str(tmp_path / "work")},
                           fast_compile=True)
    assert "per-channel mean ['1.000', '-1.000']  std ['2.000', '0.500']" in outputs  # AdaIN applies the style
    assert "psi=0 gives the average w for every image: True" in outputs
    assert "FID" in outputs and "B's coarse" in outputs
    assert (tmp_path / "work" / "results.json").exists() and (tmp_path / "work" / "stylegan_mixing.png").exists()
