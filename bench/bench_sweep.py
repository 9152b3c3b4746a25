"""The configs of bench/sweep.py as pytest benchmarks: fastnn only, in this
process, one epoch per round.

    python -m pytest bench/bench_sweep.py --benchmark-only -p no:cacheprovider
    python -m pytest bench/bench_sweep.py --benchmark-only -k "act- or w1024"

Test ids are the sweep's config names with "=" and spaces turned into "-"
(pytest's -k cannot take "=").

Each config gets as many samples as make one epoch last about TARGET_S
(sized from a warm-up and two probe epochs on a few thousand samples, as
the sweep does),
then one warm-up epoch and 3 timed ones. fastnn runs on N_THREADS threads,
the sweep's default, with every other thread pool of the process held to the
same count. extra_info holds samples_per_sec, gflops (the work performed:
Workload.flops_per_sample), n_samples and the config's aliases. For PyTorch
and NumPy beside fastnn, each in its own process, run bench/sweep.py.
"""

import os
import sys
from dataclasses import replace

import pytest
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sweep import configs, probe_samples, whole_batches  # noqa: E402
from workloads import fastnn_peer, timed  # noqa: E402

N_THREADS = 2
TARGET_S = 0.3
ENTRIES = configs()


@pytest.mark.parametrize("entry", ENTRIES,
                         ids=[e["name"].replace("=", "-").replace(" ", "-") for e in ENTRIES])
def test_sweep_config(benchmark, entry):
    workload = entry["workload"]
    with threadpool_limits(limits=N_THREADS):
        run, n = fastnn_peer(replace(workload, n_samples=probe_samples(workload)), N_THREADS)
        run()
        per_sample = min(timed(run) for _ in range(2)) / n
        sized = replace(workload, name=entry["name"],
                        n_samples=whole_batches(TARGET_S / per_sample, workload.batch_size))
        run, n = fastnn_peer(sized, N_THREADS)
        benchmark.group = "sweep: " + entry["factors"][0]
        benchmark.pedantic(run, rounds=3, warmup_rounds=1, iterations=1)
    stats = getattr(benchmark, "stats", None)
    benchmark.extra_info.update(config=entry["name"], aliases=entry["aliases"],
                                layers=list(workload.layers), batch=workload.batch_size,
                                threads=N_THREADS, n_samples=n)
    if stats is not None:  # None under --benchmark-disable
        median = stats.stats.median
        benchmark.extra_info.update(samples_per_sec=n / median,
                                    gflops=n * workload.flops_per_sample / median / 1e9)
