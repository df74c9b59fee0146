"""Bad values in user data files are refused at load with one line naming the file, the row and the column
(issue 20): tabular benchmark cells, and class labels of `.npz` images and MTL corpora."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from gans import cyclegan_data
from jaxnas.common.errors import ConfigError
from jaxnas.data import labels, load_images
from jaxnas.problems import macro_table, nb201_table
from jaxnas.spaces import macro
from mtl import corpora

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
OPS = "334131"
NB201_HEADER = "index,arch_str,ops,valid_acc,test_acc,train_loss,valid_loss,train_time_s\n"
GOOD_ROW = {"index": "1", "arch_str": ARCH, "ops": OPS, "valid_acc": "90.77", "test_acc": "90.51",
            "train_loss": "0.0018", "valid_loss": "0.44", "train_time_s": "2169.64"}
MACRO_ENTRY = {"test_acc": [89.47, 88.95, 89.17], "mean_acc": 89.2, "std": 0.2, "params": 890666, "flops": 47327744}


def _one_line(err: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ------------------------------------------------------------------------------------- NAS-Bench-201 CSV
def _nb201_csv(tmp_path, **bad: str) -> str:
    """A CSV of two rows (a good one, then one with `bad` cells); the bad row is on line 3."""
    other = dict(GOOD_ROW, index="0", arch_str=ARCH.replace("avg_pool_3x3~1", "none~1"), ops="330131")
    rows = [other, dict(GOOD_ROW, **bad)]
    path = tmp_path / "t.csv"
    columns = NB201_HEADER.strip().split(",")
    path.write_text(NB201_HEADER + "".join(",".join(r[c] for c in columns) + "\n" for r in rows))
    nb201_table._read_csv.cache_clear()
    return str(path)


@pytest.mark.parametrize("column, value, allowed", [
    ("valid_acc", "1000", "got 1000.0; allowed [0, 100]"),
    ("test_acc", "-0.5", "got -0.5; allowed [0, 100]"),
    ("valid_acc", "nan", "got nan; allowed [0, 100]"),
    ("valid_acc", "inf", "got inf; allowed [0, 100]"),
    ("train_time_s", "-3", "got -3.0; allowed a finite number > 0"),
    ("train_time_s", "0", "got 0.0; allowed a finite number > 0"),
    ("train_time_s", "NaN", "got nan; allowed a finite number > 0"),
    ("valid_acc", "ninety", "got 'ninety'; allowed [0, 100]"),
    ("index", "1.5", "got 1.5; allowed an integer in [0, 15624]"),
    ("index", "x", "got 'x'; allowed an integer in [0, 15624]"),
])
def test_nb201_bad_cell_names_file_row_and_column(tmp_path, column, value, allowed):
    path = _nb201_csv(tmp_path, **{column: value})
    with pytest.raises(ConfigError) as err:
        nb201_table.load_nb201_table(path)
    assert err.value.field == "table_path"
    assert _one_line(err, path, f"column {column}", allowed) == (
        f"table_path: {path}: line 3 (arch {ARCH}), column {column}: {allowed}")


def test_nb201_bad_arch_and_short_row_name_the_line(tmp_path):
    path = _nb201_csv(tmp_path, arch_str="|conv~0|")
    with pytest.raises(ConfigError) as err:
        nb201_table.load_nb201_table(path)
    _one_line(err, "table_path: ", path, "line 3", "column arch_str")
    short = tmp_path / "short.csv"
    short.write_text(NB201_HEADER + f"0,{ARCH},{OPS},90.1\n")
    nb201_table._read_csv.cache_clear()
    with pytest.raises(ConfigError) as err:
        nb201_table.load_nb201_table(str(short))
    _one_line(err, "table_path: ", str(short), "line 2", "column test_acc: got None")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00" * 10)
    with pytest.raises(ConfigError) as err:
        nb201_table.load_nb201_table(str(binary))
    _one_line(err, "table_path: ", str(binary), "not a readable UTF-8 CSV")


def test_nb201_good_rows_pass_the_checks_and_fail_only_on_coverage(tmp_path):
    with pytest.raises(ConfigError) as err:
        nb201_table.load_nb201_table(_nb201_csv(tmp_path))
    _one_line(err, "table_path: ", "covers 2 of the 15625 cells")


# --------------------------------------------------------------------------------- NAS-Bench-Macro JSON
def _macro_json(tmp_path, text: str | None = None, **bad) -> str:
    path = tmp_path / "m.json"
    data = {"00000000": MACRO_ENTRY, "02012100": {**MACRO_ENTRY, **bad}}
    path.write_text(text if text is not None else json.dumps(data))
    macro_table._read_json.cache_clear()
    return str(path)


@pytest.mark.parametrize("bad, column, allowed", [
    ({"test_acc": [89.0, 1000, 88.0]}, "test_acc[1]", "got 1000.0; allowed [0, 100]"),
    ({"test_acc": [math.nan] * 3}, "test_acc[0]", "got nan; allowed [0, 100]"),
    ({"mean_acc": -1}, "mean_acc", "got -1.0; allowed [0, 100]"),
    ({"params": -5}, "params", "got -5.0; allowed a finite number >= 0"),
    ({"flops": "many"}, "flops", "got 'many'; allowed a finite number >= 0"),
    ({"flops": None}, "flops", "got None; allowed a finite number >= 0"),
    ({"params": True}, "params", "got True; allowed a finite number >= 0"),
    ({"flops": 10 ** 400}, "flops", "got inf; allowed a finite number >= 0"),
])
def test_macro_bad_value_names_file_entry_and_field(tmp_path, bad, column, allowed):
    path = _macro_json(tmp_path, **bad)
    with pytest.raises(ConfigError) as err:
        macro_table.load_macro_table(path)
    assert err.value.field == "macro.path"
    assert _one_line(err) == f"macro.path: {path}: entry '02012100', column {column}: {allowed}"


@pytest.mark.parametrize("text, fragment", [
    ('{"0000000x": {}}', "entry '0000000x': bad key"),
    ('{"00000000": [1, 2]}', "entry '00000000' lacks"),
    ('{"00000000": {"test_acc": 5, "mean_acc": 1, "params": 1, "flops": 1}}', "test_acc a list of 3"),
    ('{"00000000": {"test_acc": [1, 2], "mean_acc": 1, "params": 1, "flops": 1}}', "test_acc a list of 3"),
    ("[1, 2]", "expected one JSON object"),
    ("{not json", "not a readable JSON file"),
])
def test_macro_malformed_entries_are_one_line(tmp_path, text, fragment):
    path = _macro_json(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        macro_table.load_macro_table(path)
    _one_line(err, "macro.path: ", path, fragment)


# ------------------------------------------------------------------------------------------ shipped tables
@pytest.mark.skipif(not nb201_table.table_path_exists(), reason="NAS-Bench-201 CSV not found (../shared/data)")
def test_shipped_nb201_table_passes_the_checks():
    table = nb201_table.load_nb201_table()
    for a in (table.valid, table.test):
        assert bool(np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1)))  # the file's percent as fractions
    assert table.min_cost > 0 and table.best_index == 6111


@pytest.mark.skipif(not macro_table.table_path_exists(), reason="NAS-Bench-Macro JSON not found (../shared/data)")
def test_shipped_macro_table_passes_the_checks():
    table = macro_table.load_macro_table()
    assert bool(np.all((table.valid >= 0) & (table.valid <= 1)) and np.all(table.extras["flops"] > 0))
    assert abs(float(table.extras["mean_acc"].max()) - 0.93127) < 1e-5  # 93.127% in the file


# ---------------------------------------------------------------------------------- labels of .npz images
def _npz(tmp_path, labels, name="d.npz") -> str:
    labels = np.asarray(labels)
    path = tmp_path / name
    np.savez(path, images=np.random.default_rng(0).uniform(size=(len(labels), 4, 4)).astype(np.float32), labels=labels)
    return str(path)


def test_max_classes_rule():
    assert [labels.max_classes(n) for n in (4, 19, 20, 21, 400, 10 ** 6)] == [10, 10, 10, 10, 200, 10_000]


@pytest.mark.parametrize("raw, classes", [([1, 2], (1, 2)), ([0, 1_000_000], (0, 1_000_000)),
                                          ([7.0, 3.0], (3, 7)), ([0, 1, 2], (0, 1, 2))])
def test_npz_labels_map_to_the_classes_present(tmp_path, raw, classes):
    y = np.repeat(np.asarray(raw), 6)  # (6K,)
    ds = load_images(npz_path=_npz(tmp_path, y), size=None)
    assert ds.num_classes == len(classes) and ds.class_labels == classes
    for x, t in ((ds.train_x, ds.train_y), (ds.valid_x, ds.valid_y), (ds.test_x, ds.test_y)):
        assert t.dtype == np.int32 and set(t.tolist()) == set(range(len(classes)))  # every class in every split
    # Each image keeps its own label: class i is original label classes[i].
    images = np.load(_npz(tmp_path, y))["images"]
    lookup = {img.astype(np.float32).tobytes(): int(v) for img, v in zip(images, y)}
    for x, t in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y)):
        assert [lookup[img[..., 0].tobytes()] for img in x] == [classes[i] for i in t]


def test_digits_labels_are_the_identity(digits_8x8):
    assert digits_8x8.class_labels == tuple(range(10)) and digits_8x8.num_classes == 10


@pytest.mark.parametrize("raw, fragment", [
    (np.arange(40), "40 distinct labels among 40 examples; allowed at most 20 classes"),
    (np.arange(11) * 1000, "11 distinct labels among 11 examples; allowed at most 10 classes"),
    (np.array([0.0, 1.0, 1.5, 1.0]), "non-integer values (e.g. 1.5)"),
    (np.array([0.0, 1.0, np.nan, 1.0]), "non-integer values (e.g. nan)"),
    (np.array(["0", "1", "1", "0"]), "non-integer values (e.g. '0')"),
])
def test_npz_bad_labels_refused_in_one_line(tmp_path, raw, fragment):
    path = _npz(tmp_path, raw)
    with pytest.raises(ConfigError) as err:
        load_images(npz_path=path, size=None)
    assert err.value.field == "labels"
    _one_line(err, f"labels: {path!r}", fragment)


def test_cyclegan_npz_pair_labels_share_one_class_space(tmp_path):
    a = _npz(tmp_path, np.repeat([0, 5, 9], 5), "a.npz")
    b = _npz(tmp_path, np.repeat([5, 9], 5), "b.npz")
    data = cyclegan_data.npz_pair_domains(a, b, size=None, channels=None)
    assert data.class_labels == (0, 5, 9)
    assert set(np.concatenate([data.train_a_y, data.test_a_y]).tolist()) == {0, 1, 2}
    assert set(np.concatenate([data.train_b_y, data.test_b_y]).tolist()) == {1, 2}  # label 5 is class 1 in both


# ------------------------------------------------------------------------------- labels of MTL corpora
def _corpus_file(tmp_path, values, kind="jsonl") -> str:
    path = tmp_path / f"c.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps({"text": f"t{i}", "label": v}) + "\n" for i, v in enumerate(values)))
    else:
        path.write_text("text,label\n" + "".join(f"t{i},{v}\n" for i, v in enumerate(values)))
    return str(path)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
@pytest.mark.parametrize("raw, names, indices", [
    ([1, 2, 2, 1], ("1", "2"), [0, 1, 1, 0]),
    ([0, 1_000_000, 0, 1_000_000], ("0", "1000000"), [0, 1, 0, 1]),
    ([2.0, 10.0, 2.0], ("2", "10"), [0, 1, 0]),  # numeric order, not text order
])
def test_corpus_integer_labels_map_to_the_classes_present(tmp_path, kind, raw, names, indices):
    c = corpora.load_table_task(_corpus_file(tmp_path, raw, kind), task="t", field="data.corpora.t.path")
    assert c.task("t").class_names == names
    np.testing.assert_array_equal(c.labels["t"], indices)
    assert np.bincount(c.labels["t"]).min() > 0  # no empty class


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
@pytest.mark.parametrize("raw, fragment", [
    (list(range(40)), "40 distinct labels among 40 examples; allowed at most 20 classes"),
    ([f"w{i}" for i in range(12)], "12 distinct labels among 12 examples; allowed at most 10 classes"),
    ([0, 1, 1.5, 1], "row 3: label 1.5 is not an integer"),
    ([0, 1, -3, 1], "row 3: label -3 is not an integer >= 0"),
    ([0, 1, "pos", 1], "row 1: label 0 is not a class name like the other labels (e.g. 'pos')"),
])
def test_corpus_bad_labels_refused_in_one_line(tmp_path, kind, raw, fragment):
    path = _corpus_file(tmp_path, raw, kind)
    with pytest.raises(ConfigError) as err:
        corpora.load_table_task(path, task="t", field="data.corpora.t.path")
    assert err.value.field == "data.corpora.t.path"
    shown = fragment.replace("1.5", "'1.5'").replace("-3", "'-3'").replace("label 0 ", "label '0' ") \
        if kind == "csv" else fragment  # CSV cells are text
    _one_line(err, f"data.corpora.t.path: {path!r}, column 'label'", shown)


def test_corpus_json_only_label_types(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "a", "label": true}\n{"text": "b", "label": 1}\n{"text": "c", "label": 0}\n')
    with pytest.raises(ConfigError) as err:
        corpora.load_table_task(str(path), task="t", field="data.corpora.t.path")
    _one_line(err, "row 1: label True is not an integer")


def test_a_table_edited_in_place_is_read_again_in_the_same_process(tmp_path):
    """The loaders cache parsed tables per file; the key holds the file's mtime and size, so an edit is seen."""
    import shutil

    if not macro_table.table_path_exists():
        pytest.skip("NAS-Bench-Macro table not found")
    path = tmp_path / "macro.json"
    shutil.copy(macro_table.resolve_table_path(None), path)
    before = macro_table.load_macro_table(str(path))
    data = json.loads(path.read_text())
    key = next(iter(data))
    data[key]["test_acc"] = [1.0, 2.0, 3.0]
    path.write_text(json.dumps(data))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # even on a coarse clock
    after = macro_table.load_macro_table(str(path))
    code = int(macro.SPACE.encode(macro.from_string(key)))
    assert float(before.valid[code]) != pytest.approx(0.01) and float(after.valid[code]) == pytest.approx(0.01)  # 1%
    assert float(after.test[code]) == pytest.approx(0.025)  # the mean of the two runs not searched on (2% and 3%)
