"""TensorFlow Datasets plumbing that works without TensorFlow and without a network.

Two jobs:

* The embedded sklearn digits are served through a local TFDS `GeneratorBasedBuilder`
  (`jaxnas_digits`, `file_format="array_record"`), prepared once into a cache folder and read back
  with `builder.as_data_source(...)`, the same path a prepared catalogue dataset takes.
* Catalogue datasets (`mnist`, `cifar10`, ...) are used when already prepared on disk. By default the
  lookup never downloads: offline, TFDS would retry for minutes before failing, so a missing dataset is
  reported at once with instructions. `download=True` (opt-in, for machines with internet) lets TFDS
  download and prepare it, as array_record, into the first search folder (`download_catalogue`).

`tensorflow_datasets` is imported lazily, so that importing `jaxnas.data` stays cheap.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from jaxnas.common.errors import ConfigError
from jaxnas.common.locks import file_lock

DATA_DIR_ENV = "JAXNAS_DATA_DIR"
DEFAULT_DATA_DIR = os.path.join("~", ".cache", "jaxnas", "tensorflow_datasets")
DIGITS_BUILDER_NAME = "jaxnas_digits"
DIGITS_VERSION = "1.0.0"
DIGITS_SCALE = 16.0  # sklearn digits hold integers 0..16

# `name`, `name/config`, optionally `:1.2.3` or `:1.2.*`. A namespace (`ns:name`) is refused: it may
# resolve to a remote registry.
_CATALOGUE_NAME = re.compile(r"^[a-z0-9_]+(/[A-Za-z0-9_.\-]+)?(:\d+\.\d+\.(\d+|\*))?$")
_CHUNK = 4096  # examples decoded and converted at a time, to bound memory on large datasets


def resolve_data_dir(data_dir: str | None) -> str:
    """Returns the cache folder: `data_dir`, else `$JAXNAS_DATA_DIR`, else `~/.cache/jaxnas/tensorflow_datasets`."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return os.path.abspath(os.path.expanduser(os.fspath(chosen)))


def catalogue_search_dirs(data_dir: str | None) -> list[str]:
    """Folders searched for a prepared catalogue dataset.

    An explicit `data_dir` or `$JAXNAS_DATA_DIR` is searched alone; otherwise the jaxnas cache and then
    TFDS's own default (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
    """
    first = resolve_data_dir(data_dir)
    if data_dir or os.environ.get(DATA_DIR_ENV):
        return [first]
    tfds_default = os.environ.get("TFDS_DATA_DIR") or os.path.join("~", "tensorflow_datasets")
    return list(dict.fromkeys([first, os.path.abspath(os.path.expanduser(tfds_default))]))


@functools.cache
def _digits_builder_class() -> type:
    """Defines the digits builder on first use (keeps the `tensorflow_datasets` import lazy)."""
    import tensorflow_datasets as tfds

    class JaxnasDigits(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """sklearn's 1,797 8x8 handwritten digits (UCI optdigits test set), one `train` split."""

        name = DIGITS_BUILDER_NAME
        VERSION = tfds.core.Version(DIGITS_VERSION)
        RELEASE_NOTES = {DIGITS_VERSION: "sklearn load_digits, pixels 0..16 as uint8, sklearn order in `index`."}

        def _info(self) -> Any:
            # Tensor, not Image: encoding an Image feature needs TensorFlow.
            features = tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=10),
                    "index": tfds.features.Scalar(dtype=np.int32),
                }
            )
            return tfds.core.DatasetInfo(
                builder=self,
                description="sklearn.datasets.load_digits: 8x8 grayscale digits, pixel values 0..16.",
                features=features,
                supervised_keys=("image", "label"),
                homepage="https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
            )

        def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
            del dl_manager  # nothing to download: the data ships with scikit-learn
            return {"train": self._generate_examples()}

        def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
            from sklearn.datasets import load_digits

            digits = load_digits()
            images = digits.images.astype(np.uint8)[..., None]
            for i, (image, label) in enumerate(zip(images, digits.target)):
                yield i, {"image": image, "label": int(label), "index": i}

    return JaxnasDigits


