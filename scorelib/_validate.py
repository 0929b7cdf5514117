"""Input checks shared by scorelib's public functions.

Every check raises a ``ValueError`` that says what was expected, so a mistake
fails at the boundary with a readable message instead of deep inside JAX.
Checks that need concrete values (finiteness) are skipped for traced arrays,
so the public functions stay usable inside ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

_TRACER_ERRORS = (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError)


def is_traced(x) -> bool:
    """True when ``x`` is an abstract value inside a JAX transformation (``jit``, ``vmap``, ``grad``).

    Uses only JAX's public error types: converting a tracer to NumPy raises one of
    them, a concrete array converts (on the CPU without a copy). ``jax.core`` is an
    internal module whose names have moved between releases, so it is not used.
    """
    if not isinstance(x, jax.Array):
        return False
    try:
        np.asarray(x)
    except _TRACER_ERRORS:
        return True
    return False


def check_points(x, name: str = "x", dim: int | None = None):
    """Check that ``x`` is an ``(n, d)`` array of finite numbers.

    Args:
      x: array-like of points.
      name: the argument's name, used in the message.
      dim: the required number of columns ``d``, if known.

    Returns:
      ``x`` unchanged.
    """
    shape = np.shape(x)
    if len(shape) != 2:
        hint = " (1D data must be shaped (n, 1): use x[:, None])" if len(shape) == 1 else ""
        raise ValueError(f"{name} must be an (n, d) array of points; got shape {shape}{hint}")
    if dim is not None and shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (points in {dim} dimensions); got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name} must contain at least one point; got shape {shape}")
    check_finite(x, name)
    return x


def check_finite(x, name: str):
    """Raise if a concrete array contains NaN or inf."""
    if not is_traced(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains NaN or inf values; clean the data before using it")
    return x


def check_positive(value, name: str) -> None:
    """Check that a scalar is finite and strictly positive."""
    if is_traced(value):
        return
    v = np.asarray(value)
    if v.ndim != 0:
        raise ValueError(f"{name} must be a positive scalar; got an array of shape {v.shape}")
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number; got {float(v)}")


def check_positive_int(value, name: str) -> None:
    """Check that ``value`` is a Python/NumPy integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def check_sigmas(sigmas, name: str = "sigmas", decreasing: bool = True) -> np.ndarray:
    """Check a 1D sequence of positive noise levels (strictly decreasing if asked)."""
    if is_traced(sigmas):
        return sigmas
    s = np.asarray(sigmas, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"{name} must be a non-empty 1D sequence of noise levels; got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"{name} must all be positive and finite; got {s}")
    if decreasing and s.size > 1 and np.any(np.diff(s) >= 0):
        raise ValueError(f"{name} must be strictly decreasing (largest noise first, as annealing goes); got {s}")
    return s


def check_callable(fn, name: str) -> None:
    if not callable(fn):
        raise ValueError(f"{name} must be a callable; got {type(fn).__name__}")


def check_sizes(sizes: Sequence[int]) -> None:
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise ValueError(f"sizes must list at least two positive integers (input, ..., output); got {list(sizes)}")


def check_nonnegative(value, name: str) -> None:
    """Check that a concrete scalar is ``>= 0`` (traced values pass through)."""
    if is_traced(value):
        return
    v = np.asarray(value)
    if v.ndim != 0 or not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")


def broadcast_levels(sigma, x):
    """Noise levels for a batch: a scalar or ``(n,)`` ``sigma`` as an ``(n,)`` array of ``x``'s dtype.

    The one place where noise-conditional code (networks, perturbed scores,
    samplers) turns "one level for all points" into "one level per point".
    Concrete values are checked (shape, positivity); traced ones pass through.
    """
    import jax.numpy as jnp

    n = np.shape(x)[0]
    if not is_traced(sigma):
        s = np.asarray(sigma)
        if s.ndim > 1 or (s.ndim == 1 and s.shape[0] != n):
            raise ValueError(f"sigma must be a scalar or one level per point, shape ({n},); got shape {s.shape}")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"sigma must be positive and finite; got {sigma}")
    return jnp.broadcast_to(jnp.asarray(sigma, x.dtype), (n,))
