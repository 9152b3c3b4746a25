"""Optimizers (spec section 8): sgd, momentum, rmsprop, adam and adamw on the
same task, from the same initial weights, over the same batches.

Data: scikit-learn's digits. Network: 3 hidden relu layers of 64 and a softmax
output, built from one seed for every run. Every optimizer runs at each
learning rate of its grid (a factor of about 3 apart); the run with the lowest
mean log training loss over all steps (fast and low) is its best, and the best
runs are compared. Training goes in stops of EVERY steps of 32 samples; at each
stop the loss on the whole training set is evaluated (a point on the x axis),
and the wall time is the time spent inside fastnn's training loop, evaluation
excluded, each stop timed as the fastest of TIMING_RUNS identical runs.

``momentum`` is the spec's exponentially weighted form
V <- 0.9 V + 0.1 dW, W <- W - lr V, so its useful learning rates are those of
sgd; ``adamw`` is adam with decoupled weight decay 0.01.
"""

import math

import numpy as np

import fastnn as fn
from fastnn.studies import _common as c

NAME = "optimizers"
SGD_LRS = (0.03, 0.1, 0.3, 1.0)
ADAPTIVE_LRS = (3e-4, 1e-3, 3e-3, 1e-2)
OPTIMIZERS = (("sgd", fn.optim.SGD, SGD_LRS), ("momentum", fn.optim.Momentum, SGD_LRS),
              ("rmsprop", fn.optim.RMSProp, ADAPTIVE_LRS), ("adam", fn.optim.Adam, ADAPTIVE_LRS),
              ("adamw", fn.optim.AdamW, ADAPTIVE_LRS))
TARGET_LOSS = 0.1
BATCH = 32
EVERY = 10
TIMING_RUNS = 4


def _model(seed):
    return fn.Sequential([fn.Dense(64, activation="relu") for _ in range(3)]
                         + [fn.Dense(10, activation="softmax")], input_dim=64, seed=seed)


def _fastest_times(rec, rerun):
    """Cumulative training seconds at each stop, each stop timed as the fastest
    of TIMING_RUNS identical runs (same weights, same batches, so the same
    arithmetic): a fair clock on a machine that other work shares."""
    increments = [np.diff(rec["time"])]
    for _ in range(TIMING_RUNS - 1):
        again = rerun()
        if len(again["time"]) == len(rec["time"]):
            increments.append(np.diff(again["time"]))
    return [0.0] + np.cumsum(np.min(increments, axis=0)).tolist()


def _score(rec):
    """Mean log training loss over the recorded points; lower is better."""
    if rec["stopped_at"] is not None:
        return float("inf")
    return float(np.mean(np.log(np.maximum(rec["loss"], 1e-12))))


