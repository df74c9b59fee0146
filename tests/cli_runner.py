"""`python -m experiments.ENTRY ARGS` as a user runs it, many times at the cost of one start-up.

Each run of an entry point from a fresh interpreter spends about 2.5 s of CPU importing Python, JAX, Flax and absl
before the entry point's own code runs; the bad-input suites run ~180 such commands (about 7 minutes of CI). Here a
server process (one per test process, started on first use, environment as a user's: one CPU device, no test XLA
flags) imports those libraries once, never initialises a JAX backend, and forks a child per command. The child runs
the entry module exactly as `python -m` does (`runpy.run_module(..., run_name="__main__", alter_sys=True)` with
`sys.argv` set, in the repository root, stdout and stderr to files), and its exit status, output and CPU time
(user + system, from `wait4`) come back. The entry modules themselves are never imported by the server, so each child
executes its entry point's module from scratch, as a new process would.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SERVER = r"""
import json, os, runpy, sys, traceback
# the libraries every entry point imports, loaded once (no backend is initialised: nothing here runs a computation)
import numpy, jax, jax.numpy, flax.linen, optax, absl.app, absl.flags, ml_collections
from ml_collections import config_flags
import experiments.cli, experiments.validation, jaxnas.common.errors
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.chdir(req["cwd"])
        sys.argv = [req["entry"]] + req["args"]
        code = 0
        try:
            runpy.run_module(req["entry"], run_name="__main__", alter_sys=True)
        except SystemExit as e:  # what the interpreter does with SystemExit at exit
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    print(json.dumps({"returncode": os.waitstatus_to_exitcode(status),
                      "cpu": usage.ru_utime + usage.ru_stime}), flush=True)
"""

_server: subprocess.Popen | None = None


def _start() -> subprocess.Popen:
    global _server
    if _server is None or _server.poll() is not None:
        env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
        _server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, cwd=REPO, env=env)
        atexit.register(_server.kill)
    return _server


def run_module(module: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m MODULE ARGS` from the repository root -> (completed process, the child's CPU seconds)."""
    server = _start()
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        server.stdin.write(json.dumps({"entry": module, "args": list(args), "cwd": REPO, "stdout": out,
                                       "stderr": err}) + "\n")
        server.stdin.flush()
        reply = server.stdout.readline()
        if not reply:
            raise RuntimeError(f"the CLI runner died running {module} {' '.join(args)}")
        result = json.loads(reply)
        with open(out) as f_out, open(err) as f_err:
            proc = subprocess.CompletedProcess([sys.executable, "-m", module, *args], result["returncode"],
                                               f_out.read(), f_err.read())
    return proc, result["cpu"]
