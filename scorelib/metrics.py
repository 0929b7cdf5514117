"""Numbers that say how good a learned score or a set of samples is."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.distance import cdist

from scorelib._validate import check_callable, check_points

__all__ = [
    "fisher_divergence",
    "pdf_from_score_1d",
    "mode_shares",
    "energy_distance",
    "DigitsEvaluator",
]


def fisher_divergence(score_fn: Callable, true_score: Callable, x: jax.Array) -> float:
    """``0.5 * mean_n || s(x_n) - s*(x_n) ||^2`` over the points ``x``.

    Args:
      score_fn: ``(n, d) -> (n, d)`` learned score.
      true_score: ``(n, d) -> (n, d)`` reference score.
      x: ``(n, d)`` points at which to compare (samples of the reference density
        give the Fisher divergence; grid points give an unweighted error).
    """
    check_callable(score_fn, "score_fn")
    check_callable(true_score, "true_score")
    check_points(x, "x")
    diff = score_fn(x) - true_score(x)
    return float(0.5 * jnp.mean(jnp.sum(diff**2, axis=1)))


def pdf_from_score_1d(grid, scores) -> np.ndarray:
    """Recover a normalised density on a 1D grid from its score.

    ``log p(x) = integral of s`` (trapezoid rule from the left end), then
    ``p = exp(log p - max)`` normalised to integrate to 1 on the grid.

    Args:
      grid: ``(m,)`` increasing points.
      scores: ``(m,)`` or ``(m, 1)`` score values at ``grid``.

    Returns:
      ``(m,)`` density values.
    """
    grid = np.asarray(grid, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != grid.shape:
        raise ValueError(
            f"scores must have one value per grid point, shape {grid.shape} or ({grid.size}, 1); got {np.shape(scores)}"
        )
    if grid.size < 2 or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must hold at least two strictly increasing points")
    if not (np.all(np.isfinite(grid)) and np.all(np.isfinite(scores))):
        raise ValueError("grid and scores must be finite")
    increments = 0.5 * (scores[1:] + scores[:-1]) * np.diff(grid)
    log_p = np.concatenate([[0.0], np.cumsum(increments)])
    p = np.exp(log_p - log_p.max())
    return p / np.trapezoid(p, grid)


def mode_shares(x, centers) -> np.ndarray:
    """The fraction of points nearest to each center, ``(k,)``.

    Args:
      x: ``(n, d)`` samples.
      centers: ``(k, d)`` mode locations (e.g. mixture means).
    """
    check_points(x, "x")
    centers = np.asarray(centers)
    check_points(centers, "centers", np.shape(x)[1])
    nearest = cdist(np.asarray(x), centers).argmin(axis=1)
    return np.bincount(nearest, minlength=len(centers)) / len(nearest)


def energy_distance(x, y) -> float:
    """The energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` between two samples.

    It is zero only when the distributions agree, needs no bandwidth, and is
    cheap for a few thousand points (all pairs are used, V-statistic form;
    distances by ``scipy.spatial.distance.cdist`` in float64).

    Args:
      x: ``(n, d)`` samples.
      y: ``(m, d)`` samples.
    """
    check_points(x, "x")
    check_points(y, "y", np.shape(x)[1])
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())


class DigitsEvaluator:
    """Rerunnable quality numbers for generated 8x8 digits.

    A logistic-regression classifier is trained on a training split of the
    real digits; held-out real digits give the reference numbers.

    Args:
      X: ``(n, 64)`` real digits in [0, 1].
      y: ``(n,)`` labels.
      seed: seed of the train/held-out split (scikit-learn needs an integer).
      heldout_fraction: fraction of digits held out.
      confidence: the probability above which a prediction counts as confident.
    """

    def __init__(self, X, y, *, seed: int = 0, heldout_fraction: float = 0.25, confidence: float = 0.9):
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        check_points(X, "X", 64)
        self.X_train, self.X_heldout, self.y_train, self.y_heldout = train_test_split(
            np.asarray(X), np.asarray(y), test_size=heldout_fraction, random_state=seed, stratify=y
        )
        self.confidence = confidence
        self.classifier = LogisticRegression(C=1.0, max_iter=2000).fit(self.X_train, self.y_train)

    @property
    def heldout_accuracy(self) -> float:
        return float(self.classifier.score(self.X_heldout, self.y_heldout))

    def evaluate(self, samples) -> dict[str, float]:
        """Quality numbers for ``(n, 64)`` samples (clipped to [0, 1] first).

        Returns:
          ``confident_fraction``: share classified with probability >= ``confidence``;
          ``n_classes``: how many digit classes are predicted among the samples;
          ``nn_distance``: median Euclidean distance to the nearest training digit.
        """
        check_points(samples, "samples", 64)
        s = np.clip(np.asarray(samples, dtype=np.float64), 0.0, 1.0)
        proba = self.classifier.predict_proba(s)
        return {
            "confident_fraction": float(np.mean(proba.max(axis=1) >= self.confidence)),
            "n_classes": int(np.unique(proba.argmax(axis=1)).size),
            "nn_distance": float(np.median(self.nearest_distances(s))),
        }

    def nearest_distances(self, samples) -> np.ndarray:
        """Euclidean distance from each of ``(n, 64)`` samples (clipped to [0, 1]) to its nearest training digit."""
        check_points(samples, "samples", 64)
        s = np.clip(np.asarray(samples, dtype=np.float64), 0.0, 1.0)
        return cdist(s, self.X_train).min(axis=1)
