"""JAX's persistent compilation cache for the course, on by default.

A notebook's run is about one third XLA compilation, and a learner re-runs notebooks many times. On
``import scorelib`` the compiled programs are stored in ``<user cache dir>/scorelib/jax/<cpu>``
(``~/.cache/scorelib`` on Linux, via platformdirs; one folder per CPU instruction set), every entry however small or
quick to compile, so a re-run in a fresh kernel loads them instead of compiling again. A cache hit returns the very
executable that was compiled, so results are bit-identical.

- ``SCORELIB_JAX_CACHE=0`` (or ``off``) turns it off; ``SCORELIB_JAX_CACHE=/some/dir`` puts it elsewhere.
- If you configured ``jax_compilation_cache_dir`` yourself, scorelib leaves it alone.
- Two processes sharing the cache (pytest-xdist's workers, two kernels) are safe. JAX writes an entry in place, so a
  process can read an entry another is still writing; JAX then compiles instead, as for any unreadable entry, and
  scorelib stays silent when a cache file changed in the last minute (a write in progress, not damage).
- The folder is kept under 2 GiB: at most once a day, ``import scorelib`` deletes the least recently used entries
  beyond that. (JAX's own size limit, ``jax_compilation_cache_max_size``, rescans the whole folder on every write:
  measured here, that added 3 s to a notebook's first run in an empty cache, and grows with the cache.)
- A cache folder that cannot be created or written, or an entry that cannot be read (a corrupt file), never stops a
  run: scorelib prints a one-line notice and JAX compiles as it would without the cache.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jax

__all__ = ["CACHE_MAX_BYTES", "cache_dir", "enable_compilation_cache"]

CACHE_MAX_BYTES = 2 * 1024**3
_PRUNE_EVERY_SECONDS = 24 * 3600
_WRITE_IN_PROGRESS_SECONDS = 60
_ENV = "SCORELIB_JAX_CACHE"
_JAX_CACHE_PROBLEM = "persistent compilation cache entry"
_state = {"dir": None, "noticed": False, "showwarning": None}


def _host_cpu() -> str:
    """A short name for this CPU's instruction set, so a cache folder shared between machines never hands one CPU
    code compiled for another's vector units (JAX's key has the XLA version and flags, not the host's features)."""
    features = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo") as f:  # Linux: the feature flags of the first core
            features += next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return f"{platform.machine() or 'cpu'}-{hashlib.sha256(features.encode()).hexdigest()[:10]}"


def cache_dir() -> Path | None:
    """The folder scorelib's compilation cache uses, or ``None`` when it is off."""
    return _state["dir"]


def _notice(sentence: str) -> None:
    if not _state["noticed"]:
        _state["noticed"] = True
        print(f"scorelib: {sentence}", file=sys.stderr)


def _recently_written(folder: Path) -> bool:
    now = time.time()
    try:
        return any(now - entry.stat().st_mtime < _WRITE_IN_PROGRESS_SECONDS for entry in folder.iterdir())
    except OSError:
        return False


def _prune(folder: Path) -> None:
    """Delete the least recently used entries beyond CACHE_MAX_BYTES, at most once a day (one scan of the folder)."""
    stamp = folder / ".last-pruned"
    try:
        if stamp.exists() and time.time() - stamp.stat().st_mtime < _PRUNE_EVERY_SECONDS:
            return
        stamp.touch()
        entries = sorted((p.stat().st_atime, p.stat().st_size, p) for p in folder.glob("*-cache"))
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= CACHE_MAX_BYTES:
                break
            path.unlink(missing_ok=True)
            total -= size
    except OSError:  # pruning is housekeeping: never a reason to fail
        pass


def _showwarning(message, category, filename, lineno, file=None, line=None):
    # JAX warns once per entry it cannot read or write (a corrupt file, a full disk); one line for all of them.
    if _JAX_CACHE_PROBLEM in str(message):
        if "reading" in str(message) and _recently_written(_state["dir"]):
            return  # most likely another process is writing that entry right now: JAX compiles, nothing is wrong
        verb = "written" if "writing" in str(message) else "read"
        _notice(f"an entry of the compilation cache in {_state['dir']} could not be {verb}; compiling instead "
                "(delete that folder to start the cache afresh).")
        return
    _state["showwarning"](message, category, filename, lineno, file, line)


def enable_compilation_cache() -> Path | None:
    """Turn on JAX's persistent compilation cache as the course uses it; returns the folder, or ``None`` if off."""
    setting = os.environ.get(_ENV, "").strip()
    if setting.lower() in {"0", "off", "false", "no"}:
        return None
    if jax.config.jax_compilation_cache_dir:  # the user's own choice wins
        return None
    if setting:
        folder = Path(setting).expanduser()
    else:
        import platformdirs

        folder = Path(platformdirs.user_cache_dir("scorelib")) / "jax" / _host_cpu()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as err:
        _notice(f"compilation cache off: cannot write to {folder} ({err.strerror or err}); compiling as usual. "
                f"Set {_ENV}=0 to silence this, or {_ENV}=<folder> to put the cache elsewhere.")
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    _prune(folder)
    if _state["showwarning"] is None:
        _state["showwarning"] = warnings.showwarning
        warnings.showwarning = _showwarning
    _state["dir"] = folder
    return folder