def digits_builder(data_dir: str) -> Any:
    """Returns the prepared `jaxnas_digits` builder in `data_dir`, preparing it once if needed.

    Safe when several processes call it together: preparation runs under a file lock, and TFDS writes
    into an `incomplete.*` folder that it renames into place only when complete. A prepared cache costs
    one file check.
    """
    cls = _digits_builder_class()
    info_file = os.path.join(data_dir, DIGITS_BUILDER_NAME, DIGITS_VERSION, "dataset_info.json")
    if not os.path.isfile(info_file):
        try:
            os.makedirs(data_dir, exist_ok=True)
            with file_lock(os.path.join(data_dir, f".{DIGITS_BUILDER_NAME}.lock")):
                builder = cls(data_dir=data_dir, file_format="array_record")
                if not builder.is_prepared():  # another process may have finished while we waited
                    with tempfile.TemporaryDirectory() as downloads:  # keep the cache free of empty folders
                        builder.download_and_prepare(download_dir=downloads)
        except OSError as err:
            # Either a race the lock could not prevent (a file system without flock): fine if the other
            # process finished; or a folder we cannot write.
            if not cls(data_dir=data_dir).is_prepared():
                raise ConfigError(
                    "data_dir",
                    f"cannot prepare the digits cache in {data_dir!r} ({err}); pass data_dir= or set "
                    f"${DATA_DIR_ENV} to a writable folder",
                ) from err
    return cls(data_dir=data_dir, file_format="array_record")


