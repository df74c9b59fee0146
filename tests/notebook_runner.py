"""Runs a notebook top to bottom in a fresh kernel (tests/test_notebook_*.py: one file per notebook, so that the test
workers, which take whole files, run them side by side)."""

import os

import nbformat
from conftest import TEST_XLA_FLAGS
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(name, tmp_path, monkeypatch, env, timeout=600, fast_compile=False):
    """Executes experiments/notebooks/<name> in a plain single-device kernel with `env`; returns its text output.
    `fast_compile`: XLA's optimisations off in the kernel (the conftest fixture's trade: for compile-bound
    notebooks; measured: NEAT 281 -> 198 s, NB201 49 -> 27 s; MTL's would be slower, 47 -> 53 s)."""
    env = {**env, "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"} if fast_compile else env
    for k, v in {**env, "XLA_FLAGS": TEST_XLA_FLAGS}.items():  # the kernel is a plain single-device process
        monkeypatch.setenv(k, v)
    nb = nbformat.read(os.path.join(REPO, "experiments", "notebooks", name), as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert images > 0, f"{name}: no figure displayed inline (Colab shows nothing for a Markdown link to a local file)"
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
