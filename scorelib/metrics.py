"""Numbers that say how good a learned score or a set of samples is."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist

from scorelib._validate import check_callable, check_points, check_positive, check_positive_int

__all__ = [
    "Estimate",
    "mean_with_se",
    "fisher_divergence",
    "pdf_from_score_1d",
    "mode_shares",
    "energy_distance",
    "ODELikelihood",
    "ode_log_likelihood",
    "frechet_distance",
    "knn_precision_recall",
    "total_variation",
    "mann_whitney_z",
]


class Estimate(NamedTuple):
    """A number estimated from samples, ``value``, and its standard error ``se``.

    ``str(estimate)`` reads ``"value ± se"``, both rounded at the first
    significant digit of ``se``: the precision the estimate supports, and what
    the notebooks print so that their stored outputs reproduce on another CPU.
    """

    value: float
    se: float

    def __str__(self) -> str:
        if not np.isfinite(self.se):
            return f"{self.value:.4g} ± {self.se:g}"
        if self.se <= 1e-9 * max(1.0, abs(self.value)):  # no spread (e.g. a bootstrap of identical values)
            return f"{self.value:.3g} ± 0"
        digits = -int(np.floor(np.log10(self.se)))
        places = max(digits, 0)
        return f"{round(self.value, digits):.{places}f} ± {round(self.se, digits):.{places}f}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)  # pads like a string: f"{estimate:>16}"


def mean_with_se(values) -> Estimate:
    """The mean of independent per-sample values and its Monte-Carlo standard error ``std / sqrt(n)``.

    Args:
      values: ``(n,)`` values, ``n >= 2`` (the standard deviation uses ``ddof=1``).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"values must be a 1D array of at least 2 per-sample values; got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    return Estimate(float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size)))


def fisher_divergence(score_fn: Callable, true_score: Callable, x: jax.Array, *, return_se: bool = False):
    """``0.5 * mean_n || s(x_n) - s*(x_n) ||^2`` over the points ``x``.

    Args:
      score_fn: ``(n, d) -> (n, d)`` learned score.
      true_score: ``(n, d) -> (n, d)`` reference score.
      x: ``(n, d)`` points at which to compare (samples of the reference density
        give the Fisher divergence; grid points give an unweighted error).
      return_se: also return the Monte-Carlo standard error (for ``x`` drawn
        independently from the reference density).

    Returns:
      A float, or with ``return_se`` an :class:`Estimate`.
    """
    check_callable(score_fn, "score_fn")
    check_callable(true_score, "true_score")
    check_points(x, "x")
    per_point = 0.5 * jnp.sum((score_fn(x) - true_score(x)) ** 2, axis=1)
    if return_se:
        return mean_with_se(per_point)
    return float(jnp.mean(per_point))


