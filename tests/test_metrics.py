"""Metrics against closed forms: densities from scores, Fisher divergence, mode shares, energy distance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scorelib as sl


def test_pdf_from_score_recovers_a_mixture():
    mix = sl.data.GaussianMixture([[-3.0], [3.0]], [[[1.0]], [[1.0]]], [0.1, 0.9])
    grid = np.linspace(-10, 10, 801)
    pdf = sl.metrics.pdf_from_score_1d(grid, mix.score(grid[:, None].astype(np.float32)))
    true = np.exp(np.asarray(mix.log_prob(grid[:, None].astype(np.float32))))
    assert np.trapezoid(np.abs(pdf - true), grid) < 1e-3


def test_pdf_from_score_of_a_linear_score_is_the_gaussian():
    # s(x) = -(x - m) / v integrates to the N(m, v) density; (m,) and (m, 1) scores agree.
    grid = np.linspace(-6, 8, 1401)
    m, v = 1.0, 1.5
    scores = -(grid - m) / v
    gauss = np.exp(-0.5 * (grid - m) ** 2 / v) / np.sqrt(2 * np.pi * v)
    np.testing.assert_allclose(sl.metrics.pdf_from_score_1d(grid, scores), gauss, atol=1e-5)
    np.testing.assert_array_equal(
        sl.metrics.pdf_from_score_1d(grid, scores[:, None]), sl.metrics.pdf_from_score_1d(grid, scores)
    )


@pytest.mark.parametrize(
    "grid, scores, match",
    [
        (np.linspace(0, 1, 5), np.ones(4), "one value per grid point"),
        (np.array([0.0, 1.0, 1.0]), np.ones(3), "strictly increasing"),
        (np.array([0.0]), np.ones(1), "at least two"),
        (np.linspace(0, 1, 3), np.array([0.0, np.nan, 0.0]), "finite"),
    ],
)
def test_pdf_from_score_bad_inputs(grid, scores, match):
    with pytest.raises(ValueError, match=match):
        sl.metrics.pdf_from_score_1d(grid, scores)


def test_fisher_divergence_of_a_shifted_score():
    x = jax.random.normal(jax.random.key(11), (100, 3))
    # s - s* = 0.2 in each of 3 coordinates: 0.5 * 3 * 0.04 at every point.
    assert sl.metrics.fisher_divergence(lambda y: -y + 0.2, lambda y: -y, x) == pytest.approx(0.06, rel=1e-5)
    # A scaled score: s - s* = 0.5 x, so 0.5 * mean(0.25 |x|^2).
    expected = 0.125 * float(jnp.mean(jnp.sum(x**2, axis=1)))
    assert sl.metrics.fisher_divergence(lambda y: -0.5 * y, lambda y: -y, x) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="callable"):
        sl.metrics.fisher_divergence(None, lambda y: -y, x)


def test_estimate_prints_at_the_precision_of_its_error():
    assert str(sl.metrics.Estimate(0.1234, 0.0123)) == "0.12 ± 0.01"
    assert str(sl.metrics.Estimate(1234.5, 56.0)) == "1230 ± 60"
    assert str(sl.metrics.Estimate(-0.51949, 0.0449)) == "-0.52 ± 0.04"
    assert "nan" in str(sl.metrics.Estimate(1.0, float("nan")))
    assert str(sl.metrics.Estimate(-23.221779437, 7e-15)) == "-23.2 ± 0"  # no spread: no spurious digits
    assert f"{sl.metrics.Estimate(0.1234, 0.0123):>12}" == " 0.12 ± 0.01"


def test_mean_with_se():
    est = sl.metrics.mean_with_se([1.0, 2.0, 3.0, 4.0])
    assert est.value == pytest.approx(2.5)
    assert est.se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    with pytest.raises(ValueError, match="1D array of at least 2"):
        sl.metrics.mean_with_se([1.0])
    with pytest.raises(ValueError, match="finite"):
        sl.metrics.mean_with_se([1.0, np.nan])


def test_standard_errors_match_the_spread_over_repeats():
    # The reported standard error must be the standard deviation of the estimate over independent
    # repeats (to 20%: 300 repeats give the spread to about 4%), for the Fisher divergence and for the
    # energy distance of two distributions that differ (where its first-order error is the whole error).
    keys = jax.random.split(jax.random.key(13), 300)
    fisher = [sl.metrics.fisher_divergence(lambda y: -0.5 * y, lambda y: -y, jax.random.normal(k, (200, 2)),
                                           return_se=True) for k in keys]
    values, ses = np.array(fisher).T
    assert values.mean() == pytest.approx(0.25, rel=0.02)  # 0.5 * 0.25 * E|x|^2 = 0.25
    assert np.mean(ses) == pytest.approx(values.std(ddof=1), rel=0.2)
    assert fisher[0].value == pytest.approx(sl.metrics.fisher_divergence(lambda y: -0.5 * y, lambda y: -y,
                                                                         jax.random.normal(keys[0], (200, 2))))
    rng = np.random.default_rng(3)
    energy = [sl.metrics.energy_distance(rng.normal(size=(150, 2)), rng.normal(size=(100, 2)) + [1.0, 0.0],
                                         return_se=True) for _ in range(300)]
    values, ses = np.array(energy).T
    assert np.mean(ses) == pytest.approx(values.std(ddof=1), rel=0.2)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(30, 2))
    assert sl.metrics.energy_distance(x, y, return_se=True).value == sl.metrics.energy_distance(x, y)


def test_mode_shares():
    x = np.array([[5.0, 5.0], [4.0, 6.0], [-5.0, -4.0], [6.0, 5.0]])
    np.testing.assert_allclose(sl.metrics.mode_shares(x, [[5, 5], [-5, -5]]), [0.75, 0.25])
    # A center no point is nearest to gets share 0, and the shares sum to 1.
    shares = sl.metrics.mode_shares(x, [[5, 5], [100, 100], [-5, -5]])
    np.testing.assert_allclose(shares, [0.75, 0.0, 0.25])
    # Samples of a mixture: shares near the weights when the modes are far apart.
    mix = sl.data.GaussianMixture([[-6.0, 0.0], [6.0, 0.0]], [np.eye(2), np.eye(2)], [0.3, 0.7])
    shares = sl.metrics.mode_shares(mix.sample(jax.random.key(0), 20_000), mix.means)
    np.testing.assert_allclose(shares, [0.3, 0.7], atol=0.015)  # 4.6 binomial standard errors
    with pytest.raises(ValueError, match="2 columns"):
        sl.metrics.mode_shares(x, [[1.0, 2.0, 3.0]])


def energy_distance_by_loops(x, y):
    def mean_dist(a, b):
        return np.mean([np.linalg.norm(p - q) for p in a for q in b])

    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def test_energy_distance_closed_forms():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    assert sl.metrics.energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)  # identical samples
    # Two point masses a and b: 2 |a - b| - 0 - 0.
    a, b = np.array([1.0, -2.0, 0.5]), np.array([-1.0, 0.0, 3.0])
    expected = 2 * np.linalg.norm(a - b)
    assert sl.metrics.energy_distance(np.tile(a, (3, 1)), np.tile(b, (5, 1))) == pytest.approx(expected, rel=1e-12)
    # Any two samples: the all-pairs (V-statistic) formula, written with loops; symmetric and >= 0.
    y = rng.normal(size=(20, 3)) + 0.5
    got = sl.metrics.energy_distance(x, y)
    assert got == pytest.approx(energy_distance_by_loops(x, y), rel=1e-10)
    assert got == pytest.approx(sl.metrics.energy_distance(y, x), rel=1e-12) and got > 0
    with pytest.raises(ValueError, match="3 columns"):
        sl.metrics.energy_distance(x, np.ones((4, 2)))


def test_energy_distance_separates_distributions():
    k1, k2, k3 = jax.random.split(jax.random.key(12), 3)
    a, b = jax.random.normal(k1, (700, 2)), jax.random.normal(k2, (500, 2))
    shifted = jax.random.normal(k3, (500, 2)) + jnp.array([1.0, 0.0])
    same, diff = sl.metrics.energy_distance(a, b), sl.metrics.energy_distance(a, shifted)
    assert abs(same) < 0.02 and diff > 0.3
