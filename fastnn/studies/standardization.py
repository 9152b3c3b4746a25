"""Input standardization (spec section 1): one network, badly scaled inputs, with
and without standardization, over several learning rates.

Data: two features drawn uniformly on 5-50 and 3-7 (unequal ranges, far from
zero) and a binary label that needs both of them. The network
(Dense(16, tanh) -> Dense(1, sigmoid), binary cross-entropy, plain SGD with
batches of 32) starts from the same weights in every run. On the raw inputs the
first layer's pre-activations are large and most tanh units start saturated,
so little gradient flows; after standardization every learning rate from 0.003
to 3 reaches the target.
"""

import numpy as np

import fastnn as fn
from fastnn import ops
from fastnn.studies import _common as c

NAME = "standardization"
FEATURE_RANGES = ((5.0, 50.0), (3.0, 7.0))
TARGET_LOSS = 0.2
SHOWN_LRS = (0.01, 0.1, 1.0)


def make_data(m, seed):
    """(X, y): X has one column per FEATURE_RANGES entry; y is 1 when
    z1 + z2 + z1 z2 / 2 > 0, with z the features centred and scaled by their
    true mean and std."""
    rng = np.random.default_rng([seed, 1])
    X = np.column_stack([rng.uniform(lo, hi, m) for lo, hi in FEATURE_RANGES])
    Z = [(X[:, j] - (lo + hi) / 2) / ((hi - lo) / np.sqrt(12))
         for j, (lo, hi) in enumerate(FEATURE_RANGES)]
    y = (Z[0] + Z[1] + 0.5 * Z[0] * Z[1] > 0).astype(np.int64)
    return X, y


def _model(seed):
    return fn.Sequential([fn.Dense(16, activation="tanh"), fn.Dense(1, activation="sigmoid")],
                         input_dim=len(FEATURE_RANGES), seed=seed)


def initial_slope(X, seed):
    """Mean tanh slope 1 - a^2 of the hidden layer at the initial weights (1 for
    a unit in its linear range, 0 when saturated)."""
    W, b = _model(seed).weights[0]
    A = ops.dense_forward(np.asarray(X, dtype=W.dtype), W, b, "tanh")
    return float(np.mean(1.0 - A.astype(np.float64) ** 2))


def _train(X, y, lr, epochs, seed):
    model = _model(seed)
    with c.expected_warnings():
        history = model.fit(X, y, loss="binary_cross_entropy", optimizer=fn.optim.SGD(lr=lr),
                            batch_size=32, epochs=epochs, on_nonfinite="warn")
    return [float(v) for v in history["loss"]], history.stopped == "non_finite"


