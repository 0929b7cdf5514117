"""scorelib: the shared helpers of the score-matching course.

Modules by concept: ``data``, ``nets``, ``losses``, ``samplers``, ``sde``, ``train``,
``metrics``, ``digits``, and, imported on first use (they pull in matplotlib, ipywidgets),
``plotting``, ``widgets``, ``benchmark`` and ``exercises`` (the checks of the coding exercises).
Import as ``import scorelib as sl``. Importing it turns on JAX's persistent compilation cache
(``scorelib/_cache.py``; ``SCORELIB_JAX_CACHE=0`` turns it off).
"""

import importlib

from scorelib._cache import enable_compilation_cache

enable_compilation_cache()  # before anything compiles; see scorelib/_cache.py (SCORELIB_JAX_CACHE=0 turns it off)

from scorelib import data, digits, losses, metrics, nets, samplers, sde, train  # noqa: E402

__all__ = [
    "benchmark",
    "data",
    "digits",
    "exercises",
    "losses",
    "metrics",
    "nets",
    "plotting",
    "samplers",
    "sde",
    "train",
    "widgets",
]
__version__ = "0.1.0"

_LAZY = {"plotting", "widgets", "benchmark", "exercises"}


def __getattr__(name):
    # PEP 562: `sl.plotting` imports matplotlib only when a notebook first draws, keeping scripts light.
    if name in _LAZY:
        module = importlib.import_module(f"scorelib.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'scorelib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY)
