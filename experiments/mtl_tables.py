"""README's multi-task learning tables (registered in `experiments.readme_tables.TABLES`), rendered from the
summary that `python -m experiments.mtl ... --publish NAME` writes to results/NAME.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from experiments.table_format import fmt, markdown_table, sources_line


def _bold_best(column: Sequence[float], text: Sequence[str]) -> list[str]:
    """`text` with the cells whose value is the column's best (highest, as printed) in bold."""
    best = text[list(column).index(max(column))]
    return [f"**{t}**" if t == best and len(column) > 1 else t for t in text]


def _loss_label(loss: str, settings: dict[str, Any]) -> str:
    lc = settings["loss"]
    return {"ce": "ce (cross-entropy)", "weighted": "weighted (inverse frequency)",
            "class_balanced": f"class_balanced (beta {lc['beta']:g})",
            "focal": f"focal (gamma {lc['gamma']:g})"}.get(loss, loss)


def _tasks(figures: dict[str, Any]) -> list[str]:
    return list(next(iter(figures["losses"].values())))


def _one(results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (r,) = results.values()
    return r["figures"], r["settings"]


def losses(results: dict[str, dict[str, Any]]) -> str:
    """One row per loss: each task's macro-F1 (mean ± std over seeds), accuracy and its rarest class's F1."""
    f, s = _one(results)
    tasks = _tasks(f)
    names = list(f["losses"])
    header, columns = ["loss"], []
    for t in tasks:
        rare = f["losses"][names[0]][t]["minority_class"]
        header += [f"{t} macro-F1", f"{t} accuracy", f"{t}: F1 of `{rare}` (rarest)"]
        per = [f["losses"][n][t] for n in names]
        columns.append(_bold_best([p["macro_f1"] for p in per],
                                  [f"{fmt(p['macro_f1'])} ± {fmt(p['macro_f1_std'])}" for p in per]))
        columns.append(_bold_best([p["accuracy"] for p in per], [fmt(p["accuracy"]) for p in per]))
        columns.append(_bold_best([p["minority_f1"] for p in per], [fmt(p["minority_f1"]) for p in per]))
    rows = [[_loss_label(n, s), *(c[i] for c in columns)] for i, n in enumerate(names)]
    t = s["train"]
    caption = (f"Encoder {'frozen' if s['freeze'] == 'encoder' else 'freezing: ' + s['freeze']}, "
               f"{t['steps']:,} AdamW steps of {t['batch_size']}, {s['seeds']} seeds (test set, mean ± std over "
               f"seeds; bold: the best of each column):\n\n")
    return caption + markdown_table(header, rows) + sources_line(results)


def _shift(shift: dict[str, Any]) -> str:
    """The largest class-share change of one task's distribution, and the total variation."""
    before, after = shift["before"], shift["after"]
    i = max(range(len(before)), key=lambda k: abs(after[k] - before[k]))
    return (f"`{shift['classes'][i]}` {fmt(before[i], 1, pct=True)} -> {fmt(after[i], 1, pct=True)} "
            f"(total variation {fmt(shift['total_variation'])})")


def oversampling(results: dict[str, dict[str, Any]]) -> str:
    """Balancing one task by oversampling moves the other's distribution; CE trained on the resampled data."""
    f, _ = _one(results)
    tasks = _tasks(f)
    header = ["training data", "size", *(f"{t} distribution" for t in tasks), *(f"CE {t} macro-F1" for t in tasks)]
    ce = f["losses"].get("ce")
    rows = []
    if ce is not None:
        rows.append(["original (CE row above, mean over seeds)", "", *("" for _ in tasks),
                     *(fmt(ce[t]["macro_f1"]) for t in tasks)])
    for balanced, e in f["oversampling"].items():
        rows.append([f"oversampled to balance {balanced}", f"{e['size']:,}",
                     *("balanced" if t == balanced else _shift(e["shift"][t]) for t in tasks),
                     *(fmt(e["trained"][t]["macro_f1"]) for t in tasks)])
    return markdown_table(header, rows) + sources_line(results)


def freezing(results: dict[str, dict[str, Any]]) -> str:
    """One row per freezing strategy: trainable parameters, each task's macro-F1, seconds per step."""
    f, s = _one(results)
    tasks = _tasks(f)
    rows_in = f["freezing"]
    columns = [_bold_best([r[f"{t}_macro_f1"] for r in rows_in], [fmt(r[f"{t}_macro_f1"]) for r in rows_in])
               for t in tasks]
    rows = []
    for i, r in enumerate(rows_in):
        step = fmt(r["step_seconds"], 3) + (" (features computed once)" if r["strategy"] == "encoder" else "")
        rows.append([f"{r['strategy']}: {r['description']}", f"{r['trainable_params']:,}",
                     *(c[i] for c in columns), step])
    z = s["freezing"]
    caption = (f"{z['loss']} loss, {z['steps']} steps of {z['batch_size']} on {z['train_examples']:,} training "
               f"sentences, max length {z['max_length']}, seed {s['seed']}:\n\n")
    (r,) = results.values()
    load = r["provenance"]["device"].get("loadavg_1m")
    shared = load is not None and load > 1.5 * r["provenance"]["device"].get("cores", 1)
    timing = ("\ns/step: the median step of each run"
              + (f"; the machine was shared (1-minute load average {load:g} when the run ended), so these step times "
                 "are inflated by varying amounts: read them as orders of magnitude" if shared else "") + ".\n")
    return (caption + markdown_table(["strategy", "trainable parameters", *(f"{t} macro-F1" for t in tasks), "s/step"],
                                     rows) + timing + sources_line(results))


def sparsity(results: dict[str, dict[str, Any]]) -> str:
    """One row per L1 strength: how many encoder features each head reads, and what it costs."""
    f, s = _one(results)
    tasks = _tasks(f)
    rows = []
    for r in f["sparsity"]:
        total = r["shared"] + r["unused"] + sum(r[f"{t}_only"] for t in tasks)
        rows.append([f"{r['l1']:g}", f"{r['shared']} of {total}", *(str(r[f"{t}_only"]) for t in tasks),
                     str(r["unused"]), fmt(r["jaccard"], 2), *(fmt(r[f"{t}_macro_f1"]) for t in tasks)])
    header = ["L1 lambda", "features read by both heads", *(f"{t} head only" for t in tasks), "by neither",
              "Jaccard", *(f"{t} macro-F1" for t in tasks)]
    caption = (f"{s['sparsity']['loss']} loss, frozen encoder, an L1 proximal step on each head's first layer, "
               f"{s['train']['steps']:,} steps, seed {s['seed']}:\n\n")
    return caption + markdown_table(header, rows) + sources_line(results)
