"""Score-matching objectives.

Each returns the mean over the batch (a scalar, what training minimises), or
with ``reduction="none"`` the per-point values ``(n,)`` whose mean it is, for
standard errors and for evaluating a loss term by term.

``score_fn`` maps a batch of points ``(n, d)`` to scores ``(n, d)`` and must act
row by row (the score of one point does not depend on the other points in the
batch), as every network here does. That lets one Jacobian-vector product with
the same tangent ``v`` in every row give all the per-point products ``J(x_n) v``
at once, with no ``vmap`` over points.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from scorelib._validate import (
    check_callable,
    check_nonnegative,
    check_points,
    check_positive,
    check_positive_int,
    check_sigmas,
)

__all__ = ["ism_loss", "ssm_loss", "dsm_loss", "ncsn_loss", "jacobian_diagonal"]

_REDUCTIONS = ("mean", "none")


def _reduce(per_point: jax.Array, reduction: str) -> jax.Array:
    return jnp.mean(per_point) if reduction == "mean" else per_point


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean' (a scalar) or 'none' (one value per point); got {reduction!r}")


ScoreFn = Callable[[jax.Array], jax.Array]


def jacobian_diagonal(score_fn: ScoreFn, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The score and the diagonal of its Jacobian at every point.

    Uses ``d`` forward-mode products ``J e_i`` (batched with ``vmap`` over the
    basis vectors), which is exact and costs about ``d`` forward passes.

    Args:
      score_fn: ``(n, d) -> (n, d)``, acting row by row.
      x: ``(n, d)`` points.

    Returns:
      ``(s, diag)``: the scores ``(n, d)`` and ``diag[n, i] = d s_i / d x_i`` at ``x_n``.
    """
    n, d = x.shape
    basis = jnp.broadcast_to(jnp.eye(d, dtype=x.dtype)[:, None, :], (d, n, d))
    s, columns = jax.vmap(lambda v: jax.jvp(score_fn, (x,), (v,)), out_axes=(None, 0))(basis)
    # columns[i, n, :] = J(x_n) e_i, so the diagonal is columns[i, n, i].
    return s, jnp.einsum("ini->ni", columns)


def ism_loss(score_fn: ScoreFn, x: jax.Array, *, reg: float = 0.0, reduction: str = "mean") -> jax.Array:
    """Hyvärinen's implicit score matching loss with the exact Jacobian trace.

    ``mean_n [ 0.5 ||s(x_n)||^2 + tr J_s(x_n) + reg * sum_i (d s_i / d x_i)^2 ]``

    equals the Fisher divergence ``0.5 E||s - s*||^2`` minus the constant
    ``0.5 E||s*||^2`` when ``reg = 0``; ``reg > 0`` adds Kingma & LeCun's (2010)
    curvature penalty.

    Args:
      score_fn: ``(n, d) -> (n, d)`` score model, acting row by row.
      x: ``(n, d)`` data batch.
      reg: weight of the squared-diagonal penalty, ``>= 0``.
      reduction: ``"mean"`` or ``"none"`` (per point, ``(n,)``).
    """
    check_callable(score_fn, "score_fn")
    check_points(x, "x")
    check_nonnegative(reg, "reg")
    _check_reduction(reduction)
    s, diag = jacobian_diagonal(score_fn, x)
    per_point = 0.5 * jnp.sum(s**2, axis=1) + jnp.sum(diag, axis=1) + reg * jnp.sum(diag**2, axis=1)
    return _reduce(per_point, reduction)


def _projections(key: jax.Array, shape: tuple[int, ...], kind: str, dtype) -> jax.Array:
    if kind == "gaussian":
        return jax.random.normal(key, shape, dtype)
    if kind == "rademacher":
        return jax.random.rademacher(key, shape, dtype)
    raise ValueError(f"projection must be 'gaussian' or 'rademacher'; got {kind!r}")


