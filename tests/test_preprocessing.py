"""The Standardizer (fastnn.preprocessing)."""

import numpy as np
import pytest

import fastnn

from .tolerances import assert_close


# ---------------------------------------------------------------- Standardizer


def _features(rng, m, dtype):
    scales = np.array([0.01, 1.0, 30.0, 1000.0])
    offsets = np.array([5.0, -2.0, 100.0, 1e4])
    return (rng.standard_normal((m, 4)) * scales + offsets).astype(dtype)


def test_standardizer_fit_transform(dtype, rng):
    X = _features(rng, 200, dtype)
    s = fastnn.Standardizer().fit(X)
    assert s.n_features_in_ == 4
    assert s.mean_.dtype == dtype and s.std_.dtype == dtype and s.scale_.dtype == dtype
    assert_close(s.mean_, X.astype(np.float64).mean(axis=0), "gemm",
                 scale=np.abs(X).max(), k=200, dtype=dtype)
    assert_close(s.std_, X.astype(np.float64).std(axis=0), "gemm",
                 scale=np.abs(X - X.mean(axis=0)).max(), k=200, dtype=dtype)
    Xt = s.transform(X)
    assert Xt.dtype == dtype and Xt.shape == X.shape
    np.testing.assert_array_equal(Xt, (X - s.mean_) / s.std_)
    np.testing.assert_array_equal(fastnn.Standardizer().fit_transform(X), Xt)
    assert_close(Xt.astype(np.float64).mean(axis=0), np.zeros(4), "gemm",
                 scale=float(np.abs(X).max(axis=0).max() / s.std_.min()), k=200, dtype=dtype)
    assert_close(Xt.astype(np.float64).std(axis=0), np.ones(4), "gemm", k=200, dtype=dtype)


def test_standardizer_inverse_transform_round_trip(dtype, rng):
    X = _features(rng, 50, dtype)
    s = fastnn.Standardizer()
    back = s.inverse_transform(s.fit_transform(X))
    assert back.dtype == dtype
    # a few roundings, each relative to the size of the column's values
    for j in range(X.shape[1]):
        assert_close(back[:, j], X[:, j], "elementwise", scale=np.abs(X[:, j]).max(), k=4)


def test_standardizer_reuses_the_training_statistics(dtype, rng):
    train, test = _features(rng, 100, dtype), _features(rng, 30, dtype) * 2
    s = fastnn.Standardizer().fit(train)
    mean, std = s.mean_.copy(), s.std_.copy()
    got = s.transform(test)
    np.testing.assert_array_equal(got, (test - mean) / std)
    np.testing.assert_array_equal(s.mean_, mean)
    np.testing.assert_array_equal(s.std_, std)
    # the test data's own statistics would give something else
    assert not np.allclose(got, fastnn.Standardizer().fit_transform(test))


def test_standardizer_converts_to_the_fitted_dtype(rng):
    s = fastnn.Standardizer().fit(_features(rng, 20, np.float32))
    assert s.transform(_features(rng, 5, np.float64)).dtype == np.float32
    ints = fastnn.Standardizer().fit(np.arange(12).reshape(6, 2))
    assert ints.mean_.dtype == np.float64
    np.testing.assert_array_equal(ints.mean_, [5.0, 6.0])


def test_standardizer_constant_columns(dtype):
    X = np.empty((7, 3), dtype=dtype)
    X[:, 0] = np.arange(7)
    X[:, 1] = 0.1
    X[:, 2] = -3.0
    s = fastnn.Standardizer().fit(X)
    np.testing.assert_array_equal(s.std_[1:], 0)
    np.testing.assert_array_equal(s.scale_, [s.std_[0], 1, 1])
    Xt = s.transform(X)
    np.testing.assert_array_equal(Xt[:, 1:], 0)
    np.testing.assert_array_equal(s.inverse_transform(Xt)[:, 1:], X[:, 1:])
    # new data in a constant column is shifted, not divided by zero
    new = X[:2].copy()
    new[:, 1] = 1.1
    np.testing.assert_array_equal(s.transform(new)[:, 1], new[:, 1] - s.mean_[1])


def test_standardizer_feature_count_mismatch(rng):
    s = fastnn.Standardizer().fit(_features(rng, 20, np.float64))
    with pytest.raises(ValueError, match="X has 3 features, but the Standardizer was fitted "
                                         "on 4"):
        s.transform(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"shape \(m, 4\).*\(5, 3\)"):
        s.inverse_transform(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"shape \(m, 4\).*\(5, 1\)"):
        s.inverse_transform(np.zeros((5, 1)))  # would broadcast silently
    with pytest.raises(ValueError, match="2-dimensional"):
        s.transform(np.zeros(4))


def test_standardizer_not_fitted():
    s = fastnn.Standardizer()
    for method in (s.transform, s.inverse_transform):
        with pytest.raises(RuntimeError, match="not fitted"):
            method(np.zeros((2, 2)))


def test_standardizer_rejects_bad_values(rng):
    X = _features(rng, 10, np.float64)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        fastnn.Standardizer().fit(X)
    with pytest.raises(TypeError, match="bool"):
        fastnn.Standardizer().fit(np.ones((3, 2), dtype=bool))


def test_standardizer_names_sparse_input():
    # a sparse matrix is refused as such, not as "dtype object"
    import scipy.sparse
    X = scipy.sparse.random(6, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(TypeError, match="Standardizer takes dense X, got a sparse csr_matrix"):
        fastnn.Standardizer().fit(X)
    fitted = fastnn.Standardizer().fit(X.toarray())
    with pytest.raises(TypeError, match="got a sparse csr_matrix"):
        fitted.transform(X)
    with pytest.raises(TypeError, match="got a sparse csr_matrix"):
        fitted.inverse_transform(X)


class _OneProcess:
    """The part of an mpi4py communicator the shards' fit uses, for one process."""

    def allgather(self, value):
        return [value]

    def Get_size(self):
        return 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_shards_fit_of_one_process_is_the_standardizers(dtype, monkeypatch, rng):
    # fit(comm=) in blocks of 5 rows: a column near 1e7 (float32 holds its units),
    # a constant column and a column constant but for one row
    from fastnn import preprocessing
    monkeypatch.setattr(preprocessing, "_BLOCK_VALUES", 20)  # 5 rows of 4 columns
    X = np.column_stack([rng.standard_normal(23), 1e7 + np.arange(23) % 3,
                         np.full(23, 0.3), np.r_[np.zeros(22), 2.0]]).astype(dtype)
    shards = fastnn.Standardizer().fit(X, comm=_OneProcess())
    one = fastnn.Standardizer().fit(X)
    tol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(shards.mean_, one.mean_, rtol=tol)
    np.testing.assert_allclose(shards.std_, one.std_, rtol=tol)
    assert shards.std_[2] == 0 and shards.mean_[2] == np.asarray(0.3, dtype=dtype)
    assert shards.mean_.dtype == shards.std_.dtype == np.dtype(dtype)
