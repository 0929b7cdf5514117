"""The digits evaluation on constructed inputs whose answer is known: copies, noisy copies, blurs, junk, one class."""

import jax
import numpy as np
import pytest

import scorelib as sl
from scorelib.digits import DigitsBenchmark, split_digits
from scorelib.metrics import frechet_distance, knn_precision_recall, mann_whitney_z, total_variation

N_BOOT = 50


@pytest.fixture(scope="module")
def bench():
    return DigitsBenchmark(seed=0)


@pytest.fixture(scope="module")
def ref(bench):
    return bench.reference("test", n_boot=N_BOOT)


@pytest.fixture(scope="module")
def fakes(bench):
    """Failure modes built from the training digits, as many as the test digits."""
    rng = np.random.default_rng(1)
    s = bench.split
    idx = rng.choice(len(s.X_train), bench.n_test, replace=False)
    copies = s.X_train[idx]
    partner = [rng.choice(np.flatnonzero((s.y_train == s.y_train[i]) & (np.arange(len(s.y_train)) != i))) for i in idx]
    return {
        "copies": copies,
        "noisy": copies + 0.1 * rng.standard_normal(copies.shape),
        "blurs": 0.5 * (copies + s.X_train[partner]),
        "junk": rng.uniform(0, 1, copies.shape),
        "one_class": s.X_train[rng.choice(np.flatnonzero(s.y_train == 3), bench.n_test)],
    }


def test_frechet_distance_closed_forms():
    a = np.random.default_rng(0).normal(size=(500, 5))
    a -= a.mean(axis=0)
    assert abs(frechet_distance(a, a)) < 1e-8
    assert frechet_distance(a, a + 1.0) == pytest.approx(5.0, abs=1e-8)  # same covariance: |mean shift|^2
    assert frechet_distance(a, 2 * a) == pytest.approx(np.trace(np.cov(a, rowvar=False)), rel=1e-6)  # (2-1)^2 tr C
    one_d = a[:, :1]  # d = 1: (sd_a - sd_b)^2 + shift^2
    assert frechet_distance(one_d, 3 * one_d + 2) == pytest.approx(4 * one_d.var(ddof=1) + 4, rel=1e-6)


def test_knn_precision_recall_identical_and_disjoint():
    a = np.random.default_rng(0).normal(size=(300, 4))
    assert knn_precision_recall(a, a) == (1.0, 1.0)
    assert knn_precision_recall(a, a + 100.0) == (0.0, 0.0)


def test_mann_whitney_z_sign():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=400), rng.normal(size=400)
    assert abs(mann_whitney_z(x, y)) < 3
    assert mann_whitney_z(x - 1, y) < -10 < 10 < mann_whitney_z(x + 1, y)


def test_splits_disjoint_stratified_reproducible():
    _, y = sl.data.load_digits_01()
    ids = np.tile(np.arange(len(y))[:, None] / len(y), (1, 64))  # each row names its digit
    s = split_digits(ids, y, seed=3)
    parts = [s.X_train[:, 0], s.X_val[:, 0], s.X_test[:, 0]]
    assert sum(len(p) for p in parts) == len(y)
    assert len(np.unique(np.concatenate(parts))) == len(y)  # disjoint and complete
    assert abs(len(s.X_test) - 0.2 * len(y)) <= 1 and abs(len(s.X_val) - 0.2 * len(y)) <= 1
    total = np.bincount(y, minlength=10)
    for labels in (s.y_train, s.y_val, s.y_test):
        expected = total * len(labels) / len(y)
        assert np.all(np.abs(np.bincount(labels, minlength=10) - expected) <= 2)  # stratified
    again = split_digits(ids, y, seed=3)
    np.testing.assert_array_equal(again.X_test, s.X_test)
    assert not np.array_equal(split_digits(ids, y, seed=4).X_test, s.X_test)


def test_samples_equal_to_the_reference_set(bench):
    out = bench.evaluate(bench.split.X_train, n_boot=2)
    assert abs(out["fd"].value) < 1e-6
    assert out["precision"].value == 1.0 and out["recall"].value == 1.0
    assert out["copy_share"].value == 1.0  # ... and they are flagged as copies


def test_full_set_values_match_the_standalone_functions(bench, fakes):
    x = np.clip(fakes["noisy"], 0, 1)
    out = bench.evaluate(x, n_boot=2)
    fd = frechet_distance(bench.features(x), bench.features(bench.split.X_train))
    assert out["fd"].value == pytest.approx(fd, rel=1e-9)
    pr = knn_precision_recall(bench.features(bench.split.X_train), bench.features(x), k=bench.k)
    assert (out["precision"].value, out["recall"].value) == pytest.approx(pr)
    z = mann_whitney_z(bench.nearest_train_distances(x), bench.nearest_train_distances(bench.split.X_test))
    assert out["copy_z"].value == pytest.approx(z)


def test_real_test_digits_are_not_flagged(ref):
    assert ref["precision"].value > 0.8 and ref["recall"].value > 0.8
    assert ref["copy_share"].value < 0.15 and abs(ref["copy_z"].value) < 3
    assert ref["class_tv"].value < 2 * ref["class_tv_real"].value


