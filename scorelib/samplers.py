"""Langevin samplers, each one compiled loop (``lax.scan``) with no per-step Python.

The score function is a static argument of the compiled loop: calling a
sampler again with the *same* function object reuses the compiled code, while
a new ``lambda`` compiles afresh. Step sizes and temperatures are traced
arguments, so changing them does not recompile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp

from scorelib._validate import (
    broadcast_levels,
    check_callable,
    check_nonnegative,
    check_points,
    check_positive,
    check_positive_int,
    check_sigmas,
    is_traced,
)

__all__ = ["SamplerResult", "langevin", "annealed_langevin", "decaying_langevin"]


@dataclass(frozen=True)
class SamplerResult:
    """What every sampler returns.

    Attributes:
      samples: ``(n, d)`` final states.
      trajectory: ``(n_steps + 1, n, d)`` states starting with ``x0`` when the
        sampler was asked for it (``return_trajectory=True``), else ``None``.
    """

    samples: jax.Array
    trajectory: jax.Array | None = None


def langevin(
    score_fn: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    key: jax.Array,
    *,
    step_size: float,
    n_steps: int,
    temperature: float = 1.0,
    return_trajectory: bool = False,
):
    """Unadjusted Langevin dynamics ``x <- x + a s(x) + sqrt(2 a T) z``.

    With ``T = 1`` the chain targets the density whose score is ``s`` (as
    ``a -> 0`` and the number of steps grows); ``T = 0`` is plain gradient
    ascent on ``log p``, which collapses onto modes; ``0 < T < 1`` samples a
    sharpened density ``p^(1/T)``.

    Args:
      score_fn: ``(n, d) -> (n, d)``.
      x0: ``(n, d)`` starting points.
      key: a ``jax.random`` key.
      step_size: ``a > 0``.
      n_steps: number of updates.
      temperature: ``T >= 0``, scales the noise variance.
      return_trajectory: also return every state.

    Returns:
      A :class:`SamplerResult`; its ``trajectory`` is ``(n_steps + 1, n, d)``.
    """
    check_callable(score_fn, "score_fn")
    check_points(x0, "x0")
    check_positive(step_size, "step_size")
    check_positive_int(n_steps, "n_steps")
    check_nonnegative(temperature, "temperature (0 gives plain gradient ascent)")
    return SamplerResult(*_langevin(score_fn, jnp.asarray(x0), key, step_size, temperature, n_steps, return_trajectory))


@partial(jax.jit, static_argnames=("score_fn", "n_steps", "return_trajectory"))
def _langevin(score_fn, x0, key, step_size, temperature, n_steps, return_trajectory):
    noise_scale = jnp.sqrt(2.0 * step_size * temperature)

    def step(x, k):
        x = x + step_size * score_fn(x) + noise_scale * jax.random.normal(k, x.shape, x.dtype)
        return x, x if return_trajectory else None

    x, states = jax.lax.scan(step, x0, jax.random.split(key, n_steps))
    return x, (jnp.concatenate([x0[None], states]) if return_trajectory else None)


def annealed_langevin(
    score_fn: Callable[[jax.Array, jax.Array], jax.Array],
    x0: jax.Array,
    key: jax.Array,
    *,
    sigmas,
    eps: float,
    n_steps_each: int,
    denoise: bool = False,
    return_trajectory: bool = False,
):
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1), in this course's step convention.

    For each level ``sigma_i`` from largest to smallest, ``n_steps_each``
    Langevin updates with step ``a_i = eps * sigma_i^2 / sigma_L^2`` using the
    noise-conditional score ``s(x, sigma_i)``. The update is ``x + a s + sqrt(2 a) z``;
    the paper writes ``x + (alpha / 2) s + sqrt(alpha) z``, so its ``alpha_i`` is ``2 a_i``
    (as in Song & Ermon 2020). With ``denoise`` a last step
    ``x + sigma_L^2 s(x, sigma_L)`` (Tweedie's formula) removes the remaining
    noise of level ``sigma_L``.

    Args:
      score_fn: ``(x (n, d), sigma (n,)) -> (n, d)``.
      x0: ``(n, d)`` starting points.
      key: a ``jax.random`` key.
      sigmas: ``(L,)`` strictly decreasing positive noise levels.
      eps: base step size ``> 0`` (the step at the smallest level).
      n_steps_each: updates per level.
      denoise: apply the final Tweedie step.
      return_trajectory: also return every state.

    Returns:
      A :class:`SamplerResult`; its ``trajectory`` is ``(L * n_steps_each + 1, n, d)``
      (before the denoising step).
    """
    check_callable(score_fn, "score_fn")
    check_points(x0, "x0")
    sigmas = jnp.asarray(check_sigmas(sigmas), jnp.float32)
    check_positive(eps, "eps")
    check_positive_int(n_steps_each, "n_steps_each")
    return SamplerResult(
        *_annealed(score_fn, jnp.asarray(x0), key, sigmas, eps, n_steps_each, denoise, return_trajectory)
    )


