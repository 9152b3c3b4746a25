"""End-to-end training benchmarks: one epoch of each workload (bench/workloads.py)
for fastnn and each installed peer (a plain float32 NumPy loop, fastnn's
float64-accumulating NumPy reference, scikit-learn's MLPClassifier, PyTorch
plain and with fused Adam, JAX), plus prediction throughput for the W1
network. A missing peer is skipped with the reason.

    python -m pytest bench/bench_training.py --benchmark-only -p no:cacheprovider

extra_info holds samples_per_sec and gflops of the work performed
(Workload.flops_per_sample: 2 * n_in * n_out per layer and sample for the
forward pass, as much again for dW, and again for dX on every layer but the
first, whose input gradient nobody computes). For the side-by-side table with
ratios, use bench/compare.py, which alternates the peers within one run.
"""

import os
import sys

import pytest
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import PEERS, WORKLOADS, PeerUnavailable  # noqa: E402

N_THREADS = os.cpu_count() or 1


@pytest.mark.parametrize("peer", list(PEERS))
@pytest.mark.parametrize("key", list(WORKLOADS))
def test_epoch(benchmark, key, peer):
    workload = WORKLOADS[key]
    with threadpool_limits(limits=N_THREADS):
        try:
            run, n = PEERS[peer](workload, N_THREADS)
        except PeerUnavailable as exc:
            pytest.skip(str(exc))
        benchmark.pedantic(run, rounds=3, warmup_rounds=1, iterations=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        workload=workload.name, threads=N_THREADS, samples_per_sec=n / median,
        gflops=n * workload.flops_per_sample / median / 1e9)
