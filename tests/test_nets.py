"""Networks: forward passes against hand-written formulas, and the closed forms they reduce to."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import scorelib as sl

D, N_FREQS = 2, 3
X = jnp.array([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.1], [1.5, -2.5]], jnp.float32)
SIGMAS = jnp.array([0.05, 0.4, 1.0, 3.0], jnp.float32)


def softplus(v):
    return np.logaddexp(0.0, v)


def numpy_mlp(layers, h, activation=softplus):
    """The forward pass written again in float64 NumPy."""
    h = np.asarray(h, np.float64)
    for i, layer in enumerate(layers):
        h = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        if i < len(layers) - 1:
            h = activation(h)
    return h


def with_final_layer(params, w=0.0, b=0.0):
    """A copy of noise-conditional ``params`` whose MLP ends in a layer with constant weights and bias."""
    mlp = list(params["mlp"])
    last = mlp[-1]
    mlp[-1] = {"w": jnp.full_like(last["w"], w), "b": jnp.broadcast_to(jnp.asarray(b, jnp.float32), last["b"].shape)}
    return {"mlp": mlp, "frozen": params["frozen"]}


# --- mlp_init / mlp_apply -------------------------------------------------------------------------


def test_mlp_init_shapes_lecun_scale_and_determinism():
    params = sl.nets.mlp_init(jax.random.key(0), (400, 300, 2))
    assert [(p["w"].shape, p["b"].shape) for p in params] == [((400, 300), (300,)), ((300, 2), (2,))]
    # N(0, 1/fan_in) weights: 120k draws give the standard deviation to well under 1%.
    np.testing.assert_allclose(float(jnp.std(params[0]["w"])), 1 / np.sqrt(400), rtol=0.01)
    assert all(float(jnp.abs(p["b"]).max()) == 0.0 for p in params)
    again = sl.nets.mlp_init(jax.random.key(0), (400, 300, 2))
    other = sl.nets.mlp_init(jax.random.key(1), (400, 300, 2))
    np.testing.assert_array_equal(params[1]["w"], again[1]["w"])
    assert not np.allclose(params[1]["w"], other[1]["w"])
    # Legacy uint32 keys give the same network as the typed key with the same bits.
    legacy = sl.nets.mlp_init(jax.random.PRNGKey(0), (400, 300, 2))
    np.testing.assert_array_equal(legacy[1]["w"], params[1]["w"])


def test_mlp_apply_matches_a_numpy_forward_pass():
    params = sl.nets.mlp_init(jax.random.key(2), (D, 5, 4, D))
    params = [{"w": p["w"], "b": p["b"] + 0.1 * (i + 1)} for i, p in enumerate(params)]  # nonzero biases
    np.testing.assert_allclose(sl.nets.mlp_apply(params, X), numpy_mlp(params, X), rtol=1e-5, atol=1e-6)
    sigmoid = sl.nets.mlp_apply(params, X, activation=jax.nn.sigmoid)
    np.testing.assert_allclose(sigmoid, numpy_mlp(params, X, lambda v: 1 / (1 + np.exp(-v))), rtol=1e-5, atol=1e-6)


def test_mlp_bad_inputs():
    with pytest.raises(ValueError, match="at least two positive integers"):
        sl.nets.mlp_init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match="at least two positive integers"):
        sl.nets.mlp_init(jax.random.key(0), (3, 0, 1))
    with pytest.raises(ValueError, match="outside jit"):
        jax.jit(lambda k: sl.nets.mlp_init(k, (2, 2)))(jax.random.key(0))
    params = sl.nets.mlp_init(jax.random.key(0), (D, 4, D))
    with pytest.raises(ValueError, match="2 columns"):
        sl.nets.mlp_apply(params, jnp.ones((3, 3)))


# --- sigma_embedding ------------------------------------------------------------------------------


def test_sigma_embedding_known_values():
    freqs = jnp.array([0.5, 1.0, 2.0])
    e, one = np.e, 1.0
    out = sl.nets.sigma_embedding(jnp.array([e, one], jnp.float32), freqs)
    # log e = 1: [1, sin(f), cos(f)]; log 1 = 0: [0, 0, 0, 0, 1, 1, 1].
    expected = np.array(
        [
            [1.0, np.sin(0.5), np.sin(1.0), np.sin(2.0), np.cos(0.5), np.cos(1.0), np.cos(2.0)],
            [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        ]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    s = 0.25  # log s = -2 log 2
    got = sl.nets.sigma_embedding(jnp.array([s]), jnp.array([1.5]))
    ls = np.log(s)
    np.testing.assert_allclose(got, [[ls, np.sin(1.5 * ls), np.cos(1.5 * ls)]], rtol=1e-6)


# --- ncsn_init / ncsn_apply -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ncsn_params():
    return sl.nets.ncsn_init(jax.random.key(3), D, (8, 8), n_freqs=N_FREQS)


def test_ncsn_init_structure(ncsn_params):
    assert set(ncsn_params) == {"mlp", "frozen"} and set(ncsn_params["frozen"]) == {"freqs"}
    np.testing.assert_array_equal(ncsn_params["frozen"]["freqs"], [0.5, 1.0, 1.5])  # f_j = j / 2
    sizes = [ncsn_params["mlp"][0]["w"].shape[0]] + [layer["w"].shape[1] for layer in ncsn_params["mlp"]]
    assert sizes == [D + 1 + 2 * N_FREQS, 8, 8, D]  # input: [x, log sigma, sin, cos]
    with pytest.raises(ValueError, match="dim"):
        sl.nets.ncsn_init(jax.random.key(0), 0, (4,))
    with pytest.raises(ValueError, match="n_freqs"):
        sl.nets.ncsn_init(jax.random.key(0), 2, (4,), n_freqs=0)


def test_ncsn_apply_matches_its_formula(ncsn_params):
    # s(x, sigma) = MLP([x / sqrt(1 + sigma^2), log sigma, sin(f log sigma), cos(f log sigma)]) / sigma
    s = np.asarray(SIGMAS, np.float64)[:, None]
    f = np.array([0.5, 1.0, 1.5])[None]
    h = np.concatenate([np.asarray(X) / np.sqrt(1 + s**2), np.log(s), np.sin(f * np.log(s)), np.cos(f * np.log(s))], 1)
    expected = numpy_mlp(ncsn_params["mlp"], h) / s
    np.testing.assert_allclose(sl.nets.ncsn_apply(ncsn_params, X, SIGMAS), expected, rtol=1e-5, atol=1e-5)


def test_ncsn_with_zero_final_layer_is_zero(ncsn_params):
    out = sl.nets.ncsn_apply(with_final_layer(ncsn_params, 0.0, 0.0), X, SIGMAS)
    np.testing.assert_array_equal(out, np.zeros((4, D)))


def test_ncsn_output_scales_as_one_over_sigma(ncsn_params):
    # With a constant final layer the MLP output is the bias c for every input, so s = c / sigma.
    c = jnp.array([1.5, -0.5])
    params = with_final_layer(ncsn_params, 0.0, c)
    out = sl.nets.ncsn_apply(params, X, SIGMAS)
    np.testing.assert_allclose(out, np.asarray(c)[None] / np.asarray(SIGMAS)[:, None], rtol=1e-6)
    # sigma * s(x, sigma) is then the same for every level and point.
    scaled = np.asarray(SIGMAS)[:, None] * np.asarray(out)
    np.testing.assert_allclose(scaled, np.broadcast_to(c, scaled.shape), rtol=1e-6)


def test_ncsn_scalar_sigma_equals_per_point_sigma(ncsn_params):
    for level in (0.1, 2.0):
        scalar = sl.nets.ncsn_apply(ncsn_params, X, level)
        np.testing.assert_array_equal(scalar, sl.nets.ncsn_apply(ncsn_params, X, jnp.full((4,), level)))
        np.testing.assert_array_equal(scalar, sl.nets.ncsn_apply(ncsn_params, X, np.float32(level)))
    # Also when sigma is traced (inside jit), one level per point.
    jitted = jax.jit(sl.nets.ncsn_apply)
    np.testing.assert_allclose(jitted(ncsn_params, X, SIGMAS), sl.nets.ncsn_apply(ncsn_params, X, SIGMAS), rtol=1e-6)
    np.testing.assert_allclose(jitted(ncsn_params, X, 0.3), sl.nets.ncsn_apply(ncsn_params, X, 0.3), rtol=1e-6)


@pytest.mark.parametrize(
    "sigma, match",
    [
        (jnp.ones(3), r"one level per point, shape \(4,\)"),
        (jnp.ones((4, 1)), r"one level per point"),
        (0.0, "positive"),
        (jnp.array([1.0, -1.0, 1.0, 1.0]), "positive"),
        (np.nan, "positive"),
    ],
)
def test_ncsn_bad_sigma_raises(ncsn_params, sigma, match):
    with pytest.raises(ValueError, match=match):
        sl.nets.ncsn_apply(ncsn_params, X, sigma)


def test_ncsn_bad_points_raise(ncsn_params):
    with pytest.raises(ValueError, match="2 columns"):
        sl.nets.ncsn_apply(ncsn_params, jnp.ones((4, 3)), 1.0)
    with pytest.raises(ValueError, match=r"\(n, 1\)"):
        sl.nets.ncsn_apply(ncsn_params, jnp.ones(4), 1.0)


def test_ncsn_frozen_frequencies_get_zero_gradient(ncsn_params):
    def loss(p):
        return jnp.sum(sl.nets.ncsn_apply(p, X, SIGMAS) ** 2)

    grads = jax.jit(jax.grad(loss))(ncsn_params)
    np.testing.assert_array_equal(grads["frozen"]["freqs"], np.zeros(N_FREQS))
    assert float(jnp.abs(grads["mlp"][0]["w"]).max()) > 0  # the MLP does learn


# --- preconditioned_ncsn --------------------------------------------------------------------------

PRE_MIX = np.array([[1.0, 0.5, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 1e-3]], np.float32)


@pytest.fixture(scope="module")
def pre_data():
    return jax.random.normal(jax.random.key(4), (500, 3)) @ PRE_MIX + jnp.array([0.5, -1.0, 2.0])


@pytest.fixture(scope="module")
def pre_params(pre_data):
    return sl.nets.preconditioned_ncsn_init(jax.random.key(5), pre_data, (16,), n_freqs=2)


def test_preconditioned_init_keeps_the_data_statistics(pre_data, pre_params):
    data = np.asarray(pre_data, np.float64)
    frozen = pre_params["frozen"]
    assert set(frozen) == {"freqs", "mean", "lam", "vecs"}
    np.testing.assert_allclose(frozen["mean"], data.mean(0), rtol=1e-5, atol=1e-6)
    cov = np.asarray(frozen["vecs"], np.float64) @ np.diag(frozen["lam"]) @ np.asarray(frozen["vecs"], np.float64).T
    np.testing.assert_allclose(cov, np.cov(data.T), rtol=1e-4, atol=1e-7)
    assert pre_params["mlp"][0]["w"].shape == (3 + 1 + 2 * 2, 16)


def test_preconditioned_ncsn_without_correction_is_the_perturbed_gaussian_score(pre_data, pre_params):
    # g = 0: s(x, sigma) = -(Sigma + sigma^2 I)^-1 (x - mu), the score of N(mu, Sigma + sigma^2 I).
    zero = with_final_layer(pre_params, 0.0, 0.0)
    data = np.asarray(pre_data, np.float64)
    mean, cov = data.mean(0), np.cov(data.T)
    x = jax.random.normal(jax.random.key(6), (8, 3))
    for sigma in (0.01, 0.3, 5.0):
        expected = -np.linalg.solve(cov + sigma**2 * np.eye(3), (np.asarray(x, np.float64) - mean).T).T
        got = sl.nets.preconditioned_ncsn_apply(zero, x, sigma)
        np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-3 / sigma)
    # One level per point under jit, and a nonzero correction changes the output.
    sigmas = jnp.array([0.01, 0.1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    out = jax.jit(sl.nets.preconditioned_ncsn_apply)(pre_params, x, sigmas)
    assert out.shape == (8, 3) and np.all(np.isfinite(out))
    assert not np.allclose(out, sl.nets.preconditioned_ncsn_apply(zero, x, sigmas))
    for i in (0, 7):  # row i at level sigmas[i] equals the scalar-level call
        np.testing.assert_allclose(
            out[i], sl.nets.preconditioned_ncsn_apply(pre_params, x, float(sigmas[i]))[i], rtol=1e-4, atol=1e-5
        )


def test_preconditioned_frozen_statistics_get_zero_gradient_and_survive_adam(pre_data, pre_params):
    def loss(p, batch, key):
        return sl.losses.ncsn_loss(sl.nets.bind(sl.nets.preconditioned_ncsn_apply, p), batch, key, [1.0, 0.1])

    grads = jax.jit(jax.grad(loss))(pre_params, pre_data[:64], jax.random.key(7))
    for name, g in grads["frozen"].items():
        np.testing.assert_array_equal(g, np.zeros_like(g), err_msg=name)
    result = sl.train.fit(
        loss,
        pre_params,
        key=jax.random.key(8),
        data=pre_data,
        steps=5,
        batch_size=32,
        optimizer=optax.adam(1e-2),
        progress=False,
    )
    for name in pre_params["frozen"]:
        np.testing.assert_array_equal(result.params["frozen"][name], pre_params["frozen"][name], err_msg=name)
    assert not np.allclose(result.params["mlp"][0]["w"], pre_params["mlp"][0]["w"])  # the MLP did train


def test_preconditioned_bad_inputs(pre_data, pre_params):
    with pytest.raises(ValueError, match="at least 2 points"):
        sl.nets.preconditioned_ncsn_init(jax.random.key(1), pre_data[:1], (16,))
    with pytest.raises(ValueError, match="3 columns"):
        sl.nets.preconditioned_ncsn_apply(pre_params, jnp.zeros((2, 2)), 0.1)
    with pytest.raises(ValueError, match="one level per point"):
        sl.nets.preconditioned_ncsn_apply(pre_params, jnp.zeros((2, 3)), jnp.ones(3))


# --- bind ----------------------------------------------------------------------------------------


def test_bind_equals_apply_with_the_params(ncsn_params):
    mlp = sl.nets.mlp_init(jax.random.key(9), (D, 6, D))
    np.testing.assert_array_equal(sl.nets.bind(sl.nets.mlp_apply, mlp)(X), sl.nets.mlp_apply(mlp, X))
    bound = sl.nets.bind(sl.nets.mlp_apply, mlp, activation=jax.nn.sigmoid)
    np.testing.assert_array_equal(bound(X), sl.nets.mlp_apply(mlp, X, activation=jax.nn.sigmoid))
    ncsn = sl.nets.bind(sl.nets.ncsn_apply, ncsn_params)
    np.testing.assert_array_equal(ncsn(X, SIGMAS), sl.nets.ncsn_apply(ncsn_params, X, SIGMAS))
    np.testing.assert_array_equal(ncsn(X, 0.5), sl.nets.ncsn_apply(ncsn_params, X, 0.5))
    # A bound function is usable wherever a score_fn is: in a loss, against the direct call.
    direct = sl.losses.ism_loss(lambda y: sl.nets.mlp_apply(mlp, y), X)
    np.testing.assert_allclose(sl.losses.ism_loss(sl.nets.bind(sl.nets.mlp_apply, mlp), X), direct, rtol=1e-6)
    with pytest.raises(ValueError, match="apply function"):
        sl.nets.bind(mlp, sl.nets.mlp_apply)
