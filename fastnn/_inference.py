"""Prediction in chunks through the dense kernels: the forward pass that
fastnn.Sequential and the scikit-learn estimators share.

Design: rows go through every layer PREDICT_CHUNK_ROWS at a time, so the
intermediate activations of a large X never exist all at once; the output
layer writes straight into the result."""

import numpy as np

from fastnn import _kernels
from fastnn._threads import blas_threads

PREDICT_CHUNK_ROWS = 4096


def forward_in_chunks(X, layers, dtype, nt, rows=None):
    """The outputs of dense `layers` for the rows of X.

    layers : (W, b, activation id, alpha) per layer, C-contiguous in `dtype`
    rows : rows(lo, hi) gives X's rows lo:hi as a C-contiguous array of
        `dtype`; by default X already is one and is sliced
    """
    m = X.shape[0]
    out = np.empty((m, layers[-1][0].shape[1]), dtype=dtype)
    with blas_threads(1):  # the kernels' own threads make every BLAS call
        for lo in range(0, m, PREDICT_CHUNK_ROWS):
            hi = min(lo + PREDICT_CHUNK_ROWS, m)
            A = X[lo:hi] if rows is None else rows(lo, hi)
            for i, (W, b, act, alpha) in enumerate(layers):
                res = out[lo:hi] if i == len(layers) - 1 else \
                    np.empty((hi - lo, W.shape[1]), dtype=dtype)
                _kernels.dense_fwd(A, W, b, res, act, alpha, nt)
                A = res
    return out
