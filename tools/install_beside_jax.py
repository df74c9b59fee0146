"""Installs this repository's package into the running Python without replacing the jax that is already there.

On Colab, or on a machine with a CUDA or TPU build of jax, a plain `pip install .` may upgrade jax to another
version from PyPI: a silent fall back to the CPU. Here the installed jax, jaxlib and jax's accelerator plugins
(jax-cuda12-plugin, jax-cuda12-pjrt, libtpu, ...) are pinned to their present versions in a constraints file and
the package is installed with it, so pip resolves every other dependency around that jax, or stops saying which
requirement conflicts. Where no jax is installed, jax is installed as the package declares it. Standard library
only: it runs before anything of the project is installed.

    python tools/install_beside_jax.py [REPO] [--editable] [--extra EXTRA] [--dry-run]

REPO defaults to this file's repository. --dry-run only prints what pip would install (and fails if that would
touch jax). Exit status 1 if jax changed after all (then reinstall the platform's jax: see jax's installation page).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile

# jax itself, its compiled backend and the accelerator plugins its install extras bring
KEEP = re.compile(r"^(jax|jaxlib|jax[-_]cuda\d+[-_](plugin|pjrt)|libtpu([-_]nightly)?|jax[-_]rocm\d+[-_](plugin|pjrt))$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def kept(path: list[str] | None = None) -> dict[str, str]:
    """{distribution: version} of the jax packages installed on `path` (default: this interpreter's sys.path)."""
    out = {}
    for dist in importlib.metadata.distributions(path=path or sys.path):
        name = dist.metadata["Name"]
        if name and KEEP.match(_canonical(name)):
            out[_canonical(name)] = dist.version
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--editable", action="store_true", help="pip install -e (the repository's files are used)")
    parser.add_argument("--extra", action="append", default=[], help="an optional-dependency group, e.g. test")
    parser.add_argument("--dry-run", action="store_true", help="print what would be installed; install nothing")
    args = parser.parse_args(argv)
    before = kept()
    target = args.repo + (f"[{','.join(args.extra)}]" if args.extra else "")
    with tempfile.TemporaryDirectory() as tmp:
        constraints = os.path.join(tmp, "keep-jax.txt")
        with open(constraints, "w") as f:
            f.writelines(f"{name}=={version}\n" for name, version in sorted(before.items()))
        cmd = [sys.executable, "-m", "pip", "install", "-q", "-c", constraints]
        if args.dry_run:
            report = os.path.join(tmp, "report.json")
            cmd += ["--dry-run", "--report", report]
        cmd += ["-e", target] if args.editable else [target]
        print("keeping " + (", ".join(f"{n} {v}" for n, v in sorted(before.items())) or "no jax (none installed)"),
              flush=True)
        done = subprocess.run(cmd)
        if done.returncode != 0:
            print("error: pip could not install the package around the installed jax (its message is above); "
                  "upgrade jax the platform's way, or use a fresh environment", file=sys.stderr)
            return done.returncode
        if args.dry_run:
            with open(report) as f:
                plan = {_canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in json.load(f)["install"]}
            print("would install: " + ", ".join(f"{n} {v}" for n, v in sorted(plan.items())))
            touched = {n: v for n, v in plan.items() if n in before and before[n] != v}
            if touched:
                print(f"error: the plan would replace {touched}", file=sys.stderr)
                return 1
            return 0
    after = kept()
    changed = {n: (before[n], after.get(n)) for n in before if after.get(n) != before[n]}
    if changed:
        print(f"error: jax packages changed after all: {changed}", file=sys.stderr)
        return 1
    print("installed; jax left as it was" if before else "installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
