"""Issue 26: converts the percent accuracies of committed results files (`results/*.json`) to fractions.

    python tools/percent_to_fraction_results.py                      # every results/*.json of the checkout
    python tools/percent_to_fraction_results.py results/nb201_protocol_seed3.json ...

Every accuracy (top-1 accuracy, NAS-Bench-201 / NAS-Bench-Macro table accuracies, detection mAP and AP50), and every
figure in accuracy units (a std, a standard error, a paired difference in points, a hypervolume in accuracy x MFLOPs)
is divided by 100; None (a NaN the writer could not store) and NaN stay as they are. What is converted is listed
explicitly, per kind of file, by key path (`KINDS`); the kind is the command that wrote the file (its `command`
field: the entry point or benchmark script). A file whose kind holds no accuracies in percent (the GANs, multi-task
learning and NEAT already wrote fractions; the speed and memory benchmarks have none) is left untouched, and a file
written by a command this script does not know is refused (exit status 1) rather than guessed at.

A converted file gets a top-level field `units` (after `command`); a file that already has one is skipped, so running
the script twice changes nothing. A file without it but written after the day of the change (its `provenance.date`
from 2026-12-08 on: the commands write fractions) is skipped too, and a file whose accuracies are all at most 1 (one
published with fractions on the day of the change) is refused: a result published after the change is never
divided again. Files are rewritten as `jaxnas.common.provenance.record_result` writes them
(`json.dumps(doc, indent=1)` and a newline): only the converted numbers and the new field differ.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

UNITS = ("accuracies as fractions (converted from percent on 2026-12-07, issue 26; the command now writes "
         "fractions)")

# A path is a tuple of keys below the file's `figures`. "*" is every key of a dict or every element of a list; a key
# ending in "?" may be absent (or null: nothing to convert there). The leaf is a number, null, or a list of them.
# Each path has a kind of value, checked before dividing (a value out of range means the file is not what this
# script expects, e.g. converted by other means without the `units` field): "acc" an accuracy in [0, 100], "spread"
# a std or standard error in [0, 100], "diff" a difference of accuracies in [-100, 100], "area" a hypervolume >= 0
# in accuracy % x MFLOPs.
KeyPath = tuple[str, ...]

NB201_STRATEGY = [(("valid_mean",), "acc"), (("test_mean",), "acc"), (("valid_std",), "spread"),
                  (("test_std",), "spread"),
                  (("published?", "valid_mean"), "acc"), (("published?", "test_mean"), "acc"),
                  (("published?", "valid_std"), "spread"), (("published?", "test_std"), "spread")]
NB201_ORACLE = [(("table_best_valid?",), "acc"), (("table_best_test?",), "acc"), (("table_max_test?",), "acc")]


def _nb201(figures: dict) -> list[tuple[KeyPath, str]]:
    """`experiments.nb201`: a comparison (`--config.strategy=all` or several: per strategy under `strategies`) or
    one strategy's summary; NAS-Bench-Macro's files add the table's oracle figures."""
    if "strategies" in figures:
        return [(("strategies", "*") + p, k) for p, k in NB201_STRATEGY] + NB201_ORACLE
    return NB201_STRATEGY + NB201_ORACLE


def _reinforce_lr(figures: dict) -> list[tuple[KeyPath, str]]:
    """benchmarks/nb201_reinforce_lr.py: one cell per (seed, strategy, learning rate)."""
    return [(("cells", "*", "valid_mean"), "acc"), (("cells", "*", "test_mean"), "acc"),
            (("cells", "*", "valid_std"), "spread"), (("cells", "*", "test_std"), "spread")]


def _nas_search(figures: dict) -> list[tuple[KeyPath, str]]:
    """`experiments.nas_search`: the best candidate and the random baseline (null without one)."""
    base = "random_baseline?"
    return [(("best_valid",), "acc"), (("best_test",), "acc"),
            ((base, "median_valid"), "acc"), ((base, "median_test"), "acc"), ((base, "max_valid"), "acc"),
            ((base, "valid_quartiles?", "*"), "acc"), ((base, "valid_std?"), "spread"),
            ((base, "valid_acc?", "*"), "acc")]


def _vs_random(figures: dict) -> list[tuple[KeyPath, str]]:
    """benchmarks/search_vs_random.py and metaqnn_vs_random.py: a strategy (`strategy`; MetaQNN's file predates the
    field: qlearning) against random search, per seed and paired."""
    s = figures.get("strategy", "qlearning")
    return [((f"{s}_best_valid_mean",), "acc"), (("random_best_valid_mean",), "acc"),
            ((f"{s}_best_test_mean",), "acc"), (("random_best_test_mean",), "acc"),
            (("paired_diff_mean",), "diff"), (("paired_diff_se",), "spread"),
            (("random_models_valid_quartiles", "*"), "acc"), ((f"{s}_models_valid_median",), "acc"),
            (("runs", "*", "*", "best_valid"), "acc"), (("runs", "*", "*", "best_test"), "acc"),
            (("runs", "*", "*", "valid_acc", "*"), "acc")]


