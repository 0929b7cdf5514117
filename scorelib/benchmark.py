"""Measure the per-step training cost of the score-matching losses against data dimension.

Exact ISM needs the trace of the ``d x d`` Jacobian of the score, i.e. ``d``
forward-mode products per batch. Each product costs about one forward pass, and
for an MLP ``d -> width -> width -> d`` a pass costs ``width^2 + 2 d width``
multiply-adds per point, so the step's cost grows like ``d (width + 2 d)``:
linearly while ``d << width``, approaching ``d^2`` beyond. Sliced score matching
replaces the trace by one random projection (one product), and denoising score
matching needs no derivative of the network at all. This module times one Adam
training step of each (:func:`scorelib.train.train_step`, the step ``fit`` runs),
compiled as a ``lax.scan`` over steps as ``fit`` does, so the numbers are the
steady-state cost a training run pays. Notebook 03 and ``benchmarks/run.py``
call it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import numpy as np
import optax

from scorelib import losses, nets, train
from scorelib._validate import check_positive_int

__all__ = ["LOSSES", "step_cost_vs_dim"]

LOSSES = {
    "ism": lambda score_fn, x, key: losses.ism_loss(score_fn, x),
    "ssm": lambda score_fn, x, key: losses.ssm_loss(score_fn, x, key, n_projections=1, variance_reduced=True),
    "dsm": lambda score_fn, x, key: losses.dsm_loss(score_fn, x, key, 0.1),
}


def _timed_steps(loss_name: str, dim: int, width: int, batch_size: int, n_steps: int, key: jax.Array):
    """Compile a scan of ``n_steps`` Adam steps; return (compile seconds, compiled function, arguments)."""
    loss = LOSSES[loss_name]
    key_init, key_x, key_run = jax.random.split(key, 3)
    params = nets.mlp_init(key_init, (dim, width, width, dim))
    x = jax.random.normal(key_x, (batch_size, dim))
    optimizer = optax.adam(1e-3)

    one_step = train.train_step(lambda p, batch, k: loss(lambda y: nets.mlp_apply(p, y), batch, k), optimizer)
    return _compiled_steps(one_step, x, params, optimizer, key_run, n_steps)


def _compiled_steps(one_step, x, params, optimizer, key: jax.Array, n_steps: int):
    """Compile a scan of ``n_steps`` of ``one_step`` (from :func:`scorelib.train.train_step`) on the fixed batch
    ``x``; return (compile seconds, compiled function, its arguments)."""

    @jax.jit
    def run(params, opt_state, key):
        def step(carry, k):
            p, s, value = one_step(*carry, x, k)
            return (p, s), value

        (params, opt_state), values = jax.lax.scan(step, (params, opt_state), jax.random.split(key, n_steps))
        return params, values

    args = (params, optimizer.init(params), key)
    start = time.perf_counter()
    compiled = run.lower(*args).compile()
    return time.perf_counter() - start, compiled, args


def step_cost_vs_dim(
    dims: Sequence[int] = (2, 8, 32, 64, 128),
    *,
    loss_names: Sequence[str] = ("ism", "ssm", "dsm"),
    width: int = 128,
    batch_size: int = 128,
    n_steps: int = 20,
    repeats: int = 3,
    key: jax.Array | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Per-step training time of each loss for MLPs ``d -> width -> width -> d``.

    Args:
      dims: data dimensions to measure.
      loss_names: keys of :data:`LOSSES`.
      width: hidden width, the same for every ``d``.
      batch_size: points per step.
      n_steps: steps per timed compiled run.
      repeats: timed runs per setting; the median is reported.
      key: a ``jax.random`` key (default ``jax.random.key(0)``).

    Returns:
      ``{loss: {"step_seconds": [...], "compile_seconds": [...]}}`` with one
      entry per dimension, in the order of ``dims``.
    """
    for d in dims:
        check_positive_int(d, "each dimension")
    unknown = set(loss_names) - set(LOSSES)
    if unknown:
        raise ValueError(f"unknown losses {sorted(unknown)}; choose from {sorted(LOSSES)}")
    check_positive_int(width, "width")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(n_steps, "n_steps")
    check_positive_int(repeats, "repeats")
    key = jax.random.key(0) if key is None else key
    results = {name: {"step_seconds": [], "compile_seconds": []} for name in loss_names}
    for d in dims:
        for name in loss_names:
            compile_seconds, run, args = _timed_steps(name, d, width, batch_size, n_steps, jax.random.fold_in(key, d))
            jax.block_until_ready(run(*args))  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                jax.block_until_ready(run(*args))
                times.append((time.perf_counter() - start) / n_steps)
            results[name]["step_seconds"].append(float(np.median(times)))
            results[name]["compile_seconds"].append(compile_seconds)
    return results
