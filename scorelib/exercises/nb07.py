"""Checks for notebook 07's coding exercises: the VP probability-flow ODE's drift and its exact divergence."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from scorelib.data import GaussianMixture
from scorelib.exercises._core import Slip, agrees, attempt, compare, known, register
from scorelib.sde import VPSDE, mixture_score, ode_drift

__all__ = ["check_vp_ode_drift", "check_vp_ode_divergence"]

# VP schedules the notebook does not use (its own is beta from 0.1 to 20), and mixtures it does not show: one
# anisotropic Gaussian (whose divergence has a closed form) and three tilted components.
_SCHEDULES = ((0.5, 12.0), (0.1, 30.0))
_GAUSSIAN = GaussianMixture(means=[[1.5, -0.5]], covs=[[[2.0, 0.8], [0.8, 0.5]]], weights=[1.0])
_MIXTURE = GaussianMixture(
    means=[[2.0, 1.0], [-1.5, 2.5], [0.0, -2.0]],
    covs=[[[0.3, 0.1], [0.1, 0.2]], [[0.5, -0.2], [-0.2, 0.3]], [[0.05, 0.0], [0.0, 0.8]]],
    weights=[0.5, 0.3, 0.2],
)


def _inputs(mixture, beta_min, beta_max, n=24, seed=0):
    """n points of p_t at n times spread over (0, 1] (one time per point), and the exact score of p_t."""
    sde = VPSDE(beta_min=beta_min, beta_max=beta_max)
    t = jnp.asarray(np.random.default_rng(seed).permutation(np.linspace(0.02, 1.0, n)), jnp.float32)
    z = jax.random.normal(jax.random.key(seed), (n, 2))
    x0 = mixture.sample(jax.random.key(seed + 1), n)
    x = sde.mean_coeff(t)[:, None] * x0 + sde.std(t)[:, None] * z
    return sde, mixture_score(mixture, sde), x, t




def _beta(t, beta_min, beta_max):
    return (beta_min + t * (beta_max - beta_min))[:, None]


# ---------------------------------------------------------------------------------------------------------------
# Exercise 5: the probability-flow ODE's drift, f - g^2 s / 2, for the VP SDE
# ---------------------------------------------------------------------------------------------------------------

@partial(jax.jit, static_argnums=(0, 3, 4))  # compiled once, not one operation at a time
def _drift_reference(score_fn, x, t, beta_min, beta_max):
    sde = VPSDE(beta_min=beta_min, beta_max=beta_max)  # ode_drift takes one time: map it over the points
    return jax.vmap(lambda p, tp: ode_drift(sde, score_fn, p[None], tp)[0])(x, t)


def _drift_slip(f_sign, score_factor, use_sqrt=False, integrated=False):
    def drift(score_fn, x, t, beta_min, beta_max):
        beta = _beta(t, beta_min, beta_max)
        if integrated:  # the integral of beta from 0 to t, the exponent of the mean coefficient
            beta = (beta_min * t + 0.5 * t**2 * (beta_max - beta_min))[:, None]
        g2 = jnp.sqrt(beta) if use_sqrt else beta
        return -0.5 * f_sign * beta * x + score_factor * g2 * score_fn(x, t)

    return drift


_DRIFT_SLIPS = {
    "flipped sign of the score term": Slip(
        _drift_slip(1, +0.5), "the score term has the wrong sign: the probability-flow drift is f - g(t)^2 s / 2 "
        "(section 4); the score term is subtracted, so that the flow runs towards the data as t decreases."),
    "flipped sign of f": Slip(
        _drift_slip(-1, -0.5), "the drift f = -beta(t) x / 2 has the wrong sign: the VP SDE shrinks x as t grows "
        "(section 1)."),
    "the reverse SDE's drift": Slip(
        _drift_slip(1, -1.0), "this is the reverse-time SDE's drift f - g^2 s (section 2). The probability-flow ODE "
        "has no noise and keeps half the score term: f - g^2 s / 2."),
    "f dropped": Slip(
        _drift_slip(0, -0.5), "the forward drift f(x, t) = -beta(t) x / 2 is missing: the ODE's drift is "
        "f - g^2 s / 2, and for VP f is not 0."),
    "g instead of g^2": Slip(
        _drift_slip(1, -0.5, use_sqrt=True), "g(t)^2 is beta(t) itself, not sqrt(beta(t)): the VP SDE's diffusion "
        "is g = sqrt(beta(t)) (section 1)."),
    "the integral of beta": Slip(
        _drift_slip(1, -0.5, integrated=True), "you used the integral of beta from 0 to t (the exponent of the mean "
        "coefficient a(t)) where beta(t) itself belongs: beta(t) = beta_min + t (beta_max - beta_min)."),
}


@register("07", reference=_drift_reference, mistakes=_DRIFT_SLIPS)
def check_vp_ode_drift(vp_ode_drift):
    """Check ``vp_ode_drift(score_fn, x, t, beta_min, beta_max) -> (n, d)`` against ``sl.sde.ode_drift``."""
    for beta_min, beta_max in _SCHEDULES:
        sde, score_fn, x, t = _inputs(_MIXTURE, beta_min, beta_max)
        args = (score_fn, x, t, beta_min, beta_max)
        got = attempt(vp_ode_drift, *args)
        expected = _drift_reference(*args)
        if agrees(got, expected, 1e-4, 1e-4):
            continue
        compare(got, expected, what=f"vp_ode_drift(..., beta_min={beta_min}, beta_max={beta_max})",
                inputs=np.column_stack([np.asarray(x), np.asarray(t)]), at="(x1, x2, t)", rtol=1e-4, atol=1e-4,
                known=known(_DRIFT_SLIPS, *args))
    return (f"Matches sl.sde.ode_drift for {len(_SCHEDULES)} VP schedules, at times from 0.02 to 1, one time per "
            "point.")


# ---------------------------------------------------------------------------------------------------------------
# Exercise 6: its exact divergence in d = 2
# ---------------------------------------------------------------------------------------------------------------

def _jacobians(drift, score_fn, x, t, beta_min, beta_max):
    """(n, d, d) Jacobians of a drift at each point, one point at a time."""
    def one_point(p, tp):
        return drift(score_fn, p[None], tp[None], beta_min, beta_max)[0]

    return jax.vmap(jax.jacfwd(one_point))(x, t)


@partial(jax.jit, static_argnums=(0, 3, 4))  # one compilation instead of one per operation (a first run is 2 s faster)
def _divergence_reference(score_fn, x, t, beta_min, beta_max):
    return jnp.trace(_jacobians(_drift_reference, score_fn, x, t, beta_min, beta_max), axis1=1, axis2=2)


def _gaussian_divergence(x, t, beta_min, beta_max):
    """Closed form for one Gaussian N(m, C): p_t = N(a m, a^2 C + s^2 I), div = -beta/2 (d - tr (a^2 C + s^2 I)^-1)."""
    sde = VPSDE(beta_min=beta_min, beta_max=beta_max)
    a, s = np.asarray(sde.mean_coeff(t), np.float64), np.asarray(sde.std(t), np.float64)
    cov = np.asarray(_GAUSSIAN.covs[0], np.float64)
    cov_t = a[:, None, None] ** 2 * cov + s[:, None, None] ** 2 * np.eye(2)
    beta = beta_min + np.asarray(t, np.float64) * (beta_max - beta_min)
    return -0.5 * beta * (2 - np.trace(np.linalg.inv(cov_t), axis1=1, axis2=2))


def _score_divergence(score_fn, x, t):
    return jnp.trace(jax.vmap(jax.jacfwd(lambda p, tp: score_fn(p[None], tp[None])[0]))(x, t), axis1=1, axis2=2)


def _div_flipped_score_term(score_fn, x, t, beta_min, beta_max):
    beta = _beta(t, beta_min, beta_max)[:, 0]
    return -0.5 * beta * (x.shape[1] - _score_divergence(score_fn, x, t))


def _div_no_f(score_fn, x, t, beta_min, beta_max):
    return -0.5 * _beta(t, beta_min, beta_max)[:, 0] * _score_divergence(score_fn, x, t)


def _div_reverse_sde(score_fn, x, t, beta_min, beta_max):
    beta = _beta(t, beta_min, beta_max)[:, 0]
    return -0.5 * beta * x.shape[1] - beta * _score_divergence(score_fn, x, t)


def _div_whole_jacobian(score_fn, x, t, beta_min, beta_max):
    return jnp.sum(_jacobians(_drift_reference, score_fn, x, t, beta_min, beta_max), axis=(1, 2))


def _div_score_only(score_fn, x, t, beta_min, beta_max):
    return _score_divergence(score_fn, x, t)


_DIVERGENCE_SLIPS = {
    "flipped sign of the score term": Slip(
        _div_flipped_score_term, "the score term's sign is flipped: the drift is f - g^2 s / 2, so its divergence "
        "is -d beta(t) / 2 minus beta(t) / 2 times the divergence of the score."),
    "the divergence of f dropped": Slip(
        _div_no_f, "the divergence of f = -beta(t) x / 2 is missing: it contributes -d beta(t) / 2 (d = 2 here), "
        "whatever the score."),
    "the reverse SDE's drift": Slip(
        _div_reverse_sde, "this is the divergence of the reverse-time SDE's drift f - g^2 s. The probability-flow "
        "ODE keeps half the score term: f - g^2 s / 2."),
    "the whole Jacobian summed": Slip(
        _div_whole_jacobian, "you summed every entry of the Jacobian. The divergence is its trace, the sum of the "
        "diagonal d f_i / d x_i only (jnp.trace)."),
    "the score's divergence only": Slip(
        _div_score_only, "this is the divergence of the score alone. The log-density changes by the divergence of "
        "the whole drift f - g^2 s / 2 (section 5)."),
}


@register("07", reference=_divergence_reference, mistakes=_DIVERGENCE_SLIPS)
def check_vp_ode_divergence(vp_ode_divergence):
    """Check ``vp_ode_divergence(score_fn, x, t, beta_min, beta_max) -> (n,)``, the exact divergence in d = 2."""
    cases = ((_GAUSSIAN, "a Gaussian"), (_MIXTURE, "a three-component mixture"))
    for (beta_min, beta_max), (mixture, label) in zip(_SCHEDULES, cases, strict=True):
        sde, score_fn, x, t = _inputs(mixture, beta_min, beta_max, seed=3)
        args = (score_fn, x, t, beta_min, beta_max)
        got = attempt(vp_ode_divergence, *args)
        expected = (_gaussian_divergence(x, t, beta_min, beta_max) if mixture is _GAUSSIAN
                    else _divergence_reference(*args))
        if agrees(got, expected, 1e-3, 1e-3):
            continue
        compare(got, expected, what=f"vp_ode_divergence on {label} (beta_min={beta_min}, beta_max={beta_max})",
                inputs=np.column_stack([np.asarray(x), np.asarray(t)]), at="(x1, x2, t)", rtol=1e-3, atol=1e-3,
                known=known(_DIVERGENCE_SLIPS, *args))
    return ("Matches the closed form -beta(t)/2 (d - tr Sigma_t^-1) for a Gaussian, and the trace of jax.jacfwd of "
            "sl.sde.ode_drift for a three-component mixture.")
