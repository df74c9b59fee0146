"""The neat notebook runs top to bottom with small settings (a notebook that does not run is a bug)."""

import pytest
from notebook_runner import run_notebook


@pytest.mark.slow
def test_neat_notebook_runs(tmp_path, monkeypatch):
    outputs = run_notebook("neat.ipynb", tmp_path, monkeypatch,
                           {"NEAT_POP": "32", "NEAT_GENERATIONS": "6", "NEAT_POLE_STEPS": "200", "NEAT_SEEDS": "2",
                            "NEAT_DPNV_POP": "64", "NEAT_HYPER_POP": "16", "NEAT_WORKDIR": str(tmp_path / "work")},
                           fast_compile=True)
    assert "same output after the split: True" in outputs
    assert "new node ids: [2, 2, 2, 2] | innovations: [[1, 2], [1, 2], [1, 2], [1, 2]] | counters now: 3 3" in outputs
    assert "XOR outputs of the winner" in outputs and "of 2 seeds solved" in outputs
    assert "def network(x0, x1):" in outputs and "exported network on the XOR inputs: [" in outputs
    assert "without velocities: {'solved'" in outputs
    assert "'trials_mean_distance'" in outputs
    for path in ("xor/results.json", "xor/network.png", "double_pole/results.json", "double_pole_nv/network.png",
                 "boxes/substrate_weights.png", "boxes/boxes_trials.png"):
        assert (tmp_path / "work" / path).exists(), path
