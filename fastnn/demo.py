"""Train a small network on scikit-learn's bundled digits with fastnn's kernels.

    python -m fastnn.demo [--epochs 40] [--batch-size 32] [--dtype float32] [--threads N]

Prints test accuracy and training time. The loop is written out with
:mod:`fastnn.ops` so every step is visible: standardize, forward through a
ReLU layer and a softmax layer, fused softmax cross-entropy, backward, global
norm clipping and one Adam step over all parameters at once (they share one
flat buffer, of which each layer's W and b are views).
"""

import argparse
import sys
import time

import numpy as np

from fastnn import ops


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("the demo uses scikit-learn's bundled digits: pip install 'fastnn[sklearn]'")
    return load_digits(return_X_y=True)


def _split(X, y, rng, test_fraction=0.25):
    order = rng.permutation(len(y))
    n_test = int(len(y) * test_fraction)
    return X[order[n_test:]], y[order[n_test:]], X[order[:n_test]], y[order[:n_test]]


def _flat_parameters(shapes, dtype):
    """One flat buffer and a view into it per shape (weights and biases)."""
    sizes = [int(np.prod(s)) for s in shapes]
    flat = np.zeros(sum(sizes), dtype=dtype)
    views, offset = [], 0
    for shape, size in zip(shapes, sizes):
        views.append(flat[offset:offset + size].reshape(shape))
        offset += size
    return flat, views


def train(epochs=40, batch_size=32, hidden=64, lr=2e-3, dtype="float32", seed=0,
          n_threads=None):
    """Train 64 -> hidden (relu) -> 10 (softmax); return (test accuracy, seconds)."""
    rng = np.random.default_rng(seed)
    X, y = _load_digits()
    X_train, y_train, X_test, y_test = _split(X.astype(dtype), y, rng)
    mean, std = ops.standardize_fit(X_train)
    X_train = ops.standardize_transform(X_train, mean, std)
    X_test = ops.standardize_transform(X_test, mean, std)

    n_in, n_out = X.shape[1], 10
    shapes = [(n_in, hidden), (hidden,), (hidden, n_out), (n_out,)]
    params, (W1, b1, W2, b2) = _flat_parameters(shapes, dtype)
    grads, (dW1, db1, dW2, db2) = _flat_parameters(shapes, dtype)
    m1, v1 = np.zeros_like(params), np.zeros_like(params)
    W1[...] = rng.standard_normal(W1.shape) * np.sqrt(2.0 / n_in)                  # he
    W2[...] = rng.standard_normal(W2.shape) * np.sqrt(2.0 / (hidden + n_out))     # glorot

    start = time.perf_counter()
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(y_train))
        for lo in range(0, len(order), batch_size):
            idx = order[lo:lo + batch_size]
            xb, yb = X_train[idx], y_train[idx]
            A1 = ops.dense_forward(xb, W1, b1, "relu", n_threads=n_threads)
            Z2 = ops.dense_forward(A1, W2, b2, "identity", n_threads=n_threads)
            _, dZ2 = ops.softmax_cross_entropy(Z2, yb, out=Z2, n_threads=n_threads)
            dA1, _, _ = ops.linear_backward(A1, W2, dZ2, out_dW=dW2, out_db=db2,
                                            n_threads=n_threads)
            ops.dense_backward(xb, W1, A1, dA1, "relu", need_dX=False, out_dW=dW1,
                               out_db=db1, out_dZ=dA1, n_threads=n_threads)
            ops.clip_grad_norm([grads], 5.0, n_threads=n_threads)
            step += 1
            ops.adam_step(params, grads, m1, v1, step, lr, n_threads=n_threads)
    seconds = time.perf_counter() - start

    hidden_test = ops.dense_forward(X_test, W1, b1, "relu", n_threads=n_threads)
    logits = ops.dense_forward(hidden_test, W2, b2, "identity", n_threads=n_threads)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    return accuracy, seconds, step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    accuracy, seconds, steps = train(args.epochs, args.batch_size, args.hidden, args.lr,
                                     args.dtype, args.seed, args.threads)
    print("digits: 64 -> %d relu -> 10 softmax, %s, %d epochs, batch %d"
          % (args.hidden, args.dtype, args.epochs, args.batch_size))
    print("test accuracy: %.2f%%" % (100 * accuracy))
    print("training time: %.2f s (%d steps, %.0f steps/s)" % (seconds, steps, steps / seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
