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
