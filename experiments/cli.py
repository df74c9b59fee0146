"""The shape every entry point shares: `--config file.py[:variant]`, `--config.field=value`, `--workdir`.

`launch(run)` parses those flags, calls `run(config, workdir)`, and turns a `ConfigError` (a user's
mistake) into one line naming the field, with exit status 2, instead of a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from absl import app, flags, logging
from ml_collections import config_dict, config_flags

from jaxnas.common.errors import ConfigError

FLAGS = flags.FLAGS


def launch(run: Callable[[config_dict.ConfigDict, str], dict[str, Any]], default_config: str) -> None:
    """Defines the flags, then runs `run(config, workdir)` under absl and prints its summary."""
    config_flags.DEFINE_config_file("config", default_config, "Config file (path.py or path.py:variant).")
    flags.DEFINE_string("workdir", None, "Directory for results, checkpoints and the report.", required=True)

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        quiet_library_logs()
        try:
            summary = run(FLAGS.config, FLAGS.workdir)
        except ConfigError as err:
            print(f"error: config.{err}", file=sys.stderr)
            sys.exit(2)
        print(json.dumps(summary, indent=2))

    app.run(main)


def quiet_library_logs() -> None:
    """Orbax logs every checkpoint step at INFO through absl; keep the console for progress and results."""
    logging.set_verbosity(logging.WARNING)


def prefixed(prefix: str, fn: Callable[[], Any]) -> Any:
    """Calls `fn()`; a ConfigError it raises gets `prefix.` in front of its field name."""
    try:
        return fn()
    except ConfigError as err:
        raise ConfigError(f"{prefix}.{err.field}", str(err).split(": ", 1)[1]) from None