def _darts(figures: dict) -> list[tuple[KeyPath, str]]:
    """benchmarks/darts_methods.py: per method the means over seeds (null where not measured: no table for DARTS's
    own cell), the table accuracy by epoch, per seed the final cell's figures (from-scratch: a list of repeats), and
    each remedy minus plain DARTS (`vs_darts`, in points: mean and standard error; wins, ties and n are counts)."""
    m = ("methods", "*")
    return [(m + ("mean_final_table_test?",), "acc"), (m + ("mean_scratch_valid?",), "acc"),
            (m + ("mean_scratch_test?",), "acc"), (m + ("mean_table_test_by_epoch?", "*"), "acc"),
            (m + ("per_seed", "*", "final_table_test?"), "acc"), (m + ("per_seed", "*", "scratch_valid?", "*"), "acc"),
            (m + ("per_seed", "*", "scratch_test?", "*"), "acc"),
            (("vs_darts?", "*", "*", "mean"), "diff"), (("vs_darts?", "*", "*", "se"), "spread")]


MAP_KEYS = ("valid_map?", "test_map?", "valid_ap50?", "test_ap50?")


def _detection(figures: dict) -> list[tuple[KeyPath, str]]:
    """`experiments.detection_search`: mAP and AP50 of the default (mean over seeds, and per seed) and of every
    configuration a method's per-seed summary lists (its front, those dominating the default, its two picks, which
    are null where the front has none)."""
    records = [("default",), ("default", "per_seed?", "*"), ("default_per_seed", "*")]
    for part in ("front", "dominating_default"):
        records.append(("methods", "*", "per_seed", "*", part, "*"))
    for part in ("best_within_default_flops?", "cheapest_at_default_map?"):
        records.append(("methods", "*", "per_seed", "*", part))
    return [(r + (k,), "acc") for r in records for k in MAP_KEYS]


def _macro_front(figures: dict) -> list[tuple[KeyPath, str]]:
    """benchmarks/macro_front.py: the known front's points and reference point (reported accuracy), and its
    hypervolume (accuracy x MFLOPs). The methods' hypervolume ratios have no unit."""
    return [(("known_front", "reference_point", "acc"), "acc"), (("known_front", "points", "*", "acc"), "acc"),
            (("known_front", "hypervolume_reported"), "area")]


SPEEDUPS = {
    "weight_sharing": [(("standalone_valid?", "*"), "acc"), (("inherited_valid?", "*"), "acc")],
    "pruning": [(("dense_valid_mean",), "acc"), (("pruned_valid_mean",), "acc"), (("valid_change_mean",), "diff"),
                (("valid_change_worst",), "diff"), (("dense_valid?", "*"), "acc"), (("pruned_valid?", "*"), "acc")],
    "early_stopping": [(("winner_full_valid",), "acc"), (("best_full_valid",), "acc"), (("full_valid?", "*"), "acc"),
                       (("sh_score?", "*"), "acc")],
    "incremental": [(("parent_valid_mean",), "acc"), (("grown_valid_mean",), "acc"), (("scratch_valid_mean",), "acc"),
                    (("grown_curve_valid?", "*"), "acc"), (("scratch_curve_valid?", "*"), "acc")],
}


def _speedups(figures: dict) -> list[tuple[KeyPath, str]]:
    """`experiments.speedups`: by `speedup` (magnitude and structured pruning write the same accuracy keys)."""
    return SPEEDUPS[figures["speedup"]]


def _population_training(figures: dict) -> list[tuple[KeyPath, str]]:
    """benchmarks/population_training.py: the same-work check's validation accuracy on both sides, per execution."""
    return [(("check", "*", "valid_acc_engine"), "acc"), (("check", "*", "valid_acc_torch"), "acc")]


def _none(figures: dict) -> list[tuple[KeyPath, str]]:
    return []


# The command's entry point (`python -m MODULE` or `python SCRIPT`) -> the paths to convert.
KINDS = {
    "experiments.nb201": _nb201,
    "benchmarks/nb201_reinforce_lr.py": _reinforce_lr,
    "experiments.nas_search": _nas_search,
    "benchmarks/search_vs_random.py": _vs_random,
    "benchmarks/metaqnn_vs_random.py": _vs_random,
    "benchmarks/darts_methods.py": _darts,
    "experiments.detection_search": _detection,
    "benchmarks/macro_front.py": _macro_front,
    "experiments.speedups": _speedups,
    "benchmarks/population_training.py": _population_training,
    # no accuracy in percent: fractions already (GANs, multi-task learning, NEAT), or none at all
    **{k: _none for k in ("experiments.cyclegan", "experiments.stylegan", "experiments.mtl", "experiments.neat",
                          "benchmarks/darts_speed.py", "benchmarks/detector_speed.py",
                          "benchmarks/engine_breakdown.py", "benchmarks/population_memory.py",
                          "benchmarks/neat_rules_ablation.py", "benchmarks/neat_vs_neat_python.py")},
}

