"""Test-wide setup: 8 fake CPU devices (so sharded paths run in every test), a persistent compilation
cache, compiled programs freed after each test file, and shared fixtures. Device flags must be set before JAX
initialises its backend."""

import os

# LLVM at -O1 instead of XLA's default: on the 2-core CPU the weight sharing report compiled and ran in 54 s
# instead of 71 (its three programs compile 20 / 15 / 4 s instead of 32 / 20 / 3; running time unchanged, as
# HLO fusion still runs). Modules that also take `fast_compile` go further (level 0, no fusion).
TEST_XLA_FLAGS = "--xla_backend_optimization_level=1"
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 " + TEST_XLA_FLAGS)
os.environ.setdefault("MPLBACKEND", "Agg")
_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache", "jax")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

from jaxnas.problems.nb201_table import load_nb201_table, resolve_table_path, table_path_exists  # noqa: E402


# Test files that take minutes, collected first (longest first, from a per-test profile of the whole suite on the
# 2-core CPU): the workers (`--dist loadfile --no-loadscope-reorder`, see the Makefile) take whole files in collection
# order, and a long file collected late ran alone at the end while the other worker sat idle (the DARTS files, the
# notebooks). The rest keep their order.
HEAVY_FIRST = (
    "test_darts_nasnet.py", "test_nas_search.py", "test_speedups.py", "test_dispatch.py", "test_experiment_darts.py",
    "test_experiment_stylegan.py", "test_neat.py", "test_notebook_neat.py", "test_metaqnn.py",
    "test_experiment_nb201.py", "test_stylegan_train.py", "test_experiment_mtl.py", "test_nasnet.py", "test_darts.py",
    "test_experiment_detection_search.py", "test_detection_search.py", "test_notebook_stylegan.py",
    "test_notebook_mtl.py", "test_notebook_cyclegan.py", "test_notebook_metaqnn.py", "test_notebook_nb201.py",
    "test_hierarchical.py", "test_network.py", "test_experiment_cyclegan.py", "test_qlearning.py", "test_search.py",
    "test_cyclegan_train.py", "test_experiment_neat.py", "test_strategies.py", "test_nasnet_supernet.py",
    "test_distributed.py", "test_packaging.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(rank)))  # stable within files


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """After each test file, JAX's caches of compiled programs are dropped. Every XLA:CPU executable keeps memory
    mappings for its code; one process running three heavy test files (stylegan, stylegan_train, speedups) grew to
    ~10,000 mappings (measured), and a worker runs half the suite, towards Linux's default limit of 65,530
    (`vm.max_map_count`), where mmap fails inside XLA and the process dies of a segmentation fault: seen twice late
    in a full run (CI of 2026-12-06 in `executable.serialize()` while writing a cache entry; a local run without the
    cache in `backend_compile_and_load` of test_stylegan_train), never when the same tests ran alone. With this
    fixture the same three files peaked at ~5,600 mappings and fell to ~1,600 between files."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


@pytest.fixture
def optimized_compile():
    """XLA's optimisations back on for one test of a `fast_compile` module (requested as an argument, it runs
    after the module's fixture): for the module's end-to-end run whose many steps cost more unfused than its
    compilation saves (measured: DARTS in the NASNet space end to end, 218 -> 175 s alone)."""
    import jax

    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="session")
def nb201_table():
    """The NAS-Bench-201 table (../shared/data). Its absence fails loudly: CI always has it."""
    if not table_path_exists():
        pytest.fail("NAS-Bench-201 table not found; set JAXNAS_NB201_CSV or place ../shared next to the repo")
    return load_nb201_table()


@pytest.fixture(scope="session")
def macro_json():
    """The raw NAS-Bench-Macro JSON (../shared/data), as a dict keyed by architecture; its absence fails loudly."""
    import json

    from jaxnas.problems.macro_table import resolve_table_path, table_path_exists as macro_exists

    if not macro_exists():
        pytest.fail("NAS-Bench-Macro JSON not found; set JAXNAS_MACRO_JSON or place ../shared next to the repo")
    with open(resolve_table_path()) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def nb201_csv_path():
    return resolve_table_path()



@pytest.fixture(scope="session")
def digits_8x8(tmp_path_factory):
    """The embedded digits at 8x8 (built once per test process through the local TFDS builder)."""
    from jaxnas.data import load_images

    return load_images("digits", size=8, data_dir=str(tmp_path_factory.mktemp("tfds")))


@pytest.fixture
def key_reuse_check():
    """Turns on JAX's PRNG key-reuse checker for one test (a reused key raises KeyReuseError)."""
    import jax

    previous = jax.config.jax_debug_key_reuse
    jax.config.update("jax_debug_key_reuse", True)
    yield
    jax.config.update("jax_debug_key_reuse", previous)


@pytest.fixture(scope="module")
def fast_compile():
    """For modules of exact checks and tiny runs, not speed: XLA's optimisations off (about half the compile
    time of a network's gradient; measured on the 2-core CPU: StyleGAN's 8-device test 276 -> 141 s, the
    growth test 111 -> 74 s). Not for tests that train for many steps: unfused code runs slower (the weight
    sharing report 292 -> 439 s). Use with `pytestmark = pytest.mark.usefixtures("fast_compile")`."""
    import jax

    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
