"""The shape every entry point shares: `--config file.py[:variant]`, `--config.field=value`, `--workdir`.

`launch(run)` parses those flags, calls `run(config, workdir)`, and turns a `ConfigError` (a user's
mistake) into one line naming the field, with exit status 2, instead of a traceback.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

from absl import app, flags, logging
from ml_collections import config_dict, config_flags

from jaxnas.common.errors import ConfigError
from jaxnas.common.metrics import to_jsonable
from jaxnas.common.provenance import check_name, record_result

FLAGS = flags.FLAGS


def launch(run: Callable[[config_dict.ConfigDict, str], dict[str, Any]], default_config: str) -> None:
    """Defines the flags, then runs `run(config, workdir)` under absl and prints its summary."""
    config_flags.DEFINE_config_file("config", default_config, "Config file (path.py or path.py:variant).")
    flags.DEFINE_string("workdir", None, "Directory for results, checkpoints and the report.", required=True)
    flags.DEFINE_string("publish", None, "Also write the summary to results/NAME.json with its provenance "
                        "(command, settings, versions, commit, device, wall time): the source of a published figure.")

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        quiet_library_logs()
        start = time.perf_counter()
        if FLAGS.publish is not None:  # a bad name fails before any work
            try:
                check_name(FLAGS.publish)
            except ValueError as err:
                print(f"error: --publish: {err}", file=sys.stderr)
                sys.exit(2)
        try:
            summary = run(FLAGS.config, FLAGS.workdir)
        except ConfigError as err:
            print(f"error: config.{err}", file=sys.stderr)
            sys.exit(2)
        if FLAGS.publish is not None:
            config = FLAGS.config
            command = f"python -m {_module_name(run)} {shlex.join(sys.argv[1:])}"
            path = record_result(FLAGS.publish, command=command, settings=config.to_dict(), figures=summary,
                                 seeds=_seeds(config), wall_s=round(time.perf_counter() - start, 1))
            print(f"published {path}", file=sys.stderr)
        print(json.dumps(to_jsonable(summary), indent=2))  # summaries may hold numpy arrays (MTL's class shares)

    app.run(main)


def _module_name(run: Callable[..., Any]) -> str:
    """The dotted module an entry point was started as (`python -m experiments.x` runs it as __main__)."""
    if run.__module__ != "__main__":
        return run.__module__
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec is not None else sys.argv[0]


def _seeds(config: config_dict.ConfigDict) -> list[int] | None:
    """The config's seed(s): `seeds` if it is a list, else `seed` (and `seeds` seeds from it if it is a count)."""
    seed = config.get("seed")
    seeds = config.get("seeds")
    if isinstance(seeds, (list, tuple)):
        return [int(s) for s in seeds]
    if seed is None:
        return None
    if isinstance(seeds, int) and seeds > 1:
        return list(range(int(seed), int(seed) + seeds))
    return [int(seed)]


def quiet_library_logs() -> None:
    """Orbax logs every checkpoint step at INFO through absl; keep the console for progress and results."""
    logging.set_verbosity(logging.WARNING)


def prefixed(prefix: str, fn: Callable[[], Any]) -> Any:
    """Calls `fn()`; a ConfigError it raises gets `prefix.` in front of its field name."""
    try:
        return fn()
    except ConfigError as err:
        raise ConfigError(f"{prefix}.{err.field}", str(err).split(": ", 1)[1]) from None
