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
    # As fractions, like every accuracy of the library (the paper prints percent).
    published={"aging_evolution": (0.9119, 0.0031, 0.9392, 0.0030), "reinforce": (0.9109, 0.0037, 0.9385, 0.0037),
               "random": (0.9093, 0.0036, 0.9370, 0.0036)}))

BENCHMARKS.register("macro")(TabularBenchmark(
    name="macro", title="NAS-Bench-Macro, CIFAR-10", space=macro.SPACE, load=macro_table.load_macro_table,
    budget_unit="evaluations", fitness="test accuracy, searched training (%)",
    reported="test accuracy, mean of the other two trainings (%)",
    note=("NAS-Bench-Macro holds three trainings per network and no validation split: the search selects on one "
          "training (`macro.search_run`) and the reported figure is the mean of the other two, so the reported "
          "number is never the one searched on. Every evaluation costs 1: the budget counts evaluations.")))

__all__ = ["BENCHMARKS", "Evaluation", "Table", "TabularBenchmark"]