def pdf_from_score_1d(grid, scores) -> np.ndarray:
    """Recover a normalised density on a 1D grid from its score.

    ``log p(x) = integral of s`` (trapezoid rule from the left end), then
    ``p = exp(log p - max)`` normalised to integrate to 1 on the grid.

    Args:
      grid: ``(m,)`` increasing points.
      scores: ``(m,)`` or ``(m, 1)`` score values at ``grid``.

    Returns:
      ``(m,)`` density values.
    """
    grid = np.asarray(grid, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != grid.shape:
        raise ValueError(
            f"scores must have one value per grid point, shape {grid.shape} or ({grid.size}, 1); got {np.shape(scores)}"
        )
    if grid.size < 2 or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must hold at least two strictly increasing points")
    if not (np.all(np.isfinite(grid)) and np.all(np.isfinite(scores))):
        raise ValueError("grid and scores must be finite")
    increments = 0.5 * (scores[1:] + scores[:-1]) * np.diff(grid)
    log_p = np.concatenate([[0.0], np.cumsum(increments)])
    p = np.exp(log_p - log_p.max())
    return p / np.trapezoid(p, grid)


def mode_shares(x, centers) -> np.ndarray:
    """The fraction of points nearest to each center, ``(k,)``.

    Args:
      x: ``(n, d)`` samples.
      centers: ``(k, d)`` mode locations (e.g. mixture means).
    """
    check_points(x, "x")
    centers = np.asarray(centers)
    check_points(centers, "centers", np.shape(x)[1])
    nearest = cdist(np.asarray(x), centers).argmin(axis=1)
    return np.bincount(nearest, minlength=len(centers)) / len(nearest)


def energy_distance(x, y, *, return_se: bool = False):
    """The energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` between two samples.

    It is zero only when the distributions agree, needs no bandwidth, and is
    cheap for a few thousand points (all pairs are used, V-statistic form;
    distances by ``scipy.spatial.distance.cdist`` in float64).

    Args:
      x: ``(n, d)`` samples.
      y: ``(m, d)`` samples.
      return_se: also return the first-order (delta-method) standard error:
        each point's contribution to the statistic, ``2 mean_j |x_i - y_j| -
        2 mean_k |x_i - x_k|`` for a point of ``x`` and the same with the roles
        swapped for ``y``, gives ``se^2 = var_x / n + var_y / m``. Where the two
        distributions agree the first-order terms vanish and the distance's
        noise is of second order, so the error is then only its order of magnitude.

    Returns:
      A float, or with ``return_se`` an :class:`Estimate`.
    """
    check_points(x, "x")
    check_points(y, "y", np.shape(x)[1])
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dxy, dxx, dyy = cdist(x, y), cdist(x, x), cdist(y, y)
    value = float(2 * dxy.mean() - dxx.mean() - dyy.mean())
    if not return_se:
        return value
    contrib_x = 2 * dxy.mean(axis=1) - 2 * dxx.mean(axis=1)
    contrib_y = 2 * dxy.mean(axis=0) - 2 * dyy.mean(axis=1)
    return Estimate(value, float(np.sqrt(contrib_x.var() / len(x) + contrib_y.var() / len(y))))


# ----------------------------------------------------------------------------------------------------------------
# Exact likelihoods of score SDEs through the probability-flow ODE (notebook 07)
# ----------------------------------------------------------------------------------------------------------------

DIVERGENCE_METHODS = ("exact", "gaussian", "rademacher")


@dataclass(frozen=True)
class ODELikelihood:
    """What :func:`ode_log_likelihood` returns.

    Attributes:
      log_prob: ``(n,)`` log-densities ``log p_{t_eps}(x)`` of the model defined by the ODE.
      prior_log_prob: ``(n,)`` the prior's log-density at the latents ``x_T``.
      latents: ``(n, d)`` the ODE's end points ``x_T`` at ``t = 1``.
      nfe: number of vector-field evaluations (each is one score evaluation and its divergence).
    """

    log_prob: jax.Array
    prior_log_prob: jax.Array
    latents: jax.Array
    nfe: int


def _divergence(fn, x, method, probes):
    """Per-point divergence of a batch function ``fn: (n, d) -> (n, d)`` acting point by point."""
    if method == "exact":  # d forward-mode products with the basis vectors e_j, one column at a time
        d = x.shape[1]

        def column(e):
            _, jv = jax.jvp(fn, (x,), (jnp.broadcast_to(e, x.shape),))
            return jnp.sum(jv * e, axis=1)

        return jnp.sum(jax.vmap(column)(jnp.eye(d, dtype=x.dtype)), axis=0)

    def one_probe(v):  # Hutchinson: v^T (J v), averaged over the probes
        _, jv = jax.jvp(fn, (x,), (v,))
        return jnp.sum(v * jv, axis=1)

    return jnp.mean(jax.vmap(one_probe)(probes), axis=0)


@partial(jax.jit, static_argnames=("sde", "score_fn", "prior_log_prob", "method", "rtol", "atol"))
def _ode_likelihood(sde, score_fn, prior_log_prob, x, probes, t_eps, method, rtol, atol):
    from scorelib.sde import _nfe, _solve, ode_drift

    def vector_field(t, state, args):
        y, _ = state
        drift = lambda z: ode_drift(sde, score_fn, z, t)  # noqa: E731
        return drift(y), _divergence(drift, y, method, probes)

    state0 = (x, jnp.zeros(x.shape[0], x.dtype))
    sol = _solve(vector_field, state0, t_eps, 1.0, rtol, atol, None, None)
    x_T, delta = sol.ys[0][-1], sol.ys[1][-1]
    prior = (prior_log_prob or sde.prior_log_prob)(x_T)
    return prior + delta, prior, x_T, _nfe(sol.stats)


def ode_log_likelihood(
    sde,
    score_fn: Callable,
    x,
    *,
    key: jax.Array | None = None,
    method: str = "exact",
    n_probes: int = 1,
    t_eps: float = 1e-5,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    prior_log_prob: Callable | None = None,
) -> ODELikelihood:
    """Log-densities of a score model by the instantaneous change of variables (Chen et al. 2018).

    Along the probability-flow ODE ``dx/dt = F(x, t) = f(x, t) - g(t)^2 s(x, t) / 2``,
    ``d log p_t(x(t)) / dt = -div F``, so

        ``log p_{t_eps}(x) = log p_1(x(1)) + int_{t_eps}^1 div F(x(t), t) dt``

    (Song et al. 2021, appendix D.2). ``x`` and the running integral are solved
    together from ``t_eps`` to 1 (diffrax, Tsit5, adaptive step), and the prior's
    log-density stands in for ``log p_1``. The divergence is computed

    * ``"exact"``: as the trace of the Jacobian, with ``d`` Jacobian-vector products
      (fine for small ``d``);
    * ``"gaussian"`` / ``"rademacher"``: by Hutchinson's estimator
      ``v^T (dF/dx) v`` averaged over ``n_probes`` probes ``v`` (Grathwohl et al.
      2019), drawn once from ``key`` and kept fixed along the path. Its mean is
      the exact log-density; its variance falls like ``1 / n_probes``.

    Args:
      sde: a ``scorelib.sde.VESDE`` or ``VPSDE``.
      score_fn: ``(x (n, d), t (n,)) -> (n, d)``, acting on each point separately.
      x: ``(n, d)`` points.
      key: a ``jax.random`` key (needed by the Hutchinson methods).
      method: one of :data:`DIVERGENCE_METHODS`.
      n_probes: probes per point for Hutchinson's estimator.
      t_eps: the time at which the density is evaluated, in (0, 1).
      rtol, atol: tolerances of the adaptive step.
      prior_log_prob: ``(n, d) -> (n,)`` log-density at ``t = 1``; default ``sde.prior_log_prob``.
        Passing the exact ``log p_1`` (known for a Gaussian mixture) removes the prior's mismatch.

    Returns:
      An :class:`ODELikelihood`.
    """
    from scorelib.sde import _check_sde, _check_t_eps

    _check_sde(sde)
    check_callable(score_fn, "score_fn")
    check_points(x, "x")
    _check_t_eps(t_eps)
    if method not in DIVERGENCE_METHODS:
        raise ValueError(f"method must be one of {DIVERGENCE_METHODS}; got {method!r}")
    check_positive_int(n_probes, "n_probes")
    check_positive(rtol, "rtol")
    check_positive(atol, "atol")
    if prior_log_prob is not None:
        check_callable(prior_log_prob, "prior_log_prob")
    x = jnp.asarray(x)
    if method == "exact":
        probes = jnp.zeros((1, 1, 1), x.dtype)
    else:
        if key is None:
            raise ValueError(f"method={method!r} draws random probes: pass key=jax.random.key(...)")
        shape = (n_probes, *x.shape)
        if method == "gaussian":
            probes = jax.random.normal(key, shape, x.dtype)
        else:
            probes = jax.random.rademacher(key, shape, x.dtype)
    log_prob, prior, x_T, nfe = _ode_likelihood(
        sde, score_fn, prior_log_prob, x, probes, float(t_eps), "exact" if method == "exact" else "hutchinson",
        float(rtol), float(atol),
    )  # fmt: skip
    return ODELikelihood(log_prob=log_prob, prior_log_prob=prior, latents=x_T, nfe=int(nfe))


# --- comparing two sets of samples (notebook 06's evaluation of generated digits, sl.digits) ---


def _gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))  # (1, 1), not 0-d, for d = 1