@pytest.mark.parametrize("name", ["copies", "noisy"])
def test_copies_are_flagged_by_the_copying_measure(bench, fakes, ref, name):
    out = bench.evaluate(fakes[name], n_boot=N_BOOT)
    assert out["copy_share"].value > 0.6 > ref["copy_share"].value + 3 * ref["copy_share"].se
    assert out["copy_z"].value < -10


def test_blurs_are_caught_by_fd_and_recall(bench, fakes, ref):
    out = bench.evaluate(fakes["blurs"], n_boot=N_BOOT)
    assert out["fd"].value > 1.5 * ref["fd"].value
    assert out["recall"].value < ref["recall"].value - 0.15
    assert out["precision"].value > ref["precision"].value - 0.05  # precision alone would pass blurs


def test_a_gaussian_with_the_digits_moments_is_caught_by_fd(bench, ref):
    # Unclipped, so only the features can tell it apart: FD compares feature means and covariances, and of an
    # affine feature map (the hidden layer before its ReLU) this Gaussian would have exactly the digits' moments.
    x = bench.split.X_train
    w, v = np.linalg.eigh(np.cov(x.T))
    g = x.mean(axis=0) + np.random.default_rng(0).normal(size=(bench.n_test, 64)) @ (v * np.sqrt(np.clip(w, 0, None))).T
    assert frechet_distance(bench.features(g), bench.features(x)) > 2 * ref["fd"].value
    affine = g @ bench.classifier.coefs_[0], x @ bench.classifier.coefs_[0]
    assert frechet_distance(*affine) < 1.5 * ref["fd"].value  # why the features are taken after the ReLU


def test_junk_is_caught_by_precision_and_fd(bench, fakes, ref):
    out = bench.evaluate(fakes["junk"], n_boot=N_BOOT)
    assert out["precision"].value < 0.05 and out["fd"].value > 10 * ref["fd"].value
    assert out["copy_share"].value == 0.0  # far from the training digits: not copies


def test_one_class_is_caught_by_class_balance(bench, fakes):
    out = bench.evaluate(fakes["one_class"], n_boot=N_BOOT)
    assert out["class_tv"].value > 0.8 > 5 * out["class_tv_real"].value


def test_bootstrap_errors_positive_shrinking_and_seeded(bench):
    small = bench.reference("test", n=90, n_boot=100, seed=0)
    large = bench.reference("test", n_boot=100, seed=0)
    for name in ("fd", "precision", "recall", "copy_share", "class_tv", "nn_median", "class_tv_real"):
        assert 0 < large[name].se < small[name].se, name
    assert 0.5 < large["copy_z"].se < 1.5  # a standardized statistic: its spread stays about 1
    assert bench.reference("test", n=90, n_boot=100, seed=0) == small
    key = jax.random.key(0)
    first = bench.evaluate(bench.split.X_val, n_boot=5, seed=key)
    assert bench.evaluate(bench.split.X_val, n_boot=5, seed=key) == first


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda b: b.evaluate(np.zeros((50, 63))), "64 columns"),
        (lambda b: b.evaluate(np.full((50, 64), np.nan)), "NaN"),
        (lambda b: b.evaluate(np.zeros((5, 64))), "at least 2"),
        (lambda b: b.evaluate(b.split.X_val, split="train"), "split must be"),
        (lambda b: b.evaluate(b.split.X_val, n_boot=1), "n_boot must be at least 2"),
        (lambda b: b.evaluate(b.split.X_val, seed=-1), "seed must be"),
        (lambda b: b.reference("test", n=10_000), "at most"),
    ],
)
def test_benchmark_bad_inputs(bench, call, match):
    with pytest.raises(ValueError, match=match):
        call(bench)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: split_digits(np.zeros((10, 64)), np.zeros(9, int)), r"\(10,\) array"),
        (lambda: split_digits(np.zeros((10, 64)), np.zeros(10, int), val_fraction=0.5, test_fraction=0.5), "< 1"),
        (lambda: split_digits(np.zeros((10, 64)), np.zeros(10, int), test_fraction=0), "between 0 and 1"),
        (lambda: DigitsBenchmark(X=np.zeros((10, 64))), "both X and y"),
        (lambda: DigitsBenchmark(k=0), "positive integer"),
        (lambda: frechet_distance(np.zeros((1, 3)), np.zeros((5, 3))), "at least 2"),
        (lambda: frechet_distance(np.zeros((4, 3)), np.zeros((5, 2))), "3 columns"),
        (lambda: knn_precision_recall(np.zeros((3, 2)), np.zeros((9, 2)), k=3), "more than k"),
        (lambda: total_variation([0.5, 0.5], [1.0]), "same length"),
        (lambda: total_variation([0.5, 0.6], [0.5, 0.5]), "sum to 1"),
        (lambda: mann_whitney_z(np.zeros((2, 2)), np.zeros(3)), "1D"),
    ],
)
def test_function_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