@partial(jax.jit, static_argnames=("score_fn", "n_steps_each", "denoise", "return_trajectory"))
def _annealed(score_fn, x0, key, sigmas, eps, n_steps_each, denoise, return_trajectory):
    step_sizes = eps * sigmas**2 / sigmas[-1] ** 2

    # Noise for step j of level i comes from fold_in(fold_in(key, i), j), so a loop written
    # with traced level and step counts can reproduce these chains exactly.
    def level(x, inputs):
        sigma, a, i = inputs
        level_key = jax.random.fold_in(key, i)

        def step(x, j):
            z = jax.random.normal(jax.random.fold_in(level_key, j), x.shape, x.dtype)
            x = x + a * score_fn(x, broadcast_levels(sigma, x)) + jnp.sqrt(2.0 * a) * z
            return x, x if return_trajectory else None

        return jax.lax.scan(step, x, jnp.arange(n_steps_each))

    x, states = jax.lax.scan(level, x0, (sigmas, step_sizes, jnp.arange(sigmas.shape[0])))
    if denoise:
        x = x + sigmas[-1] ** 2 * score_fn(x, broadcast_levels(sigmas[-1], x))
    return x, (jnp.concatenate([x0[None], states.reshape(-1, *x0.shape)]) if return_trajectory else None)


def decaying_langevin(
    score_fn: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    key: jax.Array,
    *,
    eps: float,
    decay: float,
    n_steps: int,
    temperature: float = 1.0,
) -> SamplerResult:
    """The sampler of the JAX score-matching notebook the course grew from, for comparison.

    ``x <- x + (eps_t / 2) s(x) + sqrt(eps_t) T z`` with ``eps_t = eps * decay^t``:
    the step and the noise shrink together, so the chains freeze after a few
    steps wherever they are. Two conventions differ from :func:`langevin`: the
    step is ``eps / 2`` (so ``eps`` here is ``2 a`` there), and ``T`` multiplies
    the noise's standard deviation, so it is the square root of the usual
    temperature.

    Args:
      score_fn: ``(n, d) -> (n, d)``.
      x0: ``(n, d)`` starting points.
      key: a ``jax.random`` key (step ``t`` uses ``split(key, n_steps)[t]``).
      eps: first step ``> 0``.
      decay: factor applied to the step after each update, in ``(0, 1]``.
      n_steps: number of updates.
      temperature: ``T >= 0``, multiplies the noise's standard deviation.
    """
    check_callable(score_fn, "score_fn")
    check_points(x0, "x0")
    check_positive(eps, "eps")
    check_positive(decay, "decay")
    if not is_traced(decay) and decay > 1:
        raise ValueError(f"decay must be in (0, 1] (the step shrinks); got {decay}")
    check_positive_int(n_steps, "n_steps")
    check_nonnegative(temperature, "temperature")
    return SamplerResult(_decaying(score_fn, jnp.asarray(x0), key, eps, decay, temperature, n_steps))


@partial(jax.jit, static_argnames=("score_fn", "n_steps"))
def _decaying(score_fn, x0, key, eps, decay, temperature, n_steps):
    def step(x, inputs):
        k, eps_t = inputs
        z = jax.random.normal(k, x.shape, x.dtype)
        return x + eps_t / 2 * score_fn(x) + jnp.sqrt(eps_t) * temperature * z, None

    eps_steps = eps * decay ** jnp.arange(n_steps, dtype=x0.dtype)
    x, _ = jax.lax.scan(step, x0, (jax.random.split(key, n_steps), eps_steps))
    return x
