"""Gradient clipping (spec section 9): a deep network and a learning rate large
enough that training overflows within a few steps, and the same run with the
gradient clipped by its global norm at several thresholds.

Data: scikit-learn's diabetes regression set (442 samples, 10 features), inputs
and target standardized. Network: 8 hidden relu layers of 64 (he init) and a
linear output, mean squared error (fastnn's mse is 1/(2m) sum (a - y)^2, so
predicting the mean scores 0.5), plain SGD at lr 0.3, batches of 32. All runs
start from the same weights and see the same batches.

Every point on the x axis is one optimizer step; the gradient norm plotted is
the global L2 norm over all parameters before clipping (from fastnn's
per-layer diagnostics of that single batch). Clipping rescales the gradient to
the threshold when it is larger, so no step moves the weights by more than
lr * threshold and the run cannot run away.
"""

import numpy as np

import fastnn as fn
from fastnn.studies import _common as c

NAME = "clipping"
LR = 0.3
SAFE_LR = 0.03
THRESHOLDS = (1.0, 3.0, 10.0, 30.0)
BATCH = 32


def _model(seed):
    return fn.Sequential([fn.Dense(64, activation="relu", init="he") for _ in range(8)]
                         + [fn.Dense(1, activation="identity")], input_dim=10, seed=seed)


def run(out="studies_out", quick=False, seed=0, n_threads=1):
    """Train without clipping, with clip_norm at each threshold, and at a small
    learning rate without clipping; returns the key numbers (also written to
    clipping.json) and a summary.

    One recipe read top to bottom (data, runs, key numbers, figure, summary),
    so it is kept in one piece rather than split into steps used once."""
    steps, thresholds = (60, (1.0, 10.0)) if quick else (300, THRESHOLDS)
    study = c.Study(NAME, out, quick, seed, ["run", "step", "grad_norm", "loss"])
    X, y = c.diabetes(seed)
    settings = ([("no clipping", LR, None)]
                + [("clip_norm %g" % t, LR, t) for t in thresholds]
                + [("no clipping, lr %g" % SAFE_LR, SAFE_LR, None)])
    recs, r2 = {}, {}
    with c.fastnn_threads(n_threads):
        for name, lr, clip in settings:
            model = _model(seed)
            rec = recs[name] = c.train_in_steps(
                model, X, y, loss="mse", optimizer=fn.optim.SGD(lr=lr), batch_size=BATCH,
                steps=steps, every=1, order_seed=seed, diagnostics=True, clip_norm=clip)
            r2[name] = model.evaluate(X, y)["r2"] if rec["stopped_at"] is None else None
            norms = [None] + rec["grad_norm"]  # no gradient is recorded at step 0
            study.add_rows({"run": name, "step": s, "grad_norm": g, "loss": v}
                           for s, g, v in zip(rec["step"], norms, rec["loss"]))

    def per(fun):
        return {name: fun(recs[name]) for name, _, _ in settings}

    clipped = {name: (int(np.sum(np.array(recs[name]["grad_norm"]) > clip)) if clip else 0)
               for name, _, clip in settings}
    study.numbers = {
        "samples": len(X), "steps": steps, "batch_size": BATCH, "lr": LR, "safe_lr": SAFE_LR,
        "hidden_layers": 8, "width": 64,
        "settings": {name: {"lr": lr, "clip_norm": clip} for name, lr, clip in settings},
        "nonfinite_at_step": per(lambda r: r["stopped_at"]),
        "first_grad_norm": per(lambda r: r["grad_norm"][0] if r["grad_norm"] else None),
        "max_grad_norm": per(lambda r: max(r["grad_norm"]) if r["grad_norm"] else None),
        "initial_loss": per(lambda r: r["loss"][0]),
        "final_loss": per(lambda r: r["loss"][-1] if r["stopped_at"] is None else None),
        "last_recorded_loss": per(lambda r: r["loss"][-1]),
        "final_r2": r2, "steps_clipped": clipped,
    }
    fig = _plot(recs, settings, study.numbers, steps)

    n = study.numbers
    free = "no clipping"
    stop = n["nonfinite_at_step"][free]
    summary = (
        "Diabetes, 8 hidden relu layers of 64, SGD at lr %g. Without clipping the gradient "
        "norm went from %.3g at the first step to %.3g, and step %s produced %s. With the "
        "gradient clipped by its global norm, every threshold tried kept the run finite for "
        "all %d steps: %s (final training loss, R2, steps whose gradient was clipped; "
        "predicting the mean scores loss 0.5, R2 0). Clipping only %d step(s) (clip_norm %g) "
        "was enough: it breaks the feedback between large weights and large gradients. "
        "Without clipping, a 10 times smaller learning rate also trains (loss %.3g, R2 "
        "%.3f)."
        % (LR, n["first_grad_norm"][free], n["max_grad_norm"][free],
           stop if stop is not None else "none", "NaN or infinity" if stop is not None
           else "nothing non-finite", steps,
           "; ".join("%s: %.3g, %.3f, %d" % (name, n["final_loss"][name] or np.nan,
                                             n["final_r2"][name] or np.nan, clipped[name])
                     for name, _, clip in settings if clip),
           clipped["clip_norm %g" % thresholds[-1]], thresholds[-1],
           n["final_loss"][settings[-1][0]] or np.nan, n["final_r2"][settings[-1][0]] or np.nan))
    return study.finish(fig, summary)


