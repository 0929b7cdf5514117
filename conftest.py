"""Keep JAX on the CPU for the tests and the notebooks nbval runs (no GPU warnings); start the longest files first."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

# pytest-xdist (`-n 2 --dist loadfile --no-loadscope-reorder` in pyproject.toml) hands out whole files in collection
# order. Started last, the browser test (about two minutes) kept one worker busy while the other sat idle for about
# a minute; started first, with the longest notebooks next, the two workers finish close together. The order is
# from the timings in benchmarks/RESULTS.md; a stale order costs time, never a result.
LONGEST_FIRST = [
    "tests/test_browser.py",
    "notebooks/06_digits_8x8.ipynb",
    "notebooks/03_swiss_roll_sliced.ipynb",
    "notebooks/07_score_sdes.ipynb",
    "notebooks/05_ncsn_annealed_langevin.ipynb",
    "notebooks/04_denoising_and_kde.ipynb",
    "notebooks/01_ism_1d_mixture.ipynb",
    "notebooks/02_ism_2d_ring.ipynb",
    "tests/test_cache.py",
    "tests/test_sde.py",
    "tests/test_digits_eval.py",
]


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order


def _share_the_cpus_between_workers():
    """Give each pytest-xdist worker its own share of the CPUs, inherited by the kernels and browsers it starts.

    The suite is CPU-bound on two cores. XLA runs each computation on a thread per core, so two workers running
    notebooks at once had four busy threads on two cores: on 2026-11-26 notebook 06's training took 75 s in the
    suite against 25 s alone, and the suite's processes used 500 s of CPU. With one core each (on a larger machine,
    an equal share each) the threads stop competing: the suite took 263 s instead of 292 s, and 249 s once the
    browser test (mostly waiting, tests/test_browser.py) was given back every core. Without xdist, or with fewer
    CPUs than workers, nothing changes.
    """
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not (worker and count and hasattr(os, "sched_setaffinity")):
        return
    cpus = sorted(os.sched_getaffinity(0))
    os.environ["SCORELIB_TEST_CPUS"] = ",".join(map(str, cpus))  # all of them, for tests/test_browser.py
    index, count = int(worker.removeprefix("gw")), int(count)
    if len(cpus) >= count:
        os.sched_setaffinity(0, cpus[index::count])


_share_the_cpus_between_workers()
