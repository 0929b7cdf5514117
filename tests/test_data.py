"""Distributions: scores equal autodiff of log densities, densities integrate to 1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import scorelib as sl

MIX_2D = sl.data.GaussianMixture(
    means=[[-1, -1], [1, 1], [1, -1]],
    covs=[[[0.5, 0.3], [0.3, 0.5]], [[0.5, 0.3], [0.3, 0.5]], [[0.5, 0], [0, 0.5]]],
    weights=[0.2, 0.2, 0.6],
)
MIX_1D = sl.data.GaussianMixture(means=[[-3.0], [3.0]], covs=[[[1.0]], [[1.0]]], weights=[0.1, 0.9])


def autodiff_score(dist, x):
    return jax.jit(jax.vmap(jax.grad(lambda p: dist.log_prob(p[None])[0])))(x)


@pytest.mark.parametrize(
    "dist", [MIX_1D, MIX_2D, MIX_2D.perturbed(0.5), sl.data.Ring(2.0, 0.1), sl.data.Ring(1.0, 0.6)]
)
def test_score_is_gradient_of_log_prob(dist):
    x = dist.sample(jax.random.key(0), 200) + 0.3 * jax.random.normal(jax.random.key(1), (200, dist.dim))
    np.testing.assert_allclose(jax.jit(dist.score)(x), autodiff_score(dist, x), rtol=2e-4, atol=2e-4)


def test_mixture_1d_log_prob_matches_scipy():
    from scipy.stats import norm

    x = np.linspace(-8, 8, 41)[:, None].astype(np.float32)
    expected = np.log(0.1 * norm.pdf(x[:, 0], -3, 1) + 0.9 * norm.pdf(x[:, 0], 3, 1))
    np.testing.assert_allclose(MIX_1D.log_prob(x), expected, rtol=1e-5, atol=1e-5)


def test_mixture_score_stable_far_away():
    x = jnp.array([[60.0], [-60.0]])
    s = MIX_1D.score(x)
    assert bool(jnp.all(jnp.isfinite(s)))
    np.testing.assert_allclose(s[:, 0], [3.0 - 60.0, -3.0 + 60.0], rtol=1e-5)


def test_mixture_2d_density_integrates_to_one():
    X, Y, pts = sl.plotting.grid_2d((-7, 7), (-7, 7), 281)
    p = np.exp(np.asarray(MIX_2D.log_prob(pts))).reshape(X.shape)
    total = integrate.trapezoid(integrate.trapezoid(p, X[0], axis=1), Y[:, 0])
    np.testing.assert_allclose(total, 1.0, atol=1e-4)


@pytest.mark.parametrize("radius, std", [(2.0, 0.1), (1.0, 0.6)])
def test_ring_density_integrates_to_one(radius, std):
    ring = sl.data.Ring(radius, std)
    # In polar coordinates the plane integral is  int_0^inf p(r) 2 pi r dr.
    r = np.linspace(1e-4, radius + 10 * std, 200_001)
    pts = np.stack([r, np.zeros_like(r)], 1).astype(np.float32)
    dens = np.exp(np.asarray(ring.log_prob(pts), np.float64)) * 2 * np.pi * r
    np.testing.assert_allclose(integrate.trapezoid(dens, r), 1.0, atol=1e-3)


def test_ring_samples_have_the_right_radius():
    ring = sl.data.Ring(2.0, 0.1)
    r = jnp.linalg.norm(ring.sample(jax.random.key(2), 50_000), axis=1)
    np.testing.assert_allclose([float(r.mean()), float(r.std())], [2.0, 0.1], rtol=0.01)


def test_mixture_samples_match_moments():
    x = np.asarray(MIX_2D.sample(jax.random.key(3), 200_000), np.float64)
    w, mu = np.asarray(MIX_2D.weights, np.float64), np.asarray(MIX_2D.means, np.float64)
    mean = w @ mu
    covs = np.asarray(MIX_2D.covs, np.float64)
    cov = sum(wk * (c + np.outer(m - mean, m - mean)) for wk, m, c in zip(w, mu, covs, strict=True))
    np.testing.assert_allclose(x.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.02)


def test_perturbed_adds_variance():
    p = MIX_1D.perturbed(2.0)
    np.testing.assert_allclose(np.asarray(p.covs)[:, 0, 0], [5.0, 5.0])


KDE_8D = sl.data.kde(np.random.default_rng(0).uniform(size=(50, 8)), 0.05)  # isotropic: the matrix-product path


@pytest.mark.parametrize("dist", [MIX_1D, MIX_2D, KDE_8D], ids=["1d", "2d-anisotropic", "kde-8d"])
def test_perturbed_score_matches_perturbed_mixture(dist):
    assert (dist._iso_var is None) == (dist is MIX_2D)  # both code paths are exercised
    x = dist.sample(jax.random.key(5), 64) * 1.5
    # One level per point, traced inside jit: each row matches the score of its own perturbed mixture.
    sigmas = jnp.concatenate([jnp.full(32, 0.1), jnp.full(32, 2.0)])
    per_point = jax.jit(dist.perturbed_score)(x, sigmas)
    for sigma, rows in ((0.1, slice(0, 32)), (2.0, slice(32, 64))):
        np.testing.assert_allclose(per_point[rows], dist.perturbed(sigma).score(x[rows]), rtol=1e-3, atol=1e-4)


def test_perturbed_score_rejects_bad_sigma():
    x = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match="sigma must be positive"):
        MIX_2D.perturbed_score(x, 0.0)
    with pytest.raises(ValueError, match="one level per point"):
        MIX_2D.perturbed_score(x, jnp.ones(4))


def test_kde_is_the_mixture_of_kernels():
    pts = MIX_2D.sample(jax.random.key(6), 50)
    h = 0.3
    q = sl.data.kde(pts, h)
    x = jnp.array([[0.1, -0.2], [2.0, 1.0]])
    sq = jnp.sum((x[:, None] - pts[None]) ** 2, axis=2)
    direct = np.log(np.mean(np.exp(-sq / (2 * h**2)), axis=1) / (2 * np.pi * h**2))
    np.testing.assert_allclose(q.log_prob(x), direct, rtol=1e-5)
    np.testing.assert_allclose(q.score(x), autodiff_score(q, x), rtol=1e-4, atol=1e-4)
    # Far from all points the density underflows in float32, but the score stays finite and points home.
    far = jnp.array([[40.0, 40.0]])
    assert np.all(np.isfinite(q.score(far))) and np.all(q.score(far) < 0)
    with pytest.raises(ValueError, match="bandwidth"):
        sl.data.kde(pts, -1.0)


def test_same_key_same_sample():
    a = MIX_2D.sample(jax.random.key(4), 10)
    b = MIX_2D.sample(jax.random.key(4), 10)
    np.testing.assert_array_equal(a, b)


def test_swiss_roll_matches_sklearn_construction():
    from sklearn.datasets import make_swiss_roll

    ours = np.asarray(sl.data.swiss_roll(jax.random.key(5), 20_000, noise=0.0))
    ref, _ = make_swiss_roll(20_000, noise=0.0, random_state=0)
    ref = ref[:, [0, 2]] / 10.0
    # Noise-free points lie on the same curve: the radius |x| equals t / 10 with t in [1.5 pi, 4.5 pi].
    for pts in (ours, ref):
        r = np.linalg.norm(pts, axis=1) * 10
        assert r.min() >= 1.5 * np.pi - 1e-3 and r.max() <= 4.5 * np.pi + 1e-3
    np.testing.assert_allclose(ours.mean(0), ref.mean(0), atol=0.03)
    np.testing.assert_allclose(ours.std(0), ref.std(0), rtol=0.02)


def test_swiss_roll_centre_line_is_the_noise_free_roll():
    from scipy.spatial.distance import cdist

    t, nodes = sl.data.swiss_roll_centre_line(4000)
    assert t.shape == (4000,) and nodes.shape == (4000, 2) and 1.5 * np.pi < t.min() < t.max() < 4.5 * np.pi
    np.testing.assert_allclose(np.linalg.norm(nodes, axis=1), t / 10, rtol=1e-12)
    on_curve = np.asarray(sl.data.swiss_roll(jax.random.key(6), 2000, noise=0.0))
    assert cdist(on_curve, nodes).min(axis=1).max() < 2e-3  # every noise-free point is within a node spacing
    # Points with noise 0.1 lie at a half-normal distance from the curve: median 0.674 x 0.1, except where two
    # turns of the roll come within a few noise widths of each other
    noisy = np.asarray(sl.data.swiss_roll(jax.random.key(7), 20_000))
    assert np.median(cdist(noisy, nodes).min(axis=1)) == pytest.approx(0.0674, rel=0.05)
    with pytest.raises(ValueError, match="positive integer"):
        sl.data.swiss_roll_centre_line(0)


def test_digits_loader():
    X, y = sl.data.load_digits_01()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0 and set(np.unique(y)) == set(range(10))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(means=[[0.0]], covs=[[[1.0]]], weights=[0.9]), "sum to 1"),
        (dict(means=[[0.0], [1.0]], covs=[[[1.0]], [[1.0]]], weights=[1.2, -0.2]), "non-negative"),
        (dict(means=[[0.0, 0.0]], covs=[[[1.0, 0.5], [0.4, 1.0]]], weights=[1.0]), "symmetric"),
        (dict(means=[[0.0, 0.0]], covs=[[[1.0, 2.0], [2.0, 1.0]]], weights=[1.0]), "positive definite"),
        (dict(means=[0.0, 1.0], covs=[[[1.0]]], weights=[1.0]), r"\(k, d\)"),
        (dict(means=[[0.0]], covs=[[1.0]], weights=[1.0]), r"\(k, d, d\)"),
        (dict(means=[[np.nan]], covs=[[[1.0]]], weights=[1.0]), "NaN"),
    ],
)
def test_mixture_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sl.data.GaussianMixture(**kwargs)


def test_bad_points_and_parameters():
    with pytest.raises(ValueError, match=r"\(n, 1\)"):
        MIX_1D.score(jnp.ones(4))
    with pytest.raises(ValueError, match="2 columns"):
        MIX_2D.log_prob(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="sigma"):
        MIX_2D.perturbed(-1.0)
    with pytest.raises(ValueError, match="std"):
        sl.data.Ring(2.0, 0.0)
    with pytest.raises(ValueError, match="noise"):
        sl.data.swiss_roll(jax.random.key(0), 10, noise=-1.0)


def test_mixture_sample_is_compiled_and_bit_identical_to_op_by_op():
    # One compiled program per sample size (a first call used to compile a dozen operations one by one); the
    # compiled program must give exactly the numbers the operations give one at a time.
    mixtures = (
        sl.data.GaussianMixture(means=[[-2.0], [3.0]], covs=[[[1.0]], [[0.25]]], weights=[0.3, 0.7]),
        sl.data.GaussianMixture(means=[[1.0, -1.0], [-1.0, 1.0], [2.0, 2.0]], weights=[0.6, 0.2, 0.2],
                                covs=[[[0.5, 0.2], [0.2, 0.4]], [[0.3, 0.0], [0.0, 0.3]], [[1.0, -0.5], [-0.5, 1.0]]]),
    )
    for mixture in mixtures:
        for n, seed in ((1, 0), (257, 1), (5000, 2)):
            key = jax.random.key(seed)
            with jax.disable_jit():
                expected = np.asarray(mixture.sample(key, n))
            np.testing.assert_array_equal(np.asarray(mixture.sample(key, n)), expected)


def test_mixture_score_is_compiled_and_matches_op_by_op():
    # The score runs as one compiled program (outside jit, a first call compiled each of its operations one by
    # one); compiled, its operations may be fused, so the two agree to float32 rounding, not bit for bit.
    covs = [[[0.5, 0.2], [0.2, 0.4]], [[0.3, 0.0], [0.0, 0.3]], [[1.0, -0.5], [-0.5, 1.0]]]
    mixture = sl.data.GaussianMixture(means=[[1.0, -1.0], [-1.0, 1.0], [2.0, 2.0]], covs=covs, weights=[0.6, 0.2, 0.2])
    x = jax.random.normal(jax.random.key(0), (300, 2)) * 3
    with jax.disable_jit():
        expected = np.asarray(mixture.score(x))
    np.testing.assert_allclose(np.asarray(mixture.score(x)), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="columns"):
        mixture.score(jnp.zeros((4, 3)))
