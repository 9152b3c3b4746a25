"""Activations (spec section 3): sigmoid, tanh, relu, leaky_relu and softplus on
the same task: convergence speed, and dead units as the learning rate grows.

Data: scikit-learn's digits. Network: 4 hidden Dense layers of 64 units with
the activation under study (each with fastnn's default initializer for it: he
for relu and leaky_relu, glorot otherwise) and a softmax output. Two
experiments, each over several seeds (data split, weights and batches):

- speed: plain SGD at lr 0.1, epochs to reach a training loss of 0.1;
- dead units: Adam at learning rates from 1e-3 to 3e-2; large updates push
  relu units to where they never fire again.

Two unit counts after training, over the hidden layers:

- dead: fastnn's diagnostic, units with no positive output on any sample of the
  last epoch;
- stuck: units whose derivative g'(z) stays below 1/1000 of the activation's
  largest slope on every training sample, so they pass (almost) no gradient.
  A dead relu unit is stuck for good; a leaky_relu unit always passes alpha
  times the gradient and can come back; sigmoid and softplus outputs are always
  positive, so they are never "dead", but saturated units are stuck.
"""

import numpy as np

import fastnn as fn
from fastnn import ops
from fastnn.studies import _common as c

NAME = "activations"
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus")
SPEED_LR = 0.1
ADAM_LRS = (1e-3, 3e-3, 1e-2, 3e-2)
TARGET_LOSS = 0.1
STUCK = 1e-3
MAX_SLOPE = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0, "softplus": 1.0}
STYLE = {"leaky_relu": "--"}


def slope_from_output(a, activation, alpha):
    """g'(z) written with the output a, as in spec section 3."""
    if activation == "sigmoid":
        return a * (1 - a)
    if activation == "tanh":
        return 1 - a * a
    if activation == "relu":
        return (a > 0).astype(a.dtype)
    if activation == "leaky_relu":
        return np.where(a > 0, 1.0, alpha)
    if activation == "softplus":
        return -np.expm1(-a)
    raise ValueError(activation)


def stuck_fraction(model, X):
    """Fraction of hidden units whose slope stays below STUCK times the
    activation's maximum slope on every row of X."""
    A, stuck, total = np.asarray(X, dtype=model.dtype), 0, 0
    for (W, b), layer in zip(model.weights[:-1], model.dense_layers_[:-1]):
        name, alpha = layer.activation.name, layer.activation.alpha
        A = ops.dense_forward(A, W, b, name, alpha)
        slope = slope_from_output(A.astype(np.float64), name, alpha).max(axis=0)
        stuck += int(np.sum(slope < STUCK * MAX_SLOPE[name]))
        total += slope.size
    return stuck / total