def ssm_loss(
    score_fn: ScoreFn,
    x: jax.Array,
    key: jax.Array,
    *,
    n_projections: int = 1,
    variance_reduced: bool = False,
    projection: str = "gaussian",
    reduction: str = "mean",
) -> jax.Array:
    """Sliced score matching (Song et al. 2019) with Jacobian-vector products.

    For random directions ``v`` with ``E[v v^T] = I``, Hutchinson's identity
    ``E[v^T J v] = tr J`` gives an unbiased estimate of the ISM loss:

    * SSM: ``mean [ v^T J v + 0.5 (v^T s)^2 ]``;
    * SSM-VR (``variance_reduced=True``): ``mean [ v^T J v + 0.5 ||s||^2 ]``,
      which takes the expectation of the second term exactly.

    Args:
      score_fn: ``(n, d) -> (n, d)`` score model, acting row by row.
      x: ``(n, d)`` data batch.
      key: a ``jax.random`` key for the projections.
      n_projections: directions per point, averaged.
      variance_reduced: use SSM-VR.
      projection: ``"gaussian"`` or ``"rademacher"`` directions.
      reduction: ``"mean"`` or ``"none"`` (per point, averaged over its projections).
    """
    check_callable(score_fn, "score_fn")
    check_points(x, "x")
    check_positive_int(n_projections, "n_projections")
    _check_reduction(reduction)
    v = _projections(key, (n_projections, *x.shape), projection, x.dtype)
    s, jv = jax.vmap(lambda u: jax.jvp(score_fn, (x,), (u,)), out_axes=(None, 0))(v)
    trace_term = jnp.sum(v * jv, axis=2)  # (m, n)
    if variance_reduced:
        norm_term = 0.5 * jnp.sum(s**2, axis=1)[None]
    else:
        norm_term = 0.5 * jnp.sum(v * s[None], axis=2) ** 2
    return _reduce(jnp.mean(trace_term + norm_term, axis=0), reduction)


def dsm_loss(score_fn: ScoreFn, x: jax.Array, key: jax.Array, sigma: float, *, reduction: str = "mean") -> jax.Array:
    """Denoising score matching (Vincent 2011) at one noise level.

    ``0.5 * mean || s(x + sigma z) + z / sigma ||^2`` with ``z ~ N(0, I)``: the
    target ``-z / sigma`` is the score of the Gaussian kernel
    ``N(x~; x, sigma^2 I)`` at the noisy point.

    Args:
      score_fn: ``(n, d) -> (n, d)`` score model.
      x: ``(n, d)`` clean data batch.
      key: a ``jax.random`` key for the noise.
      sigma: noise standard deviation ``> 0``.
      reduction: ``"mean"`` or ``"none"`` (per point, ``(n,)``).
    """
    check_callable(score_fn, "score_fn")
    check_points(x, "x")
    check_positive(sigma, "sigma")
    _check_reduction(reduction)
    z = jax.random.normal(key, x.shape, x.dtype)
    residual = score_fn(x + sigma * z) + z / sigma
    return _reduce(0.5 * jnp.sum(residual**2, axis=1), reduction)


def ncsn_loss(
    score_fn: Callable[[jax.Array, jax.Array], jax.Array],
    x: jax.Array,
    key: jax.Array,
    sigmas,
    *,
    reduction: str = "mean",
) -> jax.Array:
    """Multi-level denoising score matching with ``lambda(sigma) = sigma^2`` (Song & Ermon 2019).

    In expectation this is
    ``(1 / (2L)) sum_i E || sigma_i s(x + sigma_i z, sigma_i) + z ||^2``.
    Each point of the batch gets one level drawn uniformly (an unbiased
    estimate that costs one network pass per point, as in the paper).

    Args:
      score_fn: ``(x (n, d), sigma (n,)) -> (n, d)`` noise-conditional score model.
      x: ``(n, d)`` clean data batch.
      key: a ``jax.random`` key for the levels and the noise.
      sigmas: ``(L,)`` positive noise levels (any order). With one level the
        loss is that level's ``0.5 E || sigma s(x + sigma z, sigma) + z ||^2``, and
        the same ``key`` gives the same ``z`` for every level.
      reduction: ``"mean"`` or ``"none"`` (per point, ``(n,)``).
    """
    check_callable(score_fn, "score_fn")
    check_points(x, "x")
    check_sigmas(sigmas, decreasing=False)
    _check_reduction(reduction)
    sigmas = jnp.asarray(sigmas, x.dtype)
    key_level, key_z = jax.random.split(key)
    level = jax.random.randint(key_level, (x.shape[0],), 0, sigmas.shape[0])
    sigma = sigmas[level]
    z = jax.random.normal(key_z, x.shape, x.dtype)
    residual = sigma[:, None] * score_fn(x + sigma[:, None] * z, sigma) + z
    return _reduce(0.5 * jnp.sum(residual**2, axis=1), reduction)
