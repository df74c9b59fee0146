"""Benchmark: the population engine against a PyTorch per-candidate loop doing the same work, in one command.

    .venv/bin/python benchmarks/population_training.py --publish population_training_cpu \
        [--reference ../shared/bench/torch_nb201_loop.py] [--ref-python .refvenv/bin/python] [--threads 2]

The reference (`torch_nb201_loop.py`, read-only, outside this repository) trains the network of
`jaxnas.models.nb201` (NAS-Bench-201 skeleton, Dong & Yang 2020) with the engine's optimiser
(SGD, Nesterov 0.9, coupled weight decay 5e-4, cosine from `--lr`): per candidate, fresh weights, `--steps`
mini-batches of `--batch` drawn from 512 synthetic images, then one evaluation pass over 64 validation images.
This script gives the engine exactly that work and measures, in one process tree:

- `engine-EXEC-seq`: our engine, one candidate per compiled call (chunk size 1), the candidates one after another;
- `engine-EXEC-pP`: our engine, P candidates in one compiled call, for each P of `--pops` (split over
  `--host-devices` XLA host devices on a CPU);
  for each execution EXEC of `--executions`: `map` (candidates one after another inside the program, each
  computing only its architecture's ops) and `vmap` (all at once, NB201's folded kernels);
- `torch-MODE`: the reference as a subprocess of `--ref-python`, for each mode of `--torch-modes`
  (`eager`; `compile`: torch.compile per architecture, compile counted; `compile-warm`: compile excluded).

The architectures are the reference's own draw (`random.Random(0)`, `--warmup` untimed ones first), so both
sides train the same cells. Our compile time is excluded from every figure (one compiled program serves every
architecture, as a search reuses it) and reported separately as `engine_compile_s`. The implementations run
alternately, in a rotated order, `--repeats` times; the figures are medians of candidate-steps/s (candidates x
steps / seconds), with the ratio engine/torch per pair and the 1-minute load average at each run.
Before timing, `--check-steps` steps of one architecture are run on both sides from identical initial weights
and identical mini-batches (the reference's own `train_one`, with the weights and batch indices injected), and
the parameter counts, training losses and validation accuracy are compared (recorded under `check`).

Differences from the reference's work that remain (deliberate, both below 1% of the work): the engine's test
split is empty here (its `score` also evaluates a test split; the reference evaluates validation only), and the
engine draws batches as epoch permutations where the reference draws indices with replacement. The torch
subprocess raises dynamo's recompile limit (default 8), which would otherwise turn later architectures back to
eager in the compile modes. Imports only jax/flax/optax/numpy and the engine (no TFDS, no ml_collections).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace


def _process_flags() -> None:
    """Settings JAX reads when it starts, so they are read here, before `import jax` (main's parser defines and
    documents them): `--host-devices N` (N > 1, CPU): N XLA host devices, one candidate stream per core;
    `--cores N`: this process, its XLA threads and the torch reference (a child process inherits the mask) run on
    the first N cores only (Linux), e.g. 1 to compare per core with `--threads 1`."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--host-devices", type=int, default=1)
    pre.add_argument("--cores", type=int, default=0)
    known = pre.parse_known_args()[0]
    if known.host_devices > 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={known.host_devices}").strip()
    if known.cores != 0:
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
        if not 0 < known.cores <= len(allowed):
            limit = f"0 (all) to {len(allowed)}" if allowed else "0 (this system cannot pin a process to cores)"
            print(f"error: --cores: got {known.cores}; allowed: {limit}", file=sys.stderr)
            sys.exit(2)
        os.sched_setaffinity(0, allowed[: known.cores])


_process_flags()
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from jaxnas.common.provenance import record_result  # noqa: E402
from jaxnas.models.nb201 import CONV1, CONV3, NB201Network  # noqa: E402
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings, batch_indices  # noqa: E402
from jaxnas.spaces import nb201  # noqa: E402