def _train(act, optimizer, data, epochs, seed):
    (X, y), (X_val, y_val) = data
    model = fn.Sequential([fn.Dense(64, activation=act) for _ in range(4)]
                          + [fn.Dense(10, activation="softmax")], input_dim=64, seed=seed)
    with c.expected_warnings():
        h = model.fit(X, y, optimizer=optimizer, batch_size=32, epochs=epochs,
                      diagnostics=True, validation_data=(X_val, y_val), on_nonfinite="warn")
    dead = (float(np.mean([d["dead_fraction"][-1] for d in h.diagnostics[:-1]]))
            if len(h) else None)
    return {"curve": list(h["loss"]), "val_accuracy": h["val_accuracy"][-1] if len(h) else None,
            "diverged": h.stopped == "non_finite", "dead": dead,
            "stuck": stuck_fraction(model, X),
            "epochs_to_target": c.first_at_or_below(h["loss"], TARGET_LOSS)}


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def run(out="studies_out", quick=False, seed=0, n_threads=1):
    """Train every activation with SGD and with Adam at each learning rate, over
    several seeds; returns the key numbers (also written to activations.json)
    and a summary.

    One recipe read top to bottom (data, runs, key numbers, figure, summary),
    so it is kept in one piece rather than split into steps used once."""
    n_train, epochs, adam_epochs, n_seeds, adam_lrs = \
        (400, 12, 10, 1, (3e-3, 3e-2)) if quick else (1300, 30, 20, 3, ADAM_LRS)
    study = c.Study(NAME, out, quick, seed, ["optimizer", "lr", "activation", "seed", "epoch",
                                              "loss"])
    seeds = [seed + k for k in range(n_seeds)]
    settings = [("sgd", SPEED_LR, epochs)] + [("adam", lr, adam_epochs) for lr in adam_lrs]
    runs = {}
    with c.fastnn_threads(n_threads):
        for s in seeds:
            data = c.digits([n_train, None], s)
            for opt, lr, n_epochs in settings:
                for act in ACTIVATIONS:
                    optimizer = fn.optim.SGD(lr=lr) if opt == "sgd" else fn.optim.Adam(lr=lr)
                    r = runs[opt, lr, act, s] = _train(act, optimizer, data, n_epochs, s)
                    study.add_rows({"optimizer": opt, "lr": lr, "activation": act, "seed": s,
                                    "epoch": e + 1, "loss": v}
                                   for e, v in enumerate(r["curve"]))

    def speed(key, agg):
        return {a: agg([runs["sgd", SPEED_LR, a, s][key] for s in seeds]) for a in ACTIVATIONS}

    def sweep(fun):
        return {a: [_mean([fun(runs["adam", lr, a, s]) for s in seeds]) for lr in adam_lrs]
                for a in ACTIVATIONS}

    study.numbers = {
        "samples": n_train, "seeds": seeds, "hidden_layers": 4, "width": 64,
        "speed": {
            "optimizer": "sgd", "lr": SPEED_LR, "epochs": epochs, "target_loss": TARGET_LOSS,
            "epochs_to_target_mean": speed("epochs_to_target",
                                           lambda v: _mean([e for e in v if e is not None])),
            "seeds_reaching_target": speed("epochs_to_target",
                                           lambda v: sum(e is not None for e in v)),
            "final_loss_mean": speed("curve", lambda v: _mean([x[-1] if x else None
                                                                for x in v])),
            "val_accuracy_mean": speed("val_accuracy", _mean),
            "dead_fraction_mean": speed("dead", _mean),
        },
        "dead_units": {
            "optimizer": "adam", "learning_rates": list(adam_lrs), "epochs": adam_epochs,
            "dead_fraction_mean": sweep(lambda r: r["dead"]),
            "stuck_fraction_mean": sweep(lambda r: r["stuck"]),
            "final_loss_mean": sweep(lambda r: r["curve"][-1] if r["curve"] else None),
            "val_accuracy_mean": sweep(lambda r: r["val_accuracy"]),
            "diverged_runs": {a: [sum(runs["adam", lr, a, s]["diverged"] for s in seeds)
                                  for lr in adam_lrs] for a in ACTIVATIONS},
        },
    }
    fig = _plot(runs, study.numbers, seeds, adam_lrs, n_train)

    sp, du = study.numbers["speed"], study.numbers["dead_units"]
    e = sp["epochs_to_target_mean"]
    summary = (
        "Digits, 4 hidden layers of 64, %d seed(s). With SGD at lr %g the mean epochs to reach "
        "training loss %.2g were: %s; sigmoid's final loss was %.3g (its slope is at most "
        "0.25, a factor every layer applies to the gradient on its way back). With Adam, "
        "the share of "
        "relu units that never fire (dead) grew from %.0f%% at lr %g to %.0f%% at lr %g; "
        "a relu unit that never fires gets no gradient, so it is also stuck (%.0f%% at lr "
        "%g). leaky_relu "
        "units also stopped firing (%.0f%% at lr %g) but none were stuck, since alpha keeps "
        "a gradient; final loss at lr %g: relu %.3g, leaky_relu %.3g. Sigmoid and softplus "
        "outputs are always positive, so they are never dead."
        % (len(seeds), SPEED_LR, TARGET_LOSS,
           ", ".join("%s %s" % (a, "not reached" if e[a] is None else "%.1f" % e[a])
                     for a in ACTIVATIONS),
           sp["final_loss_mean"]["sigmoid"],
           100 * du["dead_fraction_mean"]["relu"][0], adam_lrs[0],
           100 * du["dead_fraction_mean"]["relu"][-1], adam_lrs[-1],
           100 * du["stuck_fraction_mean"]["relu"][-1], adam_lrs[-1],
           100 * du["dead_fraction_mean"]["leaky_relu"][-1], adam_lrs[-1], adam_lrs[-1],
           du["final_loss_mean"]["relu"][-1], du["final_loss_mean"]["leaky_relu"][-1]))
    return study.finish(fig, summary)


