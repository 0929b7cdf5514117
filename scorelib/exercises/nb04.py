"""Checks for notebook 04's coding exercises: the KDE's log density, computed stably, and the KDE's Tweedie denoiser."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from scorelib.data import kde
from scorelib.exercises._core import Slip, agrees, attempt, compare_density, known, register

__all__ = ["check_kde_log_prob", "check_kde_denoiser"]




def _case(seed, n_points, dim, n_near, far_radius, n_far):
    """Samples the notebook does not show, and query points: some near them, some far beyond every kernel's reach."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n_points, dim)) * np.linspace(0.8, 1.4, dim)
    near = points[rng.integers(n_points, size=n_near)] + 0.3 * rng.normal(size=(n_near, dim))
    direction = rng.normal(size=(n_far, dim))
    far = far_radius * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    return points.astype(np.float32), np.concatenate([near, far]).astype(np.float32)


# (points, bandwidth, query points): a thin kernel in 2D, and 3D so that the normalising constant's power d/2 matters.
# The far points lie where exp(-|x - x_i|^2 / (2 h^2)) underflows to 0 in float32 for every sample.
_CASES = (
    (*_case(4, 30, 2, 20, 7.0, 6), 0.15),
    (*_case(5, 40, 3, 16, 11.0, 4), 0.4),
)


def _sq_dist(points, x):
    return jnp.sum((jnp.asarray(x)[:, None, :] - jnp.asarray(points)[None]) ** 2, axis=2)  # (n, m)


def _log_prob_reference(points, h, x):
    return kde(points, h).log_prob(jnp.asarray(x))


def _log_prob_exponent_sign(points, h, x):
    m, d = np.shape(points)
    return logsumexp(+_sq_dist(points, x) / (2 * h**2), axis=1) - np.log(m) - 0.5 * d * np.log(2 * np.pi * h**2)


def _log_prob_naive(points, h, x):
    m, d = np.shape(points)
    return jnp.log(jnp.mean(jnp.exp(-_sq_dist(points, x) / (2 * h**2)), axis=1) / (2 * jnp.pi * h**2) ** (d / 2))


def _log_prob_no_mean(points, h, x):
    return _log_prob_reference(points, h, x) + np.log(np.shape(points)[0])


def _log_prob_no_normalisation(points, h, x):
    return _log_prob_reference(points, h, x) + 0.5 * np.shape(points)[1] * np.log(2 * np.pi * h**2)


def _log_prob_two_d_constant(points, h, x):
    return _log_prob_no_normalisation(points, h, x) - np.log(2 * np.pi * h**2)


def _log_prob_h_in_exponent(points, h, x):
    m, d = np.shape(points)
    return logsumexp(-_sq_dist(points, x) / (2 * h), axis=1) - np.log(m) - 0.5 * d * np.log(2 * np.pi * h**2)


_LOG_PROB_SLIPS = {
    "flipped sign in the exponent": Slip(
        _log_prob_exponent_sign, "the sign of the exponent is flipped: each kernel is exp(-|x - x_i|^2 / (2 h^2)), "
        "largest at its own sample, so the exponents are minus the squared distances over 2 h^2."),
    "the naive log(sum(exp))": Slip(_log_prob_naive, words="logsumexp"),  # nan far away: the underflow hint
    "a sum instead of a mean": Slip(
        _log_prob_no_mean, lambda points, h, x: (
            f"it is log(m) = {np.log(len(points)):.3f} too large everywhere, m the number of samples: the kernels "
            "are summed; the KDE averages them (the 1/m), so subtract log(m) after the logsumexp."),
        words="1/m"),
    "no normalising constant": Slip(
        _log_prob_no_normalisation, "the Gaussian's normalising constant (2 pi h^2)^(-d/2) is missing: subtract "
        "(d/2) log(2 pi h^2)."),
    "the 2D constant in 3D": Slip(
        _log_prob_two_d_constant, "the normalising constant is the 2D one, 1 / (2 pi h^2); in d dimensions it is "
        "(2 pi h^2)^(-d/2), with d = points.shape[1]: subtract (d/2) log(2 pi h^2)."),
    "h instead of h^2 in the exponent": Slip(
        _log_prob_h_in_exponent, "the squared distances are divided by 2 h; the kernel's exponent is "
        "-|x - x_i|^2 / (2 h^2), with the variance h^2."),
}


