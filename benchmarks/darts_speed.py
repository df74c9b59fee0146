"""DARTS search throughput: 8 searches vmapped in one program against the same 8 run one after another (issue 24).

    python benchmarks/darts_speed.py --seeds 8 --epochs 3 --repeats 3

Both sides run the same supernet (the default config's: C=8, one cell per stage, digits 8x8, batch 64), the same
first-order DARTS steps and the same seeds; only the batching differs. Timed after each program's compilation (its
first epoch), per repeat: `epochs` epochs of all the seeds (vmapped: one call per epoch; sequential: one call per
seed and epoch). Reports supernet search steps per second counted per seed (a step = one alpha and one weight
update of one search), median over repeats, and the compile times; then, untimed, how far the two drift apart in
alpha epoch by epoch from the same initial states (float rounding amplified by training). Writes
results/darts_speed.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def alpha_drift(settings, num_classes: int, epochs: int, split, seeds) -> list[float]:
    """How far the vmapped search and the same seeds searched one at a time drift apart, epoch by epoch."""
    import jax.numpy as jnp

    from jaxnas.evaluation import darts as D

    init, epoch = D.make_epochwise(settings, num_classes, epochs)
    together = init(seeds, split)
    alone = [init(seeds[i:i + 1], split) for i in range(seeds.shape[0])]
    out = []
    for _ in range(epochs):
        together = epoch(together, seeds, split)[0]
        alone = [epoch(st, seeds[i:i + 1], split)[0] for i, st in enumerate(alone)]
        out.append(max(float(jnp.abs(together.alpha[i] - st.alpha[0]).max()) for i, st in enumerate(alone)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="darts")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import jax
    import jax.numpy as jnp

    from experiments import darts as entry
    from experiments.configs import darts as darts_config
    from experiments.nas_search import load_data
    from jaxnas.common.provenance import record_result
    from jaxnas.evaluation import darts as D

    start = time.perf_counter()
    config = darts_config.get_config()
    config.method = args.method
    settings = entry.darts_settings(config)
    data = load_data(config)
    split = D.split_half(data.train_x, data.train_y)
    steps_per_epoch = min(split.xw.shape[0], split.xa.shape[0]) // settings.batch_size
    total_epochs = 1 + args.epochs * args.repeats  # the first compiles
    seeds = jnp.arange(args.seeds, dtype=jnp.int32)

    def timed(seed_groups):
        """Per group of seeds its own state; each epoch runs every group in turn. (compile_s, [repeat seconds])."""
        init, epoch = D.make_epochwise(settings, data.num_classes, total_epochs)
        states = [init(g, split) for g in seed_groups]
        t0 = time.perf_counter()
        states = [epoch(st, g, split)[0] for st, g in zip(states, seed_groups)]
        jax.block_until_ready(states)
        compile_s = time.perf_counter() - t0
        out = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(args.epochs):
                states = [epoch(st, g, split)[0] for st, g in zip(states, seed_groups)]
            jax.block_until_ready(states)
            out.append(time.perf_counter() - t0)
        return compile_s, out, states

    work = args.seeds * args.epochs * steps_per_epoch  # seed-steps per repeat
    v_compile, v_times, v_states = timed([seeds])
    s_compile, s_times, s_states = timed([seeds[i:i + 1] for i in range(args.seeds)])
    same = all(np.allclose(np.asarray(v_states[0].alpha[i]), np.asarray(s_states[i].alpha[0]), atol=1e-4)
               for i in range(args.seeds))
    drift = alpha_drift(settings, data.num_classes, total_epochs, split, seeds)
    figures = {
        "vmapped_seed_steps_per_s": work / float(np.median(v_times)),
        "sequential_seed_steps_per_s": work / float(np.median(s_times)),
        "speedup": float(np.median(s_times) / np.median(v_times)),
        "vmapped_compile_s": v_compile, "sequential_compile_s": s_compile,
        "vmapped_repeat_s": v_times, "sequential_repeat_s": s_times, "steps_per_epoch": steps_per_epoch,
        "same_alphas": bool(same),
        # max over seeds of |alpha vmapped - alpha alone| after each epoch, from the same initial states
        "alpha_drift_by_epoch": drift, "alpha_scale_final": float(np.abs(np.asarray(v_states[0].alpha)).max()),
    }
    path = record_result("darts_speed", command=" ".join(["python", "benchmarks/darts_speed.py"] + sys.argv[1:]),
                         settings={"seeds": args.seeds, "epochs": args.epochs, "repeats": args.repeats,
                                   "method": args.method, "darts": config.darts.to_dict(), "image_size": config.image_size},
                         figures=figures, seeds=list(range(args.seeds)), wall_s=time.perf_counter() - start,
                         out_dir=args.out)
    print(f"vmapped {figures['vmapped_seed_steps_per_s']:.1f} vs sequential {figures['sequential_seed_steps_per_s']:.1f} "
          f"seed-steps/s ({figures['speedup']:.2f}x); same alphas: {same}; {path}")


if __name__ == "__main__":
    main()
