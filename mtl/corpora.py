"""Corpora for multi-task classification, each with one label array per task.

* VADER (Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social Media
  Text", ICWSM 2014): the paper's 23,703 human-rated sentences from four domains, read from the
  `vaderSentiment==3.3.2` sdist on PyPI (`additional_resources/hutto_ICWSM_2014.tar.gz`) and cached as one
  TSV. Every sentence has two labels: its domain (task `topic`) and its mean rating in [-4, 4] cut into
  negative / neutral / positive (task `sentiment`); both are imbalanced.
* User tables (JSONL / CSV / TSV) and prepared TFDS text datasets (ag_news_subset, imdb_reviews, ...),
  each as a one-task corpus. TFDS data is never downloaded (see `jaxnas.data.tfds_source`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import posixpath
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxnas.common.errors import ConfigError, check, check_choice, check_positive
from jaxnas.common.locks import file_lock
from jaxnas.data import tfds_source
from jaxnas.data.labels import MAX_CLASSES, check_class_count, index_labels
from mtl.data import Corpus, TextTask

TEXT_DIR_ENV = "JAXNAS_TEXT_DIR"
SDIST_ENV = "JAXNAS_VADER_SDIST"
DEFAULT_TEXT_DIR = os.path.join("~", ".cache", "jaxnas", "text")
VADER_TSV = "vader_icwsm2014.tsv"
VADER_REQUIREMENT = "vaderSentiment==3.3.2"
PIP_TIMEOUT_S = 120
# Ground-truth files of the sdist -> domain, in the class order of the `topic` task. All four are UTF-8
# with CRLF line ends (amazon and nyt are plain ASCII; movie and tweets hold some accented letters).
VADER_FILES = {
    "movieReviewSnippets_GroundTruth.txt": "movie_reviews",
    "nytEditorialSnippets_GroundTruth.txt": "nyt_editorials",
    "tweets_GroundTruth.txt": "tweets",
    "amazonReviewSnippets_GroundTruth.txt": "amazon_reviews",
}
VADER_DOMAINS = tuple(VADER_FILES.values())
SENTIMENT_CLASSES = ("negative", "neutral", "positive")
TSV_HEADER = ("domain", "id", "rating", "text")
# Text and label features of TFDS text datasets, so that users can give just the name.
TFDS_TEXT_DEFAULTS = {"ag_news_subset": ("description", "label"), "imdb_reviews": ("text", "label")}
_CHUNK = 4096


# ----------------------------------------------------------------------------------------------- VADER
def resolve_text_dir(cache_dir: str | None = None) -> str:
    """The text cache folder: `cache_dir`, else `$JAXNAS_TEXT_DIR`, else `~/.cache/jaxnas/text`."""
    chosen = cache_dir or os.environ.get(TEXT_DIR_ENV) or DEFAULT_TEXT_DIR
    return os.path.abspath(os.path.expanduser(os.fspath(chosen)))


def _ground_truth(source: str | io.BytesIO) -> dict[str, bytes]:
    """The `*_GroundTruth.txt` files in a .tar(.gz) or .zip, looking inside a nested hutto_ICWSM_2014.tar.gz."""
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            members = {name: archive.read(name) for name in archive.namelist()
                       if posixpath.basename(name) in (*VADER_FILES, "hutto_ICWSM_2014.tar.gz")}
    else:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        with tarfile.open(**{"fileobj" if isinstance(source, io.BytesIO) else "name": source}) as archive:
            members = {m.name: archive.extractfile(m).read() for m in archive
                       if m.isfile() and posixpath.basename(m.name) in (*VADER_FILES, "hutto_ICWSM_2014.tar.gz")}
    found: dict[str, bytes] = {}
    for name, raw in members.items():
        base = posixpath.basename(name)
        found.update(_ground_truth(io.BytesIO(raw)) if base.endswith(".tar.gz") else {base: raw})
    return found


def _vader_rows(sdist_path: str) -> list[list[str]]:
    """[domain, id, rating, text] rows of the four ground-truth files, domains in `VADER_DOMAINS` order."""
    try:
        files = _ground_truth(sdist_path)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as err:
        raise ConfigError("sdist_path", f"cannot read {sdist_path!r} as a .tar.gz or .zip ({err})") from err
    missing = sorted(set(VADER_FILES) - set(files))
    check(not missing, "sdist_path", f"{sdist_path!r} lacks {missing}; expected the {VADER_REQUIREMENT} sdist "
          "(with additional_resources/hutto_ICWSM_2014.tar.gz) or hutto_ICWSM_2014.tar.gz itself")
    rows = []
    for file_name, domain in VADER_FILES.items():
        try:
            text = files[file_name].decode("utf-8")
        except UnicodeDecodeError:  # not so in 3.3.2; cp1252 is the usual encoding of older Windows text
            text = files[file_name].decode("cp1252", errors="replace")
        # Split on line ends only: str.splitlines would also split on rare separators inside a sentence.
        for n, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
            parts = line.split("\t", 2)
            if line.strip():
                ok = len(parts) == 3 and re.fullmatch(r"[+-]?\d+(\.\d*)?", parts[1].strip()) is not None
                check(ok, "sdist_path", f"{file_name} line {n}: expected 'id<TAB>rating<TAB>text', got {line[:80]!r}")
                rows.append([domain, parts[0].strip(), parts[1].strip(), parts[2].rstrip("\r")])
    return rows


def _pip_download(folder: str) -> str:
    """Downloads the vaderSentiment sdist into `folder` with pip; failures raise `ConfigError("data")`."""
    hint = (f"pass sdist_path= (or set ${SDIST_ENV}) to a {VADER_REQUIREMENT} sdist fetched elsewhere with "
            f"'pip download --no-binary :all: --no-deps {VADER_REQUIREMENT}', or put a prepared {VADER_TSV} "
            f"in the cache folder (cache_dir= or ${TEXT_DIR_ENV})")
    cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--quiet",
           "--disable-pip-version-check", "--retries", "1", "--timeout", "15", VADER_REQUIREMENT, "-d", folder]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError("data", f"could not run pip to fetch the VADER data ({err}); {hint}") from err
    sdists = [f for f in os.listdir(folder) if f.lower().startswith("vadersentiment")]
    if proc.returncode != 0 or not sdists:
        said = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:] if line.strip())
        raise ConfigError("data", f"'pip download {VADER_REQUIREMENT}' failed (offline? pip said: {said}); {hint}")
    return os.path.join(folder, sdists[0])


def fetch_vader(cache_dir: str | None = None, *, sdist_path: str | None = None) -> str:
    """Returns the path of the cached VADER TSV (columns `TSV_HEADER`), building it on first use.

    Args:
      cache_dir: folder of the cache (default `$JAXNAS_TEXT_DIR`, else `~/.cache/jaxnas/text`).
      sdist_path: a local vaderSentiment sdist (.tar.gz / .zip), or hutto_ICWSM_2014.tar.gz, to read instead
        of running `pip download` (default `$JAXNAS_VADER_SDIST`).

    Safe with concurrent callers: the TSV is built under a file lock and moved into place atomically.
    """
    folder = resolve_text_dir(cache_dir)
    target = os.path.join(folder, VADER_TSV)
    if os.path.isfile(target):
        return target
    sdist_path = sdist_path or os.environ.get(SDIST_ENV) or None
    check(sdist_path is None or os.path.isfile(sdist_path), "sdist_path", f"file not found: {sdist_path!r}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ConfigError("cache_dir", f"cannot create {folder!r} ({err}); pass a writable cache_dir") from err
    with file_lock(os.path.join(folder, ".vader.lock")):
        if os.path.isfile(target):  # another process built it while we waited
            return target
        if sdist_path is None:
            with tempfile.TemporaryDirectory() as tmp:
                rows = _vader_rows(_pip_download(tmp))
        else:
            rows = _vader_rows(sdist_path)
        partial = f"{target}.{os.getpid()}.partial"
        try:
            with open(partial, "w", encoding="utf-8", newline="") as out:
                csv.writer(out, delimiter="\t", lineterminator="\n").writerows([TSV_HEADER, *rows])
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return target


def sentiment_labels(ratings: np.ndarray, neutral_low: float = -0.5, neutral_high: float = 0.5) -> np.ndarray:
    """(N,) int32 labels: 0 negative if rating <= neutral_low; else 2 positive if rating >= neutral_high;
    else 1 neutral (neutral_low < rating < neutral_high). The defaults make neutral abs(rating) < 0.5,
    DATA.md's convention (9,181 / 4,244 / 10,278). If low == high nothing is neutral and a tie is negative."""
    r = np.asarray(ratings, dtype=np.float64)
    return np.where(r <= neutral_low, 0, np.where(r >= neutral_high, 2, 1)).astype(np.int32)


