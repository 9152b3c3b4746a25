"""Plumbing shared by the studies: output files, figures, data sets, training in steps.

Design:

- Figures are ``matplotlib.figure.Figure`` objects drawn by the Agg canvas,
  never pyplot: a study needs no display, opens no window and leaves the
  global backend alone (``History.plot`` does the same).
- Every study writes three files into its output directory: ``NAME.png`` (the
  figure), ``NAME.json`` (the key numbers and the summary, the same dict the
  study function returns) and ``NAME.csv`` (the curves behind the figure, one
  row per plotted point, ready for ``pandas.read_csv``).
- Studies run fastnn on one thread unless told otherwise. Their layers are 64
  units wide and their batches 32 rows, where a second OpenMP thread costs more
  in synchronization than it gains: on a 2-core machine with one core busy, an
  epoch of a 20-layer, 64-wide network on digits took 0.35 s with 2 threads and
  0.08 s with 1. fastnn gives bitwise identical results for any thread count,
  so only the wall times change.
- Data come from scikit-learn's bundled sets or are generated in code; nothing
  is downloaded. Inputs are standardized with statistics of the training split
  only (spec section 1).
"""

import contextlib
import csv
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

import fastnn as fn

DPI = 100
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
          "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


# ------------------------------------------------------------------ running


@contextlib.contextmanager
def fastnn_threads(n_threads):
    """Run the block with fastnn's default thread count set to n_threads."""
    before = fn.get_num_threads()
    fn.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        fn.set_num_threads(before)


@contextlib.contextmanager
def expected_warnings():
    """Silence the warnings the studies provoke on purpose: zero initialization
    and runs that diverge (they are recorded, not hidden: see History.stopped)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="zero initialization", category=UserWarning)
        warnings.filterwarnings("ignore", message="training diverged", category=RuntimeWarning)
        yield


class Study:
    """Collects one study's numbers, curves and figure, and writes its files.

    Usage: ``study = Study(name, out, quick, seed)``; fill ``study.numbers``
    (JSON-able key numbers) and ``study.rows`` (CSV rows, dicts with the keys of
    ``columns``); then ``return study.finish(fig, summary)``.
    """

    def __init__(self, name, out, quick, seed, columns):
        self.name = name
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.quick = bool(quick)
        self.seed = int(seed)
        self.columns = list(columns)
        self.numbers = {}
        self.rows = []
        self.started = time.perf_counter()

    def add_rows(self, rows):
        self.rows.extend(rows)

    def finish(self, fig, summary):
        files = {kind: str(self.out / ("%s.%s" % (self.name, kind)))
                 for kind in ("png", "json", "csv")}
        save_figure(fig, files["png"])
        write_csv(files["csv"], self.rows, self.columns)
        result = {"study": self.name, "quick": self.quick, "seed": self.seed}
        result.update(self.numbers)
        result["summary"] = " ".join(summary.split())
        result["seconds"] = round(time.perf_counter() - self.started, 2)
        result["files"] = files
        result = to_jsonable(result)
        with open(files["json"], "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        return result


def to_jsonable(obj):
    """Plain Python containers and numbers; NaN and infinities become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def write_csv(path, rows, columns):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in columns})


def _csv_value(value):
    if isinstance(value, (float, np.floating)):
        return "" if not math.isfinite(value) else "%.6g" % value
    return value


def first_at_or_below(values, target):
    """1-based position of the first value <= target, or None."""
    for i, v in enumerate(values):
        if v is not None and math.isfinite(v) and v <= target:
            return i + 1
    return None


# ------------------------------------------------------------------ data


def sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("this study uses scikit-learn's bundled data sets: "
                          "pip install 'fastnn[sklearn]'") from exc
    return datasets


def split_standardized(X, y, sizes, seed):
    """Shuffle (X, y) with `seed`, cut it into consecutive parts of the given
    sizes (None takes the rest), and standardize every part with the mean and
    std of the first (training) part."""
    perm = np.random.default_rng([seed, 17]).permutation(len(X))
    X, y = X[perm], y[perm]
    parts, start = [], 0
    for size in sizes:
        stop = len(X) if size is None else start + size
        if stop > len(X):
            raise ValueError("the data set has %d samples, fewer than %s" % (len(X), sizes))
        parts.append((X[start:stop], y[start:stop]))
        start = stop
    scaler = fn.Standardizer().fit(parts[0][0])
    return [(scaler.transform(Xp), yp) for Xp, yp in parts]


