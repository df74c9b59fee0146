"""Search strategies in ask/tell form. `STRATEGIES` maps a name to a factory `f(space, **settings)`."""

from jaxnas.common.registry import Registry
from jaxnas.strategies.base import Strategy
from jaxnas.strategies.evolution import Evolution, aging_evolution, tournament
from jaxnas.strategies.qlearning import QLearning
from jaxnas.strategies.random import RandomSearch
from jaxnas.strategies.reinforce import Reinforce

STRATEGIES: Registry = Registry("strategy")
STRATEGIES.register("random")(RandomSearch)
STRATEGIES.register("aging_evolution")(aging_evolution)
STRATEGIES.register("tournament")(tournament)
STRATEGIES.register("reinforce")(Reinforce)
STRATEGIES.register("qlearning")(QLearning)

__all__ = ["STRATEGIES", "Evolution", "QLearning", "RandomSearch", "Reinforce", "Strategy", "aging_evolution", "tournament"]
