"""Test-wide setup: 8 fake CPU devices (so sharded paths run in every test), no persistent compilation cache,
and shared fixtures. Device flags must be set before JAX initialises its backend."""

import os

# LLVM at -O1 instead of XLA's default: on the 2-core CPU the weight sharing report compiled and ran in 54 s
# instead of 71 (its three programs compile 20 / 15 / 4 s instead of 32 / 20 / 3; running time unchanged, as
# HLO fusion still runs). Modules that also take `fast_compile` go further (level 0, no fusion).
TEST_XLA_FLAGS = "--xla_backend_optimization_level=1"
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 " + TEST_XLA_FLAGS)
os.environ.setdefault("MPLBACKEND", "Agg")
# No persistent compilation cache: in the CI run of 2026-12-06 a worker died of a segmentation fault inside
# jaxlib's executable serialisation (`put_executable_and_time` -> `executable.serialize()`, jax 0.10.2, CPU) while
# writing a cache entry, and pytest-xdist then hung replacing it until CI's time limit. Without the cache nothing is
# serialised; the suite's time was about the same (a clean run 17.5 min with the cache, the first half of one
# without it no slower), as the two workers compile different programs and rarely hit each other's entries.
os.environ.setdefault("JAX_ENABLE_COMPILATION_CACHE", "false")

import pytest  # noqa: E402

from jaxnas.problems.nb201_table import load_nb201_table, resolve_table_path, table_path_exists  # noqa: E402


@pytest.fixture(scope="session")
def nb201_table():
    """The NAS-Bench-201 table (../shared/data). Its absence fails loudly: CI always has it."""
    if not table_path_exists():
        pytest.fail("NAS-Bench-201 table not found; set JAXNAS_NB201_CSV or place ../shared next to the repo")
    return load_nb201_table()


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
