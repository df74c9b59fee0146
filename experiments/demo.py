"""`make demo`: a short tour of every capability that exists, on embedded/offline data, into one report.

    python -m experiments.demo --workdir runs/demo

Each capability contributes one section (its own outputs in a subdirectory, its summary and plots in
`<workdir>/report.md`). Sections are listed in `SECTIONS`; a capability adds itself with one entry.
Budget: the whole tour stays under 20 minutes on a 2-core CPU; each section a few minutes at most.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable

from absl import app, flags

from experiments import cyclegan, darts, detection_search, mtl, nas_search, nb201, neat, speedups, stylegan
from experiments.cli import headless, quiet_library_logs
from experiments.configs import cyclegan as cyclegan_config
from experiments.configs import darts as darts_config
from experiments.configs import detection_search as detection_config
from experiments.configs import mtl as mtl_config
from experiments.configs import nas_search as nas_search_config
from experiments.configs import nb201 as nb201_config
from experiments.configs import neat as neat_config
from experiments.configs import speedups as speedups_config
from experiments.configs import stylegan as stylegan_config
from jaxnas.common.errors import ConfigError
from jaxnas.common.metrics import write_json
from jaxnas.common.provenance import check_name, record_result
from jaxnas.common.report import Report


def nb201_section(workdir: str, report: Report) -> dict:
    """All four strategies on NAS-Bench-201 with the paper's protocol: 500 runs x 12,000 s each."""
    config = nb201_config.get_config()
    config.strategy = "all"
    return nb201.run(config, os.path.join(workdir, "nb201"), report=report)


def macro_section(workdir: str, report: Report) -> dict:
    """The same strategies and protocol on a second table, NAS-Bench-Macro: 500 runs x 100 evaluations each."""
    config = nb201_config.get_config()
    config.benchmark, config.strategy = "macro", "all"
    return nb201.run(config, os.path.join(workdir, "macro"), report=report)


def nas_search_section(workdir: str, report: Report) -> dict:
    """Aging evolution with real training on the embedded digits, against random architectures."""
    config = nas_search_config.get_config("demo")
    return nas_search.run(config, os.path.join(workdir, "nas_search"), report=report)


def metaqnn_section(workdir: str, report: Report) -> dict:
    """MetaQNN: Q-learning designs CNNs layer by layer on the digits (32 trained models), against random chains."""
    config = nas_search_config.get_config("metaqnn")
    return nas_search.run(config, os.path.join(workdir, "metaqnn"), report=report)


def nasnet_section(workdir: str, report: Report) -> dict:
    """AmoebaNet: aging evolution of NASNet normal and reduction cells on the digits (32 trained candidates), the
    best genotype drawn, against random cells."""
    config = nas_search_config.get_config("nasnet")
    return nas_search.run(config, os.path.join(workdir, "nasnet"), report=report)


def darts_section(workdir: str, report: Report) -> dict:
    """DARTS (first order) on the NAS-Bench-201 supernet: 8 seeds vmapped in one program for 10 epochs, every
    epoch's derived cell looked up in the table, the final cells trained from scratch."""
    return darts.run(darts_config.get_config("demo"), os.path.join(workdir, "darts"), report=report)


def detection_section(workdir: str, report: Report) -> dict:
    """The detector search's short run: one seed, a 3 x 2 space, four evaluations per method (about 3 minutes)."""
    return detection_search.run(detection_config.get_config("demo"), os.path.join(workdir, "detection_search"),
                                report=report)


def speedup_section(speedup: str) -> Callable[[str, Report], dict]:
    """One speed-up (`experiments.speedups`) with its default config, measured against full training."""
    def section(workdir: str, report: Report) -> dict:
        config = speedups_config.get_config()
        config.speedup = speedup
        return speedups.run(config, os.path.join(workdir, speedup), report=report)

    return section


def mtl_section(workdir: str, report: Report) -> dict:
    """Multi-task learning on 4,000 VADER sentences: four losses x 3 seeds, resampling, freezing, sparsity."""
    return mtl.run(mtl_config.get_config("demo"), os.path.join(workdir, "mtl"), report=report)