def read_split(
    source: Sequence[dict[str, Any]],
    image_key: str,
    label_key: str | None,
    scale: float,
    convert: Callable[[np.ndarray], np.ndarray],
    order_key: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reads a TFDS data source in batches of `__getitems__`, converting images chunk by chunk.

    Args:
      source: a data source (`len`, `__getitems__`) whose examples are dicts.
      image_key: key of the (H, W, C) image.
      label_key: key of the integer label; None gives all-zero labels (unlabeled images).
      scale: divisor that maps stored pixel values to [0, 1] (255 for uint8 images).
      convert: applied to each float32 chunk (n, H, W, C) in [0, 1]; returns the final images.
      order_key: if given, examples are returned sorted by this integer feature.

    Returns:
      `(images, labels)`: the concatenated converted images and int32 labels.
    """
    n = len(source)
    parts, labels, order = [], np.empty(n, np.int32), np.empty(n, np.int64)
    for start in range(0, n, _CHUNK):
        examples = source.__getitems__(list(range(start, min(start + _CHUNK, n))))
        raw = np.stack([np.asarray(ex[image_key]) for ex in examples])
        if raw.ndim == 3:
            raw = raw[..., None]
        parts.append(convert(raw.astype(np.float32) / np.float32(scale)))
        labels[start : start + len(examples)] = [int(ex[label_key]) if label_key else 0 for ex in examples]
        if order_key is not None:
            order[start : start + len(examples)] = [int(ex[order_key]) for ex in examples]
    images = np.concatenate(parts) if parts else np.empty((0,), np.float32)
    if order_key is not None:
        perm = np.argsort(order, kind="stable")
        images, labels = images[perm], labels[perm]
    return images, labels


def catalogue_names() -> list[str]:
    """Names of the TFDS catalogue builders known to this installation (no network access)."""
    import tensorflow_datasets as tfds

    return sorted(tfds.list_builders(with_community_datasets=False))


def in_catalogue(name: str) -> bool:
    """Whether `name` (`name`, `name/config`, `name:version`) refers to a TFDS catalogue builder."""
    return bool(_CATALOGUE_NAME.match(name)) and re.split(r"[/:]", name)[0] in catalogue_names()


LIST_CATALOGUE = "python -c \"import tensorflow_datasets as tfds; print(tfds.list_builders())\""


def close_names(name: str, local: Sequence[str] = (), n: int = 10) -> list[str]:
    """At most `n` names like `name` among `local` ones and the TFDS catalogue (difflib), best first."""
    return difflib.get_close_matches(name, [*local, *catalogue_names()], n=n, cutoff=0.6)


def unknown_name_hint(name: str, local: Sequence[str] = ()) -> str:
    """The end of an unknown-dataset message: up to ten close names and how to list them all (one line).

    Never the whole catalogue (about 250 names on one line hid the message itself).
    """
    close = close_names(str(name), local)
    near = f"did you mean {', '.join(close)}? " if close else ""
    return f"{near}List the TFDS catalogue with: {LIST_CATALOGUE}"


DOWNLOAD_HINT = ("on a machine with internet, download=True (the configs' download / data.download) lets TFDS fetch "
                 "and prepare it")


def download_catalogue(name: str, data_dir: str) -> Any:
    """Downloads and prepares catalogue dataset `name` into `data_dir` (array_record, read without TensorFlow)
    and returns its builder: the opt-in `download=True` of the loaders. Several processes on one machine
    prepare it once (a file lock). Any failure (no network, a dataset whose preparation needs TensorFlow or
    manual files) is a `ConfigError` naming `download`, with TFDS's reason."""
    import tensorflow_datasets as tfds

    try:
        os.makedirs(data_dir, exist_ok=True)
        with file_lock(os.path.join(data_dir, f".{re.split(r'[/:]', name)[0]}.lock")):
            builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
            if not builder.is_prepared():
                print(f"download=True: TFDS downloads and prepares {name!r} into {data_dir} ...", flush=True)
                builder.download_and_prepare()
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 (network, missing TensorFlow, manual downloads: TFDS raises many kinds)
        needs_tf = isinstance(err, ImportError) and "tensorflow" in str(err).lower()
        raise ConfigError("download", (
            f"TFDS could not download and prepare {name!r} into {data_dir} ({type(err).__name__}: {err})"
            + ("; preparing this dataset needs TensorFlow: pip install tensorflow" if needs_tf else ""))) from err
    return builder


def prepare_hint(name: str, data_dir: str) -> str:
    """How to get catalogue dataset `name` into `data_dir` (for error messages)."""
    return (
        f"jaxnas does not download by default (offline, TFDS would retry for minutes); {DOWNLOAD_HINT}. "
        f"Or, on a machine with internet, run: "
        f"python -c \"import tensorflow_datasets as tfds; tfds.data_source('{name}', data_dir='{data_dir}')\" "
        f"(this prepares the array_record files that are read without TensorFlow), then copy the folder "
        f"'{os.path.join(data_dir, re.split(r'[/:]', name)[0])}' to the same place on this machine, or pass "
        f"data_dir=/ set ${DATA_DIR_ENV} to where it is. Alternatives: name='digits' (embedded, offline) or "
        f"npz_path=FILE.npz with arrays 'images' (N,H,W) or (N,H,W,C) floats in [0, 1] and 'labels' (N,) ints."
    )


def prepared_catalogue_builder(name: str, search_dirs: Sequence[str], download: bool = False) -> Any:
    """Returns the builder of catalogue dataset `name` prepared in one of `search_dirs`.

    When none has it prepared: with `download`, `download_catalogue` into the first; else
    `ConfigError("dataset", ...)` without touching the network.
    """
    import tensorflow_datasets as tfds

    folder = re.split(r"[/:]", name)[0]
    for data_dir in search_dirs:
        if not os.path.isdir(os.path.join(data_dir, folder)):
            continue  # fast path: nothing there, no need to ask TFDS
        try:
            builder = tfds.builder(name, data_dir=data_dir)
        except (ValueError, KeyError) as err:  # e.g. an unknown config or version
            raise ConfigError("dataset", f"TFDS could not resolve {name!r}: {err}") from err
        if builder.is_prepared():
            return builder
    if download:
        return download_catalogue(name, search_dirs[0])
    raise ConfigError(
        "dataset",
        f"TFDS dataset {name!r} is not prepared in {', '.join(search_dirs)}. {prepare_hint(name, search_dirs[0])}",
    )
