"""Checks for notebook 06's coding exercises: the Fréchet distance of two Gaussians, and k-NN precision and recall."""

from __future__ import annotations

import numpy as np
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist

from scorelib.exercises._core import ExerciseError, Slip, attempt, compare, known, register
from scorelib.metrics import frechet_distance, knn_precision_recall

__all__ = ["check_frechet_gaussians", "check_knn_precision_recall"]


# ---------------------------------------------------------------------------------------------------------------
# Exercise 4: the Fréchet distance between two Gaussians, from their means and covariances
# ---------------------------------------------------------------------------------------------------------------

def _point_pairs():
    """Six pairs of point sets the notebook does not show; the check gives the student their means and covariances.

    Pairs 1 and 2 have covariances that do not commute (so (C1 C2)^1/2 differs from C1^1/2 C2^1/2), pair 3 is the
    same set twice (distance 0), pair 4 the same set shifted (only the means differ), pair 5 has covariances close to
    diagonal (nearly commuting), pair 6 is in one dimension (1 x 1 covariances).
    """
    rng = np.random.default_rng(20240619)
    pairs = []
    for dim, n1, n2 in ((3, 200, 150), (5, 300, 240)):
        mix1, mix2 = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
        a = rng.normal(size=(n1, dim)) @ mix1
        b = rng.normal(size=(n2, dim)) @ mix2 + rng.normal(size=dim)
        pairs.append((a, b))
    same = rng.normal(size=(120, 4)) @ rng.normal(size=(4, 4))
    pairs.append((same, same.copy()))
    pairs.append((same, same + np.array([0.5, -1.0, 0.0, 2.0])))
    pairs.append((rng.normal(size=(80, 2)) * [1.0, 2.0], rng.normal(size=(60, 2)) * [3.0, 0.5] + 1.0))
    pairs.append((rng.normal(size=(90, 1)), 2.5 * rng.normal(size=(70, 1)) - 1.0))
    return pairs


def _stats(points):
    return points.mean(axis=0), np.atleast_2d(np.cov(points, rowvar=False))  # (1, 1) in one dimension


def _fd_reference(mean1, cov1, mean2, cov2):
    root = sqrtm(cov1 @ cov2).real
    return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2 * root))


def _fd_plus_root(mean1, cov1, mean2, cov2):
    return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 + 2 * sqrtm(cov1 @ cov2).real))


def _fd_separate_roots(mean1, cov1, mean2, cov2):
    root = sqrtm(cov1).real @ sqrtm(cov2).real
    return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2 * root))


def _fd_no_two(mean1, cov1, mean2, cov2):
    return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - sqrtm(cov1 @ cov2).real))


def _fd_unsquared_means(mean1, cov1, mean2, cov2):
    return float(np.linalg.norm(mean1 - mean2) + np.trace(cov1 + cov2 - 2 * sqrtm(cov1 @ cov2).real))


def _fd_elementwise_root(mean1, cov1, mean2, cov2):
    with np.errstate(invalid="ignore"):
        return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2 * np.sqrt(cov1 @ cov2)))


def _fd_complex(mean1, cov1, mean2, cov2):  # sqrtm's output used as it comes: complex, with round-off imaginary parts
    return np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2 * sqrtm(cov1 @ cov2).astype(complex)) + 1e-9j