def stylegan_section(workdir: str, report: Report) -> dict:
    """A short StyleGAN run on 16x16 digits: FID against steps, samples, style mixing and truncation."""
    return stylegan.run(stylegan_config.get_config("demo"), os.path.join(workdir, "stylegan"), report=report)


def cyclegan_section(workdir: str, report: Report) -> dict:
    """A short CycleGAN run: digits <-> tinted digits, measured against the known tint."""
    return cyclegan.run(cyclegan_config.get_config("demo"), os.path.join(workdir, "cyclegan"), report=report)


def neat_section(workdir: str, report: Report) -> dict:
    """NEAT with the paper's defaults: XOR (one run, and the solve rate over 10 seeds vmapped), double-pole
    balancing with velocities (100,000 steps), and without velocities with recurrent networks (the paper's
    DPNV settings: population 1,000; the champion's 100,000-step and generalization tests); then a short HyperNEAT
    run on the boxes task (`neat.py:hyperneat` cut to 40 generations of 100 CPPNs: it shows the encoding and the
    pictures, and its report says how far it got; the full run is in the README)."""
    out = {}
    for problem in ("xor", "double_pole", "double_pole_nv", "boxes"):
        variant = {"double_pole_nv": "dpnv", "boxes": "hyperneat"}.get(problem, "demo")
        config = neat_config.get_config(variant)
        config.problem = problem
        if problem != "xor":  # vmapped seeds would keep simulating solved runs' 100,000-step episodes
            config.seeds = 1
        if problem == "boxes":
            config.generations, config.neat.population_size = 40, 100
        out[problem] = neat.run(config, os.path.join(workdir, "neat", problem), report=report)
    return out


SECTIONS: list[tuple[str, Callable[[str, Report], dict]]] = [
    ("nb201", nb201_section),
    ("macro", macro_section),
    ("nas_search", nas_search_section),
    ("metaqnn", metaqnn_section),
    ("nasnet", nasnet_section),
    ("darts", darts_section),
    ("detection_search", detection_section),
    *((name, speedup_section(name)) for name in speedups.SPEEDUPS),
    ("mtl", mtl_section),
    ("stylegan", stylegan_section),
    ("cyclegan", cyclegan_section),
    ("neat", neat_section),
]


def run_demo(workdir: str, publish: str | None = None) -> dict:
    """Runs every section into `workdir`; with `publish`, also records each section's wall time and the total in
    results/PUBLISH.json (the source of the README's demo time)."""
    if publish is not None:
        check_name(publish)
    begin = time.perf_counter()
    report = Report(workdir, "jaxnas demo: a tour of every capability")
    report.text("Generated by `make demo` (`python -m experiments.demo`). Each section links to its own outputs.")
    summary = {}
    for name, section in SECTIONS:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        summary[name] = section(workdir, report)
        summary[name]["section_wall_s"] = time.perf_counter() - start
        report.write()  # a partial report survives a later section's failure
    write_json(os.path.join(workdir, "demo.json"), summary)
    path = report.write()
    print(f"report: {path}")
    if publish is not None:
        total = time.perf_counter() - begin
        seconds = {name: round(out["section_wall_s"], 1) for name, out in summary.items()}
        figures = {"section_wall_s": seconds, "total_s": round(total, 1), "total_min": round(total / 60, 2)}
        path = record_result(publish, command=f"python -m experiments.demo {shlex.join(sys.argv[1:])}",
                             settings={"sections": list(seconds)}, figures=figures, wall_s=round(total, 1))
        print(f"published {path}")
    return summary


def main(argv: list[str]) -> None:
    del argv
    quiet_library_logs()
    headless()
    publish = flags.FLAGS.publish
    if publish is not None:
        try:
            check_name(publish)  # a bad name fails before any work
        except ValueError as err:
            print(f"error: --publish: {err}", file=sys.stderr)
            sys.exit(2)
    try:
        run_demo(flags.FLAGS.workdir, publish)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    flags.DEFINE_string("workdir", "runs/demo", "Directory for the report and every section's outputs.")
    flags.DEFINE_string("publish", None, "Also record each section's wall time and the total in results/NAME.json.")
    app.run(main)
