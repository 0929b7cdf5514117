"""scorelib: the shared helpers of the score-matching course.

Modules by concept: ``data``, ``nets``, ``losses``, ``samplers``, ``sde``, ``train``,
``metrics``, ``digits``, and, imported on first use (they pull in matplotlib, ipywidgets),
``plotting``, ``widgets`` and ``benchmark``. Import as ``import scorelib as sl``.
"""

import importlib

from scorelib import data, digits, losses, metrics, nets, samplers, sde, train

__all__ = [
    "benchmark",
    "data",
    "digits",
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

_LAZY = {"plotting", "widgets", "benchmark"}


def __getattr__(name):
    # PEP 562: `sl.plotting` imports matplotlib only when a notebook first draws, keeping scripts light.
    if name in _LAZY:
        module = importlib.import_module(f"scorelib.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'scorelib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY)
