"""A compiled training loop for any score-matching loss.

The loop runs as ``lax.scan`` over chunks of steps, so there is one Python
call (and one device-to-host copy of the losses) per chunk rather than per
step. Minibatches are drawn inside the compiled loop, either as random rows of
a data array or from a sampling function, so no batch crosses from the host.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.std import tqdm

from scorelib._validate import check_callable, check_points, check_positive_int

__all__ = ["fit", "FitResult", "TrainingDiverged", "train_step"]


class TrainingDiverged(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite."""


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns.

    Attributes:
      params: the trained parameters.
      losses: ``(steps,)`` NumPy array, the training loss at every step.
      snapshots: ``[(step, params), ...]`` every ``snapshot_every`` steps starting
        with step 0, or an empty list when no snapshots were asked for.
      ema_params: with ``ema_decay``, the exponential moving average of the
        parameters over the steps; otherwise ``None``.
    """

    params: object
    losses: np.ndarray
    snapshots: list = field(default_factory=list)
    ema_params: object = None


def train_step(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """One optimisation step, ``(params, opt_state, batch, key) -> (params, opt_state, loss)``.

    The step :func:`fit` compiles inside its loop; ``scorelib.benchmark`` times
    the same function, so the measured cost is the cost a training run pays.
    """

    def step(params, opt_state, batch, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def _batch_sampler(data, batch_size: int) -> tuple[Callable, tuple]:
    """Return ``(draw, args)`` with ``draw(key, *args) -> (batch_size, d)``."""
    if callable(data):
        return (lambda key: data(key, batch_size)), ()
    check_points(data, "data")
    data = jnp.asarray(data)

    def draw(key, arr):
        return arr[jax.random.randint(key, (batch_size,), 0, arr.shape[0])]

    return draw, (data,)


def fit(
    loss_fn: Callable[[object, jax.Array, jax.Array], jax.Array],
    params,
    *,
    key: jax.Array,
    data,
    steps: int,
    batch_size: int,
    optimizer: optax.GradientTransformation,
    chunk_size: int = 500,
    progress: bool | None = None,
    snapshot_every: int | None = None,
    ema_decay: float | None = None,
) -> FitResult:
    """Minimise ``loss_fn`` with ``optimizer`` for ``steps`` steps.

    Each step draws a fresh minibatch and a fresh loss key: with a data array,
    ``batch_size`` rows sampled with replacement; with a callable,
    ``data(key, batch_size)``. The same ``key`` gives the same result.

    Args:
      loss_fn: ``(params, batch (b, d), key) -> scalar``.
      params: initial parameter pytree.
      key: a ``jax.random`` key.
      data: an ``(n, d)`` array, or a callable ``(key, batch_size) -> (batch_size, d)``.
      steps: number of optimisation steps.
      batch_size: points per step.
      optimizer: an optax transformation, e.g. ``optax.adam(1e-3)``.
      chunk_size: steps per compiled chunk (the loss is checked between chunks).
      progress: show a progress bar; ``None`` shows one only if training takes
        longer than two seconds.
      snapshot_every: if given, also return the parameters every this many
        steps (it must divide ``steps``), for animations of training.
      ema_decay: if given (in ``[0, 1)``), also keep ``ema = decay * ema + (1 - decay) * params``
        after every step, starting from the initial parameters (Song & Ermon 2020,
        technique 5: the average is a smoother, often better, model than the last iterate).

    Returns:
      A :class:`FitResult` with ``params``, ``losses`` (one per step),
      ``snapshots`` (empty unless ``snapshot_every`` is given) and ``ema_params``.

    Raises:
      TrainingDiverged: the loss became non-finite; the message names the step.
    """
    check_callable(loss_fn, "loss_fn")
    check_positive_int(steps, "steps")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(chunk_size, "chunk_size")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(f"optimizer must be an optax GradientTransformation; got {type(optimizer).__name__}")
    if snapshot_every is not None:
        check_positive_int(snapshot_every, "snapshot_every")
        if steps % snapshot_every:
            raise ValueError(f"snapshot_every ({snapshot_every}) must divide steps ({steps})")
        chunk_size = snapshot_every
    if ema_decay is not None and not (isinstance(ema_decay, (int, float)) and 0 <= ema_decay < 1):
        raise ValueError(f"ema_decay must be a number in [0, 1), e.g. 0.999; got {ema_decay!r}")
    use_ema = ema_decay is not None
    draw, data_args = _batch_sampler(data, batch_size)

    # Equal chunks: one compiled shape. Steps past `steps` in the last chunk are masked out.
    n_chunks = math.ceil(steps / chunk_size)
    chunk = math.ceil(steps / n_chunks)
    needs_mask = n_chunks * chunk != steps

    one_step = train_step(loss_fn, optimizer)

    @jax.jit
    def run_chunk(params, opt_state, ema, key, start, *data_args):
        def step(carry, i):
            params, opt_state, ema = carry
            key_batch, key_loss = jax.random.split(jax.random.fold_in(key, start + i))
            new_params, new_opt_state, loss = one_step(params, opt_state, draw(key_batch, *data_args), key_loss)
            new_ema = optax.incremental_update(new_params, ema, 1 - ema_decay) if use_ema else ema
            new_carry = (new_params, new_opt_state, new_ema)
            if needs_mask:  # only when the last chunk runs past `steps`
                active = start + i < steps
                new_carry = jax.tree.map(lambda new, old: jnp.where(active, new, old), new_carry, carry)
            return new_carry, loss

        (params, opt_state, ema), losses = jax.lax.scan(step, (params, opt_state, ema), jnp.arange(chunk))
        return params, opt_state, ema, losses

    opt_state = jax.jit(optimizer.init)(params)  # one compile instead of one per parameter shape
    ema = params if use_ema else None
    losses = np.empty(n_chunks * chunk, dtype=np.float32)
    snapshots = [(0, params)] if snapshot_every else []
    bar = tqdm(
        total=steps,
        unit="step",
        file=sys.stdout,
        disable=progress is False,
        delay=0.0 if progress else 2.0,
        mininterval=0.5,
        ncols=80,
    )
    try:
        for c in range(n_chunks):
            start = c * chunk
            new_params, new_opt_state, new_ema, chunk_losses = run_chunk(params, opt_state, ema, key, start,
                                                                         *data_args)
            chunk_losses = np.asarray(chunk_losses)
            bad = ~np.isfinite(chunk_losses[: max(0, steps - start)])
            if bad.any():
                where = start + int(np.argmax(bad))
                raise TrainingDiverged(
                    f"the training loss became {chunk_losses[where - start]} at step {where}. "
                    "Try a smaller learning rate, gradient clipping (optax.clip_by_global_norm), "
                    "or check the data and the score model for values that overflow."
                )
            params, opt_state, ema = new_params, new_opt_state, new_ema
            losses[start : start + chunk] = chunk_losses
            if snapshot_every:
                snapshots.append((min(start + chunk, steps), params))
            bar.update(min(chunk, steps - start))
    finally:
        bar.close()
    return FitResult(params=params, losses=losses[:steps], snapshots=snapshots, ema_params=ema)
