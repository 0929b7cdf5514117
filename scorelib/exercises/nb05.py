"""Checks for notebook 05's coding exercises: annealed Langevin's schedule, and one level's weighted DSM loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from scorelib.data import GaussianMixture
from scorelib.exercises._core import ExerciseError, Slip, agrees, attempt, compare, known, register
from scorelib.losses import ncsn_loss

__all__ = ["check_annealed_schedule", "check_ncsn_level_loss"]



# (sigma_max, sigma_min, n_levels, eps): settings the notebook does not use.
_SCHEDULES = ((5.0, 0.1, 7, 0.02), (1.0, 0.01, 12, 2e-5), (3.0, 0.3, 2, 0.5))


def _levels(sigma_max, sigma_min, n_levels):
    return np.geomspace(sigma_max, sigma_min, n_levels)


def _schedule_reference(sigma_max, sigma_min, n_levels, eps):
    sigmas = _levels(sigma_max, sigma_min, n_levels)
    return sigmas, eps * sigmas**2 / sigmas[-1] ** 2  # sl.samplers.annealed_langevin's step_sizes


def _steps_flipped(sigma_max, sigma_min, n_levels, eps):
    sigmas = _levels(sigma_max, sigma_min, n_levels)
    return sigmas, eps * sigmas[-1] ** 2 / sigmas**2


def _steps_sigma(sigma_max, sigma_min, n_levels, eps):
    sigmas = _levels(sigma_max, sigma_min, n_levels)
    return sigmas, eps * sigmas / sigmas[-1]


def _steps_by_largest(sigma_max, sigma_min, n_levels, eps):
    sigmas = _levels(sigma_max, sigma_min, n_levels)
    return sigmas, eps * sigmas**2 / sigmas[0] ** 2


def _steps_paper_alpha(sigma_max, sigma_min, n_levels, eps):
    sigmas, steps = _schedule_reference(sigma_max, sigma_min, n_levels, eps)
    return sigmas, 2 * steps


def _levels_linear(sigma_max, sigma_min, n_levels, eps):
    sigmas = np.linspace(sigma_max, sigma_min, n_levels)
    return sigmas, eps * sigmas**2 / sigmas[-1] ** 2


def _levels_increasing(sigma_max, sigma_min, n_levels, eps):
    sigmas = _levels(sigma_min, sigma_max, n_levels)
    return sigmas, eps * sigmas**2 / sigmas[0] ** 2


_LEVEL_SLIPS = {
    "linear levels": Slip(_levels_linear, "the levels are evenly spaced; they must be geometric, with a constant "
                          "ratio sigma_(i+1) / sigma_i (np.geomspace, section 2)."),
    "increasing levels": Slip(_levels_increasing, "the levels go up; annealed Langevin walks down, from the largest "
                              "sigma_1 = sigma_max to the smallest sigma_L = sigma_min."),
}
_STEP_SLIPS = {
    "flipped sign of the exponent": Slip(
        _steps_flipped, "the sign of the exponent is flipped: the step must grow with the noise level, a_i = eps "
        "sigma_i^2 / sigma_L^2, largest at sigma_1 and eps at the last level; yours shrinks as sigma grows."),
    "sigma instead of sigma^2": Slip(
        _steps_sigma, "the steps grow like sigma_i; they must grow like the variance sigma_i^2 (the perturbed "
        "density's length scale is sigma_i, and a Langevin step is a squared length), a_i = eps sigma_i^2 / "
        "sigma_L^2."),
    "divided by the largest level": Slip(
        _steps_by_largest, "the steps are scaled by the largest level; eps is the step at the smallest level, "
        "a_i = eps sigma_i^2 / sigma_L^2, so the last step is eps."),
    "the paper's alpha": Slip(
        _steps_paper_alpha, "the steps are twice too large: that is the NCSN paper's alpha_i = 2 a_i, for its update "
        "x + (alpha / 2) s + sqrt(alpha) z; this course's sampler takes x + a s + sqrt(2 a) z (section 2)."),
}


@register("05", reference=_schedule_reference, mistakes={**_LEVEL_SLIPS, **_STEP_SLIPS})
def check_annealed_schedule(annealed_schedule):
    """Check ``annealed_schedule(sigma_max, sigma_min, n_levels, eps) -> (sigmas, step_sizes)``, each ``(L,)``."""
    for sigma_max, sigma_min, n_levels, eps in _SCHEDULES:
        setting = f"annealed_schedule({sigma_max}, {sigma_min}, {n_levels}, eps={eps})"
        out = attempt(annealed_schedule, sigma_max, sigma_min, n_levels, eps)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise ExerciseError(f"{setting} must return two arrays, (sigmas, step_sizes); got {type(out).__name__}"
                                f"{'' if not isinstance(out, tuple | list) else f' of length {len(out)}'}.")
        sigmas, steps = _schedule_reference(sigma_max, sigma_min, n_levels, eps)
        got_sigmas, got_steps = out
        args = (sigma_max, sigma_min, n_levels, eps)
        compare(got_sigmas, sigmas, what=f"sigmas, the first array returned by {setting},", rtol=1e-4, atol=0,
                known=known(_LEVEL_SLIPS, *args, output=lambda slip, a=args: slip(*a)[0]))
        compare(got_steps, steps, what=f"step_sizes, the second array returned by {setting},", rtol=1e-4, atol=0,
                known=known(_STEP_SLIPS, *args, output=lambda slip, a=args: slip(*a)[1]))
    return (f"Geometric levels and steps a_i = eps sigma_i^2 / sigma_L^2, as sl.samplers.annealed_langevin takes "
            f"them, on {len(_SCHEDULES)} settings.")


# Noise-conditional score functions: the exact perturbed scores of mixtures the notebook does not show (2D and 1D),
# and a deliberately imperfect model (a network is never exact), each evaluated at a level that is neither 1 nor 0.
_MIX_2D = GaussianMixture(means=[[-1.5, 0.5], [2.0, -1.0]], covs=[[[0.6, 0.2], [0.2, 0.4]], np.eye(2) * 0.3],
                          weights=[0.35, 0.65])
_MIX_1D = GaussianMixture(means=[[-2.0], [1.0]], covs=[[[0.25]], [[1.5]]], weights=[0.5, 0.5])


def _imperfect_2d(x, sigma):
    """``sigma`` is a scalar (the student's call) or one level per point (``ncsn_loss``'s call)."""
    return 0.8 * _MIX_2D.perturbed_score(x, sigma) + 0.3 * jnp.sin(x) / jnp.reshape(jnp.asarray(sigma), (-1, 1))


def _level_cases():
    """(description, score_fn, x, z, sigma), with z drawn as sl.losses.ncsn_loss draws it from its key."""
    x2 = _MIX_2D.sample(jax.random.key(51), 40)
    x1 = _MIX_1D.sample(jax.random.key(52), 30)
    cases = []
    for name, fn, x, sigma, seed in (("a 2D mixture's exact score", _MIX_2D.perturbed_score, x2, 0.6, 53),
                                     ("a 2D mixture's exact score", _MIX_2D.perturbed_score, x2, 3.0, 54),
                                     ("an imperfect 2D model", _imperfect_2d, x2, 0.4, 55),
                                     ("a 1D mixture's exact score", _MIX_1D.perturbed_score, x1, 0.25, 56)):
        key = jax.random.key(seed)
        z = jax.random.normal(jax.random.split(key)[1], x.shape, x.dtype)
        cases.append((name, fn, x, z, sigma, key))
    return cases


def _loss_reference(score_fn, x, z, sigma):
    return 0.5 * jnp.sum((sigma * score_fn(x + sigma * z, sigma) + z) ** 2, axis=1)


def _loss_flipped(score_fn, x, z, sigma):
    return 0.5 * jnp.sum((sigma * score_fn(x + sigma * z, sigma) - z) ** 2, axis=1)


def _loss_unweighted(score_fn, x, z, sigma):
    return 0.5 * jnp.sum((score_fn(x + sigma * z, sigma) + z / sigma) ** 2, axis=1)


def _loss_weight_sigma(score_fn, x, z, sigma):
    return sigma * _loss_unweighted(score_fn, x, z, sigma)


def _loss_clean_point(score_fn, x, z, sigma):
    return 0.5 * jnp.sum((sigma * score_fn(x, sigma) + z) ** 2, axis=1)


def _loss_no_half(score_fn, x, z, sigma):
    return 2 * _loss_reference(score_fn, x, z, sigma)


def _loss_mean(score_fn, x, z, sigma):
    return jnp.mean(_loss_reference(score_fn, x, z, sigma))


_LOSS_SLIPS = {
    "flipped sign of z": Slip(
        _loss_flipped, "the sign of z is flipped: the target of s is the kernel's score -z / sigma, so the weighted "
        "residual is sigma s(x + sigma z, sigma) + z (section 2)."),
    "no weight lambda": Slip(
        _loss_unweighted, "this is the unweighted term 0.5 |s + z / sigma|^2; multiply it by lambda(sigma) = "
        "sigma^2, which gives 0.5 |sigma s + z|^2, of order d at every level (section 2)."),
    "weight sigma": Slip(
        _loss_weight_sigma, "the term is weighted by sigma, not by lambda(sigma) = sigma^2: 0.5 |sigma s + z|^2."),
    "the network at the clean point": Slip(
        _loss_clean_point, "the network must be evaluated at the noisy point x + sigma z (the clean point x is what "
        "the denoiser should point back to), with the level sigma."),
    "no 1/2": Slip(_loss_no_half, "it is twice the correct value: the factor 1/2 in front of |sigma s + z|^2 is "
                   "missing."),
    "the mean, not per point": Slip(_loss_mean, words="shape"),
}


@register("05", reference=_loss_reference, mistakes=_LOSS_SLIPS)
def check_ncsn_level_loss(ncsn_level_loss):
    """Check ``ncsn_level_loss(score_fn, x, z, sigma) -> (n,)``, one level's sigma^2-weighted DSM term per point."""
    cases = _level_cases()
    for name, fn, x, z, sigma, key in cases:
        got = attempt(ncsn_level_loss, fn, x, z, sigma)
        expected = ncsn_loss(fn, x, key, [sigma], reduction="none")  # the same z: drawn from the same key
        args = (fn, x, z, sigma)
        if agrees(got, expected, rtol=1e-4, atol=1e-5):
            continue
        compare(got, expected, what=f"ncsn_level_loss on {name} at sigma = {sigma}", inputs=np.asarray(x),
                rtol=1e-4, atol=1e-5, known=known(_LOSS_SLIPS, *args))
    return (f"Matches sl.losses.ncsn_loss(score_fn, x, key, [sigma], reduction='none') on {len(cases)} score functions "
            "and levels, with the same z.")
