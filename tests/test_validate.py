"""The shared input checks: noise levels broadcast in one place, and telling traced from concrete values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scorelib._validate import broadcast_levels, check_points, check_sigmas, is_traced


def test_is_traced_inside_transformations():
    seen = []

    def record(x):
        seen.append(is_traced(x))
        return x

    jax.jit(record)(jnp.ones(2))
    jax.vmap(record)(jnp.ones((3, 2)))
    jax.grad(lambda x: jnp.sum(record(x)))(jnp.ones(2))
    jax.jit(jax.vmap(record))(jnp.ones((3, 2)))
    assert seen == [True, True, True, True]


@pytest.mark.parametrize("value", [jnp.ones(3), jnp.float32(2.0), np.ones(3), np.float32(1.0), 1.5, 2, [1.0, 2.0]])
def test_is_traced_is_false_for_concrete_values(value):
    assert is_traced(value) is False


def test_is_traced_is_false_for_constants_closed_over_in_jit():
    constant = jnp.arange(3.0)
    seen = []

    def f(x):
        seen.append((is_traced(x), is_traced(constant)))
        return x + constant

    jax.jit(f)(jnp.ones(3))
    assert seen == [(True, False)]


def test_broadcast_levels_scalar_and_per_point():
    x = jnp.zeros((4, 2), jnp.float32)
    for sigma in (0.5, np.float64(0.5), jnp.float32(0.5), np.array(0.5)):
        out = broadcast_levels(sigma, x)
        assert out.shape == (4,) and out.dtype == jnp.float32
        np.testing.assert_array_equal(out, np.full(4, 0.5, np.float32))
    levels = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(broadcast_levels(levels, x), levels.astype(np.float32))
    # Traced levels pass through unchecked, with the same result.
    np.testing.assert_array_equal(jax.jit(broadcast_levels)(jnp.asarray(levels), x), levels.astype(np.float32))
    np.testing.assert_array_equal(jax.jit(broadcast_levels)(0.5, x), np.full(4, 0.5, np.float32))


@pytest.mark.parametrize(
    "sigma, match",
    [
        (np.ones(3), r"shape \(4,\); got shape \(3,\)"),
        (np.ones((4, 1)), r"got shape \(4, 1\)"),
        (0.0, "positive"),
        (-1.0, "positive"),
        (np.inf, "finite"),
        (np.array([0.1, np.nan, 0.1, 0.1]), "finite"),
    ],
)
def test_broadcast_levels_rejects_bad_levels(sigma, match):
    with pytest.raises(ValueError, match=match):
        broadcast_levels(sigma, jnp.zeros((4, 2)))


def test_check_points_and_sigmas():
    x = np.ones((3, 2))
    assert check_points(x) is x
    with pytest.raises(ValueError, match=r"x\[:, None\]"):
        check_points(np.ones(3))
    with pytest.raises(ValueError, match="at least one point"):
        check_points(np.ones((0, 2)))
    np.testing.assert_array_equal(check_sigmas([2.0, 1.0]), [2.0, 1.0])
    np.testing.assert_array_equal(check_sigmas([1.0, 2.0], decreasing=False), [1.0, 2.0])
    with pytest.raises(ValueError, match="strictly decreasing"):
        check_sigmas([1.0, 1.0])
