"""NAS-Bench-201 search with the paper's protocol on the tabular benchmark (Dong & Yang, ICLR 2020).

Command (one strategy; STRATEGY is random, aging_evolution, tournament, reinforce or qlearning):
  python -m experiments.nb201 --config experiments/configs/nb201.py --config.strategy=STRATEGY \
      --config.runs=500 --config.budget_s=12000 --workdir runs/nb201_STRATEGY
All five side by side (one table, one plot):
  python -m experiments.nb201 --config experiments/configs/nb201.py --config.strategy=all --workdir runs/nb201
Small variant for notebooks and CI: `--config experiments/configs/nb201.py:small` (20 runs, 3,000 s).
NAS-Bench-Macro instead of NAS-Bench-201 (same strategies, same protocol, a budget of evaluations):
  python -m experiments.nb201 --config experiments/configs/nb201.py --config.benchmark=macro \
      --config.strategy=all --workdir runs/macro

Expected runtime on the 2-core CPU, 500 runs, compilation included: 5-10 s per strategy, about 20 s
for REINFORCE (benchmarks/RESULTS.md), about 75 s for Q-learning (128 sequential replay updates per model).
Expected result (500 runs, 12,000 s, each of seeds 3, 4, 5), mean validation accuracy: aging evolution
91.30-91.32, tournament 91.21, REINFORCE 91.12-91.13, random 91.03-91.04, Q-learning 91.00-91.04 (paper: REA
91.19, REINFORCE 91.09, random 90.93; see README for the caveat on the table and for why Q-learning is level
with random search at 100 models). Seeds 0-2 chose REINFORCE's learning rate (benchmarks/nb201_reinforce_lr.py);
report on other seeds. Q-learning's settings are the paper's, untuned.
"""

from ml_collections import config_dict


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.benchmark = "nb201"  # nb201 | macro (jaxnas.problems.BENCHMARKS)
    c.strategy = "aging_evolution"  # random | aging_evolution | tournament | reinforce | qlearning | all | a,b,...
    c.runs = 500  # independent searches, all in one compiled, vmapped call (1-10,000)
    # NAS-Bench-201: simulated seconds per search (the paper's budget); at most 1e6, and at most 100,000
    # evaluations per run: budget_s / the table's cheapest evaluation (about 32.5 s in NAS-Bench-201)
    c.budget_s = 12_000.0
    c.seed = 0  # 0 to 2**31 - 1
    c.table_path = ""  # NAS-Bench-201: empty: $JAXNAS_NB201_CSV, else ../shared/data/nasbench201/nb201_cifar10_valid.csv
    # NAS-Bench-Macro (no training times: the budget counts evaluations). 100 evaluations is what a NAS-Bench-201
    # search makes in 12,000 s on average (93-109 per strategy), fixed before any Macro search was run.
    # search_run: the training (0-2) the search selects on; the other two trainings' mean is reported.
    c.macro = config_dict.ConfigDict({"path": "", "budget": 100, "search_run": 0})  # budget: at most 100,000
    c.chunk_steps = 32  # search steps per compiled call (1-10,000); a checkpoint is written after each
    c.progress = True

    # Strategy sections: population and sample sizes 1-100,000 (bounds in experiments/nb201.py, STRATEGY_BOUNDS).
    # Regularized evolution, NAS-Bench-201 settings (R-EA.sh): population 10, tournament of 3.
    c.aging_evolution = config_dict.ConfigDict({"population_size": 10, "sample_size": 3})
    # Plain tournament selection (Liu et al. 2018) with the same P and S, so only aging differs.
    # sample_fraction > 0 replaces sample_size by ceil(fraction * current population) (Liu et al.: 0.05).
    c.tournament = config_dict.ConfigDict({"population_size": 10, "sample_size": 3, "sample_fraction": 0.0})
    # REINFORCE, LSTM controller (Zoph & Le 2017); see jaxnas/strategies/reinforce.py for each default.
    c.reinforce = config_dict.ConfigDict({
        "learning_rate": 0.003, "hidden_size": 35, "num_layers": 2, "baseline_decay": 0.9,
        "entropy_weight": 1e-4, "temperature": 0.0, "tanh_constant": 0.0,  # 0 = off
    })
    # Q-learning (MetaQNN, Baker et al. 2017); see jaxnas/strategies/qlearning.py for each default and deviation.
    # total_models (1-100,000): the models the epsilon schedule spans; 100 is what a 12,000 s NAS-Bench-201 search
    # trains on average and NAS-Bench-Macro's budget. epsilon_schedule: '' = the paper's (1.0 for 1,500 models,
    # 0.9/0.8/0.7 for 100 each, 0.6 ... 0.1 for 150 each) scaled to total_models (100: 56 at 1.0, 4 each at 0.9-0.7,
    # 6 at 0.6 and 0.5, 5 each at 0.4-0.1); or EPSILON:COUNT pairs, epsilon in [0, 1], counts >= 0 summing to
    # total_models, e.g. '1.0:60,0.5:20,0.1:20'; past the end the last epsilon is kept. learning_rate (alpha) in
    # (0, 1], discount (gamma) in [0, 1], initial_q in [-100, 100], replay_samples 0-100,000 trajectories per model
    # (published code 128, the paper's text 100), max_resamples 0-100,000 (already trained models resampled per ask).
    c.qlearning = config_dict.ConfigDict({
        "total_models": 100, "epsilon_schedule": "", "learning_rate": 0.01, "discount": 1.0, "initial_q": 0.5,
        "replay_samples": 128, "max_resamples": 100,
    })
    if variant == "small":
        c.runs = 20
        c.budget_s = 3_000.0
    elif variant not in (None, ""):
        raise ValueError(f"config variant: got {variant!r}; allowed: small")
    return c
