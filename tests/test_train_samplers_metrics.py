"""The training loop, the samplers and the metrics, checked against known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import scorelib as sl


def linear_model_loss(params, batch, key):
    return sl.losses.ism_loss(lambda x: x * params["a"] + params["b"], batch)


def test_fit_recovers_gaussian_score():
    # Data N(1.5, 0.5^2): the ISM optimum of s(x) = a x + b is a = -1/s^2 = -4, b = mu/s^2 = 6.
    data = 1.5 + 0.5 * jax.random.normal(jax.random.key(0), (4096, 1))
    params = {"a": jnp.zeros(()), "b": jnp.zeros(())}
    params, losses = sl.train.fit(
        linear_model_loss,
        params,
        key=jax.random.key(1),
        data=data,
        steps=3000,
        batch_size=512,
        optimizer=optax.adam(3e-2),
        progress=False,
    )
    assert losses.shape == (3000,) and isinstance(losses, np.ndarray)
    xn = np.asarray(data[:, 0], np.float64)
    np.testing.assert_allclose(float(params["a"]), -1 / xn.var(), rtol=0.05)
    np.testing.assert_allclose(float(params["b"]), xn.mean() / xn.var(), rtol=0.05)


def test_fit_is_deterministic_and_accepts_a_sampler():
    def run():
        return sl.train.fit(
            linear_model_loss,
            {"a": jnp.zeros(()), "b": jnp.zeros(())},
            key=jax.random.key(2),
            data=lambda k, n: jax.random.normal(k, (n, 1)),
            steps=250,
            batch_size=64,
            optimizer=optax.adam(1e-2),
            chunk_size=100,
            progress=False,
        )

    (p1, l1), (p2, l2) = run(), run()
    np.testing.assert_array_equal(l1, l2)
    assert float(p1["a"]) == float(p2["a"])
    assert len(l1) == 250


def test_fit_chunking_does_not_change_the_result():
    kwargs = dict(
        key=jax.random.key(3),
        data=jax.random.normal(jax.random.key(4), (100, 1)),
        steps=300,
        batch_size=32,
        optimizer=optax.adam(1e-2),
        progress=False,
    )
    p0 = {"a": jnp.zeros(()), "b": jnp.zeros(())}
    _, l_a = sl.train.fit(linear_model_loss, p0, chunk_size=300, **kwargs)
    _, l_b = sl.train.fit(linear_model_loss, p0, chunk_size=70, **kwargs)
    np.testing.assert_allclose(l_a, l_b, rtol=1e-5, atol=1e-6)


def test_fit_snapshots():
    p0 = {"a": jnp.zeros(()), "b": jnp.zeros(())}
    _, losses, snaps = sl.train.fit(
        linear_model_loss,
        p0,
        key=jax.random.key(5),
        data=jnp.ones((10, 1)),
        steps=100,
        batch_size=8,
        optimizer=optax.sgd(0.0),
        snapshot_every=25,
        progress=False,
    )
    assert [s for s, _ in snaps] == [0, 25, 50, 75, 100]


def test_fit_stops_on_divergence_naming_the_step():
    def exploding(params, batch, key):
        return jnp.where(params["t"] > 4.5, jnp.nan, params["t"] * 0.0 + jnp.mean(batch))

    def count_up(params, batch, key):  # loss value depends on a counter we increment by SGD
        return exploding(params, batch, key) - params["t"]

    with pytest.raises(sl.train.TrainingDiverged, match=r"at step 5\b.*learning rate"):
        sl.train.fit(
            count_up,
            {"t": jnp.zeros(())},
            key=jax.random.key(6),
            data=jnp.ones((4, 1)),
            steps=20,
            batch_size=2,
            optimizer=optax.sgd(1.0),
            progress=False,
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps"),
        (dict(batch_size=-1), "batch_size"),
        (dict(optimizer="adam"), "optax"),
        (dict(data=jnp.ones(5)), r"\(n, d\)"),
        (dict(data=jnp.array([[1.0], [jnp.inf]])), "NaN or inf"),
        (dict(snapshot_every=7), "divide"),
    ],
)
def test_fit_bad_inputs(kwargs, match):
    args = dict(key=jax.random.key(0), data=jnp.ones((4, 1)), steps=10, batch_size=2, optimizer=optax.sgd(0.1))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sl.train.fit(linear_model_loss, {"a": jnp.zeros(()), "b": jnp.zeros(())}, **args)


def test_langevin_samples_a_gaussian_from_its_score():
    mu, s = np.array([1.0, -2.0]), 0.7
    x0 = jnp.zeros((5000, 2))
    x = sl.samplers.langevin(lambda x: (mu - x) / s**2, x0, jax.random.key(7), step_size=0.01, n_steps=1000)
    np.testing.assert_allclose(np.mean(x, 0), mu, atol=0.03)
    # The discretised chain's stationary variance is s^2 / (1 - a / (2 s^2)): within 1% here.
    np.testing.assert_allclose(np.std(x, 0), s, rtol=0.03)


def test_langevin_temperature_zero_is_gradient_ascent_and_trajectory_shape():
    x, traj = sl.samplers.langevin(
        lambda x: -x,
        jnp.ones((3, 2)),
        jax.random.key(8),
        step_size=0.1,
        n_steps=10,
        temperature=0.0,
        return_trajectory=True,
    )
    assert traj.shape == (11, 3, 2)
    np.testing.assert_allclose(x, 0.9**10 * np.ones((3, 2)), rtol=1e-5)


def test_annealed_langevin_with_exact_scores():
    # Data N(0, 1): the perturbed score at level sigma is -x / (1 + sigma^2).
    sigmas = np.geomspace(5.0, 0.1, 8)
    x = sl.samplers.annealed_langevin(
        lambda x, s: -x / (1 + s[:, None] ** 2),
        8 * jnp.ones((4000, 1)),
        jax.random.key(9),
        sigmas=sigmas,
        eps=5e-4,
        n_steps_each=200,
    )
    np.testing.assert_allclose([float(x.mean()), float(x.std())], [0.0, np.sqrt(1 + 0.1**2)], atol=0.05)


def test_annealed_langevin_denoise_and_trajectory():
    sigmas = [1.0, 0.5]
    x, traj = sl.samplers.annealed_langevin(
        lambda x, s: -x / (1 + s[:, None] ** 2),
        jnp.ones((5, 1)),
        jax.random.key(10),
        sigmas=sigmas,
        eps=0.01,
        n_steps_each=3,
        denoise=True,
        return_trajectory=True,
    )
    assert traj.shape == (7, 5, 1)
    np.testing.assert_allclose(x, traj[-1] * (1 - 0.25 / 1.25), rtol=1e-5)


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
    ],
)
def test_sampler_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pdf_from_score_recovers_a_mixture():
    mix = sl.data.GaussianMixture([[-3.0], [3.0]], [[[1.0]], [[1.0]]], [0.1, 0.9])
    grid = np.linspace(-10, 10, 801)
    pdf = sl.metrics.pdf_from_score_1d(grid, mix.score(grid[:, None].astype(np.float32)))
    true = np.exp(np.asarray(mix.log_prob(grid[:, None].astype(np.float32))))
    assert np.trapezoid(np.abs(pdf - true), grid) < 1e-3
    with pytest.raises(ValueError, match="one value per grid point"):
        sl.metrics.pdf_from_score_1d(grid, np.ones(5))


def test_fisher_divergence_of_a_shifted_score():
    x = jax.random.normal(jax.random.key(11), (100, 3))
    assert sl.metrics.fisher_divergence(lambda y: -y + 0.2, lambda y: -y, x) == pytest.approx(0.5 * 3 * 0.04, rel=1e-5)


def test_mode_shares():
    x = np.array([[5.0, 5.0], [4.0, 6.0], [-5.0, -4.0], [6.0, 5.0]])
    np.testing.assert_allclose(sl.metrics.mode_shares(x, [[5, 5], [-5, -5]]), [0.75, 0.25])


def test_energy_distance_properties():
    k1, k2, k3 = jax.random.split(jax.random.key(12), 3)
    a, b = jax.random.normal(k1, (700, 2)), jax.random.normal(k2, (500, 2))
    shifted = jax.random.normal(k3, (500, 2)) + jnp.array([1.0, 0.0])
    same, diff = sl.metrics.energy_distance(a, b), sl.metrics.energy_distance(a, shifted)
    assert abs(same) < 0.02 and diff > 0.3
    # Closed form check for 1D point masses: ED(delta_0, delta_1) = 2 * 1 - 0 - 0.
    assert sl.metrics.energy_distance(np.zeros((3, 1)), np.ones((4, 1))) == pytest.approx(2.0)


def test_digits_evaluator_nearest_distances():
    X, y = sl.data.load_digits_01()
    ev = sl.metrics.DigitsEvaluator(X, y)
    d = ev.nearest_distances(ev.X_train[:5])
    np.testing.assert_allclose(d, 0.0, atol=1e-6)  # a training digit is its own nearest neighbour
    shifted = np.clip(ev.X_train[:1] + 0.1, 0, 1)
    expected = np.min(np.linalg.norm(ev.X_train - shifted, axis=1))
    np.testing.assert_allclose(ev.nearest_distances(shifted), [expected], rtol=1e-6)


def test_digits_evaluator_on_real_digits():
    X, y = sl.data.load_digits_01()
    ev = sl.metrics.DigitsEvaluator(X, y)
    assert ev.heldout_accuracy > 0.93
    real = ev.evaluate(ev.X_heldout)
    assert real["n_classes"] == 10 and real["confident_fraction"] > 0.7 and real["nn_distance"] > 0.5
    noise = ev.evaluate(np.asarray(jax.random.uniform(jax.random.key(13), (200, 64))))
    assert noise["confident_fraction"] < real["confident_fraction"]


def test_annealed_langevin_matches_a_python_loop_with_its_key_contract():
    # Step j of level i draws its noise from fold_in(fold_in(key, i), j); a hand-written loop reproduces the chains.
    sigmas = np.array([2.0, 1.0, 0.5], np.float32)
    score = lambda x, s: -x / (1 + s[:, None] ** 2)  # noqa: E731
    x0, key, eps, k = jnp.linspace(-3, 3, 6)[:, None], jax.random.key(11), 0.05, 4
    x = sl.samplers.annealed_langevin(score, x0, key, sigmas=sigmas, eps=eps, n_steps_each=k)
    y = x0
    for i, sigma in enumerate(sigmas):
        a = eps * sigma**2 / sigmas[-1] ** 2
        for j in range(k):
            z = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, i), j), y.shape)
            y = y + a * score(y, jnp.full((6,), sigma)) + np.sqrt(2 * a) * z
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


def test_step_cost_vs_dim_reports_every_loss_and_dimension():
    costs = sl.benchmark.step_cost_vs_dim((2, 3), loss_names=("ism",), width=8, batch_size=4, n_steps=2, repeats=1)
    assert set(costs) == {"ism"}
    for entry in costs.values():
        assert len(entry["step_seconds"]) == 2 and all(t > 0 for t in entry["step_seconds"])
        assert len(entry["compile_seconds"]) == 2
    with pytest.raises(ValueError, match="unknown losses"):
        sl.benchmark.step_cost_vs_dim((2,), loss_names=("nce",))
    with pytest.raises(ValueError, match="dimension"):
        sl.benchmark.step_cost_vs_dim((0,))