def _frechet_from_stats(mu1, cov1, mu2, cov2, *, imag_tol: float = 1e-3) -> float:
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on (near-)singular products; handled below
        covmean = sqrtm(cov1 @ cov2)
    if not np.all(np.isfinite(covmean)):  # singular product: regularize as pytorch-fid does
        offset = 1e-6 * np.eye(len(mu1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            covmean = sqrtm((cov1 + offset) @ (cov2 + offset))
    if np.iscomplexobj(covmean):
        residue = np.max(np.abs(covmean.imag))
        scale = max(1.0, float(np.abs(np.trace(covmean.real))))
        if residue > imag_tol * scale:
            raise ValueError(
                f"the matrix square root has an imaginary residue {residue:.3g} (> {imag_tol} x {scale:.3g}): "
                "the covariances are too degenerate for a Frechet distance; use more, or more varied, points"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def frechet_distance(a, b) -> float:
    """Frechet distance between Gaussians fitted to two point sets.

    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))``, with ``scipy.linalg.sqrtm``; the real part of the
    root is used after checking that its imaginary residue is below 1e-3 of its trace (numerical noise).

    Args:
      a: ``(n, d)`` points, ``n >= 2``.
      b: ``(m, d)`` points, ``m >= 2``.

    Returns:
      The distance (>= 0 up to rounding; ~0 for identical sets).
    """
    check_points(a, "a")
    check_points(b, "b", np.shape(a)[1])
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a and b need at least 2 points each for a covariance; got {len(a)} and {len(b)}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return _frechet_from_stats(*_gaussian_stats(a), *_gaussian_stats(b))


def _knn_radii(dist: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point, from a square ``(n, n)`` distance matrix."""
    return np.partition(dist, k, axis=1)[:, k]  # column 0 is the point itself (distance 0)


def knn_precision_recall(real, fake, *, k: int = 3) -> tuple[float, float]:
    """k-NN precision and recall of Kynkaanniemi et al. 2019 (arXiv:1904.06991).

    Each point's manifold ball has the radius of its k-th nearest neighbour within its own set. Precision is
    the share of ``fake`` points inside some ``real`` ball (fidelity); recall the share of ``real`` points inside
    some ``fake`` ball (coverage). k = 3 is the paper's choice: small enough that a ball stays local, large
    enough that one outlier does not create a large empty ball.

    Args:
      real: ``(n, d)`` real points, ``n > k``.
      fake: ``(m, d)`` generated points, ``m > k``.
      k: the neighbour rank that sets the radii.

    Returns:
      ``(precision, recall)``, each in [0, 1].
    """
    check_positive_int(k, "k")
    check_points(real, "real")
    check_points(fake, "fake", np.shape(real)[1])
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"real and fake need more than k = {k} points each; got {len(real)} and {len(fake)}")
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    r_real = _knn_radii(cdist(real, real), k)
    r_fake = _knn_radii(cdist(fake, fake), k)
    d = cdist(fake, real)
    return float((d <= r_real[None, :]).any(axis=1).mean()), float((d <= r_fake[:, None]).any(axis=0).mean())


def total_variation(p, q) -> float:
    """Total-variation distance ``0.5 sum |p - q|`` between two histograms of the same length (each sums to 1)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.ndim != 1 or p.shape != q.shape:
        raise ValueError(f"p and q must be 1D histograms of the same length; got shapes {p.shape} and {q.shape}")
    for name, h in (("p", p), ("q", q)):
        if np.any(h < 0) or abs(h.sum() - 1) > 1e-6:
            raise ValueError(f"{name} must be non-negative and sum to 1; got sum {h.sum():.6g}")
    return float(0.5 * np.abs(p - q).sum())


def _u_to_z(u: float, m: int, n: int) -> float:
    return float((u - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12))


def mann_whitney_z(x, y) -> float:
    """Z of the Mann-Whitney U of ``x`` against ``y``: about N(0, 1) for one distribution, negative when x is smaller.

    ``U`` (``scipy.stats.mannwhitneyu``) counts the pairs with ``x_i > y_j`` (ties count 1/2); ``Z`` is
    ``(U - m n / 2) / sqrt(m n (m + n + 1) / 12)`` without tie correction. Meehan et al. 2020's data-copying
    statistic ``Z_U`` is this with ``x`` the samples' and ``y`` the unseen digits' nearest-training distances.

    Args:
      x: ``(m,)`` values.
      y: ``(n,)`` values.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or y.ndim != 1 or len(x) == 0 or len(y) == 0:
        raise ValueError(f"x and y must be non-empty 1D arrays; got shapes {x.shape} and {y.shape}")
    from scipy.stats import mannwhitneyu  # imported here: scipy.stats is slow to import

    u = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").statistic
    return _u_to_z(u, len(x), len(y))
