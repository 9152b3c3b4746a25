"""Cost of each activation per element, forward (bias + activation, in place)
and backward (dZ = dA g'(A)), on one thread, through fastnn.ops.

    python bench/activation_cost.py [--rows 256] [--cols 1024] [--repeats 30]

Prints ns per element (best of --repeats calls; the forward time includes
restoring the input with one copy) for float32 and float64, and
the instruction-set variant in use. Running it against two builds of fastnn
(PYTHONPATH pointing at each) compares them in one sitting.
"""

import argparse
import time

import numpy as np

import fastnn
from fastnn import ops

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus", "softmax")


def best_of(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--cols", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    fastnn.set_num_threads(1)
    isa = fastnn.get_isa() if hasattr(fastnn, "get_isa") else "target_clones (no table)"
    print("fastnn from %s, instruction set: %s, 1 thread, %d x %d"
          % (fastnn.__file__, isa, args.rows, args.cols))
    print("| dtype | activation | forward ns/element | backward ns/element |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        Z = (rng.standard_normal((args.rows, args.cols)) * 3).astype(dtype)
        b = np.zeros(args.cols, dtype)
        out = np.empty_like(Z)
        dZ = np.empty_like(Z)
        for act in ACTIVATIONS:
            def forward():
                out[...] = Z
                ops.bias_activation(out, b, act, out=out)
            fwd = best_of(forward, args.repeats) / Z.size * 1e9
            bwd = ""
            if act != "softmax":  # softmax's gradient is fused into the loss
                A = ops.activation_forward(Z, act)
                t = best_of(lambda: ops.activation_backward(A, Z, act, out=dZ), args.repeats)
                bwd = "%.2f" % (t / Z.size * 1e9)
            print("| %s | %s | %.2f | %s |" % (np.dtype(dtype).name, act, fwd, bwd))


if __name__ == "__main__":
    main()
