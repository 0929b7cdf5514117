"""Checks for notebook 01's coding exercises: a 1D Gaussian mixture's score, and regularised ISM per point."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from scorelib.data import GaussianMixture
from scorelib.exercises._core import Slip, agrees, attempt, compare, compare_density, known, register
from scorelib.losses import ism_loss
from scorelib.nets import mlp_apply, mlp_init

__all__ = ["check_mixture_score_1d", "check_regularised_ism"]

# Mixtures the notebook does not show: unequal widths (so every normalising constant matters), and three components.
_MIXTURES = (
    ((0.3, 0.7), (-1.0, 2.0), (0.5, 1.5)),
    ((0.2, 0.5, 0.3), (-4.0, 0.0, 3.0), (1.0, 0.4, 2.0)),
)
_POINTS = np.linspace(-7.0, 7.0, 57, dtype=np.float32)[:, None]


def _mixture_reference(x, weights, means, stds):
    mixture = GaussianMixture(means=[[m] for m in means], covs=[[[s**2]] for s in stds], weights=weights)
    return mixture.score(jnp.asarray(x))


def _component_terms(x, weights, means, stds):
    """(n, k) arrays: log w_k, log std_k, the squared standardised distance, and the components' own scores."""
    w, mu, sd = (jnp.asarray(a, jnp.float32) for a in (weights, means, stds))
    return jnp.log(w), jnp.log(sd), ((x - mu) / sd) ** 2, (mu - x) / sd**2


def _from_logits(logits, component_scores):
    return jnp.sum(jax.nn.softmax(logits, axis=1) * component_scores, axis=1, keepdims=True)


def _std_not_variance(x, weights, means, stds):
    log_w, log_sd, z2, _ = _component_terms(x, weights, means, stds)
    mu, sd = jnp.asarray(means, jnp.float32), jnp.asarray(stds, jnp.float32)
    return _from_logits(log_w - log_sd - 0.5 * z2, (mu - x) / sd)


def _prior_weights(x, weights, means, stds):
    log_w, _, _, comp = _component_terms(x, weights, means, stds)
    return jnp.sum(jnp.exp(log_w) * comp, axis=1, keepdims=True)


def _no_std_normaliser(x, weights, means, stds):
    log_w, _, z2, comp = _component_terms(x, weights, means, stds)
    return _from_logits(log_w - 0.5 * z2, comp)


def _no_weights(x, weights, means, stds):
    _, log_sd, z2, comp = _component_terms(x, weights, means, stds)
    return _from_logits(-log_sd - 0.5 * z2, comp)


_MIXTURE_SLIPS = {
    "flipped sign": Slip(lambda x, w, m, s: -_mixture_reference(x, w, m, s), words="wrong sign"),
    "standard deviation for variance": Slip(
        _std_not_variance, "it divides by the standard deviation where the variance belongs: the score of N(mu, "
        "std^2) is (mu - x) / std^2 (section 3's straight lines have slope -1 / std^2)."),
    "prior weights for responsibilities": Slip(
        _prior_weights, "it averages the components' scores with the weights w_k. The score of a mixture averages "
        "them with the responsibilities r_k(x) = w_k N(x; mu_k, std_k^2) / p(x), which depend on x: that is why "
        "section 3's score jumps between the modes."),
    "no 1/std in the responsibilities": Slip(
        _no_std_normaliser, "the responsibilities leave out the 1 / std_k of each component's density; it matters "
        "as soon as the components have different widths, as here. Add -log(std_k) to each log term."),
    "no weights in the responsibilities": Slip(
        _no_weights, "the weights w_k are missing from the responsibilities: add log(w_k) to each component's log "
        "density before the softmax."),
}


