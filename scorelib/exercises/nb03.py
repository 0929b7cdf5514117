"""Checks for notebook 03's coding exercises: the SSM-VR estimator, and Hutchinson's trace with Rademacher probes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from scorelib.data import GaussianMixture
from scorelib.exercises._core import ExerciseError, Slip, agrees, attempt, compare, known, register
from scorelib.losses import jacobian_diagonal, ssm_loss
from scorelib.nets import mlp_apply, mlp_init

__all__ = ["check_ssm_vr", "check_hutchinson_rademacher"]

# Score functions the notebook does not show: a correlated 3D Gaussian mixture (a non-symmetric-looking, dense
# Jacobian), a random 2D network, and an element-wise score whose Jacobian is diagonal.
_MIXTURE_3D = GaussianMixture(
    means=[[-1.0, 0.5, 0.0], [1.5, -0.5, 1.0]],
    covs=[[[1.0, 0.6, 0.2], [0.6, 0.8, -0.3], [0.2, -0.3, 0.5]], [[0.4, -0.1, 0.0], [-0.1, 0.9, 0.4], [0.0, 0.4, 1.2]]],
    weights=[0.4, 0.6],
)
# The points are drawn with NumPy: a JAX draw at import would compile its sampler in every notebook that imports
# the checks (about 0.7 s on a fresh machine).
_RNG = np.random.default_rng(3031)
_COMPONENTS = _RNG.choice(2, 40, p=_MIXTURE_3D._weights_np)
_POINTS_3D = (_MIXTURE_3D._means_np[_COMPONENTS] + np.einsum(
    "nij,nj->ni", np.linalg.cholesky(_MIXTURE_3D._covs_np)[_COMPONENTS], _RNG.standard_normal((40, 3)))
).astype(np.float32)
_NET = mlp_init(jax.random.key(3032), (2, 32, 2))
_POINTS_2D = _RNG.uniform(-2.0, 2.0, (30, 2)).astype(np.float32)


def _net_score(x):
    return mlp_apply(_NET, x)


def _elementwise_score(x):
    return -(x**3) + jnp.sin(x)


def _elementwise_trace(x):
    return jnp.sum(-3 * x**2 + jnp.cos(x), axis=1)


def _draw(kind, key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, dtype) if kind == "gaussian" else jax.random.rademacher(key, shape, dtype)


# --- Exercise 6: SSM-VR per point, given the projections --------------------------------------------------------

def _vr_terms(score_fn, x, v):
    s, jv = jax.jvp(score_fn, (x,), (v,))
    return s, jv


def _ssm_vr_reference(score_fn, x, v):
    s, jv = _vr_terms(score_fn, x, v)
    return jnp.sum(v * jv, axis=1) + 0.5 * jnp.sum(s**2, axis=1)


def _vr_flipped(score_fn, x, v):
    s, jv = _vr_terms(score_fn, x, v)
    return 0.5 * jnp.sum(s**2, axis=1) - jnp.sum(v * jv, axis=1)


def _vr_plain_ssm(score_fn, x, v):
    s, jv = _vr_terms(score_fn, x, v)
    return jnp.sum(v * jv, axis=1) + 0.5 * jnp.sum(v * s, axis=1) ** 2


def _vr_no_v(score_fn, x, v):
    s, jv = _vr_terms(score_fn, x, v)
    return jnp.sum(jv, axis=1) + 0.5 * jnp.sum(s**2, axis=1)


def _vr_no_half(score_fn, x, v):
    s, jv = _vr_terms(score_fn, x, v)
    return jnp.sum(v * jv, axis=1) + jnp.sum(s**2, axis=1)


_VR_CASES = (
    ("a 3D Gaussian mixture's score", lambda x: _MIXTURE_3D.score(x), _POINTS_3D, "gaussian", 3034),
    ("a random 2-32-2 network", _net_score, _POINTS_2D, "rademacher", 3035),
)


_VR_SLIPS = {
    "flipped sign of the trace term": Slip(
        _vr_flipped, "the trace term v . J v has the wrong sign. Hutchinson's estimate replaces tr J, which enters "
        "ISM with a plus sign: v . (J v) + 0.5 |s|^2 (section 4)."),
    "plain SSM's norm term": Slip(
        _vr_plain_ssm, "this is plain SSM, with 0.5 (v . s)^2. SSM-VR replaces that term by its expectation over v, "
        "0.5 |s|^2 (section 4)."),
    "1^T J v for v^T J v": Slip(
        _vr_no_v, "the trace term sums the Jacobian-vector product J v over its coordinates (1 . J v); multiply it "
        "by v first: sum(v * jv, axis=1)."),
    "no 1/2": Slip(_vr_no_half, "the factor 1/2 in front of |s|^2 is missing."),
}


@register("03", reference=_ssm_vr_reference, mistakes=_VR_SLIPS)
def check_ssm_vr(ssm_vr_per_point):
    """Check ``ssm_vr_per_point(score_fn, x, v) -> (n,)``: v_n . J(x_n) v_n + 0.5 |s(x_n)|^2 for every point."""
    for name, score_fn, points, kind, seed in _VR_CASES:
        key = jax.random.key(seed)
        x = jnp.asarray(points)
        v = _draw(kind, key, (1, *x.shape))[0]  # sl.losses.ssm_loss's draw for one projection per point
        expected = ssm_loss(score_fn, x, key, variance_reduced=True, projection=kind, reduction="none")
        got = attempt(ssm_vr_per_point, score_fn, x, v)
        if agrees(got, expected, rtol=1e-4, atol=1e-3):  # the slips below are computed only for a wrong answer
            continue
        compare(got, expected, what=f"ssm_vr_per_point on {name} with {kind} v", inputs=points, rtol=1e-4,
                atol=1e-3, known=known(_VR_SLIPS, score_fn, x, v))
    return (f"Matches sl.losses.ssm_loss(..., variance_reduced=True, reduction='none') with the same v, on "
            f"{len(_VR_CASES)} score functions (Gaussian and Rademacher v).")


# --- Exercise 7: Hutchinson's trace estimate with Rademacher probes ----------------------------------------------

def _probe_trace(score_fn, x, v):
    """Mean over probes v (m, n, d) of v . J v, per point."""
    jv = jax.vmap(lambda u: jax.jvp(score_fn, (x,), (u,))[1])(v)
    return jnp.mean(jnp.sum(v * jv, axis=2), axis=0)


def _trace_reference(score_fn, x, key, n_probes):
    return _probe_trace(score_fn, x, jax.random.rademacher(key, (n_probes, *x.shape), x.dtype))


def _trace_gaussian(score_fn, x, key, n_probes):
    return _probe_trace(score_fn, x, jax.random.normal(key, (n_probes, *x.shape), x.dtype))


def _trace_summed(score_fn, x, key, n_probes):
    return n_probes * _trace_reference(score_fn, x, key, n_probes)


def _trace_no_v(score_fn, x, key, n_probes):
    v = jax.random.rademacher(key, (n_probes, *x.shape), x.dtype)
    jv = jax.vmap(lambda u: jax.jvp(score_fn, (x,), (u,))[1])(v)
    return jnp.mean(jnp.sum(jv, axis=2), axis=0)


def _trace_other_layout(score_fn, x, key, n_probes):
    v = jax.random.rademacher(key, (x.shape[0], n_probes, x.shape[1]), x.dtype)
    return _probe_trace(score_fn, x, jnp.swapaxes(v, 0, 1))


def _trace_split_keys(score_fn, x, key, n_probes):
    v = jnp.stack([jax.random.rademacher(k, x.shape, x.dtype) for k in jax.random.split(key, n_probes)])
    return _probe_trace(score_fn, x, v)


def _exact_trace(score_fn, x, key, n_probes):
    return jnp.sum(jacobian_diagonal(score_fn, x)[1], axis=1)


_TRACE_SLIPS = {
    "flipped sign": Slip(lambda f, x, key, m: -_trace_reference(f, x, key, m), words="wrong sign"),
    "Gaussian probes": Slip(
        _trace_gaussian, "these are Gaussian probes. Rademacher entries are +1 or -1 with probability 1/2 "
        "(jax.random.rademacher); then v_i^2 = 1 exactly, and the diagonal of the Jacobian adds no noise (section "
        "4's variance table)."),
    "summed over probes": Slip(
        _trace_summed, "it sums over the probes; average them (divide by n_probes), so that the estimate's "
        "expectation is the trace."),
    "1^T J v for v^T J v": Slip(
        _trace_no_v, "each probe's term sums the Jacobian-vector product J v over its coordinates (1 . J v); "
        "multiply it by v first: v . (J v)."),
    "another layout of the probes": Slip(
        _trace_other_layout, "the probes are +-1 and averaged, but drawn in another layout than the docstring's, so "
        "the check cannot reproduce them: draw all at once, v = jax.random.rademacher(key, (n_probes, *x.shape), "
        "x.dtype), probe j of point i being v[j, i]."),
    "probes from split keys": Slip(
        _trace_split_keys, "the probes are +-1 and averaged, but drawn from split keys, so the check cannot "
        "reproduce them: draw all at once, v = jax.random.rademacher(key, (n_probes, *x.shape), x.dtype)."),
    "the exact trace": Slip(
        _exact_trace, "it is the exact trace tr J (d Jacobian-vector products, one per basis vector), not "
        "Hutchinson's estimate. Average v . (J v) over the n_probes random probes instead: one product per probe, "
        "whatever d is."),
}


@register("03", reference=_trace_reference, mistakes=_TRACE_SLIPS)
def check_hutchinson_rademacher(rademacher_trace):
    """Check ``rademacher_trace(score_fn, x, key, n_probes) -> (n,)``, Hutchinson's estimate of tr J(x_n)."""
    # 1. A diagonal Jacobian: every Rademacher probe gives the trace exactly, whatever the draw.
    x = jnp.asarray(_POINTS_3D)
    key, n_probes = jax.random.key(3036), 4
    got = attempt(rademacher_trace, _elementwise_score, x, key, n_probes)
    if not agrees(got, _elementwise_trace(x), rtol=1e-4, atol=1e-3):  # slips computed only for a wrong answer
        compare(got, _elementwise_trace(x), what="rademacher_trace on the score -x^3 + sin(x) (a diagonal Jacobian)",
                inputs=_POINTS_3D, rtol=1e-4, atol=1e-3,
                known=known(_TRACE_SLIPS, _elementwise_score, x, key, n_probes))
    # 2. A dense Jacobian: the estimate is random; with the docstring's draw it is reproducible.
    score_fn, key, n_probes = (lambda y: _MIXTURE_3D.score(y)), jax.random.key(3037), 3
    got = attempt(rademacher_trace, score_fn, x, key, n_probes)
    expected = ssm_loss(score_fn, x, key, n_projections=n_probes, variance_reduced=True, projection="rademacher",
                        reduction="none") - 0.5 * jnp.sum(score_fn(x) ** 2, axis=1)
    try:
        if agrees(got, expected, rtol=1e-4, atol=2e-3):
            return _hutchinson_passed(n_probes)
        compare(got, expected, what="rademacher_trace on a 3D Gaussian mixture's score (a dense Jacobian)",
                inputs=_POINTS_3D, rtol=1e-4, atol=2e-3, known=known(_TRACE_SLIPS, score_fn, x, key, n_probes))
    except ExerciseError as err:
        if "furthest off" not in str(err):
            raise
        raise ExerciseError(f"{err} It was exact on the diagonal Jacobian, so your probes are probably +-1; check "
                            "that you draw them as the docstring says, from the key you are given, and that each "
                            "probe's term is v . (J v) with the same v on both sides.") from None
    return _hutchinson_passed(n_probes)


def _hutchinson_passed(n_probes):
    return (f"Exact on a diagonal Jacobian, and matches sl.losses.ssm_loss's Rademacher trace term on a dense one "
            f"({len(_POINTS_3D)} points, {n_probes} probes each).")
