"""Regularization (spec sections 5 and 6): an over-parameterized network on a
small training set, without regularization, with L2 at several lambdas and
with dropout at several rates.

Data: scikit-learn's make_classification (generated in code): 20 features, 6 of
them informative, 5% of the labels flipped; 120 training samples and a large
validation set from the same distribution. Network: two hidden relu layers of
256 (about 71,000 weights for 120 samples) and a softmax output, Adam at lr
1e-3, batches of 20. Dropout follows each hidden layer. L2 is fastnn's lambda:
the cost gains lambda / (2m) times the sum of squared weights, m the batch size.

Train and validation losses are both measured after every epoch by
model.evaluate (the data term only: no L2 term, no dropout), so the two curves
are comparable. Curves and numbers are means over several data sets and
initial weights.
"""

import numpy as np

import fastnn as fn
from fastnn.studies import _common as c

NAME = "regularization"
L2S = (0.3, 1.0, 3.0)
DROPOUTS = (0.2, 0.5, 0.7)


def configs(quick):
    l2s, drops = ((1.0, 3.0), (0.5, 0.7)) if quick else (L2S, DROPOUTS)
    return ([("none", 0.0, 0.0)] + [("L2 %g" % l, l, 0.0) for l in l2s]
            + [("dropout %g" % d, 0.0, d) for d in drops])


def make_data(n_train, n_val, seed):
    X, y = c.sklearn_datasets().make_classification(
        n_samples=n_train + n_val, n_features=20, n_informative=6, n_redundant=4,
        flip_y=0.05, class_sep=1.0, random_state=seed)
    return c.split_standardized(X, y, [n_train, None], seed)


def _train(data, l2, rate, epochs, seed):
    (X, y), (X_val, y_val) = data
    layers = [fn.Dense(256, activation="relu")]
    if rate:
        layers.append(fn.Dropout(rate))
    layers.append(fn.Dense(256, activation="relu"))
    if rate:
        layers.append(fn.Dropout(rate))
    layers.append(fn.Dense(2, activation="softmax"))
    model = fn.Sequential(layers, input_dim=X.shape[1], seed=seed)
    train_eval = c.EvalEachEpoch(X, y)
    val_eval = c.EvalEachEpoch(X_val, y_val)
    model.fit(X, y, optimizer=fn.optim.Adam(lr=1e-3), batch_size=20, epochs=epochs, l2=l2,
              callbacks=[train_eval, val_eval])
    return {"train": train_eval.loss, "val": val_eval.loss,
            "train_acc": train_eval.accuracy, "val_acc": val_eval.accuracy}