def load_vader(path: str | None = None, cache_dir: str | None = None, neutral_low: float = -0.5,
               neutral_high: float = 0.5, *, sdist_path: str | None = None) -> Corpus:
    """The 23,703 VADER sentences with tasks `topic` (`VADER_DOMAINS`) and `sentiment` (`SENTIMENT_CLASSES`).

    Args:
      path: a VADER TSV; default `fetch_vader(cache_dir, sdist_path=sdist_path)`.
      cache_dir, sdist_path: see `fetch_vader`.
      neutral_low, neutral_high: sentiment thresholds (see `sentiment_labels`); need low <= high.
    """
    for name, value in (("neutral_low", neutral_low), ("neutral_high", neutral_high)):
        check(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), name,
              f"got {value!r}; allowed: a finite number (ratings lie in [-4, 4])")
    check(neutral_low <= neutral_high, "neutral_low", f"got {neutral_low} > neutral_high={neutral_high}; need <=")
    path = path or fetch_vader(cache_dir, sdist_path=sdist_path)
    check(os.path.isfile(path), "path", f"file not found: {path!r}; expected a TSV with columns {TSV_HEADER}")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    check(bool(rows) and tuple(rows[0]) == TSV_HEADER, "path", f"{path!r} must start with the header {TSV_HEADER}")
    try:
        domains = np.array([VADER_DOMAINS.index(r[0]) for r in rows[1:]], np.int32)
        ratings = np.array([float(r[2]) for r in rows[1:]])
    except (ValueError, IndexError) as err:
        raise ConfigError("path", f"{path!r} has a bad row ({err}); domains must be in {VADER_DOMAINS}") from err
    return Corpus(np.array([r[3] for r in rows[1:]], dtype=object),
                  {"topic": domains, "sentiment": sentiment_labels(ratings, neutral_low, neutral_high)},
                  (TextTask("topic", VADER_DOMAINS), TextTask("sentiment", SENTIMENT_CLASSES)))


