"""The persistent compilation cache: shared safely, reused, and never an error when it cannot be used."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A small program: what is tested is the cache around it (a sampler run op by op would compile a dozen operations
# in each of the test's seven processes).
PROGRAM = """
import jax, jax.numpy as jnp, scorelib as sl
print(sl._cache.cache_dir())
x = jnp.linspace(-3.0, 3.0, 64).reshape(32, 2)
print(float(jax.jit(lambda x: jnp.sum(sl.data.Ring(2.0, 0.1).score(x) ** 2))(x)))
"""


def _run(cache, *, wait=True):
    env = {**os.environ, "SCORELIB_JAX_CACHE": str(cache), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc.communicate(timeout=120) + (proc.returncode,) if wait else proc


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*-cache")}


def test_two_writers_then_a_corrupt_cache(tmp_path):
    cache = tmp_path / "jax"
    writers = [_run(cache, wait=False) for _ in range(2)]  # two processes compile into one empty cache at once
    results = [p.communicate(timeout=120) + (p.returncode,) for p in writers]
    for _, err, code in results:
        assert code == 0 and "scorelib:" not in err, err
    assert results[0][0] == results[1][0] and results[0][0].splitlines()[0] == str(cache)
    entries = _entries(cache)
    assert entries, "nothing was cached"

    out_warm, err, code = _run(cache)  # warm: reuses every entry, compiles nothing new
    assert code == 0 and out_warm == results[0][0] and _entries(cache) == entries, err

    old = time.time() - 3600
    for path in cache.iterdir():  # damage every entry, an hour ago: compile instead, with one line of notice
        if path.name.endswith("-cache"):
            path.write_bytes(b"not an executable")
        os.utime(path, (old, old))
    out_corrupt, err, code = _run(cache)
    assert code == 0, err
    assert out_corrupt.splitlines()[1] == out_warm.splitlines()[1]
    notices = [line for line in err.splitlines() if line.strip()]
    assert len(notices) == 1 and "could not be read; compiling instead" in notices[0], err


@pytest.mark.parametrize("setting", ["unwritable", "0"])
def test_unwritable_or_switched_off(tmp_path, setting):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the cache folder should be")
    out, err, code = _run(blocker / "jax" if setting == "unwritable" else "0")
    assert code == 0 and out.splitlines()[0] == "None"
    notices = [line for line in err.splitlines() if line.strip()]
    if setting == "0":
        assert notices == []
    else:
        assert len(notices) == 1 and "cannot write to" in notices[0], err


def test_an_entry_being_written_is_not_reported(tmp_path):
    """Another process writing an entry while this one reads it (a fresh, truncated file) is not damage."""
    cache = tmp_path / "jax"
    assert _run(cache)[2] == 0
    for path in cache.glob("*-cache"):  # truncated just now, as an entry looks while it is being written
        path.write_bytes(path.read_bytes()[:10])
    out, err, code = _run(cache)
    assert code == 0 and "scorelib:" not in err, err


def test_prune_keeps_the_folder_under_its_cap(tmp_path, monkeypatch):
    from scorelib import _cache

    for i in range(5):
        path = tmp_path / f"entry{i}-cache"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))  # entry0 least recently used
    monkeypatch.setattr(_cache, "CACHE_MAX_BYTES", 250)
    _cache._prune(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*-cache")) == ["entry3-cache", "entry4-cache"]
    (tmp_path / "entry9-cache").write_bytes(b"x" * 1000)
    _cache._prune(tmp_path)  # pruned less than a day ago: left alone
    assert (tmp_path / "entry9-cache").exists()