def _colors(settings):
    """Red for the run without clipping, gray for the small learning rate."""
    clip_colors = iter(("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"))
    return ["0.45" if lr != LR else "tab:red" if clip is None else next(clip_colors)
            for _, lr, clip in settings]


def _plot(recs, settings, numbers, steps):
    """The study's figure, panel after panel (one piece: each panel is a few
    plotting calls used nowhere else)."""
    fig, (ax1, ax2, ax3) = c.new_figure(1, 3, 16, 4.9)
    fig.suptitle("Gradient clipping: diabetes, 8 hidden relu layers of 64, SGD lr %g, "
                 "batches of %d" % (LR, BATCH), fontsize="large")
    colors = _colors(settings)
    loss_top, loss_bottom = 6.0, np.inf
    for (name, lr, clip), color in zip(settings, colors):
        rec = recs[name]
        style = ":" if lr != LR else "-"
        lw = 2.0 if clip is None and lr == LR else 1.1
        ax1.plot(rec["step"][1:], rec["grad_norm"], style, color=color, label=name, lw=lw)
        if clip:
            ax1.axhline(clip, color=color, lw=0.8, ls="--")
        ax2.plot(rec["step"][1:], rec["loss"][1:], style, color=color, label=name, lw=lw)
        if rec["stopped_at"] is not None:
            s = rec["stopped_at"]
            if rec["grad_norm"]:
                ax1.plot([s], [rec["grad_norm"][-1]], "X", color=color, ms=11)
                ax1.annotate("step %d: NaN/inf,\nno update" % s, (s, rec["grad_norm"][-1]),
                             xytext=(8, -10), textcoords="offset points", fontsize="small",
                             color=color)
            ax2.annotate("%s: loss %.2g after step 1, %.2g after step %d,\nNaN/inf at step "
                         "%d (off the scale)" % (name, rec["loss"][1], rec["loss"][-1],
                                                rec["step"][-1], s),
                         (0.03, 0.97), xycoords="axes fraction", va="top", fontsize="small",
                         color=color)
        else:
            finite = [v for v in rec["loss"][1:] if np.isfinite(v)]
            loss_bottom = min(loss_bottom, min(finite))
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(0.8, steps * 1.2)
    ax2.set_xlim(0.8, steps * 1.2)
    ax2.set_ylim(loss_bottom / 1.5, loss_top)
    c.label_axes(ax1, "Global gradient norm before clipping (dashed: thresholds)",
                 "optimizer step (mini-batch of %d, log)" % BATCH,
                 "L2 norm of all gradients (log)")
    c.label_axes(ax2, "Training loss on all %d samples (%.2f before training)"
                 % (numbers["samples"], numbers["initial_loss"]["no clipping"]),
                 "optimizer steps done (mini-batches of %d, log)" % BATCH,
                 "1/2 mean squared error (standardized target, log)")
    ax1.legend(fontsize="small", loc="upper right")
    ax2.legend(fontsize="small", loc="lower left")
    ax2.axhline(0.5, color="black", lw=0.8, ls=":")
    ax2.annotate("predicting the mean", (1.0, 0.5), xytext=(2, 3), textcoords="offset points",
                 fontsize="x-small")

    names = [name for name, _, _ in settings]
    values = [numbers["final_r2"][n] for n in names]
    bars = ax3.bar(range(len(names)), [0 if v is None else v for v in values], color=colors)
    for bar, name, v in zip(bars, names, values):
        x = bar.get_x() + bar.get_width() / 2
        if v is None:
            ax3.annotate("NaN/inf at\nstep %d" % numbers["nonfinite_at_step"][name], (x, 0.02),
                         ha="center", fontsize="small", color="tab:red")
        else:
            ax3.annotate("%.3f" % v, (x, v), xytext=(0, 2), textcoords="offset points",
                         ha="center", fontsize="x-small")
    ax3.set_xticks(range(len(names)), names, rotation=25, ha="right")
    ax3.set_ylim(min([0.0] + [v - 0.05 for v in values if v is not None]), 1)
    c.label_axes(ax3, "Training R2 after %d steps" % steps, "run",
                 "R2 (1 = perfect fit, 0 = predicting the mean)")
    return fig