# ------------------------------------------------------------------------------------ tables and TFDS
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def _as_number(value: Any) -> int | float | None:
    """A label as an int (int, integral float, or the text of one), a float with a fraction (or NaN / inf), or
    None when it is not a number (a class name, or a bool / list / object)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = float(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else value
    return None


def _encode_labels(raw: list[Any], class_names: Sequence[str] | None, field: str, names_field: str,
                   where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Label indices and class names; see `load_table_task` for the rules. `where` names the file and column."""
    nums = [_as_number(v) for v in raw]
    if class_names is None:
        named = [isinstance(v, str) and n is None for v, n in zip(raw, nums)]
        if any(named) and not all(named):
            row = named.index(False)
            example = raw[named.index(True)]
            raise ConfigError(field, f"{where}, row {row + 1}: label {raw[row]!r} is not a class name like the other "
                              f"labels (e.g. {example!r}); use all integers or all names, or class_names")
        if not any(named):  # integers: the classes are the values present, in increasing order
            for row, (v, n) in enumerate(zip(raw, nums), 1):
                check(isinstance(n, int), field, f"{where}, row {row}: label {v!r} is not an integer; labels must be "
                      "integers >= 0 or class names")
                check(0 <= n < 2**62, field, f"{where}, row {row}: label {v!r} is not an integer >= 0 (-1 means "
                      "unlabelled); labels must be integers >= 0 or class names")
            check(len(set(nums)) >= 2, field, f"{where}: all labels are {nums[0]!r}; need >= 2 distinct classes")
            indices, values = index_labels(np.array(nums, np.int64), field, where)
            return indices, tuple(str(v) for v in values)
        class_names, names_field = sorted(set(raw)), field
        check_class_count(len(class_names), len(raw), field, where)
    names = tuple(str(c) for c in class_names)
    check(len(names) >= 2 and len(set(names)) == len(names), names_field, f"classes {names}: need >= 2 distinct")
    check(len(names) <= MAX_CLASSES, names_field, f"got {len(names):,} class names; allowed at most {MAX_CLASSES:,}")
    lookup = {n: i for i, n in enumerate(names)}
    out = np.empty(len(raw), np.int32)
    for row, (v, i) in enumerate(zip(raw, nums)):
        k = lookup.get(v) if isinstance(v, str) else None
        k = (i if isinstance(i, int) else None) if k is None else k
        check(k is not None and 0 <= k < len(names), field, f"{where}, row {row + 1}: label {v!r} is neither one of "
              f"{list(names)} nor an index in [0, {len(names) - 1}]")
        out[row] = k
    return out, names


def _read_records(path: str, field: str) -> list[dict[str, Any]]:
    """Rows of a .jsonl / .json (JSON lines, or one JSON array) / .csv / .tsv file as dicts."""
    ext = os.path.splitext(path)[1].lower()
    check_choice(field, ext, [".jsonl", ".json", ".csv", ".tsv"])
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            if ext in (".csv", ".tsv"):
                return list(csv.DictReader(handle, delimiter="," if ext == ".csv" else "\t"))
            content = handle.read()
        is_array = content.lstrip().startswith("[")
        records = json.loads(content) if is_array else [json.loads(s) for s in content.splitlines() if s.strip()]
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as err:
        raise ConfigError(field, f"cannot read {path!r} as UTF-8 {ext[1:]} ({err})") from err
    check(all(isinstance(r, dict) for r in records), field, f"{path!r}: every JSON record must be an object")
    return records


