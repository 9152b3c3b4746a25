"""Flat parameter and gradient arenas.

Design: every weight matrix and bias vector of a model is a view into one
contiguous array (all weights first, then all biases), and the gradients
mirror that layout in a second array. One kernel call then updates, clips or
measures the whole model, and L2 and weight decay act on the weights prefix
alone (spec section 5: biases are not regularized)."""

import numpy as np


class Arena:
    """params and grads arenas for dense layers of the given (n_in, n_out) shapes."""

    def __init__(self, shapes, dtype):
        self.shapes = [tuple(s) for s in shapes]
        self.dtype = np.dtype(dtype)
        w_sizes = [n_in * n_out for n_in, n_out in self.shapes]
        b_sizes = [n_out for _, n_out in self.shapes]
        self.n_weights = int(sum(w_sizes))
        self.n_params = self.n_weights + int(sum(b_sizes))
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.grads = np.zeros(self.n_params, dtype=self.dtype)
        self.W, self.b = self._views(self.params, w_sizes, b_sizes)
        self.dW, self.db = self._views(self.grads, w_sizes, b_sizes)

    def _views(self, flat, w_sizes, b_sizes):
        W, b = [], []
        offset = 0
        for (n_in, n_out), size in zip(self.shapes, w_sizes):
            W.append(flat[offset:offset + size].reshape(n_in, n_out))
            offset += size
        for size in b_sizes:
            b.append(flat[offset:offset + size])
            offset += size
        return W, b

    def new_state(self):
        """A zeroed array shaped like the parameters (optimizer state)."""
        return np.zeros(self.n_params, dtype=self.dtype)