_FD_SLIPS = {
    "flipped sign of the root's term": Slip(
        _fd_plus_root, "the cross term has the wrong sign. The distance is |mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 "
        "C2)^1/2): twice the trace of the root is subtracted (pair 3, a Gaussian and itself, must give 0)."),
    "roots of each covariance separately": Slip(
        _fd_separate_roots, "you took the square root of each covariance separately. (C1 C2)^1/2 equals C1^1/2 "
        "C2^1/2 only when the two matrices commute (pairs 3, 4 and 6); take scipy.linalg.sqrtm(cov1 @ cov2)."),
    "a missing factor 2": Slip(
        _fd_no_two, "the factor 2 in front of tr (C1 C2)^1/2 is missing (section 1's formula); without it a Gaussian "
        "and itself are not at distance 0."),
    "unsquared distance of the means": Slip(
        _fd_unsquared_means, "the mean term must be the squared distance |mu1 - mu2|^2, not the distance "
        "|mu1 - mu2|."),
    "elementwise square root": Slip(  # gives nan where C1 C2 is negative, caught before the comparison
        _fd_elementwise_root, "np.sqrt (or ** 0.5) takes the square root of each entry of C1 C2 (elementwise); the "
        "formula needs the matrix square root, scipy.linalg.sqrtm(cov1 @ cov2).", words="elementwise"),
    "a complex result": Slip(_fd_complex, words="real part"),  # caught before the comparison
}


@register("06", reference=_fd_reference, mistakes=_FD_SLIPS)
def check_frechet_gaussians(frechet_gaussians):
    """Check ``frechet_gaussians(mean1, cov1, mean2, cov2) -> float`` against ``sl.metrics.frechet_distance``."""
    pairs = _point_pairs()
    stats = [(*_stats(a), *_stats(b)) for a, b in pairs]
    got = []
    for i, args in enumerate(stats):
        value = attempt(frechet_gaussians, *(np.copy(a) for a in args))
        if np.iscomplexobj(value):
            raise ExerciseError(
                f"frechet_gaussians returned a complex number on pair {i + 1} ({complex(np.asarray(value)):.4g}). "
                "scipy.linalg.sqrtm returns a complex matrix whose imaginary part is round-off: take its real part "
                "(`.real`) before the trace, and return a float.")
        if np.ndim(value) != 0:
            raise ExerciseError(
                f"frechet_gaussians must return one number per pair of Gaussians; got shape {np.shape(value)} on "
                f"pair {i + 1}. Sum the squared differences of the means, and take the trace of the matrices.")
        got.append(float(np.asarray(value, dtype=np.float64)))
    got = np.array(got)
    if not np.all(np.isfinite(got)):
        raise ExerciseError(
            "frechet_gaussians returned nan: np.sqrt (or ** 0.5) takes the square root elementwise, and C1 C2 has "
            "negative entries. The formula needs the matrix square root, scipy.linalg.sqrtm(cov1 @ cov2).")
    expected = np.array([frechet_distance(a, b) for a, b in pairs])
    compare(got, expected, what="frechet_gaussians(mean1, cov1, mean2, cov2)", at="pair number",
            inputs=np.arange(1, len(pairs) + 1), rtol=1e-4, atol=1e-4,
            known=known(_FD_SLIPS, output=lambda slip: np.array([slip(*pair) for pair in stats])))
    return (f"Matches sl.metrics.frechet_distance on {len(pairs)} pairs, covariances that commute and that do not, "
            "and 0 for a Gaussian and itself.")


# ---------------------------------------------------------------------------------------------------------------
# Exercise 5: k-NN precision and recall (Kynkäänniemi et al. 2019)
# ---------------------------------------------------------------------------------------------------------------

def _knn_cases():
    """(real, fake, k) the notebook does not show: a shifted narrow cloud, a collapsed mode, near-copies, d = 8."""
    rng = np.random.default_rng(7)
    shifted = (rng.normal(size=(80, 3)), 0.7 + 0.5 * rng.normal(size=(60, 3)), 3)
    centers = np.array([[-3.0, 0.0], [3.0, 0.0]])
    two_modes = centers[rng.integers(0, 2, 70)] + 0.6 * rng.normal(size=(70, 2))
    one_mode = centers[0] + 0.6 * rng.normal(size=(50, 2))
    collapsed = (two_modes, one_mode, 5)
    base = rng.normal(size=(40, 2))
    near = (base, base[:30] + 0.05 * rng.normal(size=(30, 2)), 2)
    wide = (rng.normal(size=(90, 8)), 1.3 * rng.normal(size=(70, 8)), 4)
    return [shifted, collapsed, near, wide]