def load_table_task(path: str, *, task: str, text_column: str = "text", label_column: str = "label",
                    class_names: Sequence[str] | None = None, field: str = "path") -> Corpus:
    """A one-task corpus from a user's .jsonl / .json / .csv / .tsv file (format chosen by extension).

    Labels: with `class_names`, a string equal to a class name maps to its index; otherwise integers (JSON ints or
    digit strings) are indices and must be in range. Without `class_names`, all-integer labels (JSON ints,
    integral floats, or their text) give the classes present, in increasing order (labels {1, 2} give classes
    "1", "2"; see `jaxnas.data.labels`), and string labels their sorted unique values; a float with a fraction,
    a negative integer, or a mix of numbers and names is an error, as is a missing or empty label or more
    distinct labels than `jaxnas.data.labels.max_classes` allows. `TextTask.class_names` records each class's
    original label.

    Args:
      path: the file. task: the task name. text_column, label_column: the columns (JSON keys) to read.
      class_names: a fixed class order (optional).
      field: the config field of `path` for error messages; column errors name its siblings
        (`data.topic.path` -> `data.topic.label_column`).
    """
    prefix = field[: field.rfind(".") + 1]
    check(os.path.isfile(path), field, f"file not found: {path!r}; expected .jsonl, .json, .csv or .tsv")
    records = _read_records(path, field)
    check(bool(records), field, f"{path!r} has no rows")
    for column, name in ((text_column, "text_column"), (label_column, "label_column")):
        row = next((i for i, r in enumerate(records, 1) if r.get(column) in (None, "")), None)
        check(row is None, prefix + name, f"{path!r} row {row} has no {column!r} (columns: {sorted(records[0])})")
    texts = [r[text_column] for r in records]
    check(all(isinstance(t, str) for t in texts), prefix + "text_column", f"{text_column!r} values must be strings")
    labels, names = _encode_labels([r[label_column] for r in records], class_names, field, prefix + "class_names",
                                   f"{path!r}, column {label_column!r}")
    return Corpus(np.array(texts, dtype=object), {task: labels}, (TextTask(task, names),))


def load_tfds_task(name: str, *, task: str, split: str = "train", text_key: str | None = None,
                   label_key: str | None = None, data_dir: str | None = None,
                   max_examples: int | None = None, download: bool = False) -> Corpus:
    """A one-task corpus from a prepared TFDS catalogue text dataset, read without TensorFlow.

    Args:
      name: catalogue name (ag_news_subset, imdb_reviews, ...). An unprepared dataset raises
        `ConfigError("dataset")` at once, saying how to prepare it, unless `download` lets TFDS fetch it.
      task: the task name. split: a TFDS split. data_dir: see `tfds_source.catalogue_search_dirs`.
      text_key, label_key: features to read; default `TFDS_TEXT_DEFAULTS[name]`, else "text" / "label".
      max_examples: read only the first this many examples.
    Labels are the ClassLabel indices (imdb's `unsupervised` split has -1 = unlabelled).
    """
    check(isinstance(name, str) and tfds_source.in_catalogue(name), "dataset",
          f"{name!r} is not a TFDS catalogue name; e.g. {', '.join(TFDS_TEXT_DEFAULTS)}")
    default_text, default_label = TFDS_TEXT_DEFAULTS.get(re.split(r"[/:]", name)[0], ("text", "label"))
    text_key, label_key = text_key or default_text, label_key or default_label
    if max_examples is not None:
        check_positive("max_examples", max_examples, integer=True)
    builder = tfds_source.prepared_catalogue_builder(name, tfds_source.catalogue_search_dirs(data_dir), download)
    features = builder.info.features
    check_choice("split", split.split("[")[0], list(builder.info.splits))
    check_choice("text_key", text_key, list(features))
    check_choice("label_key", label_key, list(features))
    class_names = getattr(features[label_key], "names", None)
    check(bool(class_names), "label_key", f"{label_key!r} of {name!r} is not a ClassLabel")
    try:
        source = builder.as_data_source(split=split)
    except Exception as err:  # noqa: BLE001 - typically prepared as tfrecord, which needs TensorFlow
        raise ConfigError("dataset", f"cannot read {name!r} without TensorFlow ({err}). "
                          f"{tfds_source.prepare_hint(name, os.fspath(builder.data_dir_root))}") from err
    n = len(source) if max_examples is None else min(len(source), max_examples)
    texts, labels = np.empty(n, dtype=object), np.empty(n, np.int32)
    for start in range(0, n, _CHUNK):
        for i, ex in enumerate(source.__getitems__(list(range(start, min(start + _CHUNK, n)))), start):
            text = ex[text_key]
            texts[i], labels[i] = text.decode("utf-8") if isinstance(text, bytes) else str(text), int(ex[label_key])
    return Corpus(texts, {task: labels}, (TextTask(task, tuple(class_names)),))
