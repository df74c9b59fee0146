"""Where a published figure comes from: every README / RESULTS number is read from a small JSON under
`results/` that names the command, settings, seeds, package versions, git commit, device and wall time.

Standard library only (JAX is imported lazily, only if already imported by the caller or installed), so the
GPU benchmark machine, which lacks tensorflow-datasets and ml_collections, can record results too.

    from jaxnas.common.provenance import record_result
    record_result("cyclegan_tint", command="python -m experiments.cyclegan ...", settings=cfg_dict,
                  seeds=[0], figures={"translation_error_ab": 0.158, ...}, wall_s=221.0)
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
# JAXNAS_RESULTS_DIR redirects the published results (tests use it so that they never write into the repository).
RESULTS_DIR = Path(os.environ.get("JAXNAS_RESULTS_DIR", REPO_ROOT / "results"))
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "chex", "tensorflow-datasets",
             "torch", "neat-python", "scikit-learn")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info() -> dict[str, Any]:
    """The machine a figure was measured on: CPU model and cores, load, and JAX's devices if JAX is installed."""
    info: dict[str, Any] = {"cpu": _cpu_model(), "cores": os.cpu_count(), "machine": platform.machine()}
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        import jax  # noqa: PLC0415 (optional: recorded only where installed)

        devs = jax.devices()
        info["jax_backend"] = jax.default_backend()
        info["jax_devices"] = len(devs)
        info["jax_device_kind"] = devs[0].device_kind
    except Exception:  # noqa: BLE001 (no JAX, or no backend: the CPU fields still say where it ran)
        pass
    return info


def provenance() -> dict[str, Any]:
    """Commit (and the tracked files that differed from it), date, Python, package versions, device."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = _md.version(name)
        except _md.PackageNotFoundError:
            continue
    status = _git("status", "--porcelain", "--untracked-files=no")
    changed = [line[3:] for line in status.splitlines() if line.strip()] if status else []
    commit = _git("rev-parse", "HEAD")
    return {
        "commit": commit.strip() if commit else None,
        "uncommitted_changes": changed[:50] if status is not None else None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "argv": sys.argv,
        "packages": versions,
        "device": device_info(),
    }


def _plain(x: Any) -> Any:
    """JSON-safe copy: numpy / JAX scalars and arrays to Python numbers and lists; NaN and inf to None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "tolist"):  # numpy / JAX arrays and scalars
        return _plain(x.tolist())
    if hasattr(x, "to_dict"):  # ml_collections.ConfigDict
        return _plain(x.to_dict())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)


def check_name(name: str) -> None:
    """Raises ValueError unless `name` can name a results file."""
    if not _NAME.match(name):
        raise ValueError(f"result name {name!r}: use lowercase letters, digits, '_' and '-'")


def record_result(name: str, *, command: str, settings: dict[str, Any], figures: dict[str, Any],
                  seeds: list[int] | None = None, wall_s: float | None = None,
                  out_dir: str | os.PathLike | None = None) -> Path:
    """Writes `results/NAME.json` (or `out_dir/NAME.json`): the figures with everything needed to rerun them.

    Args:
      name: file stem, lowercase letters, digits, `_` and `-`.
      command: the shell command that reproduces the file, from the repository root.
      settings: every setting that shaped the figures (a config as a dict).
      figures: the published numbers (nested dicts / lists of plain values).
      seeds: the seeds the figures were measured on.
      wall_s: wall time of the measurement, in seconds.
      out_dir: where to write; defaults to the repository's `results/`.
    """
    check_name(name)
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    doc = {"name": name, "command": command, "seeds": seeds, "wall_s": wall_s,
           "settings": _plain(settings), "figures": _plain(figures), "provenance": provenance()}
    path = out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def load_result(name: str, results_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Reads `results/NAME.json` as written by `record_result`."""
    path = Path(results_dir if results_dir is not None else RESULTS_DIR) / f"{name}.json"
    return json.loads(path.read_text())
