"""Langevin samplers: stationary laws of Gaussian targets, and step-by-step agreement with Python loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import scorelib as sl


def standard_perturbed_score(x, sigma):
    # Data N(0, 1): the perturbed score at level sigma is -x / (1 + sigma^2); sigma is one level per point.
    assert sigma.shape == (x.shape[0],), f"sigma should be one level per point, got shape {sigma.shape}"
    return -x / (1 + sigma[:, None] ** 2)


def test_langevin_samples_a_gaussian_from_its_score():
    mu, s = np.array([1.0, -2.0]), 0.7
    result = sl.samplers.langevin(
        lambda x: (mu - x) / s**2, jnp.zeros((5000, 2)), jax.random.key(7), step_size=0.01, n_steps=1000
    )
    assert isinstance(result, sl.samplers.SamplerResult) and result.trajectory is None
    x = result.samples
    np.testing.assert_allclose(np.mean(x, 0), mu, atol=0.03)
    # The discretised chain's stationary variance is s^2 / (1 - a / (2 s^2)): within 1% here.
    np.testing.assert_allclose(np.std(x, 0), s, rtol=0.03)


def test_langevin_temperature_zero_is_gradient_ascent_and_trajectory():
    result = sl.samplers.langevin(
        lambda x: -x,
        jnp.ones((3, 2)),
        jax.random.key(8),
        step_size=0.1,
        n_steps=10,
        temperature=0.0,
        return_trajectory=True,
    )
    assert result.trajectory.shape == (11, 3, 2)
    # x_t = 0.9^t x_0 at every step, starting with x_0 and ending with the samples.
    expected = 0.9 ** np.arange(11)[:, None, None] * np.ones((11, 3, 2))
    np.testing.assert_allclose(result.trajectory, expected, rtol=1e-5)
    np.testing.assert_array_equal(result.trajectory[-1], result.samples)


def test_langevin_matches_a_python_loop():
    # Step t uses split(key, n_steps)[t]: x <- x + a s(x) + sqrt(2 a T) z.
    score = lambda x: -(x - 1.0) / 0.5  # noqa: E731
    x0, key, a, temp, n = jnp.linspace(-2, 2, 5)[:, None], jax.random.key(3), 0.05, 0.7, 6
    got = sl.samplers.langevin(score, x0, key, step_size=a, n_steps=n, temperature=temp).samples
    y = x0
    for k in jax.random.split(key, n):
        y = y + a * score(y) + np.sqrt(2 * a * temp) * jax.random.normal(k, y.shape)
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-6)


def test_annealed_langevin_with_exact_scores():
    sigmas = np.geomspace(5.0, 0.1, 8)
    result = sl.samplers.annealed_langevin(
        standard_perturbed_score, 8 * jnp.ones((4000, 1)), jax.random.key(9), sigmas=sigmas, eps=5e-4, n_steps_each=200
    )
    assert result.trajectory is None
    x = result.samples
    np.testing.assert_allclose([float(x.mean()), float(x.std())], [0.0, np.sqrt(1 + 0.1**2)], atol=0.05)


def test_annealed_langevin_denoise_and_trajectory():
    result = sl.samplers.annealed_langevin(
        standard_perturbed_score,
        jnp.ones((5, 1)),
        jax.random.key(10),
        sigmas=[1.0, 0.5],
        eps=0.01,
        n_steps_each=3,
        denoise=True,
        return_trajectory=True,
    )
    assert result.trajectory.shape == (7, 5, 1)
    np.testing.assert_array_equal(result.trajectory[0], np.ones((5, 1)))
    # Tweedie's step x + sigma_L^2 s(x, sigma_L) = x (1 - 0.25 / 1.25) after the last recorded state.
    np.testing.assert_allclose(result.samples, result.trajectory[-1] * (1 - 0.25 / 1.25), rtol=1e-5)


def test_annealed_langevin_matches_a_python_loop_with_its_key_contract():
    # Step j of level i draws its noise from fold_in(fold_in(key, i), j); a hand-written loop reproduces the chains.
    sigmas = np.array([2.0, 1.0, 0.5], np.float32)
    x0, key, eps, k = jnp.linspace(-3, 3, 6)[:, None], jax.random.key(11), 0.05, 4
    result = sl.samplers.annealed_langevin(
        standard_perturbed_score, x0, key, sigmas=sigmas, eps=eps, n_steps_each=k, return_trajectory=True
    )
    y, states = x0, [x0]
    for i, sigma in enumerate(sigmas):
        a = eps * sigma**2 / sigmas[-1] ** 2
        for j in range(k):
            z = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, i), j), y.shape)
            y = y + a * standard_perturbed_score(y, jnp.full((6,), sigma)) + np.sqrt(2 * a) * z
            states.append(y)
    np.testing.assert_allclose(result.samples, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.trajectory, np.stack(states), rtol=1e-5, atol=1e-5)


def test_annealed_langevin_with_a_network():
    # A bound noise-conditional network is a valid score_fn: the sampler passes one level per point.
    params = sl.nets.ncsn_init(jax.random.key(12), 2, (8,))
    score = sl.nets.bind(sl.nets.ncsn_apply, params)
    x0 = jax.random.normal(jax.random.key(13), (16, 2))
    result = sl.samplers.annealed_langevin(score, x0, jax.random.key(14), sigmas=[1.0], eps=0.01, n_steps_each=1)
    z = jax.random.normal(jax.random.fold_in(jax.random.fold_in(jax.random.key(14), 0), 0), x0.shape)
    expected = x0 + 0.01 * sl.nets.ncsn_apply(params, x0, 1.0) + np.sqrt(0.02) * z
    np.testing.assert_allclose(result.samples, expected, rtol=1e-5, atol=1e-6)


def test_decaying_langevin_matches_a_python_loop():
    # x <- x + (eps_t / 2) s(x) + sqrt(eps_t) T z with eps_t = eps decay^t and z from split(key, n_steps)[t].
    score = lambda x: -(x - jnp.array([1.0, -1.0])) / 0.3  # noqa: E731
    x0, key, eps, decay, temp, n = jnp.zeros((4, 2)), jax.random.key(15), 0.1, 0.8, 0.6, 7
    result = sl.samplers.decaying_langevin(score, x0, key, eps=eps, decay=decay, n_steps=n, temperature=temp)
    assert isinstance(result, sl.samplers.SamplerResult) and result.trajectory is None
    y = x0
    for t, k in enumerate(jax.random.split(key, n)):
        eps_t = eps * decay**t
        y = y + eps_t / 2 * score(y) + np.sqrt(eps_t) * temp * jax.random.normal(k, y.shape)
    np.testing.assert_allclose(result.samples, y, rtol=1e-5, atol=1e-6)


def test_decaying_langevin_without_noise_and_decay_one_is_gradient_ascent():
    # T = 0, decay = 1: x_t = (1 - eps / 2)^t x_0 for s(x) = -x.
    result = sl.samplers.decaying_langevin(
        lambda x: -x, jnp.ones((2, 3)), jax.random.key(0), eps=0.2, decay=1.0, n_steps=5, temperature=0.0
    )
    np.testing.assert_allclose(result.samples, 0.9**5 * np.ones((2, 3)), rtol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: sl.samplers.langevin(lambda x: x, jnp.ones((2, 1)), jax.random.key(0), step_size=0.0, n_steps=3),
            "step_size",
        ),
        (
            lambda: sl.samplers.langevin(lambda x: x, jnp.ones((2, 1)), jax.random.key(0), step_size=0.1, n_steps=0),
            "n_steps",
        ),
        (
            lambda: sl.samplers.langevin(lambda x: x, jnp.ones(2), jax.random.key(0), step_size=0.1, n_steps=3),
            r"\(n, d\)",
        ),
        (
            lambda: sl.samplers.langevin(
                lambda x: x, jnp.ones((2, 1)), jax.random.key(0), step_size=0.1, n_steps=3, temperature=-1.0
            ),
            "temperature",
        ),
        (
            lambda: sl.samplers.langevin("score", jnp.ones((2, 1)), jax.random.key(0), step_size=0.1, n_steps=3),
            "callable",
        ),
        (
            lambda: sl.samplers.annealed_langevin(
                lambda x, s: x, jnp.ones((2, 1)), jax.random.key(0), sigmas=[0.5, 1.0], eps=0.1, n_steps_each=3
            ),
            "decreasing",
        ),
        (
            lambda: sl.samplers.annealed_langevin(
                lambda x, s: x, jnp.ones((2, 1)), jax.random.key(0), sigmas=[1.0, 0.5], eps=-0.1, n_steps_each=3
            ),
            "eps",
        ),
        (
            lambda: sl.samplers.annealed_langevin(
                lambda x, s: x, jnp.ones((2, 1)), jax.random.key(0), sigmas=[1.0, 0.5], eps=0.1, n_steps_each=0
            ),
            "n_steps_each",
        ),
        (
            lambda: sl.samplers.decaying_langevin(
                lambda x: x, jnp.ones((2, 1)), jax.random.key(0), eps=0.1, decay=1.01, n_steps=3
            ),
            r"decay must be in \(0, 1\]",
        ),
        (
            lambda: sl.samplers.decaying_langevin(
                lambda x: x, jnp.ones((2, 1)), jax.random.key(0), eps=0.1, decay=0.0, n_steps=3
            ),
            "decay",
        ),
        (
            lambda: sl.samplers.decaying_langevin(
                lambda x: x, jnp.ones((2, 1)), jax.random.key(0), eps=0.0, decay=0.9, n_steps=3
            ),
            "eps",
        ),
        (
            lambda: sl.samplers.decaying_langevin(
                lambda x: x, jnp.ones((2, 1)), jax.random.key(0), eps=0.1, decay=0.9, n_steps=3, temperature=-1.0
            ),
            "temperature",
        ),
    ],
)
def test_sampler_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