# Runs the reference script unchanged, with dynamo's recompile limits raised (argv: script, its arguments).
_TORCH_RUN = """import runpy, sys
import torch._dynamo
torch._dynamo.config.recompile_limit = torch._dynamo.config.accumulated_recompile_limit = 10**6
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# Check on the torch side (argv: script, npz, settings JSON): the reference's own `train_one`, with the
# network's weights loaded from the engine's initial ones and `torch.randint` replaced by the engine's batches.
_TORCH_CHECK = """import argparse, importlib.util, json, sys
import numpy as np, torch
spec = importlib.util.spec_from_file_location("ref", sys.argv[1]); T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)
z, cfg = np.load(sys.argv[2]), json.loads(sys.argv[3])
if cfg["threads"]:
    torch.set_num_threads(cfg["threads"])
state = {k[2:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("w:")}
out = {"losses": []}
class Net(T.NB201Network):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        res = self.load_state_dict(state, strict=False)
        out["param_count"] = sum(p.numel() for p in self.parameters())
        out["missing"] = [m for m in res.missing_keys if not m.endswith("num_batches_tracked")]
        out["unexpected"] = list(res.unexpected_keys)
T.NB201Network = Net
batches = iter(torch.from_numpy(z["batches"]).long())
torch.randint = lambda *a, **k: next(batches)
ce = T.F.cross_entropy
def logged_ce(*a, **k):
    loss = ce(*a, **k); out["losses"].append(loss.item()); return loss
T.F.cross_entropy = logged_ce
nchw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
data = (nchw(z["x"]), torch.from_numpy(z["y"]).long(), nchw(z["vx"]), torch.from_numpy(z["vy"]).long())
args = argparse.Namespace(**cfg)
out["valid_acc"] = T.train_one(cfg["arch"], args, data, torch.device("cpu"), False)  # a fraction, as the engine's
print(json.dumps(out))
"""


def reference_archs(n: int, warmup: int) -> np.ndarray:
    """The architectures the reference times: its `random.Random(0)` draw after `warmup` untimed ones. (n, 6)"""
    rng = random.Random(0)
    archs = [[rng.randrange(len(nb201.OPS)) for _ in nb201.EDGES] for _ in range(warmup + n)]
    return np.asarray(archs[warmup:], np.int32)


def synthetic(hw: int, seed: int = 0) -> SimpleNamespace:
    """512 training and 64 validation images (content does not change the speed); the test split is empty."""
    rng = np.random.default_rng(seed)
    x = rng.random((512, hw, hw, 3), dtype=np.float32)  # (512, H, W, 3)
    vx = rng.random((64, hw, hw, 3), dtype=np.float32)  # (64, H, W, 3)
    y, vy = rng.integers(0, 10, 512).astype(np.int32), rng.integers(0, 10, 64).astype(np.int32)
    return SimpleNamespace(train_x=x, train_y=y, valid_x=vx, valid_y=vy, test_x=vx[:0], test_y=vy[:0])


def torch_state(params: dict, stats: dict, arch: np.ndarray, cells: int) -> dict[str, np.ndarray]:
    """The engine's variables under the reference's state-dict names (only the ops `arch` uses)."""
    def conv(k: np.ndarray, size: int) -> np.ndarray:  # (size^2 C_in, C_out) patch layout -> (C_out, C_in, s, s)
        c_out = k.shape[-1]
        return np.ascontiguousarray(np.asarray(k).reshape(size, size, -1, c_out).transpose(3, 2, 0, 1))

    def bn(prefix: str, p: dict, s: dict) -> dict:
        return {f"{prefix}.weight": p["scale"], f"{prefix}.bias": p["bias"],
                f"{prefix}.running_mean": s["mean"], f"{prefix}.running_var": s["var"]}

    out = {"stem.0.weight": conv(params["Conv_0"]["kernel"], 3), **bn("stem.1", params["BatchNorm_0"], stats["BatchNorm_0"]),
           **bn("bn", params["BatchNorm_1"], stats["BatchNorm_1"]),
           "head.weight": np.asarray(params["Dense_0"]["kernel"]).T, "head.bias": params["Dense_0"]["bias"]}
    layer, cell = 0, 0
    for stage in range(3):
        if stage > 0:
            name = f"ResidualReduction_{stage - 1}"
            p, s = params[name], stats[name]
            out[f"layers.{layer}.a.conv.weight"] = conv(p["Conv_0"]["kernel"], 3)
            out[f"layers.{layer}.b.conv.weight"] = conv(p["Conv_1"]["kernel"], 3)
            out[f"layers.{layer}.shortcut.weight"] = conv(p["Conv_2"]["kernel"], 1)
            out |= bn(f"layers.{layer}.a.bn", p["BatchNorm_0"], s["BatchNorm_0"])
            out |= bn(f"layers.{layer}.b.bn", p["BatchNorm_1"], s["BatchNorm_1"])
            layer += 1
        for _ in range(cells):
            p, s = params[f"Cell_{cell}"], stats[f"Cell_{cell}"]
            for e, op in enumerate(arch):
                if op in (CONV1, CONV3):
                    w = p["conv3x3"][e] if op == CONV3 else p["conv1x1"][e]
                    out[f"layers.{layer}.ops.{e}.conv.weight"] = conv(w, 3 if op == CONV3 else 1)
                    out |= bn(f"layers.{layer}.ops.{e}.bn", p[f"bn_edge{e}"], s[f"bn_edge{e}"])
            layer, cell = layer + 1, cell + 1
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def check_same_work(args: argparse.Namespace, data: SimpleNamespace, arch: np.ndarray, execution: str) -> dict:
    """Trains `arch` for `--check-steps` steps on both sides from the same weights and batches; compares.

    The engine's network is the one `execution` runs (its dispatch: only the chosen ops, or the folded kernels)."""
    settings = TrainSettings(steps=args.check_steps, batch_size=args.batch, learning_rate=args.lr)
    trainer = PopulationTrainer(NB201Network(args.channels, args.cells, 10, dtype=jnp.dtype(args.dtype)), data, settings,
                                chunk_size=1, devices=jax.local_devices()[:1], execution=execution)
    key, data_key = jax.random.key(0), PopulationTrainer.data_key(0)

    @jax.jit
    def run(arch):
        cand = trainer.init_candidate(key, arch, trainer.data)
        trained, losses = trainer.train_candidate(cand, arch, trainer.data, data_key, settings.steps)
        return cand, losses, trainer.evaluate_candidate(trained, arch, trainer.data.valid_x, trainer.data.valid_y)[0]

    cand, losses, acc = run(jnp.asarray(arch))
    state = torch_state(cand.params, cand.batch_stats, arch, args.cells)
    n_params = sum(v.size for k, v in state.items() if not k.endswith(("running_mean", "running_var")))
    batches = np.stack([np.asarray(batch_indices(data_key, jnp.int32(s), 512, args.batch)) for s in range(settings.steps)])
    cfg = {"arch": arch.tolist(), "channels": args.channels, "cells": args.cells, "steps": settings.steps,
           "batch": args.batch, "lr": args.lr, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "check.npz")
        np.savez(npz, x=data.train_x, y=data.train_y, vx=data.valid_x, vy=data.valid_y, batches=batches,
                 **{f"w:{k}": v for k, v in state.items()})
        proc = subprocess.run([args.ref_python, "-c", _TORCH_CHECK, args.reference, npz, json.dumps(cfg)],
                              capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"torch check failed:\n{proc.stderr[-3000:]}")
    ref = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = np.asarray(losses)  # (steps,)
    rel = np.abs(ours - np.asarray(ref["losses"])) / np.abs(ours)
    result = {"execution": execution, "dispatch": trainer.model.dispatch, "arch": nb201.to_string(arch),
              "steps": settings.steps, "param_count_engine": int(n_params),
              "param_count_torch": ref["param_count"], "state_dict_missing": ref["missing"],
              "state_dict_unexpected": ref["unexpected"], "losses_engine": ours.tolist(), "losses_torch": ref["losses"],
              "max_rel_loss_diff": float(rel.max()), "valid_acc_engine": float(acc), "valid_acc_torch": ref["valid_acc"]}
    result["passed"] = bool(n_params == ref["param_count"] and not ref["missing"] and not ref["unexpected"]
                            and len(ref["losses"]) == settings.steps and rel.max() < args.check_rtol
                            and abs(float(acc) - ref["valid_acc"]) <= 2 / 64)  # fractions: 2 near-tied images
    return result


def time_engine(trainer: PopulationTrainer, archs: np.ndarray) -> float:
    t = time.perf_counter()
    trainer.score(archs)  # returns numpy on the host: the work is done
    return time.perf_counter() - t


def time_torch(args: argparse.Namespace, mode: str) -> dict:
    cmd = [args.ref_python, "-c", _TORCH_RUN, args.reference, "--device", args.torch_device, "--mode", mode,
           "--archs", str(args.torch_archs), "--steps", str(args.steps), "--batch", str(args.batch), "--hw", str(args.hw),
           "--channels", str(args.channels), "--cells", str(args.cells), "--lr", str(args.lr),
           "--threads", str(args.threads), "--warmup", str(args.warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.torch_timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"torch {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(runs: dict[str, list[float]], pops: list[int]) -> dict:
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    ratios = {f"{e}/{t}": med[e] / med[t] for e in med if e.startswith("engine") for t in med if t.startswith("torch")}
    return {"median_cand_steps_per_s": med, "ratio_engine_over_torch": ratios,
            "cand_steps_per_s_each_repeat": runs, "populations": pops}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default=str(REPO.parent / "shared" / "bench" / "torch_nb201_loop.py"))
    ap.add_argument("--ref-python", default=str(REPO / ".refvenv" / "bin" / "python"))
    ap.add_argument("--torch-device", default="cpu")
    ap.add_argument("--torch-modes", default="eager,compile-warm")
    ap.add_argument("--torch-archs", type=int, default=4, help="architectures timed per torch call")
    ap.add_argument("--warmup", type=int, default=1, help="untimed architectures the reference trains first")
    ap.add_argument("--pops", default="4", help="engine population sizes P (one compiled call each)")
    ap.add_argument("--executions", default="map,vmap", help="engine executions timed (PopulationTrainer's "
                    "`execution`: map = one candidate after another, only the chosen ops; vmap = all at once)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                    help="the engine's convolution inputs (bfloat16: float32 accumulation; torch stays float32)")
    ap.add_argument("--host-devices", type=int, default=1, help="CPU: XLA host devices the P > 1 rows split their "
                    "candidates over (one per core lets two candidates run at once; set before JAX starts)")
    ap.add_argument("--cores", type=int, default=0, help="run on the first N cores only, the torch reference too "
                    "(0: all; set before JAX starts)")
    ap.add_argument("--no-seq", action="store_true", help="skip the engine's one-candidate-at-a-time loop")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hw", type=int, default=16)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--cells", type=int, default=1, help="cells per stage (3 stages)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads, 0: torch's default (also used by the check)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check-steps", type=int, default=5, help="0 skips the same-work check")
    ap.add_argument("--check-rtol", type=float, default=1e-3)
    ap.add_argument("--on-check-failure", default="abort", choices=("abort", "record"),
                    help="record: time anyway, the failed check stays in the results (e.g. TF32 on a GPU)")
    ap.add_argument("--torch-timeout", type=int, default=900)
    ap.add_argument("--publish", default=None, help="results/NAME.json to write (after every repeat)")
    ap.add_argument("--out-dir", default=None, help="where --publish writes (default: the repository's results/)")
    ap.add_argument("--cache-dir", default=None, help="JAX persistent compilation cache (then engine_compile_s "
                    "may be a cache load; `--repeats 0` fills it)")
    args = ap.parse_args()
    if args.cache_dir:
        jax.config.update("jax_compilation_cache_dir", args.cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    t_start = time.perf_counter()
    pops = [int(p) for p in args.pops.split(",") if p]
    modes = [m for m in args.torch_modes.split(",") if m]
    data = synthetic(args.hw)
    dev = jax.devices()[0]
    device = f"{dev.platform}:{dev.device_kind}"
    executions = [e for e in args.executions.split(",") if e]
    check_arch = np.array([CONV3, CONV1, 4, 1, 0, CONV3], np.int32)
    check = {e: check_same_work(args, data, check_arch, e) for e in executions} if args.check_steps else None
    if check is not None:
        print(json.dumps({"check": check}), flush=True)
        if not all(c["passed"] for c in check.values()) and args.on_check_failure == "abort":
            raise SystemExit("the engine and the reference do not do the same work (see the check above)")

    settings = TrainSettings(steps=args.steps, batch_size=args.batch, learning_rate=args.lr)
    net, one = NB201Network(args.channels, args.cells, 10, dtype=jnp.dtype(args.dtype)), jax.local_devices()[:1]
    spread = jax.local_devices()[: args.host_devices]  # P > 1: candidates split over the host devices
    archs_torch = reference_archs(args.torch_archs, args.warmup)  # (A, 6)
    engines, compile_s = {}, {}
    plan = [(f"engine-{e}-seq", e, 1, archs_torch) for e in executions if not args.no_seq] + [
        (f"engine-{e}-p{p}", e, p, reference_archs(p, args.warmup)) for e in executions for p in pops]
    for name, execution, chunk, archs in plan:
        trainer = PopulationTrainer(net, data, settings, chunk_size=chunk, devices=one if chunk == 1 else spread,
                                    execution=execution)
        compile_s[name] = time_engine(trainer, archs[:chunk])  # first call: compile + one chunk of work
        engines[name] = (trainer, archs)
    impls = [n for n, _, _, _ in plan] + [f"torch-{m}" for m in modes]
    runs: dict[str, list[float]] = {k: [] for k in impls}
    loads: dict[str, list[float]] = {k: [] for k in impls}
    torch_rows: dict[str, list[dict]] = {f"torch-{m}": [] for m in modes}
    settings_rec = {**vars(args), "device": device, "engine_archs": {n: [nb201.to_string(a) for a in archs[:8]]
                    for n, _, _, archs in plan}, "torch_archs": [nb201.to_string(a) for a in archs_torch]}
    def publish(repeats_done: int) -> None:
        rows = torch_rows[f"torch-{modes[0]}"] if modes else []
        figures = {**summarise(runs, pops), "device": device, "torch_device": rows[-1]["device"] if rows else None,
                   "torch_version": rows[-1]["torch"] if rows else None, "engine_compile_s": compile_s,
                   "loadavg_1m_each_repeat": loads, "repeats_done": repeats_done,
                   "torch_median_s_per_arch": {k: [row["median_s_per_arch"] for row in v] for k, v in torch_rows.items()},
                   "check": check, "failed": failed}
        print(json.dumps({k: figures[k] for k in ("median_cand_steps_per_s", "ratio_engine_over_torch")}), flush=True)
        if args.publish:
            command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/population_training.py", *sys.argv[1:]])
            path = record_result(args.publish, command=command, settings=settings_rec, figures=figures,
                                 wall_s=round(time.perf_counter() - t_start, 1), out_dir=args.out_dir)
            print(f"wrote {path} ({repeats_done} of {args.repeats} repeats)", flush=True)

    failed: dict[str, str] = {}  # torch modes that failed or ran past --torch-timeout: not run again
    publish(0)  # the check and the compile times survive a run cut short
    for r in range(args.repeats):
        order = impls[r % len(impls):] + impls[: r % len(impls)]  # rotate, so no implementation always runs first
        for name in order:
            load = os.getloadavg()[0]
            if name.startswith("engine"):
                trainer, archs = engines[name]
                runs[name].append(len(archs) * args.steps / time_engine(trainer, archs))
            elif name in failed:
                continue
            else:
                try:
                    row = time_torch(args, name.removeprefix("torch-"))
                except (subprocess.TimeoutExpired, RuntimeError) as e:  # recorded; the other figures still count
                    failed[name] = f"repeat {r}: {type(e).__name__}: {str(e)[-300:]}"
                    print(json.dumps({"repeat": r, "impl": name, "failed": failed[name]}), flush=True)
                    continue
                torch_rows[name].append(row)
                runs[name].append(row["cand_steps_per_s"])
            loads[name].append(round(load, 2))
            print(json.dumps({"repeat": r, "impl": name, "cand_steps_per_s": runs[name][-1], "loadavg_1m": load}),
                  flush=True)
        publish(r + 1)

if __name__ == "__main__":
    main()
