"""Input standardization (spec section 1): fit the per-feature mean and
population std on the training set, reuse them unchanged for validation and
test data. A constant feature is divided by 1, not 0."""

import numpy as np

from fastnn import ops
from fastnn._validation import as_float_array, check_finite


class Standardizer:
    """(X - mean_) / scale_, per column, scikit-learn style.

    Attributes after fit: mean_, std_ (0 for constant columns), scale_ (std_
    with 0 replaced by 1), n_features_in_."""

    def __init__(self, n_threads=None):
        self.n_threads = n_threads

    def fit(self, X, y=None):
        X = _floating(X)
        self.mean_, self.std_ = ops.standardize_fit(X, n_threads=self.n_threads)
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

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        """X * scale_ + mean_, validated as transform validates its input."""
        self._check_fitted()
        arr = np.asarray(X)
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


def _floating(X, dtype=None):
    """Keep float32/float64 as they are (or cast to the fitted dtype); other
    numeric input becomes float64. Validation of the rest happens in ops."""
    arr = np.asarray(X)
    if dtype is not None and arr.dtype.kind in "fiu":
        return arr.astype(dtype, copy=False)
    if arr.dtype.kind in "iu":
        return arr.astype(np.float64)
    return arr
