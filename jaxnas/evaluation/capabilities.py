"""What the speed-ups ask of a candidate network, and the one-line refusal when a network does not offer it.

`jaxnas.evaluation` never looks inside a particular network's parameters; a network that supports a speed-up
offers it as methods (NAS-Bench-201's: `jaxnas.models.nb201.NB201Network`):

* weight sharing, off-path weights frozen: `path_mask(params, arch)` -> a bool tree like `params`;
* incremental training: `growable(arch)` -> positions, `grow(params, batch_stats, arch, position, op)` ->
  (params, batch_stats, arch) computing the parent's function, `grow_op` (the op inserted) and
  `grow_description` (for reports);
* pruning's cost: `macs(params, arch, image_hw)` -> multiply-accumulates per image, non-zero weights only;
* filter pruning: `pruned(fraction)` -> the smaller network, `prune_filters(candidate, arch, fraction)` -> the
  candidate at the smaller widths, `widths_summary()` -> the widths, for reports.

Magnitude pruning, early stopping and plain weight sharing (`off_path=decayed`) need nothing beyond the
network's parameters.
"""

from __future__ import annotations

from typing import Any

from jaxnas.common.errors import ConfigError


def require(model: Any, method: str, what: str) -> None:
    """Refuses, naming the `space` setting (which chose the network), a network without `method`."""
    if not callable(getattr(model, method, None)):
        raise ConfigError("space", f"{what} needs a network offering `{method}`; {type(model).__name__} does not "
                                   "(see jaxnas.evaluation.capabilities)")
