"""MetaQNN with real training: Q-learning against random search in the same space, the same number of trained
models, over several seeds (issue 22).

    python benchmarks/metaqnn_vs_random.py --seeds 0,1,2,3,4 --evaluations 48

`benchmarks/search_vs_random.py --variant metaqnn`: both strategies run `experiments.nas_search` with the `:metaqnn`
config (digits 8x8, at most 6 layers, MetaQNN's recipe scaled to 4 epochs) and differ only in `strategy`. Random
search samples each layer uniformly among the allowed ones: the agent at epsilon = 1. Writes
results/metaqnn_vs_random.json. The recipe's one tuned setting (Adam's rate) was chosen on data seed 100, not on
these seeds.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from search_vs_random import main  # noqa: E402

if __name__ == "__main__":
    main("metaqnn")
