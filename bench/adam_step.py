"""One Adam step over 1e7 float32 parameters: fastnn against PyTorch's fused
Adam, side by side in one run (each in its own process), 1 and 2 threads.

    python bench/adam_step.py [--n 10000000] [--repeats 20]

Throughput counts 28 bytes per element: read the parameter, gradient and two
moments, write the parameter and two moments.
"""

import argparse
import multiprocessing as mp
import time

import numpy as np


def _fastnn(n, threads, repeats, conn):
    from fastnn import ops
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ops.adam_step(p, g, m, v, 1, 1e-3, n_threads=threads)
    times = []
    for t in range(2, 2 + repeats):
        start = time.perf_counter()
        ops.adam_step(p, g, m, v, t, 1e-3, n_threads=threads)
        times.append(time.perf_counter() - start)
    conn.send(times)


def _torch(n, threads, repeats, conn):
    import torch
    torch.set_num_threads(threads)
    p = torch.nn.Parameter(torch.randn(n))
    p.grad = torch.randn(n) * 1e-2
    opt = torch.optim.Adam([p], lr=1e-3, fused=True)
    opt.step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    conn.send(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    print("| threads | fastnn GB/s | PyTorch fused GB/s | ratio |")
    print("|---|---|---|---|")
    for threads in (1, 2):
        rates = {}
        for name, fn in (("fastnn", _fastnn), ("torch", _torch)):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=fn, args=(args.n, threads, args.repeats, child))
            proc.start()
            try:
                times = parent.recv()
                rates[name] = 28 * args.n / np.median(times) / 1e9
            except EOFError:
                rates[name] = float("nan")
            proc.join()
        print("| %d | %.1f | %.1f | %.2fx |" % (threads, rates["fastnn"], rates["torch"],
                                                rates["fastnn"] / rates["torch"]))


if __name__ == "__main__":
    main()