@register("04", reference=_log_prob_reference, mistakes=_LOG_PROB_SLIPS)
def check_kde_log_prob(kde_log_prob):
    """Check ``kde_log_prob(points, h, x) -> (n,)``, the KDE's log density, near the samples and far from them."""
    for points, x, h in _CASES:
        args = (jnp.asarray(points), h, jnp.asarray(x))
        got = attempt(kde_log_prob, *args)
        expected = _log_prob_reference(*args)
        what = f"kde_log_prob(points, h={h}, x) with {len(points)} points in {points.shape[1]}D"
        if agrees(got, expected, rtol=1e-4, atol=1e-3):
            continue
        known_slips = known(_LOG_PROB_SLIPS, *args)
        shift = np.asarray(got, dtype=np.float64) - np.asarray(expected) if np.shape(got) == expected.shape else None
        if shift is not None and np.all(np.isfinite(shift)) and np.ptp(shift) < 1e-3 and abs(shift.mean()) > 1e-3:
            known_slips.setdefault(f"it is off by the same constant {shift.mean():+.4f} everywhere: a normalising "
                                   "constant is missing or wrong (the 1/m of the mean over the m samples, or the "
                                   "Gaussian's (2 pi h^2)^(-d/2)).", got)
        compare_density(got, expected, what=what, inputs=x, rtol=1e-4, atol=1e-3, known=known_slips)
    return (f"Matches sl.data.kde(points, h).log_prob on {len(_CASES)} samples (2D and 3D), finite at the points far "
            "from the samples where every kernel underflows.")


def _denoiser_reference(points, sigma, x_tilde):
    return jnp.asarray(x_tilde) + sigma**2 * kde(points, sigma).score(jnp.asarray(x_tilde))


def _denoiser_flipped(points, sigma, x_tilde):
    return jnp.asarray(x_tilde) - sigma**2 * kde(points, sigma).score(jnp.asarray(x_tilde))


def _denoiser_sigma(points, sigma, x_tilde):
    return jnp.asarray(x_tilde) + sigma * kde(points, sigma).score(jnp.asarray(x_tilde))


def _denoiser_no_x(points, sigma, x_tilde):
    return sigma**2 * kde(points, sigma).score(jnp.asarray(x_tilde))


def _denoiser_wrong_axis(points, sigma, x_tilde):
    w = jax.nn.softmax(-_sq_dist(points, x_tilde) / (2 * sigma**2), axis=0)
    return w @ jnp.asarray(points)


def _denoiser_nearest(points, sigma, x_tilde):
    return jnp.asarray(points)[jnp.argmin(_sq_dist(points, x_tilde), axis=1)]


def _denoiser_naive(points, sigma, x_tilde):
    k = jnp.exp(-_sq_dist(points, x_tilde) / (2 * sigma**2))
    return (k / jnp.sum(k, axis=1, keepdims=True)) @ jnp.asarray(points)


# (points, noise level, noisy points): wide enough kernels that a noisy point's denoised value averages several
# samples, and a narrow one with points far out, where only the nearest sample counts and exp(...) underflows.
_DENOISER_CASES = (
    (*_case(6, 30, 2, 24, 6.0, 6), 0.5),
    (*_case(7, 40, 3, 20, 9.0, 4), 0.25),
)


_DENOISER_SLIPS = {
    "flipped sign": Slip(
        _denoiser_flipped, "the sign of the score term is flipped: Tweedie's formula is x~ + sigma^2 s(x~), a step "
        "*up* the score, towards the data."),
    "sigma instead of sigma^2": Slip(
        _denoiser_sigma, "the score is multiplied by sigma; Tweedie's formula multiplies it by the noise variance, "
        "x~ + sigma^2 s(x~)."),
    "the noisy point dropped": Slip(
        _denoiser_no_x, "the noisy point itself is missing: Tweedie's formula is x~ + sigma^2 s(x~), not the "
        "correction sigma^2 s(x~) alone."),
    "softmax over the wrong axis": Slip(
        _denoiser_wrong_axis, "the softmax runs over the wrong axis: for each noisy point the weights w_i(x~) over "
        "the samples (axis 1 of the (n, m) exponents) must sum to 1."),
    "the nearest sample": Slip(
        _denoiser_nearest, "this is the nearest sample to each noisy point; the posterior mean averages all the "
        "samples with the softmax weights w_i(x~), which only single out the nearest one when sigma is small or "
        "the point is far."),
    "weights from exp / sum": Slip(_denoiser_naive, words="softmax"),  # nan far away: the underflow hint
}


@register("04", reference=_denoiser_reference, mistakes=_DENOISER_SLIPS)
def check_kde_denoiser(kde_denoiser):
    """Check ``kde_denoiser(points, sigma, x_tilde) -> (n, d)``, Tweedie's E[x | x~] for the KDE at bandwidth sigma."""
    for points, x, sigma in _DENOISER_CASES:
        args = (jnp.asarray(points), sigma, jnp.asarray(x))
        got = attempt(kde_denoiser, *args)
        expected = _denoiser_reference(*args)
        if agrees(got, expected, rtol=1e-4, atol=1e-4):
            continue
        compare_density(got, expected, what=f"kde_denoiser(points, sigma={sigma}, x_tilde)", at="x_tilde",
                        inputs=x, rtol=1e-4, atol=1e-4, known=known(_DENOISER_SLIPS, *args))
    return (f"Matches x~ + sigma^2 sl.data.kde(points, sigma).score(x~) on {len(_DENOISER_CASES)} samples (2D and 3D), "
            "far from the samples too.")