def run(out="studies_out", quick=False, seed=0, n_threads=1):
    """Run every optimizer at every learning rate of its grid; returns the key
    numbers (also written to optimizers.json) and a summary.

    One recipe read top to bottom (data, runs, key numbers, figure, summary),
    so it is kept in one piece rather than split into steps used once."""
    n_train, steps = (500, 120) if quick else (1300, 600)
    grids = {name: (cls, lrs[1:3] if quick else lrs) for name, cls, lrs in OPTIMIZERS}
    study = c.Study(NAME, out, quick, seed, ["optimizer", "lr", "best", "step", "seconds",
                                              "loss"])
    (X, y), (X_val, y_val) = c.digits([n_train, None], seed)
    recs, val_acc = {}, {}
    with c.fastnn_threads(n_threads):
        for name, (cls, lrs) in grids.items():
            for lr in lrs:
                model = _model(seed)
                recs[name, lr] = c.train_in_steps(
                    model, X, y, optimizer=cls(lr=lr), batch_size=BATCH, steps=steps,
                    every=EVERY, order_seed=seed)
                val_acc[name, lr] = model.evaluate(X_val, y_val)["accuracy"]

    best = {name: min(lrs, key=lambda lr: _score(recs[name, lr]))
            for name, (_, lrs) in grids.items()}
    with c.fastnn_threads(n_threads):
        for name, lr in best.items():
            recs[name, lr]["time"] = _fastest_times(
                recs[name, lr], lambda: c.train_in_steps(
                    _model(seed), X, y, optimizer=grids[name][0](lr=lr), batch_size=BATCH,
                    steps=steps, every=EVERY, order_seed=seed))
    for (name, lr), rec in recs.items():
        study.add_rows({"optimizer": name, "lr": lr, "best": lr == best[name], "step": s,
                        "seconds": t, "loss": v}
                       for s, t, v in zip(rec["step"], rec["time"], rec["loss"]))

    def best_of(fun):
        return {name: fun(recs[name, lr]) for name, lr in best.items()}

    def steps_to_target(rec):
        i = c.first_at_or_below(rec["loss"], TARGET_LOSS)
        return None if i is None else rec["step"][i - 1]

    study.numbers = {
        "samples": n_train, "steps": steps, "batch_size": BATCH, "record_every": EVERY,
        "target_loss": TARGET_LOSS,
        "learning_rates": {name: list(lrs) for name, (_, lrs) in grids.items()},
        "initial_loss": best_of(lambda r: r["loss"][0]),
        "best_lr": best,
        "final_loss_best": best_of(lambda r: r["loss"][-1]),
        "steps_to_target_best": best_of(steps_to_target),
        "train_seconds_best": best_of(lambda r: r["time"][-1]),
        "microseconds_per_step_best": best_of(
            lambda r: 1e6 * r["time"][-1] / max(r["step"][-1], 1)),
        "val_accuracy_best": {name: val_acc[name, lr] for name, lr in best.items()},
        "final_loss_by_lr": {name: {str(lr): recs[name, lr]["loss"][-1]
                                    if recs[name, lr]["stopped_at"] is None else None
                                    for lr in lrs} for name, (_, lrs) in grids.items()},
        "diverged": [[name, lr] for (name, lr), r in recs.items()
                     if r["stopped_at"] is not None],
    }
    fig = _plot(recs, best, grids, study.numbers, steps, n_train)

    n = study.numbers
    order = sorted(best, key=lambda k: n["final_loss_best"][k])
    summary = (
        "Digits, 3 hidden relu layers of 64, the same initial weights (initial loss %.3f for "
        "every run) and the same batches of %d, %d steps. At its best learning rate, each "
        "optimizer reached (final training loss; steps to loss %.2g; microseconds per "
        "step): %s. Ranked by final loss: %s. The best learning rates of sgd and momentum "
        "(%s) are about %.0f times those of rmsprop, adam and adamw (%s): adaptive methods "
        "divide each step by the gradient's running RMS, so their lr is a step size in "
        "weight units. Wall time per step is about the same for all (the update is one fused "
        "pass over the parameters, small next to the matrix products), so the curves "
        "against seconds rank them as the curves against steps do."
        % (n["initial_loss"]["sgd"], BATCH, steps, TARGET_LOSS,
           "; ".join("%s lr %g: %.3g, %s, %.0f" % (
               k, best[k], n["final_loss_best"][k],
               n["steps_to_target_best"][k] if n["steps_to_target_best"][k] is not None
               else "not reached", n["microseconds_per_step_best"][k]) for k in best),
           " < ".join(order),
           ", ".join("%g" % best[k] for k in ("sgd", "momentum")),
           math.exp(np.mean([math.log(best[k]) for k in ("sgd", "momentum")])
                    - np.mean([math.log(best[k]) for k in ("rmsprop", "adam", "adamw")])),
           ", ".join("%g" % best[k] for k in ("rmsprop", "adam", "adamw"))))
    return study.finish(fig, summary)


def _plot(recs, best, grids, numbers, steps, n_train):
    fig, (ax1, ax2, ax3) = c.new_figure(1, 3, 16, 4.8)
    fig.suptitle("Optimizers on digits (%d samples), 3 hidden relu layers of 64, same initial "
                 "weights and batches, each at its best learning rate" % n_train,
                 fontsize="large")
    for k, (name, lr) in enumerate(best.items()):
        rec = recs[name, lr]
        label = "%s (lr %g)" % (name, lr)
        ls = "--" if name == "adamw" else "-"
        ax1.plot(rec["step"], rec["loss"], ls, color=c.COLORS[k], label=label)
        ax2.plot(rec["time"], rec["loss"], ls, color=c.COLORS[k], label=label)
    for ax in (ax1, ax2):
        ax.axhline(TARGET_LOSS, color="black", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    c.label_axes(ax1, "Training loss against steps (dotted: %.2g)" % TARGET_LOSS,
                 "optimizer step (mini-batch of %d samples)" % BATCH,
                 "cross-entropy on the training set (nats, log)")
    c.label_axes(ax2, "Training loss against wall time",
                 "seconds in fastnn's training loop (fastest of %d identical runs)" % TIMING_RUNS,
                 "cross-entropy on the training set (nats, log)")
    for k, (name, (_, lrs)) in enumerate(grids.items()):
        finals = [np.nan if recs[name, lr]["stopped_at"] is not None
                  else recs[name, lr]["loss"][-1] for lr in lrs]
        ls = "--" if name == "adamw" else "-"
        ax3.plot(lrs, finals, ls, color=c.COLORS[k], marker="o", label=name)
        ax3.plot([best[name]], [recs[name, best[name]]["loss"][-1]], marker="*", ms=14,
                 color=c.COLORS[k], ls="none")
        for lr, f in zip(lrs, finals):
            if np.isnan(f):
                ax3.annotate("diverged", (lr, 1.0), fontsize="x-small", color=c.COLORS[k])
    ax3.set_xscale("log")
    ax3.set_yscale("log")
    c.label_axes(ax3, "Loss after %d steps by learning rate (star: best run)" % steps,
                 "learning rate (log)", "cross-entropy on the training set (nats, log)")
    ax3.legend(fontsize="small")
    return fig