def run(out="studies_out", quick=False, seed=0, n_threads=1):
    """Train every configuration on several data sets; returns the key numbers
    (also written to regularization.json) and a summary.

    One recipe read top to bottom (data, runs, key numbers, figure, summary),
    so it is kept in one piece rather than split into steps used once."""
    n_train, n_val, epochs, n_seeds = (120, 400, 60, 1) if quick else (120, 1000, 150, 3)
    study = c.Study(NAME, out, quick, seed, ["config", "epoch", "train_loss", "val_loss",
                                              "train_accuracy", "val_accuracy"])
    seeds = [seed + k for k in range(n_seeds)]
    cfgs = configs(quick)
    runs = {}
    with c.fastnn_threads(n_threads):
        for s in seeds:
            data = make_data(n_train, n_val, s)
            for name, l2, rate in cfgs:
                runs[name, s] = _train(data, l2, rate, epochs, s)
    mean = {name: {key: np.mean([runs[name, s][key] for s in seeds], axis=0)
                   for key in ("train", "val", "train_acc", "val_acc")}
            for name, _, _ in cfgs}
    for name, _, _ in cfgs:
        m = mean[name]
        study.add_rows({"config": name, "epoch": e + 1, "train_loss": m["train"][e],
                        "val_loss": m["val"][e], "train_accuracy": m["train_acc"][e],
                        "val_accuracy": m["val_acc"][e]} for e in range(epochs))

    def final(key):
        return {name: float(mean[name][key][-1]) for name, _, _ in cfgs}

    final_val = final("val")
    best = min(final_val, key=final_val.get)
    best_l2 = min((n for n, l2, _ in cfgs if l2), key=final_val.get)
    best_drop = min((n for n, _, r in cfgs if r), key=final_val.get)
    study.numbers = {
        "train_samples": n_train, "val_samples": n_val, "epochs": epochs, "seeds": seeds,
        "hidden": [256, 256], "optimizer": "adam lr 1e-3, batch 20",
        "configs": {name: {"l2": l2, "dropout": rate} for name, l2, rate in cfgs},
        "final_train_loss": final("train"), "final_val_loss": final_val,
        "final_train_accuracy": final("train_acc"), "final_val_accuracy": final("val_acc"),
        "min_val_loss": {name: float(mean[name]["val"].min()) for name, _, _ in cfgs},
        "epoch_of_min_val_loss": {name: int(mean[name]["val"].argmin()) + 1
                                  for name, _, _ in cfgs},
        "final_gap": {name: float(mean[name]["val"][-1] - mean[name]["train"][-1])
                      for name, _, _ in cfgs},
        "best": best, "best_l2": best_l2, "best_dropout": best_drop,
    }
    fig = _plot(mean, cfgs, study.numbers, epochs, n_train, len(seeds))

    n = study.numbers
    strongest_l2 = max((name for name, l2, _ in cfgs if l2), key=lambda k: n["configs"][k]["l2"])
    strongest_drop = max((name for name, _, r in cfgs if r),
                         key=lambda k: n["configs"][k]["dropout"])
    summary = (
        "%d training samples, two hidden layers of 256, %d epochs, mean of %d seed(s). "
        "Unregularized, the training loss fell to %.2g while the validation loss reached its "
        "minimum %.3f at epoch %d and climbed to %.3f (validation accuracy %.3f): "
        "overfitting. L2 raised the training loss (%s) and lowered the final validation "
        "loss to %.3f at best (%s, accuracy %.3f); dropout lowered it to %.3f at best "
        "(%s, accuracy %.3f). The gap between final validation and training loss shrank "
        "from %.3f without regularization to %.3f with %s and %.3f with %s."
        % (n_train, epochs, len(seeds), n["final_train_loss"]["none"],
           n["min_val_loss"]["none"], n["epoch_of_min_val_loss"]["none"],
           final_val["none"], n["final_val_accuracy"]["none"],
           ", ".join("%s: %.3g" % (name, n["final_train_loss"][name])
                     for name, l2, _ in cfgs if l2),
           final_val[best_l2], best_l2, n["final_val_accuracy"][best_l2],
           final_val[best_drop], best_drop, n["final_val_accuracy"][best_drop],
           n["final_gap"]["none"], n["final_gap"][strongest_l2], strongest_l2,
           n["final_gap"][strongest_drop], strongest_drop))
    return study.finish(fig, summary)


def _plot(mean, cfgs, numbers, epochs, n_train, n_seeds):
    """The study's figure, panel after panel (one piece: each panel is a few
    plotting calls used nowhere else)."""
    fig, (ax1, ax2, ax3) = c.new_figure(1, 3, 16, 4.9)
    fig.suptitle("Regularization: %d training samples, two hidden relu layers of 256, "
                 "mean of %d seed(s); solid = validation, dashed = training"
                 % (n_train, n_seeds), fontsize="large")
    names = [name for name, _, _ in cfgs]
    color = {name: c.COLORS[k] for k, name in enumerate(names)}
    epochs_axis = np.arange(1, epochs + 1)
    for ax, kind, title in ((ax1, "L2", "No regularization against L2 (lambda)"),
                            (ax2, "dropout", "No regularization against dropout (rate)")):
        for name in names:
            if name != "none" and not name.startswith(kind):
                continue
            ax.plot(epochs_axis, mean[name]["val"], "-", color=color[name], label=name)
            ax.plot(epochs_axis, mean[name]["train"], "--", color=color[name])
        ax.set_yscale("log")
        c.label_axes(ax, title, "epoch (%d steps of 20 samples)" % -(-n_train // 20),
                     "cross-entropy, data term (nats, log)")
        ax.legend(fontsize="small", loc="lower left")
    x = np.arange(len(names))
    width = 0.4
    tr = [numbers["final_train_loss"][n] for n in names]
    va = [numbers["final_val_loss"][n] for n in names]
    bars_t = ax3.bar(x - width / 2, tr, width, color="0.65", label="training loss")
    bars_v = ax3.bar(x + width / 2, va, width, color="tab:blue", label="validation loss")
    c.bar_labels(ax3, bars_t, tr, "%.2g")
    c.bar_labels(ax3, bars_v, va, "%.2f")
    ax3.set_yscale("log")
    ax3.set_xticks(x, names, rotation=30, ha="right")
    c.label_axes(ax3, "Loss after %d epochs (validation accuracy at the bottom)" % epochs,
                 "configuration", "cross-entropy, data term (nats, log)")
    lo, hi = min(tr + va), max(tr + va)
    for xi, name in zip(x, names):
        ax3.annotate("%.1f%%" % (100 * numbers["final_val_accuracy"][name]), (xi, lo / 3),
                     ha="center", fontsize="x-small")
    ax3.set_ylim(lo / 5, hi * 30)
    ax3.legend(fontsize="small", loc="upper center", ncol=2)
    return fig
