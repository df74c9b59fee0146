"""jaxnas: neural architecture search in JAX.

Search spaces (`jaxnas.spaces`), search strategies in ask/tell form (`jaxnas.strategies`), and
evaluators (`jaxnas.evaluation`). Shared plumbing used by every package of the project (config
validation, registries, orbax checkpoints, JSON-lines metrics, reports) lives in `jaxnas.common`.
"""

__version__ = "0.1.0"
