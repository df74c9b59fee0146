"""The layout's rules, checked on the source tree (issue 19): no import cycles among module-level imports, no
capability package importing another's (shared code lives in jaxnas/common and jaxnas/data), no library file
over ~400 lines."""

import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("jaxnas", "gans", "mtl", "experiments")
LIBRARIES = ("jaxnas", "gans", "mtl")
MAX_LINES = 400


def _modules() -> dict[str, str]:
    out = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(folder, f)
                    name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    out[name.removesuffix(".__init__")] = path
    return out


def _graph(mods: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the project modules its module-level statements import (imports inside functions are
    deliberate late imports and do not run at import time)."""
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.parse(open(path, encoding="utf-8").read()).body:
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rsplit(".", 1)[0]
                    base = f"{pkg}.{base}" if base else pkg
                # `from package import submodule` imports the submodule; `from module import name` the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in mods and t != name}
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(_graph(_modules())) == []


def test_capability_packages_share_only_common_code():
    """gans and mtl use jaxnas's shared plumbing (common, data) only; the library never imports the entry points."""
    shared = ("jaxnas.common", "jaxnas.data")
    bad = []
    for name, deps in _graph(_modules()).items():
        top = name.split(".")[0]
        for d in deps:
            other = d.split(".")[0]
            if top in LIBRARIES and other == "experiments":
                bad.append(f"{name} -> {d}")
            elif top in ("gans", "mtl") and other == "jaxnas" and not d.startswith(shared):
                bad.append(f"{name} -> {d}")
            elif top != other and {top, other} <= {"gans", "mtl"} or (top == "jaxnas" and other in ("gans", "mtl")):
                bad.append(f"{name} -> {d}")
    assert bad == []


def test_no_library_file_over_the_limit():
    long = {name: n for name, path in _modules().items() if name.split(".")[0] in LIBRARIES
            and (n := sum(1 for _ in open(path, encoding="utf-8"))) > MAX_LINES}
    assert long == {}
