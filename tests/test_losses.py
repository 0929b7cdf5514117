"""Every loss against its closed form for Gaussian data and a linear score s(x) = A x + b."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scorelib as sl

D = 3
A = np.array([[-1.2, 0.3, 0.0], [0.1, -0.8, 0.2], [0.0, -0.4, -1.5]], dtype=np.float32)
B = np.array([0.2, -0.1, 0.4], dtype=np.float32)
MU = np.array([0.5, -1.0, 0.3])
L_CHOL = np.array([[1.0, 0.0, 0.0], [0.4, 0.8, 0.0], [-0.2, 0.3, 0.6]])
SIGMA = L_CHOL @ L_CHOL.T


def linear_score(x):
    return x @ A.T + B


def gaussian_sample(key, n):
    z = jax.random.normal(key, (n, D))
    return jnp.asarray(MU, jnp.float32) + z @ jnp.asarray(L_CHOL.T, jnp.float32)


def second_moment(mu, cov):
    """E||A x + b||^2 for x ~ N(mu, cov)."""
    m = A @ mu + B
    return m @ m + np.trace(A @ cov @ A.T)


def test_ism_exact_on_sample_moments():
    x = gaussian_sample(jax.random.key(0), 2000)
    xn = np.asarray(x, np.float64)
    mu, cov = xn.mean(0), np.cov(xn.T, bias=True)
    expected = 0.5 * second_moment(mu, cov) + np.trace(A)
    np.testing.assert_allclose(float(sl.losses.ism_loss(linear_score, x)), expected, rtol=1e-4)


def test_regularised_ism_adds_squared_diagonal():
    x = gaussian_sample(jax.random.key(1), 500)
    reg = 0.3
    gap = float(sl.losses.ism_loss(linear_score, x, reg=reg) - sl.losses.ism_loss(linear_score, x))
    np.testing.assert_allclose(gap, reg * np.sum(np.diag(A) ** 2), rtol=1e-4)


def test_ism_equals_fisher_divergence_minus_constant():
    # For N(mu, Sigma) the true score is -P (x - mu); ISM + 0.5 E|s*|^2 = Fisher divergence.
    P = np.linalg.inv(SIGMA)
    x = gaussian_sample(jax.random.key(2), 200_000)

    def true_score(x):
        return -(x - MU.astype(np.float32)) @ P.T.astype(np.float32)

    ism = float(sl.losses.ism_loss(linear_score, x))
    const = 0.5 * float(jnp.mean(jnp.sum(true_score(x) ** 2, 1)))
    fisher = sl.metrics.fisher_divergence(linear_score, true_score, x)
    np.testing.assert_allclose(ism + const, fisher, rtol=2e-3, atol=2e-3)


def test_jacobian_diagonal_matches_jacfwd():
    params = sl.nets.mlp_init(jax.random.key(3), [D, 16, 16, D])

    def score_fn(x):
        return sl.nets.mlp_apply(params, x)

    x = gaussian_sample(jax.random.key(4), 7)
    _, diag = jax.jit(lambda x: sl.losses.jacobian_diagonal(score_fn, x))(x)
    full = jax.vmap(jax.jacfwd(lambda p: score_fn(p[None])[0]))(x)
    np.testing.assert_allclose(diag, jnp.diagonal(full, axis1=1, axis2=2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variance_reduced", [False, True])
@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
def test_ssm_averaged_over_projections_equals_ism(variance_reduced, projection):
    params = sl.nets.mlp_init(jax.random.key(5), [D, 32, D])

    def score_fn(x):
        return sl.nets.mlp_apply(params, x)

    x = gaussian_sample(jax.random.key(6), 64)
    ism = float(sl.losses.ism_loss(score_fn, x))
    ssm = float(
        jax.jit(
            lambda x, k: sl.losses.ssm_loss(
                score_fn, x, k, n_projections=4000, variance_reduced=variance_reduced, projection=projection
            )
        )(x, jax.random.key(7))
    )
    np.testing.assert_allclose(ssm, ism, atol=0.02 * (1 + abs(ism)))


def test_ssm_with_rademacher_in_1d_is_exact_ism():
    # In 1D v = +-1, so v J v = J and (v s)^2 = s^2: every single projection is exact.
    params = sl.nets.mlp_init(jax.random.key(8), [1, 8, 1])

    def score_fn(x):
        return sl.nets.mlp_apply(params, x, activation=jax.nn.sigmoid)

    x = jax.random.normal(jax.random.key(9), (100, 1))
    ssm = sl.losses.ssm_loss(score_fn, x, jax.random.key(10), projection="rademacher")
    np.testing.assert_allclose(float(ssm), float(sl.losses.ism_loss(score_fn, x)), rtol=1e-5)


def test_ssm_linear_score_closed_form():
    # For a linear score the SSM expectation over x and v is 0.5 E|s|^2 + tr A, as ISM.
    x = gaussian_sample(jax.random.key(11), 100_000)
    expected = 0.5 * second_moment(MU, SIGMA) + np.trace(A)
    got = float(sl.losses.ssm_loss(linear_score, x, jax.random.key(12)))
    np.testing.assert_allclose(got, expected, rtol=0.02)


def test_dsm_closed_form():
    # s(x + sigma z) + z/sigma = A x + b + (sigma A + I/sigma) z.
    sigma = 0.4
    x = gaussian_sample(jax.random.key(13), 200_000)
    M = sigma * A + np.eye(D) / sigma
    expected = 0.5 * (second_moment(MU, SIGMA) + np.sum(M**2))
    got = float(sl.losses.dsm_loss(linear_score, x, jax.random.key(14), sigma))
    np.testing.assert_allclose(got, expected, rtol=0.01)


def test_ncsn_closed_form():
    sigmas = np.array([2.0, 1.0, 0.5, 0.25])
    x = gaussian_sample(jax.random.key(15), 400_000)
    m2 = second_moment(MU, SIGMA)
    per_level = [s**2 * m2 + np.sum((s**2 * A + np.eye(D)) ** 2) for s in sigmas]
    expected = 0.5 * np.mean(per_level)
    got = float(sl.losses.ncsn_loss(lambda x, s: linear_score(x), x, jax.random.key(16), sigmas))
    np.testing.assert_allclose(got, expected, rtol=0.01)


def monte_carlo_over_keys(loss, x, n_keys, seed):
    """Per-point loss values averaged over ``n_keys`` keys, and their standard errors."""
    keys = jax.random.split(jax.random.key(seed), n_keys)
    values = np.asarray(jax.jit(jax.vmap(lambda k: loss(x, k)))(keys), np.float64)  # (n_keys, n)
    return values.mean(0), values.std(0) / np.sqrt(n_keys)


def test_ncsn_single_level_matches_the_conditional_closed_form():
    # With one level, for a fixed point x and z ~ N(0, I):
    #   sigma s(x + sigma z) + z = sigma (A x + b) + (sigma^2 A + I) z, so
    #   E_z 0.5 |.|^2 = 0.5 (sigma^2 |A x + b|^2 + |sigma^2 A + I|_F^2),
    # which is sigma^2 times the DSM expectation 0.5 (|A x + b|^2 + |sigma A + I / sigma|_F^2).
    # Averaged over many keys, per point, whatever the loss does with its key.
    sigma = 0.7
    x = gaussian_sample(jax.random.key(17), 40)
    m = np.asarray(x, np.float64) @ A.T + B
    expected = 0.5 * (sigma**2 * np.sum(m**2, axis=1) + np.sum((sigma**2 * A + np.eye(D)) ** 2))

    ncsn, ncsn_se = monte_carlo_over_keys(
        lambda x, k: sl.losses.ncsn_loss(lambda y, s: linear_score(y), x, k, [sigma], reduction="none"), x, 4000, 18
    )
    dsm, dsm_se = monte_carlo_over_keys(
        lambda x, k: sl.losses.dsm_loss(linear_score, x, k, sigma, reduction="none"), x, 4000, 19
    )
    assert np.all(np.abs(ncsn - expected) < 5 * ncsn_se)
    assert np.all(np.abs(sigma**2 * dsm - expected) < 5 * sigma**2 * dsm_se)
    # The standard errors are small enough for this to be a sharp check (a few percent of the values).
    assert np.all(ncsn_se < 0.03 * expected)


def test_ncsn_loss_receives_one_level_per_point_from_the_list():
    # Every level is drawn (uniformly), each point's network call gets its own level, and no other value.
    sigmas = [4.0, 2.0, 1.0, 0.5]
    seen = []

    def score(x, sigma):
        assert sigma.shape == (x.shape[0],)
        seen.append(sigma)
        return jnp.zeros_like(x)

    x = jnp.zeros((4000, 1))
    per_point = sl.losses.ncsn_loss(score, x, jax.random.key(30), sigmas, reduction="none")
    levels = np.asarray(seen[0])
    assert set(np.unique(levels)) == set(np.float32(sigmas))
    np.testing.assert_allclose([np.mean(levels == s) for s in sigmas], 0.25, atol=0.03)
    # With a zero score the per-point loss is 0.5 |z|^2, independent of the level: chi-square mean 0.5 d.
    assert float(per_point.mean()) == pytest.approx(0.5, abs=0.05)


def test_reduction_none_gives_per_point_values_whose_mean_is_the_loss():
    x = gaussian_sample(jax.random.key(22), 16)
    key = jax.random.key(23)
    calls = {
        "ism": lambda r: sl.losses.ism_loss(linear_score, x, reg=0.2, reduction=r),
        "ssm": lambda r: sl.losses.ssm_loss(linear_score, x, key, n_projections=3, reduction=r),
        "dsm": lambda r: sl.losses.dsm_loss(linear_score, x, key, 0.3, reduction=r),
        "ncsn": lambda r: sl.losses.ncsn_loss(lambda y, s: linear_score(y), x, key, [1.0, 0.5], reduction=r),
    }
    for name, call in calls.items():
        per_point, mean = call("none"), call("mean")
        assert per_point.shape == (16,), name
        assert mean.shape == (), name
        np.testing.assert_allclose(float(jnp.mean(per_point)), float(mean), rtol=1e-6, err_msg=name)
        assert len(np.unique(np.asarray(per_point))) > 1, name  # really one value per point
    # ISM per point is a closed form: 0.5 |A x + b|^2 + tr A + reg * sum diag(A)^2.
    m = np.asarray(x, np.float64) @ A.T + B
    expected = 0.5 * np.sum(m**2, axis=1) + np.trace(A) + 0.2 * np.sum(np.diag(A) ** 2)
    np.testing.assert_allclose(calls["ism"]("none"), expected, rtol=1e-5)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: sl.losses.ism_loss(linear_score, jnp.ones((4, 3)), reduction=r),
        lambda r: sl.losses.ssm_loss(linear_score, jnp.ones((4, 3)), jax.random.key(0), reduction=r),
        lambda r: sl.losses.dsm_loss(linear_score, jnp.ones((4, 3)), jax.random.key(0), 0.5, reduction=r),
        lambda r: sl.losses.ncsn_loss(lambda y, s: y, jnp.ones((4, 3)), jax.random.key(0), [1.0], reduction=r),
    ],
    ids=["ism", "ssm", "dsm", "ncsn"],
)
@pytest.mark.parametrize("reduction", ["sum", "MEAN", None])
def test_bad_reduction_raises(call, reduction):
    with pytest.raises(ValueError, match="reduction must be 'mean'"):
        call(reduction)


def test_losses_are_differentiable_and_finite():
    params = sl.nets.mlp_init(jax.random.key(19), [2, 16, 2])
    x = jax.random.normal(jax.random.key(20), (32, 2))
    key = jax.random.key(21)
    for loss in (
        lambda p: sl.losses.ism_loss(lambda y: sl.nets.mlp_apply(p, y), x, reg=0.1),
        lambda p: sl.losses.ssm_loss(lambda y: sl.nets.mlp_apply(p, y), x, key),
        lambda p: sl.losses.dsm_loss(lambda y: sl.nets.mlp_apply(p, y), x, key, 0.3),
        lambda p: sl.losses.ncsn_loss(lambda y, s: sl.nets.mlp_apply(p, y) / s[:, None], x, key, [1.0, 0.1]),
    ):
        grads = jax.jit(jax.grad(loss))(params)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sl.losses.ism_loss(linear_score, jnp.ones(5)), r"\(n, d\)"),
        (lambda: sl.losses.ism_loss(linear_score, jnp.array([[jnp.nan, 0.0, 0.0]])), "NaN"),
        (lambda: sl.losses.ism_loss(linear_score, jnp.ones((4, 3)), reg=-1.0), "reg"),
        (lambda: sl.losses.dsm_loss(linear_score, jnp.ones((4, 3)), jax.random.key(0), 0.0), "sigma"),
        (
            lambda: sl.losses.ssm_loss(linear_score, jnp.ones((4, 3)), jax.random.key(0), n_projections=0),
            "n_projections",
        ),
        (lambda: sl.losses.ssm_loss(linear_score, jnp.ones((4, 3)), jax.random.key(0), projection="x"), "projection"),
        (lambda: sl.losses.ncsn_loss(linear_score, jnp.ones((4, 3)), jax.random.key(0), [1.0, -1.0]), "positive"),
        (lambda: sl.losses.ism_loss("not a function", jnp.ones((4, 3))), "callable"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
