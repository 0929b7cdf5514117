"""The training loop and its step, checked against known optima and hand-computed updates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import scorelib as sl


def linear_model_loss(params, batch, key):
    return sl.losses.ism_loss(lambda x: x * params["a"] + params["b"], batch)


def zeros():
    return {"a": jnp.zeros(()), "b": jnp.zeros(())}


def test_fit_recovers_gaussian_score():
    # Data N(1.5, 0.5^2): the ISM optimum of s(x) = a x + b is a = -1/s^2 = -4, b = mu/s^2 = 6.
    data = 1.5 + 0.5 * jax.random.normal(jax.random.key(0), (4096, 1))
    result = sl.train.fit(
        linear_model_loss,
        zeros(),
        key=jax.random.key(1),
        data=data,
        steps=1500,
        batch_size=512,
        optimizer=optax.adam(5e-2),
        progress=False,
    )
    assert isinstance(result, sl.train.FitResult)
    assert result.losses.shape == (1500,) and isinstance(result.losses, np.ndarray)
    assert result.snapshots == []  # none unless asked for
    xn = np.asarray(data[:, 0], np.float64)
    np.testing.assert_allclose(float(result.params["a"]), -1 / xn.var(), rtol=0.05)
    np.testing.assert_allclose(float(result.params["b"]), xn.mean() / xn.var(), rtol=0.05)
    # At the optimum the ISM loss is -0.5 E|s*|^2 = -0.5 / var.
    np.testing.assert_allclose(result.losses[-100:].mean(), -0.5 / xn.var(), rtol=0.05)


def test_fit_with_a_sampler_is_deterministic():
    def run():
        return sl.train.fit(
            linear_model_loss,
            zeros(),
            key=jax.random.key(2),
            data=lambda k, n: jax.random.normal(k, (n, 1)),
            steps=250,
            batch_size=64,
            optimizer=optax.adam(1e-2),
            chunk_size=100,
            progress=False,
        )

    r1, r2 = run(), run()
    np.testing.assert_array_equal(r1.losses, r2.losses)
    assert float(r1.params["a"]) == float(r2.params["a"])
    assert len(r1.losses) == 250
    # 250 steps of Adam at 1e-2 bring a near the optimum -1 of N(0, 1) data.
    assert abs(float(r1.params["a"]) + 1.0) < 0.1


def test_fit_chunking_does_not_change_the_result():
    kwargs = dict(
        key=jax.random.key(3),
        data=jax.random.normal(jax.random.key(4), (100, 1)),
        steps=300,
        batch_size=32,
        optimizer=optax.adam(1e-2),
        progress=False,
    )
    a = sl.train.fit(linear_model_loss, zeros(), chunk_size=300, **kwargs)
    b = sl.train.fit(linear_model_loss, zeros(), chunk_size=70, **kwargs)  # 5 chunks of 60: no masking
    c = sl.train.fit(linear_model_loss, zeros(), chunk_size=140, **kwargs)  # 3 chunks of 100
    for other in (b, c):
        np.testing.assert_allclose(a.losses, other.losses, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(float(a.params["a"]), float(other.params["a"]), rtol=1e-5)


def test_fit_masks_the_steps_past_the_end():
    # 10 steps in chunks of 4 gives 3 chunks of 4 = 12 steps; the last two must not update the parameters.
    # SGD at rate 1 on loss = -t counts the steps exactly.
    def count(params, batch, key):
        return -params["t"] + 0.0 * jnp.sum(batch)

    result = sl.train.fit(
        count,
        {"t": jnp.zeros(())},
        key=jax.random.key(0),
        data=jnp.ones((4, 1)),
        steps=10,
        batch_size=2,
        optimizer=optax.sgd(1.0),
        chunk_size=4,
        progress=False,
    )
    assert float(result.params["t"]) == 10.0
    np.testing.assert_array_equal(result.losses, -np.arange(10.0))


def test_fit_snapshots_every_k_steps_are_the_parameters_at_those_steps():
    kwargs = dict(
        key=jax.random.key(5),
        data=jax.random.normal(jax.random.key(6), (64, 1)),
        batch_size=8,
        optimizer=optax.adam(1e-2),
        progress=False,
    )
    result = sl.train.fit(linear_model_loss, zeros(), steps=60, snapshot_every=20, **kwargs)
    assert [s for s, _ in result.snapshots] == [0, 20, 40, 60]
    assert float(result.snapshots[0][1]["a"]) == 0.0
    assert float(result.snapshots[-1][1]["a"]) == float(result.params["a"])
    # Step t's minibatch and key depend only on (key, t): the snapshot at 40 is a 40-step run's result.
    shorter = sl.train.fit(linear_model_loss, zeros(), steps=40, **kwargs)
    np.testing.assert_allclose(float(result.snapshots[2][1]["a"]), float(shorter.params["a"]), rtol=1e-5)
    np.testing.assert_allclose(result.losses[:40], shorter.losses, rtol=1e-5, atol=1e-6)


def test_train_step_is_one_hand_computed_adam_update():
    # ISM of s(x) = a x + b: L = mean(0.5 (a x + b)^2 + a), so
    # dL/da = mean((a x + b) x) + 1 and dL/db = mean(a x + b).
    # Adam's first step (bias-corrected m = g, v = g^2) moves each parameter by -lr * g / (|g| + eps).
    lr, eps = 0.1, 1e-8
    optimizer = optax.adam(lr, eps=eps)
    params = {"a": jnp.float32(-0.5), "b": jnp.float32(0.25)}
    batch = jnp.array([[0.5], [-1.0], [2.0], [0.0]])
    step = sl.train.train_step(linear_model_loss, optimizer)
    new_params, opt_state, loss = step(params, optimizer.init(params), batch, jax.random.key(0))

    x = np.asarray(batch[:, 0], np.float64)
    a, b = -0.5, 0.25
    s = a * x + b
    np.testing.assert_allclose(float(loss), np.mean(0.5 * s**2 + a), rtol=1e-6)  # the loss before the update
    grads = {"a": np.mean(s * x) + 1.0, "b": np.mean(s)}
    for name, p in (("a", a), ("b", b)):
        g = grads[name]
        np.testing.assert_allclose(float(new_params[name]), p - lr * g / (abs(g) + eps), rtol=1e-5)
    # A second step from the returned state is the same as optax's own update with those gradients.
    new2, _, _ = step(new_params, opt_state, batch, jax.random.key(0))
    g2 = jax.grad(linear_model_loss)(new_params, batch, None)
    updates, _ = optimizer.update(g2, opt_state, new_params)
    expected = optax.apply_updates(new_params, updates)
    for name in ("a", "b"):
        np.testing.assert_allclose(float(new2[name]), float(expected[name]), rtol=1e-6)


def test_fit_stops_on_divergence_naming_the_step():
    def count_up(params, batch, key):  # SGD at rate 1 on -t increments t by one per step; NaN once t > 4.5
        return jnp.where(params["t"] > 4.5, jnp.nan, jnp.mean(batch)) - params["t"]

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


def test_fit_ema_is_the_moving_average_of_the_iterates():
    # The EMA after each step, computed by hand from the per-step parameters (snapshots every step), over
    # 7 steps in chunks of 3 (so the masked tail of the last chunk must not update the average either).
    kwargs = dict(key=jax.random.key(7), data=jax.random.normal(jax.random.key(8), (64, 1)), batch_size=8,
                  optimizer=optax.adam(5e-2), progress=False)
    decay = 0.8
    result = sl.train.fit(linear_model_loss, zeros(), steps=7, chunk_size=3, ema_decay=decay, **kwargs)
    iterates = sl.train.fit(linear_model_loss, zeros(), steps=7, snapshot_every=1, **kwargs).snapshots
    expected = {"a": 0.0, "b": 0.0}
    for _, p in iterates[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * float(p[k]) for k in expected}
    for k in expected:
        np.testing.assert_allclose(float(result.ema_params[k]), expected[k], rtol=1e-5)
        assert float(result.params[k]) == float(iterates[-1][1][k])  # the EMA does not change the iterates
    assert abs(expected["a"] - float(result.params["a"])) > 1e-3  # the check can tell the EMA from the last step
    assert sl.train.fit(linear_model_loss, zeros(), steps=7, **kwargs).ema_params is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps"),
        (dict(batch_size=-1), "batch_size"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(optimizer="adam"), "optax"),
        (dict(data=jnp.ones(5)), r"\(n, d\)"),
        (dict(data=jnp.array([[1.0], [jnp.inf]])), "NaN or inf"),
        (dict(snapshot_every=7), "divide"),
        (dict(snapshot_every=0), "snapshot_every"),
        (dict(ema_decay=1.0), r"ema_decay must be a number in \[0, 1\)"),
        (dict(ema_decay="0.99"), "ema_decay"),
    ],
)
def test_fit_bad_inputs(kwargs, match):
    args = dict(key=jax.random.key(0), data=jnp.ones((4, 1)), steps=10, batch_size=2, optimizer=optax.sgd(0.1))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sl.train.fit(linear_model_loss, zeros(), **args)


def test_same_key_gives_bit_identical_training_and_sampling():
    # Issue 16: on one machine, the same key must reproduce a run exactly (not merely to float tolerance).
    data = sl.data.Ring(2.0, 0.2).sample(jax.random.key(20), 256)
    sigmas = np.geomspace(2.0, 0.1, 4)

    def loss(params, batch, key):
        return sl.losses.ncsn_loss(sl.nets.bind(sl.nets.ncsn_apply, params), batch, key, sigmas)

    def run(key):
        fitted = sl.train.fit(
            loss,
            sl.nets.ncsn_init(jax.random.key(21), 2, (8,)),
            key=key,
            data=data,
            steps=20,
            batch_size=32,
            optimizer=optax.adam(1e-2),
            progress=False,
        )
        samples = sl.samplers.annealed_langevin(
            sl.nets.bind(sl.nets.ncsn_apply, fitted.params),
            jnp.zeros((64, 2)),
            key,
            sigmas=sigmas,
            eps=1e-3,
            n_steps_each=3,
        ).samples
        return fitted, samples

    (f1, s1), (f2, s2) = run(jax.random.key(22)), run(jax.random.key(22))
    np.testing.assert_array_equal(f1.losses, f2.losses)
    for p1, p2 in zip(jax.tree.leaves(f1.params), jax.tree.leaves(f2.params), strict=True):
        np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(s1, s2)
    # Not vacuous: the runs are random (the losses vary, the chains left their common start and spread).
    assert np.unique(f1.losses).size == f1.losses.size and float(jnp.std(s1)) > 0.01
