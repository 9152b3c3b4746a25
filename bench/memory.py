"""Memory of a W1 fit: resident memory against what the fit has to hold.

    python bench/memory.py

Prints the process's resident memory before and after one epoch of W1 (the
interpreter and libraries are measured first, so they can be told apart), the
budget data + parameters + gradients + Adam state + one batch of activations
and gradients, and the allocations the training loop makes per epoch in
steady state (tracemalloc; the C loop itself allocates nothing).
"""

import gc
import os
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main():
    import fastnn as fn
    from workloads import WORKLOADS, _fastnn_model, make_data
    libraries = rss()
    w = WORKLOADS["W1"]
    X, y = make_data(w)
    gc.collect()
    before = rss()
    model = _fastnn_model(w)
    opt = fn.optim.Adam(lr=w.lr)
    model.fit(X, y, optimizer=opt, batch_size=w.batch_size, epochs=1)
    after = rss()
    n = model.arena_.n_params
    widths = sum(w.layers)
    batch = w.batch_size * widths * 4 * 3  # activations, gradient scratch, batch copy
    budget = X.nbytes + y.nbytes + n * 4 * 4 + batch
    tracemalloc.start()
    model.fit(X, y, optimizer=opt, batch_size=w.batch_size, epochs=1)
    snap1 = tracemalloc.take_snapshot()
    model.fit(X, y, optimizer=opt, batch_size=w.batch_size, epochs=3)
    snap2 = tracemalloc.take_snapshot()
    growth = sum(s.size_diff for s in snap2.compare_to(snap1, "filename"))
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mb = 1e6
    print("interpreter and libraries: %.1f MB" % (libraries / mb))
    print("data (X float32, y int64): %.1f MB" % ((X.nbytes + y.nbytes) / mb))
    print("parameters: %d (params + grads + 2 Adam states: %.1f MB)" % (n, n * 16 / mb))
    print("resident before fit: %.1f MB, after: %.1f MB (fit added %.1f MB)"
          % (before / mb, after / mb, (after - before) / mb))
    print("budget (data + parameters and state + one batch): %.1f MB; resident less "
          "libraries: %.1f MB = %.2fx the budget"
          % (budget / mb, (after - libraries) / mb, (after - libraries) / budget))
    print("Python allocations per fit in steady state: peak %.2f MB while a fit runs, "
          "%+d bytes left over after 3 more epochs" % (peak / mb, growth))


if __name__ == "__main__":
    main()
