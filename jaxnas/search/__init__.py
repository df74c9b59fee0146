"""Search runners: `budgeted.py` (the table protocol: scan x vmap x shard_map under a simulated budget),
`trained.py` (ask/tell with trained candidates, checkpointed per batch), `neat.py` (NEAT runs, compiled chunks of
generations). The table protocol's names are exported here (`from jaxnas.search import BudgetedSearch`)."""

from jaxnas.search.budgeted import BudgetedSearch, SearchResult, StepRecord, best_so_far_curve

__all__ = ["BudgetedSearch", "SearchResult", "StepRecord", "best_so_far_curve"]
