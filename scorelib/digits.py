"""Evaluation of generated 8x8 digits: measures that each catch a known failure (notebook 06).

The real digits (scikit-learn's bundled set, :func:`scorelib.data.load_digits_01`) are split three ways:
*training* (the generative model's data and the measures' reference set), *validation* (for choosing
settings) and *test* (for the reported numbers). A small MLP classifier trained on the training split
gives the feature space of the measures and the predicted classes. The measures:

- ``fd``: Frechet distance between Gaussians fitted to the samples' and the training digits' features (a
  small "FID"). The features are non-linear (after the ReLU), so their means and covariances carry more than
  the pixels' own: a Gaussian with the digits' pixel mean and covariance is caught by FD.
- ``precision`` / ``recall``: k-NN precision and recall (Kynkaanniemi et al. 2019, arXiv:1904.06991), k = 3:
  fidelity (share of samples inside the real digits' manifold) and coverage (share of real digits
  inside the samples' manifold), separately. Precision catches junk far from the digits.
- ``copy_share`` / ``copy_z``: data copying. Each sample's nearest-training distance in pixel space is compared
  with those of real unseen digits: the share of samples closer to a training digit than the 5th percentile
  of the unseen digits' distances (about 0.05 for a generator as original as real unseen digits, 1 for a
  copier), and Meehan et al. 2020's Mann-Whitney statistic ``Z_U`` (arXiv:2004.05675) with a single cell
  (about N(0, 1) for unseen real digits; strongly negative, e.g. below -3, when samples sit closer to the
  training set than unseen digits do, i.e. copying; positive when they are farther, e.g. junk).
- ``class_tv``: total-variation distance between the samples' predicted class histogram and the training
  labels' histogram; ``class_tv_real`` is what real digits of the same number get by chance (the reference).

Every measure carries a bootstrap standard error over the samples. The entry point is :class:`DigitsBenchmark`;
the measures themselves, which compare any two sets of points, are in :mod:`scorelib.metrics`
(``frechet_distance``, ``knn_precision_recall``, ``total_variation``, ``mann_whitney_z``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.distance import cdist

from scorelib._validate import check_points, check_positive_int
from scorelib.metrics import (
    Estimate,
    _frechet_from_stats,
    _gaussian_stats,
    _knn_radii,
    _u_to_z,
    mann_whitney_z,
    total_variation,
)

__all__ = [
    "DigitsBenchmark",
    "DigitsSplit",
    "Estimate",
    "split_digits",
]

N_CLASSES = 10
DIM = 64


class DigitsSplit(NamedTuple):
    """A three-way split of the digits: ``(n_*, 64)`` images and ``(n_*,)`` labels per part."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _rng(seed) -> np.random.Generator:
    """A NumPy Generator from an explicit integer seed or a JAX PRNG key (no global state)."""
    if isinstance(seed, jax.Array):
        data = jax.random.key_data(seed) if jnp.issubdtype(seed.dtype, jax.dtypes.prng_key) else seed
        return np.random.default_rng(np.asarray(data, dtype=np.uint32).ravel().tolist())
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or a JAX PRNG key; got {seed!r}")
    return np.random.default_rng(int(seed))


def _check_fraction(value, name: str) -> None:
    if not isinstance(value, (float, int)) or isinstance(value, bool) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {value!r}")


def split_digits(X, y, *, seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> DigitsSplit:
    """Stratified, seeded three-way split into training, validation and test digits.

    Args:
      X: ``(n, 64)`` digits in [0, 1].
      y: ``(n,)`` integer labels 0..9.
      seed: non-negative integer seed of the split (the same seed gives the same split).
      val_fraction: share of all digits in the validation split.
      test_fraction: share of all digits in the test split.

    Returns:
      A :class:`DigitsSplit` with float64 images; each part has (up to rounding) the class proportions of ``y``.
    """
    from sklearn.model_selection import train_test_split

    check_points(X, "X", DIM)
    y = np.asarray(y)
    if y.shape != (np.shape(X)[0],):
        raise ValueError(f"y must be a ({np.shape(X)[0]},) array of labels, one per digit; got shape {y.shape}")
    _check_fraction(val_fraction, "val_fraction")
    _check_fraction(test_fraction, "test_fraction")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1; got {val_fraction} + {test_fraction}")
    _rng(seed)  # validates the seed
    X = np.asarray(X, dtype=np.float64)
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_fraction, random_state=int(seed), stratify=y)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_fraction / (1 - test_fraction), random_state=int(seed), stratify=y_rest
    )
    return DigitsSplit(X_train, y_train, X_val, y_val, X_test, y_test)


