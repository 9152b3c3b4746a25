"""Train a small network on scikit-learn's bundled digits and report accuracy and time.

    fastnn-demo [--epochs 30] [--batch-size 32] [--dtype float32] [--threads N]
    python -m fastnn.demo ...

The digits are split 75/25 (stratified), standardized with statistics from the
training part only, and a 64 -> 128 (relu) -> dropout -> 10 (softmax) network
is trained with Adam, L2 and early stopping on a validation split.
"""

import argparse
import sys
import time

import numpy as np

import fastnn as fn


def _load_digits(seed):
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        sys.exit("the demo uses scikit-learn's bundled digits: pip install 'fastnn[sklearn]'")
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)


def train(epochs=30, batch_size=32, hidden=128, lr=1e-3, dtype="float32", seed=0,
          n_threads=None, verbose=0):
    """Train on digits; return (test accuracy, training seconds, the model)."""
    X_train, X_test, y_train, y_test = _load_digits(seed)
    scaler = fn.Standardizer().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    model = fn.Sequential([
        fn.Dense(hidden, activation="relu", init="he"),
        fn.Dropout(0.1),
        fn.Dense(10, activation="softmax"),
    ], input_dim=X_train.shape[1], dtype=dtype, seed=seed)
    start = time.perf_counter()
    model.fit(X_train, y_train, loss="cross_entropy", optimizer=fn.optim.Adam(lr=lr),
              batch_size=batch_size, epochs=epochs, l2=1e-4, validation_split=0.1,
              early_stopping=fn.EarlyStopping(patience=5, restore_best=True),
              verbose=verbose, n_threads=n_threads)
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(X_test, y_test, n_threads=n_threads)["accuracy"]
    return accuracy, seconds, model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0, choices=[0, 1, 2])
    args = parser.parse_args(argv)
    accuracy, seconds, model = train(args.epochs, args.batch_size, args.hidden, args.lr,
                                     args.dtype, args.seed, args.threads, args.verbose)
    history = model.history_
    samples = float(np.sum(np.array(history["samples_per_sec"]) * np.array(history["time"])))
    print("digits: 64 -> %d relu -> dropout 0.1 -> 10 softmax, %s, batch %d"
          % (args.hidden, args.dtype, args.batch_size))
    print("epochs run: %d of %d%s" % (len(history), args.epochs,
                                      " (early stopping)" if history.stopped else ""))
    print("test accuracy: %.2f%%" % (100 * accuracy))
    print("training time: %.2f s (%.0f samples/s, %d threads)"
          % (seconds, samples / seconds, fn.get_num_threads() if args.threads is None
             else args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