def digits(sizes, seed):
    """scikit-learn's 8x8 digits (1797 samples, 64 features, 10 classes)."""
    X, y = sklearn_datasets().load_digits(return_X_y=True)
    return split_standardized(X.astype(np.float64), y, sizes, seed)


def diabetes(seed):
    """scikit-learn's diabetes regression set (442 samples, 10 features); X and
    y both standardized, so a loss of 0.5 is the loss of predicting the mean."""
    X, y = sklearn_datasets().load_diabetes(return_X_y=True)
    (X, y), = split_standardized(X, y.reshape(-1, 1), [None], seed)
    y = (y - y.mean()) / y.std()
    return X, y.ravel()


# ------------------------------------------------------------------ training


class EvalEachEpoch(fn.Callback):
    """Records model.evaluate on a data set after every epoch (the data term
    of the loss, without L2 and without dropout)."""

    def __init__(self, X, y):
        self.X, self.y = X, y
        self.loss, self.accuracy = [], []

    def on_epoch_end(self, epoch, logs):
        scores = self.model.evaluate(self.X, self.y)
        self.loss.append(scores["loss"])
        self.accuracy.append(scores.get("accuracy"))
        return False


def train_in_steps(model, X, y, *, optimizer, batch_size, steps, every, order_seed,
                   loss=None, diagnostics=False, **fit_kwargs):
    """Train for `steps` mini-batch steps, stopping every `every` steps to record.

    The batches walk a fixed row order (fresh permutations of X drawn from
    `order_seed`), so runs with the same `order_seed` see the same batches. Each
    stop is one ``fit(epochs=1, shuffle=False)`` on the next ``every *
    batch_size`` rows; passing the same optimizer object continues its state.

    Returns a dict: "step" (steps done at each record, from 0), "loss" (the
    full training-set loss there, without L2), "time" (cumulative seconds in
    fastnn's training loop), "grad_norm" (with diagnostics: the global gradient
    L2 norm before clipping, mean over the batches of each stop; with every=1 it
    is the norm of that step), "layer_grad_norm" (per layer, the same),
    "stopped_at" (the step, counted from 1, whose loss or gradient was NaN or
    infinite, so no update was made; or None).
    """
    n = X.shape[0]
    passes = -(-(steps * batch_size) // n) + 1
    rng = np.random.default_rng([order_seed, 23])
    order = np.concatenate([rng.permutation(n) for _ in range(passes)])
    rec = {"step": [0], "loss": [model.evaluate(X, y)["loss"]], "time": [0.0],
           "grad_norm": [], "layer_grad_norm": [], "stopped_at": None}
    done = 0
    t0 = model.t_
    with expected_warnings():
        while done < steps:
            k = min(every, steps - done)
            rows = order[done * batch_size:(done + k) * batch_size]
            h = model.fit(X[rows], y[rows], loss=loss, optimizer=optimizer,
                          batch_size=batch_size, epochs=1, shuffle=False,
                          diagnostics=diagnostics, on_nonfinite="warn", **fit_kwargs)
            if h.stopped == "non_finite":
                rec["stopped_at"] = model.t_ - t0 + 1
                break
            done += k
            if diagnostics:
                layers = [d["grad_norm"][0] for d in h.diagnostics]
                rec["layer_grad_norm"].append(layers)
                rec["grad_norm"].append(float(np.sqrt(np.sum(np.square(layers)))))
            rec["step"].append(done)
            rec["loss"].append(model.evaluate(X, y)["loss"])
            rec["time"].append(rec["time"][-1] + h["time"][0])
    return rec


# ------------------------------------------------------------------ figures


def new_figure(nrows, ncols, width, height):
    """A Figure and its axes as a flat list."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the studies draw their figures with matplotlib: "
                          "pip install 'fastnn[plot]'") from exc
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def save_figure(fig, path):
    """PNG at DPI, reduced to a 256-colour palette: a third of the size of the
    full-colour file and indistinguishable for line plots."""
    import io

    from PIL import Image  # matplotlib depends on Pillow

    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, format="png")
    buf.seek(0)
    with Image.open(buf) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            path, format="PNG", optimize=True)


def integer_ticks(ax, axis="x"):
    from matplotlib.ticker import MaxNLocator
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def label_axes(ax, title, xlabel, ylabel):
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def bar_labels(ax, bars, values, fmt):
    """Write each value above its bar ("n/a" for None)."""
    for bar, value in zip(bars, values):
        text = "n/a" if value is None else fmt % value
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize="x-small")
