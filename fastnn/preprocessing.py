"""Input standardization (spec section 1): fit the per-feature mean and
population std on the training set, reuse them unchanged for validation and
test data. A constant feature is divided by 1, not 0.

With comm (an mpi4py communicator), each process fits on its shard of the
rows and the statistics are those of the union of the shards, in two passes
as one process computes them: the shards' row counts and column sums give
the mean, then their sums of squared deviations from it give the variance
(in float64, also for float32 rows). Every process adds the shards' sums in
rank order, so every process holds the same bits.
"""

import numpy as np
import scipy.sparse

from fastnn import ops
from fastnn._collective import agree
from fastnn._validation import as_float_array, check_finite


class Standardizer:
    """(X - mean_) / scale_, per column, scikit-learn style.

    Attributes after fit: mean_, std_ (0 for constant columns), scale_ (std_
    with 0 replaced by 1), n_features_in_."""

    def __init__(self, n_threads=None):
        self.n_threads = n_threads

    def fit(self, X, y=None, comm=None):
        """Fit the mean and std of X's columns.

        Parameters
        ----------
        X : array-like of shape (m, n)
        y : ignored
        comm : mpi4py.MPI.Intracomm, default=None
            Fit on the union of the processes' shards, X being this
            process's rows (docs/distributed.md): every process gets the same
            mean_ and std_, those of the concatenated shards up to float
            rounding. A failure on one process raises on every process.

        Returns
        -------
        self
        """
        X = _floating(X)
        if comm is None:
            mean, std = ops.standardize_fit(X, n_threads=self.n_threads)
        else:
            mean, std = _fit_shards(X, comm, self.n_threads)
        self.mean_, self.std_ = mean, std
        self.scale_ = np.where(self.std_ == 0, 1, self.std_).astype(self.std_.dtype)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        self._check_fitted()
        X = _floating(X, self.mean_.dtype)
        if X.ndim == 2 and X.shape[1] != self.n_features_in_:
            raise ValueError("X has %d features, but the Standardizer was fitted on %d"
                             % (X.shape[1], self.n_features_in_))
        return ops.standardize_transform(X, self.mean_, self.std_, n_threads=self.n_threads)

    def fit_transform(self, X, y=None, comm=None):
        return self.fit(X, comm=comm).transform(X)

    def inverse_transform(self, X):
        """X * scale_ + mean_, validated as transform validates its input."""
        self._check_fitted()
        arr = _floating(X)
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise ValueError("X must have shape (m, %d) like the data the Standardizer was "
                             "fitted on, got %s" % (self.n_features_in_, arr.shape))
        dtype = self.mean_.dtype
        X = as_float_array(_floating(arr, dtype), "X", dtype, ndim=2)
        check_finite(X, "X")
        return X * self.scale_ + self.mean_

    def _check_fitted(self):
        if not hasattr(self, "mean_"):
            raise RuntimeError("this Standardizer is not fitted yet; call fit first")


_BLOCK_VALUES = 1 << 21  # 16 MB of float64 per block of rows


def _fit_shards(X, comm, n_threads):
    """The mean and std of the union of the processes' shards (X is this
    process's), the same bits on every process: the global mean from the
    shards' row counts and column sums, then the global variance from the
    shards' sums of squared deviations from it, both in float64 and added in
    rank order (two passes, as one process computes them: moments about each
    shard's own mean would lose the spread between shards whose means are
    large and close)."""
    first = agree(comm, lambda: _shard_sums(X, n_threads))
    shards = comm.allgather(first)
    kinds = [(sums.shape[0], dtype) for _, sums, _, dtype in shards]
    if any(k != kinds[0] for k in kinds):
        raise ValueError("the processes' shards disagree on (features, dtype): %r" % (kinds,))
    dtype = kinds[0][1]
    n = sum(count for count, _, _, _ in shards)
    mean = _in_rank_order([sums for _, sums, _, _ in shards]) / n
    var = _in_rank_order(comm.allgather(_squared_deviations(X, mean))) / n
    # a column constant on every shard, at one value, keeps std 0 and its exact value
    values = np.array([constant for _, _, constant, _ in shards])
    constant = np.all(~np.isnan(values), axis=0) & np.all(values == values[0], axis=0)
    mean[constant] = values[0, constant]
    var[constant] = 0.0
    return mean.astype(dtype), np.sqrt(var).astype(dtype)


def _shard_sums(X, n_threads):
    """(rows, column sums in float64, each column's value where it is constant
    on this shard and NaN elsewhere, dtype name) of this process's shard,
    checked as one process's fit checks X."""
    mean, std = ops.standardize_fit(X, n_threads=n_threads)
    constant = np.where(std == 0, mean.astype(np.float64), np.nan)
    return X.shape[0], X.sum(axis=0, dtype=np.float64), constant, str(X.dtype)


def _squared_deviations(X, mean):
    """Per column, the sum over this shard's rows of (x - mean)^2 in float64,
    a block of rows at a time (float32 rows widened block by block)."""
    total = np.zeros(X.shape[1])
    rows = max(1, _BLOCK_VALUES // max(1, X.shape[1]))
    for first in range(0, X.shape[0], rows):
        d = X[first:first + rows].astype(np.float64) - mean
        total += np.einsum("ij,ij->j", d, d)
    return total


def _in_rank_order(arrays):
    """The sum of the processes' arrays, added in rank order: the same bits on
    every process."""
    total = np.array(arrays[0], dtype=np.float64)
    for a in arrays[1:]:
        total += a
    return total


def _floating(X, dtype=None):
    """Keep float32/float64 as they are (or cast to the fitted dtype); other
    numeric input becomes float64. Validation of the rest happens in ops."""
    if scipy.sparse.issparse(X):  # np.asarray would make it a 0-d array of one object
        raise TypeError("Standardizer takes dense X, got a sparse %s: centring makes it dense "
                        "(use X.toarray() for one that fits in memory)" % type(X).__name__)
    arr = np.asarray(X)
    if dtype is not None and arr.dtype.kind in "fiu":
        return arr.astype(dtype, copy=False)
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    return arr
