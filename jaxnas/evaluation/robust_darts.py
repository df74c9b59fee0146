"""RobustDARTS's early stopping (DARTS-ES; Zela et al., "Understanding and Robustifying Differentiable
Architecture Search", ICLR 2020), applied to a recorded trace of the dominant eigenvalue of grad^2_alpha L_val.

The rule of the official code (`automl/RobustDARTS`, `EVLocalAvg` with its defaults window=5, factor=1.3,
delta=4, es_start_epoch=10, the eigenvalue computed every `ev_freq` epochs): a local average of the last `window`
eigenvalues (fewer at the start: from ceil(window / 2) values on) is taken as the value `ev_freq * floor(window /
2)` epochs back; once that epoch minus `ev_freq * delta` reaches `start_epoch`, the search stops as soon as the
current local average exceeds `factor` times the one `delta` averages earlier, and returns the architecture of
the epoch `ev_freq * delta` before the current local average's epoch.

The search's trajectory does not depend on when it would stop, so applying the rule after a full run (as here,
on every seed of a vmapped search) gives the same stop epoch and architecture as stopping the run; the epochs
after it were simply not needed. `ev_freq` is 1 here (the eigenvalue is recorded every epoch; the official
default computes it every 2). The last epoch is never a stopping point (the official tracker only closes its
averages there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from jaxnas.common.errors import check, check_positive


def local_averages(eigenvalues: Sequence[float], window: int = 5) -> dict[int, float]:
    """{epoch: local average} for every epoch whose average the tracker forms before the last epoch: the mean of
    the eigenvalues up to epoch e + floor(window / 2), at most `window` of them."""
    check_positive("robust_darts.window", window, integer=True)
    ev = np.asarray(eigenvalues, dtype=np.float64)
    half, first = window // 2, math.ceil(window / 2)
    out: dict[int, float] = {}
    for current in range(first - 1, len(ev) - 1):  # the epoch whose eigenvalue was just recorded
        lo = max(0, current + 1 - window)
        out[current - half] = float(np.mean(ev[lo:current + 1]))
    return out


def early_stop_epoch(eigenvalues: Sequence[float], window: int = 5, factor: float = 1.3, delta: int = 4,
                     start_epoch: int = 10) -> int | None:
    """The epoch whose architecture DARTS-ES returns, or None if the rule never fires (keep the last one).

    Non-finite eigenvalues (a skipped computation) make the averages they enter non-finite, which never fire; nor
    does a non-positive earlier average (a ratio of the official code that has no meaning there)."""
    check(factor > 0, "robust_darts.factor", f"must be > 0, got {factor}")
    check_positive("robust_darts.delta", delta, integer=True)
    averages = local_averages(eigenvalues, window)
    for epoch in sorted(averages):
        earlier = epoch - delta
        if earlier < start_epoch or earlier not in averages:
            continue
        now, before = averages[epoch], averages[earlier]
        if np.isfinite(now) and np.isfinite(before) and before > 0 and now / before > factor:
            return earlier
    return None


__all__ = ["local_averages", "early_stop_epoch"]