def _knn_reference(real, fake, k):
    return knn_precision_recall(real, fake, k=k)


def _radii(points, k, column):
    return np.sort(cdist(points, points), axis=1)[:, column]


def _knn_self_neighbour(real, fake, k):
    r_real, r_fake, dist = _radii(real, k, k - 1), _radii(fake, k, k - 1), cdist(fake, real)
    return (dist <= r_real[None, :]).any(axis=1).mean(), (dist <= r_fake[:, None]).any(axis=0).mean()


def _knn_swapped(real, fake, k):
    precision, recall = _knn_reference(real, fake, k)
    return recall, precision


def _knn_flipped(real, fake, k):
    r_real, r_fake, dist = _radii(real, k, k), _radii(fake, k, k), cdist(fake, real)
    return (dist > r_real[None, :]).any(axis=1).mean(), (dist > r_fake[:, None]).any(axis=0).mean()


def _knn_complement(real, fake, k):
    precision, recall = _knn_reference(real, fake, k)
    return 1 - precision, 1 - recall


def _knn_wrong_axis(real, fake, k):
    r_real, r_fake, dist = _radii(real, k, k), _radii(fake, k, k), cdist(fake, real)
    return (dist <= r_real[None, :]).any(axis=0).mean(), (dist <= r_fake[:, None]).any(axis=1).mean()


_KNN_SLIPS = {
    "flipped sign of the comparison": Slip(
        _knn_flipped, "the comparison has the wrong sign: a point is inside a ball when its distance to the centre "
        "is at most (<=) the ball's radius, and it counts when it is inside at least one ball."),
    "1 - precision, 1 - recall": Slip(
        _knn_complement, "you return 1 - precision and 1 - recall: the shares of points outside every ball. Flip "
        "the sign of the comparison (distance <= radius counts as inside)."),
    "each point its own first neighbour": Slip(
        _knn_self_neighbour, "each point counted itself as its own nearest neighbour: in the sorted distances "
        "within a set, column 0 is the point itself (distance 0), so the k-th nearest *other* point is column k, "
        "not k - 1."),
    "precision and recall swapped": Slip(
        _knn_swapped, "precision and recall are swapped. Precision: the share of generated (fake) points inside "
        "some ball around a real point (fidelity); recall: the share of real points inside some ball around a "
        "generated point (coverage)."),
    "averaged over the wrong axis": Slip(
        _knn_wrong_axis, "the mean is over the wrong axis. Precision is one 0/1 per generated point (is it inside "
        "any real ball?) averaged over the generated points; recall one per real point, averaged over the real "
        "points."),
}


@register("06", reference=_knn_reference, mistakes=_KNN_SLIPS)
def check_knn_precision_recall(knn_pr):
    """Check ``knn_pr(real, fake, k) -> (precision, recall)`` against ``sl.metrics.knn_precision_recall``."""
    cases = _knn_cases()
    got = []
    for i, (real, fake, k) in enumerate(cases):
        value = attempt(knn_pr, real.copy(), fake.copy(), k)
        if np.shape(value) != (2,):
            raise ExerciseError(
                f"the function must return two numbers, (precision, recall); got shape {np.shape(value)} on case "
                f"{i + 1}. Each is a share: a mean of 0s and 1s over points.")
        got.append(np.asarray(value, dtype=np.float64))
    compare(np.array(got), np.array([_knn_reference(*case) for case in cases]),
            what="(precision, recall)", at="case number", inputs=np.arange(1, len(cases) + 1), rtol=0, atol=1e-9,
            known=known(_KNN_SLIPS, output=lambda slip: np.array([slip(*case) for case in cases], np.float64)))
    return (f"Matches sl.metrics.knn_precision_recall on {len(cases)} cases (a shifted cloud, a collapsed mode, "
            "near-copies, 8 dimensions), k from 2 to 5.")