def _plot(runs, numbers, seeds, adam_lrs, n_train):
    """The study's figure, panel after panel (one piece: each panel is a few
    plotting calls used nowhere else)."""
    fig, axes = c.new_figure(2, 2, 13, 9)
    fig.suptitle("Activations on digits (%d training samples, 4 hidden layers of 64), "
                 "%d seed(s)" % (n_train, len(seeds)), fontsize="large")
    sp, du = numbers["speed"], numbers["dead_units"]
    ax = axes[0]
    for k, act in enumerate(ACTIVATIONS):
        for j, s in enumerate(seeds):
            curve = runs["sgd", SPEED_LR, act, s]["curve"]
            ax.plot(range(1, len(curve) + 1), curve, STYLE.get(act, "-"), color=c.COLORS[k],
                    alpha=1.0 if j == 0 else 0.3, lw=1.8 if j == 0 else 0.8,
                    label=act if j == 0 else None)
    ax.axhline(TARGET_LOSS, color="black", lw=0.8, ls=":")
    ax.set_yscale("log")
    c.integer_ticks(ax)
    c.label_axes(ax, "Training loss, SGD lr %g (faint: other seeds; dotted: %.2g)"
                 % (SPEED_LR, TARGET_LOSS),
                 "epoch (one pass over %d samples)" % n_train, "cross-entropy (nats, log)")
    ax.legend(fontsize="small")

    ax = axes[1]
    x = np.arange(len(ACTIVATIONS))
    means = sp["epochs_to_target_mean"]
    reached = sp["seeds_reaching_target"]
    heights = [sp["epochs"] if means[a] is None else means[a] for a in ACTIVATIONS]
    bars = ax.bar(x, heights, 0.6, color=[c.COLORS[k] for k in range(len(ACTIVATIONS))])
    for bar, a in zip(bars, ACTIVATIONS):
        if means[a] is None:
            bar.set_hatch("//")
            bar.set_alpha(0.35)
        text = ("not reached in %d epochs" % sp["epochs"] if means[a] is None
                else "%.1f" % means[a])
        ax.annotate("%s\n(%d/%d seeds)" % (text, reached[a], len(seeds)),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(x, ACTIVATIONS)
    ax.set_ylim(0, sp["epochs"] * 1.2)
    c.label_axes(ax, "Epochs to reach training loss %.2g, SGD lr %g (mean over seeds)"
                 % (TARGET_LOSS, SPEED_LR), "activation", "epochs")

    from matplotlib.lines import Line2D
    ax = axes[2]
    for k, act in enumerate(ACTIVATIONS):
        dead = [np.nan if v is None else 100 * v for v in du["dead_fraction_mean"][act]]
        stuck = [np.nan if v is None else 100 * v for v in du["stuck_fraction_mean"][act]]
        ax.plot(adam_lrs, dead, "-", marker="o", color=c.COLORS[k])
        ax.plot(adam_lrs, stuck, ":", marker="x", color=c.COLORS[k], ms=9)
    ax.set_xscale("log")
    ax.set_ylim(-2, 100)
    c.label_axes(ax, "Dead and stuck hidden units after %d epochs of Adam (mean over seeds)"
                 % du["epochs"], "Adam learning rate (log)", "% of the 256 hidden units")
    handles = [Line2D([], [], color=c.COLORS[k], label=act) for k, act in enumerate(ACTIVATIONS)]
    handles += [Line2D([], [], color="black", marker="o", ls="-",
                       label="dead: no positive output on any sample of the last epoch"),
                Line2D([], [], color="black", marker="x", ls=":",
                       label="stuck: slope < 1/1000 of its maximum on every training sample")]
    ax.legend(handles=handles, fontsize="x-small", loc="upper left")

    ax = axes[3]
    for k, act in enumerate(ACTIVATIONS):
        loss = [np.nan if v is None else v for v in du["final_loss_mean"][act]]
        ax.plot(adam_lrs, loss, STYLE.get(act, "-"), marker="o", color=c.COLORS[k], label=act)
    ax.set_xscale("log")
    ax.set_yscale("log")
    c.label_axes(ax, "Training loss after %d epochs of Adam (mean over seeds)" % du["epochs"],
                 "Adam learning rate (log)", "cross-entropy (nats, log)")
    ax.legend(fontsize="small")
    return fig