class DigitsBenchmark:
    """Quality, coverage, copying and class-balance numbers for generated 8x8 digits, with bootstrap errors.

    The digits are split (:func:`split_digits`); the generative model must be trained on ``X_train`` only.
    Settings are chosen with ``evaluate(..., split="val")`` against ``reference("val")``; the numbers to
    report are ``evaluate(..., split="test")`` beside ``reference("test")``, the real test digits' own row.

    Classifier and feature space: a scikit-learn ``MLPClassifier`` with one hidden layer of 64 ReLU units
    (about 97% test accuracy; logistic regression gets about 96%), trained on the training split. Its hidden
    *activations* ``relu(W1 x + b1)`` are the 64-d features. Why this layer: the units are trained to separate
    the classes, and after the ReLU they are a non-linear function of the pixels. That matters for FD, which
    compares only means and covariances: of an affine map of the pixels (the pre-activations), a Gaussian with
    the training digits' pixel mean and covariance has exactly the digits' moments, and FD could not tell it
    from real digits; of the ReLU features it cannot match them. 64 dimensions also keep the directions off the
    digits, so junk cannot hide (in the 10 logits of a logistic regression, uniform noise lands inside the real
    digits' k-NN manifold about 20% of the time). The copying measure uses pixel space (the reader compares
    images, and features may discard the details a copy shares). FD, precision and recall compare with the
    *training* digits (the largest reference set, so the least noisy); only the copying measure and
    ``class_tv_real`` use the unseen digits of ``split``. A training-digit reference favours copies, which is
    why the copying measure has to stand beside them.

    The Frechet distance and recall depend on the number of samples: compare sets of the same size, e.g.
    ``n_test`` samples against ``reference("test")``, or pass ``n`` to :meth:`reference`. Samples are clipped
    to [0, 1] first.

    Args:
      X: ``(n, 64)`` digits in [0, 1]; default: :func:`scorelib.data.load_digits_01`.
      y: ``(n,)`` labels; given together with ``X``.
      seed: non-negative integer seed of the split and of the classifier's initialization.
      val_fraction: share of the digits in the validation split.
      test_fraction: share of the digits in the test split.
      k: the k of k-NN precision and recall.
      copy_quantile: quantile of the unseen digits' nearest-training distances below which a sample counts as
        a copy (0.05: about 5% of real unseen digits are flagged).
    """

    def __init__(
        self,
        X=None,
        y=None,
        *,
        seed: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        k: int = 3,
        copy_quantile: float = 0.05,
    ):
        from sklearn.neural_network import MLPClassifier

        if (X is None) != (y is None):
            raise ValueError("give both X and y, or neither (then scikit-learn's digits are loaded)")
        if X is None:
            from scorelib.data import load_digits_01

            X, y = load_digits_01()
        check_positive_int(k, "k")
        _check_fraction(copy_quantile, "copy_quantile")
        self.split = split_digits(X, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
        self.k = k
        self.copy_quantile = copy_quantile
        s = self.split
        self.classifier = MLPClassifier(
            hidden_layer_sizes=(64,), activation="relu", alpha=1e-3, max_iter=1000, random_state=int(seed)
        ).fit(s.X_train, s.y_train)
        self._train_features = self.features(s.X_train)
        self._train_stats = _gaussian_stats(self._train_features)
        w, v = np.linalg.eigh(self._train_stats[1])
        self._train_cov_root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # symmetric square root, for the bootstrap
        self._train_radii = _knn_radii(cdist(self._train_features, self._train_features), k)
        self._train_hist = np.bincount(s.y_train, minlength=N_CLASSES) / len(s.y_train)
        self._unseen = {"val": (s.X_val, s.y_val), "test": (s.X_test, s.y_test)}
        self._unseen_nn = {name: self.nearest_train_distances(x) for name, (x, _) in self._unseen.items()}

    @property
    def n_test(self) -> int:
        """Number of test digits: the sample count at which ``reference("test")`` is computed."""
        return len(self.split.X_test)

    @property
    def test_accuracy(self) -> float:
        """The classifier's accuracy on the test digits."""
        return float(self.classifier.score(self.split.X_test, self.split.y_test))

    def _prepare(self, samples, name="samples") -> np.ndarray:
        check_points(samples, name, DIM)
        if len(samples) < 2 * (self.k + 1):
            raise ValueError(f"{name} needs at least 2 (k + 1) = {2 * (self.k + 1)} digits; got {len(samples)}")
        return np.clip(np.asarray(samples, dtype=np.float64), 0.0, 1.0)

    def features(self, x) -> np.ndarray:
        """``(n, 64)`` hidden-layer activations ``relu(x W1 + b1)`` of ``(n, 64)`` digits (not clipped here)."""
        check_points(x, "x", DIM)
        return np.maximum(np.asarray(x, np.float64) @ self.classifier.coefs_[0] + self.classifier.intercepts_[0], 0.0)

    def predict(self, x) -> np.ndarray:
        """``(n,)`` predicted classes of ``(n, 64)`` digits (clipped to [0, 1])."""
        check_points(x, "x", DIM)
        return self.classifier.predict(np.clip(np.asarray(x, np.float64), 0.0, 1.0))

    def nearest_train_distances(self, x) -> np.ndarray:
        """``(n,)`` Euclidean pixel distance from each of ``(n, 64)`` digits (clipped) to its nearest training digit."""
        check_points(x, "x", DIM)
        return cdist(np.clip(np.asarray(x, np.float64), 0.0, 1.0), self.split.X_train).min(axis=1)

    def class_tv_real(self, n: int, *, split: str = "test", n_boot: int = 200, seed=0) -> Estimate:
        """The class-balance distance real digits get by chance: the reference for ``class_tv``.

        Draws ``n`` digits of ``split`` with replacement ``n_boot`` times and returns the mean and the standard
        deviation of the total-variation distance between their predicted class histogram and the training
        labels' histogram.
        """
        self._check_split(split)
        check_positive_int(n, "n")
        check_positive_int(n_boot, "n_boot")
        rng = _rng(seed)
        pred = self.predict(self._unseen[split][0])
        tvs = [self._tv(pred[rng.integers(0, len(pred), n)]) for _ in range(n_boot)]
        return Estimate(float(np.mean(tvs)), float(np.std(tvs, ddof=1)) if n_boot > 1 else float("nan"))

    def _tv(self, pred: np.ndarray) -> float:
        return total_variation(np.bincount(pred, minlength=N_CLASSES) / len(pred), self._train_hist)

    @staticmethod
    def _check_split(split):
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' (choosing settings) or 'test' (reporting); got {split!r}")

    def evaluate(self, samples, *, split: str = "test", n_boot: int = 200, seed=0) -> dict:
        """Every measure for ``(n, 64)`` generated digits, with bootstrap standard errors.

        Args:
          samples: ``(n, 64)`` generated digits (clipped to [0, 1]); ``n >= 2 (k + 1)``, best ``n_test``.
          split: the unseen real digits the copying measure compares with: ``"val"`` while choosing settings,
            ``"test"`` for the reported numbers. The other measures compare with the training digits.
          n_boot: bootstrap resamples of the samples (>= 2).
          seed: integer seed or JAX key of the bootstrap and of ``class_tv_real``.

        Returns:
          A dict of :class:`Estimate` (``value`` on all samples, ``se`` the bootstrap standard deviation):
          ``fd``, ``precision``, ``recall``, ``copy_share``, ``copy_z``, ``class_tv``, ``nn_median`` (median
          nearest-training pixel distance), ``class_tv_real`` (mean and spread of ``class_tv`` for ``n`` real
          digits of ``split``), and ``n``. Bootstrap replicates repeat points, which biases the FD up and the
          recall down, so ``value`` is always the full-set estimate, not the bootstrap mean.
        """
        self._check_split(split)
        return self._evaluate(self._prepare(samples), split, split, n_boot, seed)

    def reference(self, split: str = "test", *, n: int | None = None, n_boot: int = 200, seed=0) -> dict:
        """The real digits of ``split`` evaluated as if they were samples: the row a generator should match.

        Their copying measure compares them with the *other* unseen split (test with validation and vice
        versa), so ``copy_share`` is about ``copy_quantile`` and ``copy_z`` about N(0, 1) by chance.

        Args:
          split: ``"test"`` (the reported reference) or ``"val"`` (for choosing settings).
          n: use a random subset of this many digits (to match a sample count); default all of them.
          n_boot: bootstrap resamples.
          seed: integer seed or JAX key of the subset and the bootstrap.

        Returns:
          The dict of :meth:`evaluate`.
        """
        self._check_split(split)
        x = self._unseen[split][0]
        rng = _rng(seed)
        if n is not None:
            check_positive_int(n, "n")
            if n > len(x):
                raise ValueError(f"n must be at most the {len(x)} digits of the {split} split; got {n}")
            x = x[np.sort(rng.choice(len(x), n, replace=False))]
        other = "val" if split == "test" else "test"
        return self._evaluate(self._prepare(x, "digits"), other, split, n_boot, rng)

    def _evaluate(self, x: np.ndarray, split: str, tv_split: str, n_boot: int, seed) -> dict:
        check_positive_int(n_boot, "n_boot")
        if n_boot < 2:
            raise ValueError(f"n_boot must be at least 2 for a standard error; got {n_boot}")
        rng = seed if isinstance(seed, np.random.Generator) else _rng(seed)
        n, k = len(x), self.k
        f = self.features(x)
        d_fr = cdist(f, self._train_features)  # (n, n_train) feature distances
        d_ff = cdist(f, f)
        inside = (d_fr <= self._train_radii[None, :]).any(axis=1)  # per-sample precision indicator
        nn = self.nearest_train_distances(x)
        unseen_nn = self._unseen_nn[split]
        threshold = np.quantile(unseen_nn, self.copy_quantile)
        pred = self.classifier.predict(x)
        # Each sample's share of the Mann-Whitney U: U of a resample is the sum of its members' shares.
        sorted_nn = np.sort(unseen_nn)
        u_share = 0.5 * (np.searchsorted(sorted_nn, nn, "left") + np.searchsorted(sorted_nn, nn, "right"))
        mu_t, cov_t = self._train_stats

        def measures(idx, full=False):
            u = np.unique(idx)  # recall needs distinct points: a repeat would make a zero-radius ball
            r = _knn_radii(d_ff[np.ix_(u, u)], k) if len(u) > k else np.full(len(u), np.inf)
            mu, cov = _gaussian_stats(f[idx])
            if full:  # the full-set values with scipy's sqrtm and mannwhitneyu
                fd, z = _frechet_from_stats(mu, cov, mu_t, cov_t), mann_whitney_z(nn, unseen_nn)
            else:  # the same quantities, faster: tr (C1 C2)^(1/2) = sum of sqrt(eig(S C1 S)), S = C2^(1/2)
                eig = np.linalg.eigvalsh(self._train_cov_root @ cov @ self._train_cov_root)
                tr_root = np.sqrt(np.clip(eig, 0, None)).sum()
                fd = float(((mu - mu_t) ** 2).sum() + np.trace(cov) + np.trace(cov_t) - 2 * tr_root)
                z = _u_to_z(u_share[idx].sum(), len(idx), len(unseen_nn))
            return {
                "fd": fd,
                "precision": float(inside[idx].mean()),
                "recall": float((d_fr[u] <= r[:, None]).any(axis=0).mean()),
                "copy_share": float((nn[idx] < threshold).mean()),
                "copy_z": z,
                "class_tv": self._tv(pred[idx]),
                "nn_median": float(np.median(nn[idx])),
            }

        full = measures(np.arange(n), full=True)
        boot = [measures(rng.integers(0, n, n)) for _ in range(n_boot)]
        out = {name: Estimate(value, float(np.std([b[name] for b in boot], ddof=1))) for name, value in full.items()}
        out["class_tv_real"] = self.class_tv_real(n, split=tv_split, n_boot=n_boot, seed=int(rng.integers(2**31)))
        out["n"] = n
        return out
