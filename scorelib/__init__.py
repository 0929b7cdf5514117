"""scorelib: the shared helpers of the score-matching course.

Modules by concept: ``data``, ``nets``, ``losses``, ``samplers``, ``train``, ``benchmark``,
``metrics``, ``plotting``, ``widgets``. Import as ``import scorelib as sl``.
"""

from scorelib import benchmark, data, losses, metrics, nets, plotting, samplers, train, widgets

__all__ = ["benchmark", "data", "losses", "metrics", "nets", "plotting", "samplers", "train", "widgets"]
__version__ = "0.1.0"
