"""Small JAX networks as pure functions over parameter pytrees.

Every network is a pair ``*_init(key, ...) -> params`` and
``*_apply(params, x[, sigma]) -> scores``; :func:`bind` turns a pair's apply and
its parameters into the ``score_fn`` that losses, samplers and metrics take.

``mlp_init``/``mlp_apply`` build the plain score models of notebooks 01-04;
``ncsn_init``/``ncsn_apply`` the noise-conditional network of notebook 05, and
``preconditioned_ncsn_init``/``preconditioned_ncsn_apply`` its Gaussian-whitened
version for the digits of notebook 06. Noise-conditional networks take ``sigma``
as a scalar or one level per point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from scorelib._validate import broadcast_levels, check_points, check_positive_int, check_sizes, is_traced

__all__ = [
    "bind",
    "mlp_init",
    "mlp_apply",
    "ncsn_init",
    "ncsn_apply",
    "preconditioned_ncsn_init",
    "preconditioned_ncsn_apply",
    "sigma_embedding",
]

Params = list[dict[str, jax.Array]]


def mlp_init(key: jax.Array, sizes: Sequence[int]) -> Params:
    """Initialise a fully connected network with layer widths ``sizes``.

    Weights are drawn from ``N(0, 1/fan_in)`` (LeCun normal), biases are zero.
    The draws are made on the host by NumPy, seeded from the bits of ``key``:
    the same key gives the same network, and creating one compiles nothing
    (compiling a JAX random-normal kernel takes longer than training a small
    network for a hundred steps).

    Args:
      key: a ``jax.random`` key (typed or a legacy ``uint32`` key), not traced.
      sizes: ``(d_in, hidden..., d_out)``.

    Returns:
      A list of ``{"w": (m, n), "b": (n,)}`` layers.
    """
    check_sizes(sizes)
    bits = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    if is_traced(bits):
        raise ValueError("mlp_init draws on the host: call it outside jit/vmap, with a concrete key")
    rng = np.random.default_rng(np.asarray(bits, dtype=np.uint32).ravel().tolist())
    return [
        {
            "w": jnp.asarray(rng.standard_normal((m, n), dtype=np.float32) / np.float32(np.sqrt(m))),
            "b": jnp.asarray(np.zeros(n, np.float32)),
        }
        for m, n in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def mlp_apply(params: Params, x: jax.Array, *, activation: Callable = jax.nn.softplus) -> jax.Array:
    """Apply the network to a batch: ``(n, sizes[0]) -> (n, sizes[-1])``.

    Args:
      params: layers from :func:`mlp_init`.
      x: ``(n, d_in)`` inputs.
      activation: the nonlinearity between layers (none after the last), a JAX function. The network is
        compiled once per activation object: pass a module-level function (``jax.nn.softplus``), not a new
        ``lambda`` at every call.
    """
    d_in = params[0]["w"].shape[0]
    check_points(x, "x", d_in)
    return _mlp_forward(params, x, activation=activation)


# Compiled as one program: called outside jit (metrics, plots, checks), the network otherwise runs op by op, and a
# fresh machine compiles each of its operations separately for every new batch shape. Inside jit it is inlined.
@partial(jax.jit, static_argnames="activation")
def _mlp_forward(params, x, *, activation):
    h = x
    for layer in params[:-1]:
        h = activation(h @ layer["w"] + layer["b"])
    return h @ params[-1]["w"] + params[-1]["b"]


def sigma_embedding(sigma: jax.Array, freqs: jax.Array) -> jax.Array:
    """Features of ``log sigma``: ``[log sigma, sin(f_j log sigma), cos(f_j log sigma)]``.

    Args:
      sigma: ``(n,)`` noise levels.
      freqs: ``(m,)`` frequencies ``f_j`` (the networks here use ``f_j = j / 2``, ``j = 1..m``).

    Returns:
      ``(n, 1 + 2 m)`` features.
    """
    log_s = jnp.log(sigma)[:, None]
    f = jnp.asarray(freqs, log_s.dtype)[None]
    return jnp.concatenate([log_s, jnp.sin(f * log_s), jnp.cos(f * log_s)], axis=1)


def _frequencies(n_freqs: int) -> jax.Array:
    check_positive_int(n_freqs, "n_freqs")
    return jnp.asarray(0.5 * np.arange(1, n_freqs + 1), jnp.float32)


def ncsn_init(key: jax.Array, dim: int, hidden: Sequence[int], *, n_freqs: int = 4) -> dict:
    """Initialise a noise-conditional score network ``s(x, sigma)`` for ``dim``-dimensional data.

    Args:
      key: a ``jax.random`` key.
      dim: data dimension ``d``.
      hidden: hidden layer widths, e.g. ``(128, 128)``.
      n_freqs: frequencies in the embedding of ``log sigma``.

    Returns:
      ``{"mlp": layers, "frozen": {"freqs": (n_freqs,)}}``. Everything under
      ``"frozen"`` is a constant of the architecture: :func:`ncsn_apply` stops its
      gradient, so an optimizer such as Adam leaves it unchanged.
    """
    check_positive_int(dim, "dim")
    freqs = _frequencies(n_freqs)
    return {"mlp": mlp_init(key, (dim + 1 + 2 * n_freqs, *hidden, dim)), "frozen": {"freqs": freqs}}


def ncsn_apply(params: dict, x: jax.Array, sigma, *, activation: Callable = jax.nn.softplus) -> jax.Array:
    """The noise-conditional score ``s(x, sigma)``, shape ``(n, d)``.

    How ``sigma`` enters:

    * the input is scaled to unit order, ``x / sqrt(1 + sigma^2)``, because a
      point perturbed at level ``sigma`` has spread about ``sqrt(1 + sigma^2)``
      for data of unit scale (the input scaling ``c_in`` of Karras et al. 2022);
    * features of ``log sigma`` (see :func:`sigma_embedding`) are concatenated
      to the input;
    * the MLP output is divided by ``sigma``, since the perturbed score has
      magnitude about ``1 / sigma`` (Song & Ermon 2020, technique 3).

    Args:
      params: from :func:`ncsn_init`.
      x: ``(n, d)`` points.
      sigma: a scalar level for all points, or ``(n,)`` levels, one per point.
    """
    mlp, freqs = params["mlp"], jax.lax.stop_gradient(params["frozen"]["freqs"])
    check_points(x, "x", mlp[-1]["w"].shape[1])
    sigma = broadcast_levels(sigma, x)
    h = jnp.concatenate([x / jnp.sqrt(1.0 + sigma[:, None] ** 2), sigma_embedding(sigma, freqs)], axis=1)
    return mlp_apply(mlp, h, activation=activation) / sigma[:, None]


def preconditioned_ncsn_init(key: jax.Array, data, hidden: Sequence[int], *, n_freqs: int = 4) -> dict:
    """Initialise a noise-conditional network that learns a correction to the best Gaussian.

    Let ``mu, Sigma = U diag(lam) U^T`` be the mean and covariance of ``data``.
    At noise level ``sigma`` the input is whitened with the covariance of the
    perturbed data, ``u = diag((lam + sigma^2)^-1/2) U^T (x - mu)``, and the score is

        ``s(x, sigma) = -U diag((lam + sigma^2)^-1/2) (u - g(u, sigma))``

    with ``g`` an MLP of ``[u, sigma_embedding(sigma)]``. With ``g = 0`` this is
    exactly the score of ``N(mu, Sigma + sigma^2 I)``, the Gaussian fit to the
    perturbed data; the network only learns what is not Gaussian.

    Why: in directions where the data barely vary (``lam << sigma^2``) the true
    score is about ``-(x - mu) / sigma^2``, a gain of ``1 / sigma`` on a signal of
    size ``sigma``. A plain MLP learns such large gains very slowly, and its
    small-noise scores stay poor; the whitening puts inputs and targets at unit
    scale at every level (the matrix version of the input scaling of
    :func:`ncsn_apply`).

    Args:
      key: a ``jax.random`` key.
      data: ``(n, d)`` training data, ``n >= 2`` (only its mean and covariance are kept).
      hidden: hidden widths of the correction MLP.
      n_freqs: frequencies in the embedding of ``log sigma``.

    Returns:
      ``{"mlp": layers, "frozen": {"freqs", "mean", "lam", "vecs"}}``, the same
      shape as :func:`ncsn_init`'s; the data statistics are frozen constants.
    """
    data = np.asarray(check_points(data, "data"), dtype=np.float64)
    if data.shape[0] < 2:
        raise ValueError(f"data must hold at least 2 points to estimate a covariance; got shape {data.shape}")
    d = data.shape[1]
    freqs = _frequencies(n_freqs)
    lam, vecs = np.linalg.eigh(np.atleast_2d(np.cov(data.T)))
    frozen = {
        "freqs": freqs,
        "mean": jnp.asarray(data.mean(axis=0), jnp.float32),
        "lam": jnp.asarray(np.maximum(lam, 0.0), jnp.float32),
        "vecs": jnp.asarray(vecs, jnp.float32),
    }
    return {"mlp": mlp_init(key, (d + 1 + 2 * n_freqs, *hidden, d)), "frozen": frozen}


def preconditioned_ncsn_apply(params: dict, x: jax.Array, sigma, *, activation: Callable = jax.nn.silu) -> jax.Array:
    """The preconditioned noise-conditional score ``s(x, sigma)``, shape ``(n, d)``.

    Args:
      params: from :func:`preconditioned_ncsn_init`.
      x: ``(n, d)`` points.
      sigma: a scalar level for all points, or ``(n,)`` levels, one per point.
      activation: the MLP's nonlinearity.
    """
    frozen = jax.lax.stop_gradient(params["frozen"])
    mean, lam, vecs = frozen["mean"], frozen["lam"], frozen["vecs"]
    check_points(x, "x", mean.shape[0])
    sigma = broadcast_levels(sigma, x)
    scale = 1.0 / jnp.sqrt(lam[None] + sigma[:, None] ** 2)
    u = ((x - mean) @ vecs) * scale
    features = jnp.concatenate([u, sigma_embedding(sigma, frozen["freqs"])], axis=1)
    g = mlp_apply(params["mlp"], features, activation=activation)
    return -((u - g) * scale) @ vecs.T


def bind(apply: Callable, params, **kwargs) -> Callable:
    """Turn a network ``apply(params, x, ...)`` into a score function of the points alone.

    ``bind(mlp_apply, params)`` is ``x -> mlp_apply(params, x)``, the ``score_fn``
    that losses, samplers and metrics take; a noise-conditional network gives
    ``(x, sigma) -> apply(params, x, sigma)``. Keyword arguments (e.g.
    ``activation=jax.nn.sigmoid``) are passed on to ``apply``.

    The result is a :func:`functools.partial`: samplers compile once per score
    function object, so keep the bound function in a variable to reuse it.
    """
    if not callable(apply):
        raise ValueError(f"apply must be a network's apply function; got {type(apply).__name__}")
    return partial(apply, params, **kwargs)