def run(out="studies_out", quick=False, seed=0, n_threads=1):
    """Train on raw and standardized inputs at each learning rate; returns the
    key numbers (also written to standardization.json) and a summary."""
    m, epochs = (400, 30) if quick else (1000, 100)
    lrs = [0.01, 0.1, 1.0] if quick else [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    study = c.Study(NAME, out, quick, seed, ["inputs", "lr", "epoch", "loss"])
    X, y = make_data(m, seed)
    inputs = {"raw": X, "standardized": fn.Standardizer().fit_transform(X)}
    curves = {}
    with c.fastnn_threads(n_threads):
        for kind, Xin in inputs.items():
            for lr in lrs:
                curves[kind, lr] = _train(Xin, y, lr, epochs, seed)
                study.add_rows({"inputs": kind, "lr": lr, "epoch": e + 1, "loss": v}
                               for e, v in enumerate(curves[kind, lr][0]))

    reach = {k: [c.first_at_or_below(curves[k, lr][0], TARGET_LOSS) for lr in lrs]
             for k in inputs}
    final = {k: [curves[k, lr][0][-1] if curves[k, lr][0] else None for lr in lrs]
             for k in inputs}
    diverged = {k: [curves[k, lr][1] for lr in lrs] for k in inputs}
    best = {k: min((e for e in reach[k] if e is not None), default=None) for k in inputs}
    study.numbers = {
        "samples": m, "max_epochs": epochs, "feature_ranges": FEATURE_RANGES,
        "target_loss": TARGET_LOSS, "learning_rates": lrs,
        "epochs_to_target": reach, "final_loss": final, "diverged": diverged,
        "best_epochs_to_target": best,
        "input_std_before": [float(s) for s in X.std(axis=0)],
        "input_mean_before": [float(s) for s in X.mean(axis=0)],
        "initial_mean_tanh_slope": {k: initial_slope(Xin, seed) for k, Xin in inputs.items()},
    }
    fig = _plot(curves, reach, final, lrs, epochs, m)

    n_std = sum(e is not None for e in reach["standardized"])
    n_raw = sum(e is not None for e in reach["raw"])
    best_raw_final = min(v for v in final["raw"] if v is not None)
    summary = (
        "Inputs on 5-50 and 3-7 (means %.1f and %.1f, stds %.1f and %.2f): the same tanh "
        "network, trained with SGD from the same initial weights, reached the training loss "
        "%.2g within %d epochs at %d of %d learning rates on standardized inputs (fastest: %s) "
        "and at %d of %d on the raw inputs (%s); the best final loss on raw inputs "
        "was %.3g against %.3g standardized. At the initial weights the hidden tanh units "
        "have a mean slope of %.2f on raw inputs (mostly saturated) against %.2f on "
        "standardized ones: standardizing (spec section 1) puts every feature on the same "
        "scale around 0, so gradients flow and one learning rate suits every weight."
        % (X[:, 0].mean(), X[:, 1].mean(), X[:, 0].std(), X[:, 1].std(), TARGET_LOSS,
           epochs, n_std, len(lrs), _epochs(best["standardized"]), n_raw, len(lrs),
           "fastest: %s" % _epochs(best["raw"]) if best["raw"] else "never",
           best_raw_final, min(v for v in final["standardized"] if v is not None),
           study.numbers["initial_mean_tanh_slope"]["raw"],
           study.numbers["initial_mean_tanh_slope"]["standardized"]))
    return study.finish(fig, summary)


def _epochs(n):
    return "never" if n is None else "%d epoch%s" % (n, "" if n == 1 else "s")


def _plot(curves, reach, final, lrs, epochs, m):
    from matplotlib.lines import Line2D
    fig, (ax1, ax2, ax3) = c.new_figure(1, 3, 15, 4.6)
    fig.suptitle("Input standardization: features on 5-50 and 3-7, tanh network, plain SGD",
                 fontsize="large")
    shown = [lr for lr in SHOWN_LRS if lr in lrs]
    for i, lr in enumerate(shown):
        for kind, style in (("standardized", "-"), ("raw", "--")):
            loss = curves[kind, lr][0]
            ax1.plot(range(1, len(loss) + 1), loss, style, color=c.COLORS[i])
    ax1.axhline(TARGET_LOSS, color="black", lw=0.8, ls=":")
    ax1.set_yscale("log")
    c.label_axes(ax1, "Training loss (target %.2g dotted)" % TARGET_LOSS,
                 "epoch (one pass over the %d samples)" % m,
                 "binary cross-entropy (nats, log scale)")
    handles = [Line2D([], [], color=c.COLORS[i], label="lr = %g" % lr)
               for i, lr in enumerate(shown)]
    handles += [Line2D([], [], color="black", ls="-", label="standardized inputs"),
                Line2D([], [], color="black", ls="--", label="raw inputs")]
    ax1.legend(handles=handles, fontsize="small")

    ceiling = epochs * 1.6
    for kind, color, marker in (("standardized", "tab:blue", "o"), ("raw", "tab:red", "s")):
        xs = [lr for lr, e in zip(lrs, reach[kind]) if e is not None]
        ys = [e for e in reach[kind] if e is not None]
        if xs:
            ax2.plot(xs, ys, marker=marker, color=color, label="%s inputs" % kind)
        miss = [lr for lr, e in zip(lrs, reach[kind]) if e is None]
        if miss:
            ax2.plot(miss, [ceiling * (1.0 if kind == "raw" else 0.8)] * len(miss),
                     marker=marker, ls="none", mfc="none", color=color, ms=9,
                     label="%s: not reached" % kind)
    ax2.axhline(epochs, color="gray", lw=0.8, ls=":")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_ylim(0.8, ceiling * 1.5)
    c.label_axes(ax2, "Epochs to reach training loss %.2g (open: not within %d)"
                 % (TARGET_LOSS, epochs),
                 "learning rate (log scale)", "epochs (log scale)")
    ax2.legend(fontsize="small", loc="lower left")

    for kind, color, marker in (("standardized", "tab:blue", "o"), ("raw", "tab:red", "s")):
        ys = [np.nan if v is None else v for v in final[kind]]
        ax3.plot(lrs, ys, marker=marker, color=color, label="%s inputs" % kind)
    ax3.axhline(TARGET_LOSS, color="black", lw=0.8, ls=":")
    ax3.set_xscale("log")
    ax3.set_yscale("log")
    c.label_axes(ax3, "Training loss after %d epochs" % epochs, "learning rate (log scale)",
                 "binary cross-entropy (nats, log scale)")
    ax3.legend(fontsize="small")
    return fig