RANGES = {"acc": (0.0, 100.0), "spread": (0.0, 100.0), "diff": (-100.0, 100.0), "area": (0.0, math.inf)}
CHANGED_ON = "2026-12-08"  # written from this date on: fractions (those of 2026-12-07 are judged by their numbers)


def entry_point(command: str) -> str:
    words = command.split()
    return words[2] if len(words) > 2 and words[1] == "-m" else words[1]


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _convert_leaf(value: Any, kind: str, where: str, seen: list[float]) -> tuple[Any, int]:
    """value / 100 (a number, or each number of a list); None and NaN kept. Returns (new value, numbers changed);
    appends each accuracy it divides to `seen`."""
    if isinstance(value, list):
        out = [_convert_leaf(v, kind, f"{where}[{i}]", seen) for i, v in enumerate(value)]
        return [v for v, _ in out], sum(n for _, n in out)
    if value is None:
        return None, 0
    if not _number(value):
        raise ValueError(f"{where}: got {value!r}; expected a number, null or a list of them")
    if math.isnan(value):
        return value, 0
    lo, hi = RANGES[kind]
    if not lo <= value <= hi:
        raise ValueError(f"{where}: got {value!r}, outside [{lo}, {hi}] for {kind} in percent")
    if kind == "acc":
        seen.append(value)
    return value / 100, 1


def _walk(node: Any, path: KeyPath, kind: str, where: str, seen: list[float]) -> int:
    """Converts, in place, what `path` names under `node`; returns how many numbers changed."""
    key, rest = path[0], path[1:]
    optional, key = key.endswith("?"), key.rstrip("?")
    if key == "*":
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            raise ValueError(f"{where}: got {type(node).__name__}; expected a dict or a list for '*'")
    else:
        if not isinstance(node, dict):
            raise ValueError(f"{where}: got {type(node).__name__}; expected a dict with {key!r}")
        if key not in node or node[key] is None:
            if optional or (key in node and not rest):  # an absent optional part, or a null leaf (NaN)
                return 0
            raise ValueError(f"{where}.{key}: missing")
        items = [(key, node[key])]
    changed = 0
    for k, child in items:
        here = f"{where}[{k}]" if isinstance(k, int) else f"{where}.{k}"
        if rest:
            if child is None and (key == "*"):
                continue
            changed += _walk(child, rest, kind, here, seen)
        else:
            node[k], n = _convert_leaf(child, kind, here, seen)
            changed += n
    return changed


def migrate(path: Path) -> str:
    """Converts one file in place; returns what was done, in words."""
    text = path.read_text()
    doc = json.loads(text)
    if "units" in doc:
        return "skipped: already has `units`"
    command = doc.get("command")
    if not isinstance(command, str) or not isinstance(doc.get("figures"), dict):
        raise ValueError("not a results file (no `command` or `figures`)")
    date = str((doc.get("provenance") or {}).get("date") or "")
    if date >= CHANGED_ON:
        return f"skipped: written on {date[:10]}, after the change (the commands write fractions)"
    kind = entry_point(command)
    if kind not in KINDS:
        raise ValueError(f"written by {kind!r}, which this script does not know (known: {', '.join(sorted(KINDS))})")
    paths = KINDS[kind](doc["figures"])
    if not paths:
        return f"left as it is: {kind} writes no accuracy in percent"
    seen: list[float] = []
    changed = sum(_walk(doc["figures"], p, k, "figures", seen) for p, k in paths)
    if not changed:
        return f"left as it is: none of {kind}'s accuracies in this file"
    if seen and max(seen) <= 1.0:
        raise ValueError(f"every accuracy is at most 1 (the largest {max(seen)!r}): fractions already? not converted; "
                         "add the `units` field by hand if so")
    out = {}
    for k, v in doc.items():
        out[k] = v
        if k == "command":
            out["units"] = UNITS
    path.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    return f"converted {changed} numbers ({kind})"


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(Path("results").glob("*.json"))
    if not paths:
        print("no results/*.json here: run from the repository root or name the files", file=sys.stderr)
        return 1
    failed = 0
    for p in paths:
        try:
            print(f"{p}: {migrate(p)}")
        except (ValueError, OSError, json.JSONDecodeError) as err:
            print(f"{p}: error: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
