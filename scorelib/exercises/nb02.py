"""Checks for notebook 02's coding exercises: the ring's log density and its score."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from scorelib.data import Ring
from scorelib.exercises._core import Slip, agrees, attempt, compare_density, known, register

__all__ = ["check_ring_log_prob", "check_ring_score"]

# Rings and points the notebook does not show: a thin ring, and a wide one whose mirror term matters near the centre.
_RINGS = ((1.3, 0.2), (1.0, 0.6))


def _ring_points(radius, std):
    angle = np.linspace(0.1, 2 * np.pi, 24, endpoint=False)
    r = np.concatenate([np.linspace(0.15, radius + 3 * std, 12)] * 2)
    return np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1).astype(np.float32)


def _ring_reference(x, radius, std):
    return Ring(radius, std).score(jnp.asarray(x))


def _ring_no_mirror(x, radius, std):
    r = jnp.linalg.norm(x, axis=1, keepdims=True)
    return ((radius - r) / std**2 - 1 / r) * x / r


def _ring_no_jacobian(x, radius, std):
    return _ring_reference(x, radius, std) + x / jnp.sum(x**2, axis=1, keepdims=True)


def _ring_blog_formula(x, radius, std):
    return (radius / jnp.linalg.norm(x, axis=1, keepdims=True) - 1) * x


_SCORE_SLIPS = {
    "flipped sign": Slip(lambda x, radius, std: -_ring_reference(x, radius, std), words="wrong sign"),
    "no mirror term": Slip(
        _ring_no_mirror, "the mirror term is missing: a point at distance r also comes from a radius draw of -r on "
        "the opposite side, so add N(-r; R, std^2) to N(r; R, std^2) before differentiating; it matters near the "
        "centre of a wide ring."),
    "no polar Jacobian": Slip(
        _ring_no_jacobian, "the term -x / |x|^2 from the polar Jacobian 1 / (2 pi r) is missing (section 1)."),
    "the blog post's formula": Slip(
        _ring_blog_formula, "this is the blog post's formula (R / r - 1) x, which has the wrong scale (section 1)."),
}


@register("02", reference=_ring_reference, mistakes=_SCORE_SLIPS)
def check_ring_score(ring_score):
    """Check ``ring_score(x, radius, std) -> (n, 2)``, the exact score of the noisy ring, on two unseen rings."""
    for radius, std in _RINGS:
        x = _ring_points(radius, std)
        got = attempt(ring_score, jnp.asarray(x), radius, std)
        args = (jnp.asarray(x), radius, std)
        expected = _ring_reference(*args)
        if agrees(got, expected, rtol=1e-3, atol=1e-3):  # the slips below are computed only for a wrong answer
            continue
        compare_density(got, expected, what=f"ring_score(x, radius={radius}, std={std})", inputs=x,
                        rtol=1e-3, atol=1e-3, known=known(_SCORE_SLIPS, *args))
    return f"Matches sl.data.Ring(...).score on {len(_RINGS)} rings, mirror term and polar Jacobian included."


def _log_prob_reference(x, radius, std):
    return Ring(radius, std).log_prob(jnp.asarray(x))


def _log_prob_no_mirror(x, radius, std):
    r = jnp.linalg.norm(x, axis=1)
    return -0.5 * ((r - radius) / std) ** 2 - jnp.log(std * jnp.sqrt(2 * jnp.pi)) - jnp.log(2 * jnp.pi * r)


def _log_prob_no_jacobian(x, radius, std):
    return _log_prob_reference(x, radius, std) + jnp.log(2 * jnp.pi * jnp.linalg.norm(x, axis=1))


_LOG_PROB_SLIPS = {
    "flipped sign": Slip(lambda x, radius, std: -_log_prob_reference(x, radius, std), words="wrong sign"),
    "no mirror term": Slip(
        _log_prob_no_mirror, "the mirror term is missing: a point at distance r also comes from a radius draw of -r "
        "on the opposite side; add N(-r; R, std^2) to N(r; R, std^2) (with jnp.logaddexp)."),
    "no polar Jacobian": Slip(
        _log_prob_no_jacobian, "the polar Jacobian is missing: a radial density becomes a density in the plane by "
        "dividing by 2 pi r, so subtract log(2 pi r)."),
    "a missing normalising constant": Slip(lambda x, radius, std: _log_prob_reference(x, radius, std) + 1.0,
                                           words="constant"),  # diagnosed below, with the constant
}


@register("02", reference=_log_prob_reference, mistakes=_LOG_PROB_SLIPS)
def check_ring_log_prob(ring_log_prob):
    """Check ``ring_log_prob(x, radius, std) -> (n,)``, the ring's normalised log density in the plane."""
    for radius, std in _RINGS:
        x = _ring_points(radius, std)
        args = (jnp.asarray(x), radius, std)
        got = attempt(ring_log_prob, *args)
        expected = _log_prob_reference(*args)
        if agrees(got, expected, rtol=1e-4, atol=2e-4):  # the slips below are computed only for a wrong answer
            continue
        shift = np.asarray(got, dtype=np.float64) - np.asarray(expected) if np.shape(got) == expected.shape else None
        known_slips = known(_LOG_PROB_SLIPS, *args)
        if shift is not None and np.all(np.isfinite(shift)) and np.ptp(shift) < 1e-3 and abs(shift.mean()) > 1e-3:
            known_slips[f"it is off by the same constant {shift.mean():+.4f} everywhere: a normalising constant is "
                        "missing or wrong (the radial Gaussian's 1 / (std sqrt(2 pi)), or the 2 pi of the "
                        "angle)."] = got
        compare_density(got, expected, what=f"ring_log_prob(x, radius={radius}, std={std})", inputs=x, rtol=1e-4,
                        atol=2e-4, known=known_slips)
    return f"Matches sl.data.Ring(...).log_prob on {len(_RINGS)} rings: normalised, mirror term and Jacobian included."
