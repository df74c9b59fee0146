"""The shape every entry point shares: `--config file.py[:variant]`, `--config.field=value`, `--workdir`.

`launch(run)` parses those flags, calls `run(config, workdir)` and prints its summary. A user's mistake ends
in one line on stderr, `error: config.FIELD: got VALUE; allowed ...` (or `error: --FLAG: ...`), exit
status 2, no traceback, before any work: an unknown field (with the nearest known one), a value of the
wrong type, a workdir that is a file or not writable, and every `ConfigError` an entry point raises.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, NoReturn

from absl import app, flags, logging
from ml_collections import config_dict, config_flags
from ml_collections.config_flags.config_flags import ConfigFileFlagParser

from jaxnas.common import distributed
from jaxnas.common.errors import ConfigError
from jaxnas.common.metrics import to_jsonable
from jaxnas.common.provenance import check_name, record_result

FLAGS = flags.FLAGS
USAGE_ERROR = 2  # exit status of every refused input


def headless() -> None:
    """For command-line entry points, which only write figures to files: matplotlib's non-interactive Agg backend.
    Importing the library never changes the backend, so a notebook's inline figures and a user's own plots keep
    theirs."""
    import matplotlib

    matplotlib.use("Agg")


def launch(run: Callable[[config_dict.ConfigDict, str], dict[str, Any]], default_config: str) -> None:
    """Defines the flags, then runs `run(config, workdir)` under absl and prints its summary."""
    global _DEFAULT_CONFIG
    _DEFAULT_CONFIG = default_config
    try:  # without --config on the command line, ml_collections applies the overrides here, at definition
        config_flags.DEFINE_config_file("config", default_config, "Config file (path.py or path.py:variant).")
    except Exception as err:  # noqa: BLE001 -- the same mistakes parse_flags explains
        fail(flag_error_line(err, sys.argv))
    flags.DEFINE_string("workdir", None, "Directory for results, checkpoints and the report.", required=True)
    flags.DEFINE_string("publish", None, "Also write the summary to results/NAME.json with its provenance "
                        "(command, settings, versions, commit, device, wall time): the source of a published figure.")

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            fail(f"error: unexpected arguments: {' '.join(argv[1:])} (every setting is a flag: --config.FIELD=VALUE)")
        quiet_library_logs()
        headless()
        start = time.perf_counter()
        if FLAGS.publish is not None:  # a bad name fails before any work
            try:
                check_name(FLAGS.publish)
            except ValueError as err:
                fail(f"error: --publish: {err}")
        if not isinstance(FLAGS.config, config_dict.ConfigDict):  # ml_collections defers a load failure
            spec = _config_spec(sys.argv) or ""
            problem = load_config(spec) if spec else "no config given"
            fail(f"error: --config: got {spec!r}; {problem if isinstance(problem, str) else 'it did not load'}")
        workdir = FLAGS.workdir
        check_workdir(workdir)
        private = None
        try:
            if distributed.requested():  # several processes: connect them; only process 0 writes the workdir
                distributed.initialize()
                if not distributed.is_writer():
                    private = tempfile.TemporaryDirectory(prefix="jaxnas-process-")
                    workdir = os.path.join(private.name, "workdir")
        except ConfigError as err:
            fail(f"error: {err}")
        created = missing_dirs(workdir)  # what a refused run may have made and must not leave behind
        try:
            summary = run(FLAGS.config, workdir)
        except ConfigError as err:
            remove_if_empty(created)
            fail(f"error: config.{err}")
        finally:
            if private is not None:
                private.cleanup()
        if private is not None:  # the writer prints and publishes
            return
        if FLAGS.publish is not None:
            config = FLAGS.config
            command = f"python -m {_module_name(run)} {shlex.join(sys.argv[1:])}"
            path = record_result(FLAGS.publish, command=command, settings=config.to_dict(), figures=summary,
                                 seeds=_seeds(config), wall_s=round(time.perf_counter() - start, 1))
            print(f"published {path}", file=sys.stderr)
        print(json.dumps(to_jsonable(summary), indent=2))  # summaries may hold numpy arrays (MTL's class shares)

    app.run(main, flags_parser=parse_flags)


def fail(line: str) -> NoReturn:
    """Prints `line` (made one line) on stderr and exits with status 2."""
    print(" ".join(line.split()), file=sys.stderr)
    sys.exit(USAGE_ERROR)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with each mistake (unknown field, wrong type, missing flag) said in one line."""
    try:
        return FLAGS(argv)
    except Exception as err:  # noqa: BLE001 -- ml_collections raises KeyError/AttributeError/ValueError too
        fail(flag_error_line(err, argv))


