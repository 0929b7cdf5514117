"""Small JAX networks as pure functions over parameter pytrees.

``mlp_init``/``mlp_apply`` build the plain score models of notebooks 01-04;
``ncsn_init``/``ncsn_apply`` build the noise-conditional score network of
notebooks 05-06.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from scorelib._validate import check_points, check_positive_int, check_sizes

__all__ = ["mlp_init", "mlp_apply", "ncsn_init", "ncsn_apply", "sigma_embedding"]

Params = list[dict[str, jax.Array]]


def mlp_init(key: jax.Array, sizes: Sequence[int]) -> Params:
    """Initialise a fully connected network with layer widths ``sizes``.

    Weights are drawn from ``N(0, 1/fan_in)`` (LeCun normal), biases are zero.

    Args:
      key: a ``jax.random`` key.
      sizes: ``(d_in, hidden..., d_out)``.

    Returns:
      A list of ``{"w": (m, n), "b": (n,)}`` layers.
    """
    check_sizes(sizes)
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (m, n)) / np.sqrt(m), "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp_apply(params: Params, x: jax.Array, *, activation: Callable = jax.nn.softplus) -> jax.Array:
    """Apply the network to a batch: ``(n, sizes[0]) -> (n, sizes[-1])``.

    Args:
      params: layers from :func:`mlp_init`.
      x: ``(n, d_in)`` inputs.
      activation: the nonlinearity between layers (none after the last).
    """
    d_in = params[0]["w"].shape[0]
    check_points(x, "x", d_in)
    h = x
    for layer in params[:-1]:
        h = activation(h @ layer["w"] + layer["b"])
    return h @ params[-1]["w"] + params[-1]["b"]


def sigma_embedding(sigma: jax.Array, n_freqs: int) -> jax.Array:
    """Features of ``log sigma``: ``[log sigma, sin(f_j log sigma), cos(f_j log sigma)]``.

    Args:
      sigma: ``(n,)`` noise levels.
      n_freqs: number of frequencies ``f_j = j / 2``, ``j = 1..n_freqs``.

    Returns:
      ``(n, 1 + 2 * n_freqs)`` features.
    """
    log_s = jnp.log(sigma)[:, None]
    freqs = 0.5 * jnp.arange(1, n_freqs + 1)[None]
    return jnp.concatenate([log_s, jnp.sin(freqs * log_s), jnp.cos(freqs * log_s)], axis=1)


def ncsn_init(key: jax.Array, dim: int, hidden: Sequence[int], *, n_freqs: int = 4) -> dict:
    """Initialise a noise-conditional score network ``s(x, sigma)`` for ``dim``-dimensional data.

    Args:
      key: a ``jax.random`` key.
      dim: data dimension ``d``.
      hidden: hidden layer widths, e.g. ``(128, 128)``.
      n_freqs: frequencies in the embedding of ``log sigma``.
    """
    check_positive_int(dim, "dim")
    check_positive_int(n_freqs, "n_freqs")
    sizes = (dim + 1 + 2 * n_freqs, *hidden, dim)
    return {"mlp": mlp_init(key, sizes)}


def ncsn_apply(params: dict, x: jax.Array, sigma: jax.Array, *, activation: Callable = jax.nn.softplus) -> jax.Array:
    """The noise-conditional score ``s(x, sigma)``, shape ``(n, d)``.

    How ``sigma`` enters (Song & Ermon 2020, and the input scaling of Karras et
    al. 2022):

    * the input is scaled to unit order, ``x / sqrt(1 + sigma^2)``, because a
      point perturbed at level ``sigma`` has spread about ``sqrt(1 + sigma^2)``
      for data of unit scale;
    * features of ``log sigma`` (see :func:`sigma_embedding`) are concatenated
      to the input;
    * the MLP output is divided by ``sigma``, since the perturbed score has
      magnitude about ``1 / sigma``.

    Args:
      params: from :func:`ncsn_init`.
      x: ``(n, d)`` points.
      sigma: ``(n,)`` noise levels, one per point (or a scalar, broadcast).
    """
    mlp = params["mlp"]
    d = mlp[-1]["w"].shape[1]
    check_points(x, "x", d)
    sigma = jnp.broadcast_to(jnp.asarray(sigma, x.dtype), (x.shape[0],))
    n_freqs = (mlp[0]["w"].shape[0] - d - 1) // 2  # the input is [x, embedding]
    h = jnp.concatenate([x / jnp.sqrt(1.0 + sigma[:, None] ** 2), sigma_embedding(sigma, n_freqs)], axis=1)
    return mlp_apply(mlp, h, activation=activation) / sigma[:, None]
