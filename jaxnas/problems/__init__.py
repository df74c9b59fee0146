"""Objectives: tabular benchmarks (`BENCHMARKS` maps a name to a `TabularBenchmark`, the table protocol's spaces
with their tables), the population engine's classification objective (`classification.py`), and NEAT's tasks
(`neat_tasks.NEAT_PROBLEMS`; the pole dynamics in `single_pole.py` and `double_pole.py`, their episode runner in
`pole_balancing.py`).

Adding a tabular benchmark: its space in `jaxnas/spaces/`, its loader here (one file returning a `Table`), one
`BENCHMARKS.register` line below and its config section in `experiments/configs/nb201.py`.
"""

from jaxnas.common.registry import Registry
from jaxnas.problems import macro_table, nb201_table
from jaxnas.problems.tabular import Evaluation, Table, TabularBenchmark
from jaxnas.spaces import macro, nb201

BENCHMARKS: Registry[TabularBenchmark] = Registry("benchmark")

BENCHMARKS.register("nb201")(TabularBenchmark(
    name="nb201", title="NAS-Bench-201, CIFAR-10-valid", space=nb201.SPACE, load=nb201_table.load_nb201_table,
    budget_unit="simulated s", fitness="validation accuracy (%)",
    reported="test accuracy (%)",
    note=("Ours: this table's 200-epoch seed-mean validation accuracy as fitness. Paper: 12-epoch validation "
          "accuracy of one random seed as fitness, so its searches are noisier. Our test column is the "
          "CIFAR-10-valid network on the test set, not the paper's train+valid network (93.x): compare valid with "
          "valid, and only the ranking of test."),
    # Dong & Yang, ICLR 2020, Table 5 (CIFAR-10, 500 runs, 12,000 s): (valid mean, valid std, test mean, test std).
    published={"aging_evolution": (91.19, 0.31, 93.92, 0.30), "reinforce": (91.09, 0.37, 93.85, 0.37),
               "random": (90.93, 0.36, 93.70, 0.36)}))

BENCHMARKS.register("macro")(TabularBenchmark(
    name="macro", title="NAS-Bench-Macro, CIFAR-10", space=macro.SPACE, load=macro_table.load_macro_table,
    budget_unit="evaluations", fitness="test accuracy, searched training (%)",
    reported="test accuracy, mean of the other two trainings (%)",
    note=("NAS-Bench-Macro holds three trainings per network and no validation split: the search selects on one "
          "training (`macro.search_run`) and the reported figure is the mean of the other two, so the reported "
          "number is never the one searched on. Every evaluation costs 1: the budget counts evaluations.")))

__all__ = ["BENCHMARKS", "Evaluation", "Table", "TabularBenchmark"]