def flag_error_line(err: Exception, argv: list[str]) -> str:
    """The one line that explains why parsing `argv` failed."""
    spec = _config_spec(argv)
    if spec is not None:
        config = load_config(spec)
        if isinstance(config, str):
            return f"error: --config: got {spec!r}; {config}"
        for field, _ in _overrides(argv):
            line = unknown_field_line(config, field)
            if line:
                return line
    message = _first_line(err)
    bad_value = re.match(r"flag --config\.([\w.]+)=(.*?): (.*)$", message)
    if bad_value and spec is not None:
        field, value, reason = bad_value.groups()
        current = lookup(config, field)
        kind = _KINDS.get(type(current))
        allowed = kind or f"a value of type {type(current).__name__} ({reason})"
        return f"error: config.{field}: got {value!r}; allowed: {allowed}"
    missing = re.match(r"flag --(\w+)=None: Flag --\w+ must have a value other than None", message)
    if missing:
        return f"error: --{missing.group(1)}: missing; this flag is required"
    unknown = re.match(r"Unknown command line flag '([\w.-]+)'", message)
    if unknown:
        close = difflib.get_close_matches(unknown.group(1), [name for name in FLAGS], n=1)
        return f"error: --{unknown.group(1)}: unknown flag" + (f"; did you mean --{close[0]}?" if close else "")
    return f"error: {message}"


def load_config(spec: str) -> config_dict.ConfigDict | str:
    """The config `path.py[:variant]` names, or why it cannot be loaded (one line)."""
    path = spec.split(":", 1)[0]
    if not os.path.isfile(path):
        return f"no such file {path!r}"
    try:
        config = ConfigFileFlagParser("config").parse(spec)
    except Exception as err:  # noqa: BLE001 -- a bad variant, a config file that raises
        lines = [line for line in str(err).splitlines() if line.strip()]
        return lines[-1].strip() if lines else type(err).__name__  # the config's own error, not the traceback
    if not isinstance(config, config_dict.ConfigDict):
        return "it did not load: it needs a get_config() returning a ConfigDict"
    return config


def unknown_field_line(config: config_dict.ConfigDict, field: str) -> str | None:
    """`error: config.FIELD: unknown field; did you mean ...?` if `field` (dotted) is not in `config`."""
    if lookup(config, field) is not _MISSING:
        return None
    known = dotted_keys(config)
    close = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"known fields: {', '.join(config.keys())}"
    return f"error: config.{field}: unknown field; {hint}"


def dotted_keys(config: config_dict.ConfigDict, prefix: str = "") -> list[str]:
    """Every field of `config` as the user types it after `--config.` (nested ones as `a.b`)."""
    keys = []
    for key, value in config.items():
        keys.append(prefix + key)
        if isinstance(value, config_dict.ConfigDict):
            keys.extend(dotted_keys(value, f"{prefix}{key}."))
    return keys


_MISSING = object()
_DEFAULT_CONFIG: str | None = None  # the entry point's config file, when --config is not given
_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def lookup(config: Any, field: str) -> Any:
    """`config`'s value at dotted `field` (`train.steps`), or `_MISSING`."""
    for part in field.split("."):
        if not isinstance(config, config_dict.ConfigDict) or part not in config:
            return _MISSING
        config = config[part]
    return config


def _config_spec(argv: list[str]) -> str | None:
    """The `--config` value in `argv` (the last one, as absl takes), else the flag's default."""
    spec = None
    for i, arg in enumerate(argv):
        if arg.startswith(("--config=", "-config=")):
            spec = arg.split("=", 1)[1]
        elif arg in ("--config", "-config") and i + 1 < len(argv):
            spec = argv[i + 1]
    return spec if spec is not None else _DEFAULT_CONFIG


def _overrides(argv: list[str]) -> list[tuple[str, str | None]]:
    """(field, value) of every `--config.FIELD=VALUE` (or `--config.FIELD VALUE`, `--noconfig.FIELD`)."""
    found = []
    for i, arg in enumerate(argv):
        m = re.match(r"^--?(no)?config\.([^=]+)(=(.*))?$", arg)
        if m:
            value = m.group(4) if m.group(3) else (argv[i + 1] if i + 1 < len(argv) else None)
            found.append((m.group(2), value))
    return found


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def check_workdir(workdir: str) -> None:
    """Refuses, before any work, a workdir that is not a directory or that cannot be written or created."""
    if os.path.exists(workdir):
        if not os.path.isdir(workdir):
            fail(f"error: --workdir: got {workdir!r}, which is a file; allowed: a directory (existing or new)")
        if not os.access(workdir, os.W_OK | os.X_OK):
            fail(f"error: --workdir: got {workdir!r}, which is not writable; allowed: a directory you can write")
        return
    parent = os.path.dirname(os.path.abspath(workdir))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        fail(f"error: --workdir: got {workdir!r}; it cannot be created because {parent!r} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        fail(f"error: --workdir: got {workdir!r}; it cannot be created because {parent!r} is not writable")


def missing_dirs(workdir: str) -> list[str]:
    """`workdir` and its ancestors that do not exist yet, deepest first."""
    missing, path = [], os.path.abspath(workdir)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def remove_if_empty(dirs: list[str]) -> None:
    """Removes the directories a refused run created while they are empty (never a file, never a full one)."""
    for path in dirs:
        try:
            os.rmdir(path)
        except OSError:
            return
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