@register("01", reference=_mixture_reference, mistakes=_MIXTURE_SLIPS)
def check_mixture_score_1d(mixture_score_1d):
    """Check ``mixture_score_1d(x, weights, means, stds) -> (n, 1)``, the score of a 1D Gaussian mixture."""
    for weights, means, stds in _MIXTURES:
        args = (jnp.asarray(_POINTS), weights, means, stds)
        got = attempt(mixture_score_1d, *args)
        expected = _mixture_reference(*args)
        if agrees(got, expected, rtol=1e-4, atol=1e-3):  # the slips below are computed only for a wrong answer
            continue
        compare_density(got, expected, what=f"mixture_score_1d(x, {weights}, {means}, {stds})",
                        inputs=_POINTS, rtol=1e-4, atol=1e-3, known=known(_MIXTURE_SLIPS, *args))
    return (f"Matches sl.data.GaussianMixture(...).score on {len(_MIXTURES)} mixtures with unequal widths, from "
            f"x = {_POINTS[0, 0]:.0f} to {_POINTS[-1, 0]:.0f}.")


# Score models the notebook does not train: a linear score, and a small random network with tanh units.
_NET = mlp_init(jax.random.key(1901), (1, 16, 1))
_MODELS = (
    ("the linear score -1.3 x + 0.4", lambda x: -1.3 * x + 0.4, 0.25),
    ("a random 1-16-1 tanh network", lambda x: mlp_apply(_NET, x, activation=jnp.tanh), 0.05),
)
_X = np.linspace(-3.0, 3.0, 25, dtype=np.float32)[:, None]


def _reg_reference(score_fn, x, lam):
    return ism_loss(score_fn, x, reg=lam, reduction="none")


def _terms(score_fn, x):
    s, ds = jax.jvp(score_fn, (x,), (jnp.ones_like(x),))
    return s[:, 0], ds[:, 0]


def _reg_from(score_fn, x, lam, *, half=0.5, slope_sign=1.0, penalise_score=False):
    s, ds = _terms(score_fn, x)
    penalty = s**2 if penalise_score else ds**2
    return half * s**2 + slope_sign * ds + lam * penalty


_REG_SLIPS = {
    "flipped sign of the derivative term": Slip(
        lambda f, x, lam: _reg_from(f, x, lam, slope_sign=-1.0),
        "the derivative term s'(x) has the wrong sign. Integrating the cross term by parts turns -E[s_theta s*] into "
        "+E[s_theta'] (section 2): the loss is 0.5 s^2 + s' + lam s'^2."),
    "no 1/2": Slip(lambda f, x, lam: _reg_from(f, x, lam, half=1.0),
                   "the factor 1/2 in front of s(x)^2 is missing (section 2: 0.5 s^2 + s')."),
    "penalty on the score": Slip(
        lambda f, x, lam: _reg_from(f, x, lam, penalise_score=True),
        "the penalty is on the score; Kingma & LeCun's regulariser penalises its derivative, lam * s'(x)^2 "
        "(section 8)."),
    "the mean, not per point": Slip(lambda f, x, lam: jnp.mean(_reg_reference(f, x, lam)), words="shape"),
}


@register("01", reference=_reg_reference, mistakes=_REG_SLIPS)
def check_regularised_ism(regularised_ism_per_point):
    """Check ``regularised_ism_per_point(score_fn, x, lam) -> (n,)``: 0.5 s^2 + s' + lam s'^2 at every point."""
    for name, score_fn, lam in _MODELS:
        x = jnp.asarray(_X)
        got = attempt(regularised_ism_per_point, score_fn, x, lam)
        expected = _reg_reference(score_fn, x, lam)
        if agrees(got, expected, rtol=1e-4, atol=1e-4):  # the slips below are computed only for a wrong answer
            continue
        compare(got, expected, what=f"regularised_ism_per_point for {name}, lam = {lam},",
                inputs=_X, rtol=1e-4, atol=1e-4, known=known(_REG_SLIPS, score_fn, x, lam))
    return (f"Matches sl.losses.ism_loss(score_fn, x, reg=lam, reduction='none') on {len(_MODELS)} score models, "
            "so its mean is the regularised loss of section 8.")
