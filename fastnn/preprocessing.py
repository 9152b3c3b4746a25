"""Input standardization (spec section 1): fit the per-feature mean and
population std on the training set, reuse them unchanged for validation and
test data. A constant feature is divided by 1, not 0.

With comm (an mpi4py communicator), each process fits on its shard of the
rows and the statistics are those of the union of the shards: each
process's row count, mean and std are gathered, and every process combines
them in rank order (the pooled mean, and the pooled variance as the mean of
the within-shard variances plus the spread of the shards' means about the
pooled mean, in float64), so every process holds the same bits.
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


def _fit_shards(X, comm, n_threads):
    """The mean and std of the union of the processes' shards (X is this
    process's), the same bits on every process."""
    mean, std = agree(comm, lambda: ops.standardize_fit(X, n_threads=n_threads))
    shards = comm.allgather((X.shape[0], mean, std))
    kinds = [(m.shape[0], str(m.dtype)) for _, m, _ in shards]
    if any(k != kinds[0] for k in kinds):
        raise ValueError("the processes' shards disagree on (features, dtype): %r" % (kinds,))
    counts = np.array([n for n, _, _ in shards], dtype=np.float64)
    means = np.array([m for _, m, _ in shards], dtype=np.float64)
    stds = np.array([s for _, _, s in shards], dtype=np.float64)
    weights = counts[:, None] / counts.sum()
    pooled_mean = (weights * means).sum(axis=0)
    pooled_var = (weights * (stds ** 2 + (means - pooled_mean) ** 2)).sum(axis=0)
    # a column constant on every shard, at one value, keeps std 0 (and its exact value)
    constant = np.all(stds == 0, axis=0) & np.all(means == means[0], axis=0)
    pooled_mean[constant] = means[0, constant]
    pooled_var[constant] = 0.0
    return pooled_mean.astype(mean.dtype), np.sqrt(pooled_var).astype(std.dtype)


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
