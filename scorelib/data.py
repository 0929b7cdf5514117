"""Data distributions with exact densities and scores, and the course's data sets.

Every array of points is ``(n, d)``; 1D data is ``(n, 1)``. All randomness
comes from explicit ``jax.random`` keys.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from scorelib._validate import (
    broadcast_levels,
    check_finite,
    check_nonnegative,
    check_points,
    check_positive,
    check_positive_int,
    is_traced,
)

__all__ = ["GaussianMixture", "kde", "Ring", "swiss_roll", "swiss_roll_centre_line", "load_digits_01"]


# A mixture's sampler is compiled as one program per sample size. Run op by op, a first call compiled each of its
# dozen operations separately: 1.1 s on a fresh machine, again for every new n. The samples are bit for bit the same.
@partial(jax.jit, static_argnames="n")
def _mixture_sample(means, chol, weights, key, n):
    key_c, key_z = jax.random.split(key)
    comp = jax.random.choice(key_c, means.shape[0], shape=(n,), p=weights)
    z = jax.random.normal(key_z, (n, means.shape[1]))
    return means[comp] + jnp.einsum("nij,nj->ni", chol[comp], z)


def _component_log_probs(means, prec, log_norm, x):
    diff = x[:, None, :] - means[None]  # (n, k, d)
    return log_norm[None] - 0.5 * jnp.einsum("nki,kij,nkj->nk", diff, prec, diff)


@jax.jit
def _mixture_score(means, prec, log_norm, x):
    resp = jax.nn.softmax(_component_log_probs(means, prec, log_norm, x), axis=1)
    return jnp.einsum("nk,kij,nkj->ni", resp, prec, means[None] - x[:, None, :])


class GaussianMixture:
    """A mixture of Gaussians ``sum_k w_k N(mean_k, cov_k)`` in ``d`` dimensions.

    The score is computed in closed form,
    ``s(x) = sum_k r_k(x) P_k (mean_k - x)`` with ``P_k = cov_k^{-1}`` and the
    responsibilities ``r_k(x)`` from a log-sum-exp, so it is stable far from the
    data where the density underflows.

    Args:
      means: ``(k, d)`` component means.
      covs: ``(k, d, d)`` symmetric positive-definite covariances.
      weights: ``(k,)`` non-negative weights summing to 1.
    """

    def __init__(self, means, covs, weights):
        means = np.asarray(means, dtype=np.float64)
        covs = np.asarray(covs, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
        if means.ndim != 2:
            raise ValueError(f"means must be a (k, d) array; got shape {means.shape}")
        k, d = means.shape
        if covs.shape != (k, d, d):
            raise ValueError(f"covs must be a (k, d, d) = ({k}, {d}, {d}) array; got shape {covs.shape}")
        if weights.shape != (k,):
            raise ValueError(f"weights must be a ({k},) array, one per component; got shape {weights.shape}")
        for name, arr in (("means", means), ("covs", covs), ("weights", weights)):
            check_finite(arr, name)
        if np.any(weights < 0) or abs(weights.sum() - 1.0) > 1e-6:
            raise ValueError(f"weights must be non-negative and sum to 1; got {weights} (sum {weights.sum():.6g})")
        if not np.allclose(covs, np.swapaxes(covs, 1, 2), atol=1e-8):
            raise ValueError("covs must be symmetric matrices")
        try:
            chol = np.linalg.cholesky(covs)
        except np.linalg.LinAlgError:
            raise ValueError("covs must be positive definite (a Cholesky factorisation failed)") from None
        self._means_np, self._covs_np, self._weights_np = means, covs, weights
        self.means = jnp.asarray(means, jnp.float32)
        self.covs = jnp.asarray(covs, jnp.float32)
        self.weights = jnp.asarray(weights, jnp.float32)
        self._chol = jnp.asarray(chol, jnp.float32)
        self._prec = jnp.asarray(np.linalg.inv(covs), jnp.float32)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        with np.errstate(divide="ignore"):
            log_w = np.log(weights)
        self._log_norm = jnp.asarray(log_w - 0.5 * logdet - 0.5 * d * np.log(2 * np.pi), jnp.float32)
        # Isotropic components (cov_k = v_k I, e.g. a KDE) allow a perturbed score by matrix products alone.
        variances = np.trace(covs, axis1=1, axis2=2) / d
        isotropic = np.allclose(covs, variances[:, None, None] * np.eye(d)[None], rtol=0, atol=1e-12)
        self._iso_var = jnp.asarray(variances, jnp.float32) if isotropic else None

    @property
    def dim(self) -> int:
        """The dimension ``d`` of the points."""
        return self._means_np.shape[1]

    @property
    def n_components(self) -> int:
        return self._means_np.shape[0]

    def __repr__(self) -> str:
        return f"GaussianMixture(k={self.n_components}, d={self.dim}, weights={np.round(self._weights_np, 4).tolist()})"

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """Draw ``n`` points, shape ``(n, d)``."""
        check_positive_int(n, "n")
        return _mixture_sample(self.means, self._chol, self.weights, key, n)

    def component_log_probs(self, x) -> jax.Array:
        """``log(w_k N(x; mean_k, cov_k))`` for every point and component, ``(n, k)``."""
        check_points(x, "x", self.dim)
        return _component_log_probs(self.means, self._prec, self._log_norm, x)

    def log_prob(self, x) -> jax.Array:
        """Log density at ``x``, shape ``(n,)``."""
        return logsumexp(self.component_log_probs(x), axis=1)

    def responsibilities(self, x) -> jax.Array:
        """Posterior probability of each component given the point, ``(n, k)``."""
        return jax.nn.softmax(self.component_log_probs(x), axis=1)

    def score(self, x) -> jax.Array:
        """Exact score ``grad_x log p(x)``, shape ``(n, d)``."""
        check_points(x, "x", self.dim)
        return _mixture_score(self.means, self._prec, self._log_norm, x)

    def perturbed(self, sigma: float) -> GaussianMixture:
        """The mixture convolved with ``N(0, sigma^2 I)``: each covariance gains ``sigma^2 I``."""
        check_positive(sigma, "sigma")
        covs = self._covs_np + float(sigma) ** 2 * np.eye(self.dim)[None]
        return GaussianMixture(self._means_np, covs, self._weights_np)

    def perturbed_score(self, x, sigma) -> jax.Array:
        """Score of the mixture convolved with ``N(0, sigma^2 I)``, with a noise level per point.

        Unlike :meth:`perturbed`, ``sigma`` may be a traced value and may differ
        from point to point, which is what an annealed sampler or a
        noise-conditional loss needs inside compiled code.

        Args:
          x: ``(n, d)`` points.
          sigma: a scalar or ``(n,)`` noise levels ``> 0``.

        Returns:
          ``(n, d)`` scores.
        """
        check_points(x, "x", self.dim)
        x = jnp.asarray(x)
        sigma = broadcast_levels(sigma, x)
        if self._iso_var is not None:  # cov_k + sigma^2 I = var_nk I: no (n, k, d, d) systems to solve
            var = self._iso_var[None] + (sigma**2)[:, None]  # (n, k)
            sq = jnp.sum(x**2, axis=1)[:, None] - 2 * x @ self.means.T + jnp.sum(self.means**2, axis=1)[None]
            log_p = jnp.log(self.weights)[None] - 0.5 * self.dim * jnp.log(var) - 0.5 * jnp.maximum(sq, 0) / var
            r_over_var = jax.nn.softmax(log_p, axis=1) / var  # (n, k)
            return r_over_var @ self.means - jnp.sum(r_over_var, axis=1, keepdims=True) * x
        covs = self.covs[None] + (sigma**2)[:, None, None, None] * jnp.eye(self.dim, dtype=x.dtype)  # (n, k, d, d)
        diff = x[:, None, :] - self.means[None]  # (n, k, d)
        solved = jnp.linalg.solve(covs, diff[..., None])[..., 0]  # cov^{-1} (x - mean)
        _, logdet = jnp.linalg.slogdet(covs)
        log_p = jnp.log(self.weights)[None] - 0.5 * logdet - 0.5 * jnp.sum(diff * solved, axis=2)
        return -jnp.einsum("nk,nkd->nd", jax.nn.softmax(log_p, axis=1), solved)

    def diffused(self, scale: float, std: float) -> GaussianMixture:
        """The law of ``scale * x + std * z`` for ``x`` from the mixture and ``z ~ N(0, I)``.

        It is again a mixture, with means ``scale * mean_k`` and covariances
        ``scale^2 cov_k + std^2 I``: the marginal of a diffusion SDE at a time
        where its perturbation kernel is ``N(scale * x, std^2 I)`` (``scale = 1``
        for the variance-exploding SDE, where this is :meth:`perturbed`).

        Args:
          scale: mean coefficient ``> 0``.
          std: kernel standard deviation ``>= 0``.
        """
        check_positive(scale, "scale")
        check_nonnegative(std, "std")
        covs = float(scale) ** 2 * self._covs_np + float(std) ** 2 * np.eye(self.dim)[None]
        return GaussianMixture(float(scale) * self._means_np, covs, self._weights_np)

    def diffused_score(self, x, scale, std) -> jax.Array:
        """Score of :meth:`diffused` with a (traced) scale and std per point.

        Args:
          x: ``(n, d)`` points.
          scale: a scalar or ``(n,)`` mean coefficients ``> 0``.
          std: a scalar or ``(n,)`` kernel standard deviations ``>= 0``.

        Returns:
          ``(n, d)`` scores.
        """
        check_points(x, "x", self.dim)
        x = jnp.asarray(x)
        n = x.shape[0]
        for name, value in (("scale", scale), ("std", std)):
            if not is_traced(value):
                v = np.asarray(value)
                if v.ndim > 1 or (v.ndim == 1 and v.shape[0] != n):
                    raise ValueError(f"{name} must be a scalar or one value per point, shape ({n},); got {v.shape}")
                if not np.all(np.isfinite(v)) or np.any(v < 0) or (name == "scale" and np.any(v == 0)):
                    raise ValueError(f"{name} must be finite and {'> 0' if name == 'scale' else '>= 0'}; got {value}")
        # cov_k = U_k diag(lam_k) U_k^T, so a^2 cov_k + s^2 I = U_k diag(a^2 lam_k + s^2) U_k^T: no batched solve.
        lam, vecs = np.linalg.eigh(self._covs_np)
        lam, vecs = jnp.asarray(lam, x.dtype), jnp.asarray(vecs, x.dtype)  # (k, d), (k, d, d)
        a = jnp.broadcast_to(jnp.asarray(scale, x.dtype), (n,))[:, None, None]
        s = jnp.broadcast_to(jnp.asarray(std, x.dtype), (n,))[:, None, None]
        var = a**2 * lam[None] + s**2  # (n, k, d) eigenvalues of the diffused covariances
        diff = x[:, None, :] - a * self.means[None]  # (n, k, d)
        proj = jnp.einsum("nki,kij->nkj", diff, vecs)  # coordinates in each component's eigenbasis
        log_p = jnp.log(self.weights)[None] - 0.5 * jnp.sum(jnp.log(var) + proj**2 / var, axis=2)
        solved = jnp.einsum("kij,nkj->nki", vecs, proj / var)  # cov^{-1} (x - a mean)
        return -jnp.einsum("nk,nkd->nd", jax.nn.softmax(log_p, axis=1), solved)


def kde(points, bandwidth: float) -> GaussianMixture:
    """The Gaussian kernel density estimate ``(1/n) sum_i N(x_i, h^2 I)`` as a mixture.

    Its ``log_prob`` and ``score`` are then exact and stable (log-sum-exp), also
    far from the points where the density itself underflows.

    Args:
      points: ``(n, d)`` samples.
      bandwidth: kernel standard deviation ``h > 0``.
    """
    points = check_points(points, "points")
    check_positive(bandwidth, "bandwidth")
    n, d = points.shape
    covs = np.broadcast_to(float(bandwidth) ** 2 * np.eye(d), (n, d, d))
    return GaussianMixture(np.asarray(points), covs, np.full(n, 1.0 / n))


class Ring:
    """Points on a noisy ring: radius ``r ~ N(radius, std^2)``, angle uniform.

    A negative radius draw lands on the opposite side of the ring, so the
    density in the plane is exactly

    ``p(x) = [N(|x|; radius, std^2) + N(-|x|; radius, std^2)] / (2 pi |x|)``.

    The ``1 / (2 pi |x|)`` factor is the Jacobian of polar coordinates; without
    it the "density" does not integrate to 1 and its score misses the term
    ``-x / |x|^2``.

    Args:
      radius: mean radius ``R > 0``.
      std: radial standard deviation ``> 0``.
    """

    dim = 2

    def __init__(self, radius: float, std: float):
        check_positive(radius, "radius")
        check_positive(std, "std")
        self.radius = float(radius)
        self.std = float(std)

    def __repr__(self) -> str:
        return f"Ring(radius={self.radius}, std={self.std})"

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """Draw ``n`` points, shape ``(n, 2)``."""
        check_positive_int(n, "n")
        key_r, key_a = jax.random.split(key)
        r = self.radius + self.std * jax.random.normal(key_r, (n,))
        angle = jax.random.uniform(key_a, (n,), minval=-jnp.pi, maxval=jnp.pi)
        return jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)], axis=1)

    def _radial_terms(self, r):
        # log N(r; R, s^2) and log N(-r; R, s^2), without the shared constant.
        a = -0.5 * ((r - self.radius) / self.std) ** 2
        b = -0.5 * ((r + self.radius) / self.std) ** 2
        return a, b

    def log_prob(self, x) -> jax.Array:
        """Log density in the plane, shape ``(n,)``."""
        check_points(x, "x", 2)
        r = jnp.linalg.norm(x, axis=1)
        a, b = self._radial_terms(r)
        log_radial = jnp.logaddexp(a, b) - jnp.log(self.std * jnp.sqrt(2 * jnp.pi))
        return log_radial - jnp.log(2 * jnp.pi * r)

    def score(self, x) -> jax.Array:
        """Exact score, shape ``(n, 2)``: ``(d/dr log p) x / |x|``."""
        check_points(x, "x", 2)
        r = jnp.linalg.norm(x, axis=1)
        a, b = self._radial_terms(r)
        w = jax.nn.sigmoid(a - b)  # weight of the N(r; R) branch
        dlog_radial = (w * (self.radius - r) - (1 - w) * (self.radius + r)) / self.std**2
        dlogp_dr = dlog_radial - 1.0 / r
        return (dlogp_dr / r)[:, None] * x


def swiss_roll(key: jax.Array, n: int, *, noise: float = 1.0) -> jax.Array:
    """The 2D swiss roll of the course, shape ``(n, 2)``.

    The same construction as scikit-learn's ``make_swiss_roll`` keeping
    coordinates 0 and 2 and dividing by 10: ``t ~ U(1.5 pi, 4.5 pi)``,
    ``x = (t cos t, t sin t) + noise * N(0, I)``, all over 10. It is written in
    JAX so that batches come from explicit keys and can be drawn inside a
    compiled training loop.

    Args:
      key: a ``jax.random`` key.
      n: number of points.
      noise: standard deviation of the Gaussian noise, before the division by 10.
    """
    check_positive_int(n, "n")
    if noise < 0:
        raise ValueError(f"noise must be non-negative; got {noise}")
    key_t, key_z = jax.random.split(key)
    t = 1.5 * jnp.pi * (1.0 + 2.0 * jax.random.uniform(key_t, (n,)))
    x = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=1)
    return (x + noise * jax.random.normal(key_z, (n, 2))) / 10.0


def swiss_roll_centre_line(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The noise-free curve of :func:`swiss_roll` at the midpoints of ``n`` equal cells of its parameter.

    Returns ``(t, points)``: ``t`` of shape ``(n,)`` in ``(1.5 pi, 4.5 pi)`` and ``points = t (cos t, sin t) / 10``
    of shape ``(n, 2)``. With a few thousand nodes, the distance from a point to its nearest node is its distance
    to the roll's centre line within a few thousandths (notebooks 03 and 07 measure a roll's thickness with it).
    """
    check_positive_int(n, "n")
    t = 1.5 * np.pi * (1 + 2 * (np.arange(n) + 0.5) / n)
    return t, np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 10


def load_digits_01() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits scaled to [0, 1] (nothing is downloaded).

    Returns:
      ``(X, y)``: ``X`` is ``(1797, 64)`` float32 in [0, 1], ``y`` the ``(1797,)`` labels.
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)
