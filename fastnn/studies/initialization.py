"""Weight initialization (spec sections 2 and 10): a deep network with each
initializer, under tanh and relu.

Data: scikit-learn's digits (64 standardized features, 10 classes). Network:
DEPTH hidden Dense layers of 64 units (20 by default) and a softmax output, every
layer initialized the same way; plain SGD with batches of 32.

"At the start" and "after training" are measured by a probe: one fit over the
whole training set as a single batch with learning rate 0, so the weights do not
move and fastnn's diagnostics give each layer's activation variance and gradient
L2 norm (of its dW and db) at exactly those weights.

What it shows: zeros keeps every unit of a layer identical (symmetry: the
hidden activations and gradients are exactly 0 and the loss never leaves
ln 10); N(0, 1) weights saturate tanh (variance near 1 in every layer) and make
the gradient grow by orders of magnitude towards the input, and under relu they
multiply the variance by about 32 per layer until training overflows at once;
xavier and glorot halve the relu variance at every layer (it vanishes), while he
keeps it within a narrow band and trains.
"""

import numpy as np

import fastnn as fn
from fastnn.studies import _common as c

NAME = "initialization"
INITS = ("zeros", "normal", "xavier", "he", "glorot")
ACTIVATIONS = ("tanh", "relu")
WIDTH = 64


def build(activation, init, depth, seed):
    layers = [fn.Dense(WIDTH, activation=activation, init=init) for _ in range(depth)]
    layers.append(fn.Dense(10, activation="softmax", init=init))
    with c.expected_warnings():
        return fn.Sequential(layers, input_dim=64, dtype="float32", seed=seed)


def probe(model, X, y):
    """(loss, activation variance per hidden layer, gradient norm per hidden
    layer) at the model's current weights, which the probe leaves unchanged."""
    with c.expected_warnings():
        h = model.fit(X, y, optimizer=fn.optim.SGD(lr=0.0), batch_size=len(X), epochs=1,
                      shuffle=False, diagnostics=True, on_nonfinite="warn")
    if not h["loss"]:
        return None, None, None
    hidden = h.diagnostics[:-1]
    return (float(h["loss"][0]), [d["act_var"][0] for d in hidden],
            [d["grad_norm"][0] for d in hidden])


def distinct_units(model, layer=0):
    """How many different columns (units) the weight matrix of a layer has."""
    W = model.weights[layer][0]
    return int(np.unique(W.T, axis=0).shape[0])


def _ratio(values):
    lo, hi = min(values), max(values)
    return hi / lo if lo > 0 else float("inf")


def run(out="studies_out", quick=False, seed=0, n_threads=1):
    """Probe, train and probe again every (activation, initializer) pair;
    returns the key numbers (also written to initialization.json) and a summary.

    One recipe read top to bottom (data, runs, key numbers, figure, summary),
    so it is kept in one piece rather than split into steps used once."""
    depth, epochs, n, lr = (10, 6, 600, 0.02) if quick else (20, 20, None, 0.02)
    study = c.Study(NAME, out, quick, seed,
                    ["activation", "init", "when", "layer", "act_var", "grad_norm", "epoch",
                     "loss"])
    (X, y), = c.digits([n], seed)
    res = {}
    with c.fastnn_threads(n_threads):
        for act in ACTIVATIONS:
            for init in INITS:
                model = build(act, init, depth, seed)
                loss0, var0, grad0 = probe(model, X, y)
                with c.expected_warnings():
                    h = model.fit(X, y, optimizer=fn.optim.SGD(lr=lr), batch_size=32,
                                  epochs=epochs, on_nonfinite="warn")
                diverged = h.stopped == "non_finite"
                loss1, var1, grad1 = (None, None, None) if diverged else probe(model, X, y)
                res[act, init] = {
                    "loss_start": loss0, "var_start": var0, "grad_start": grad0,
                    "var_end": var1, "grad_end": grad1, "curve": list(h["loss"]),
                    "diverged": diverged, "loss_end": loss1,
                    "distinct_units": distinct_units(model),
                }
                for when, var, grad in (("start", var0, grad0), ("end", var1, grad1)):
                    if var is not None:
                        study.add_rows({"activation": act, "init": init, "when": when,
                                        "layer": i + 1, "act_var": v, "grad_norm": g}
                                       for i, (v, g) in enumerate(zip(var, grad)))
                study.add_rows([{"activation": act, "init": init, "when": "training",
                                 "epoch": 0, "loss": loss0}])
                study.add_rows({"activation": act, "init": init, "when": "training",
                                "epoch": e + 1, "loss": v} for e, v in enumerate(h["loss"]))

    def table(key):
        return {a: {i: res[a, i][key] for i in INITS} for a in ACTIVATIONS}

    var_ratio = {a: {i: _ratio(res[a, i]["var_start"]) for i in INITS} for a in ACTIVATIONS}
    grad_ratio = {a: {i: (res[a, i]["grad_start"][0] / res[a, i]["grad_start"][-1]
                          if res[a, i]["grad_start"][-1] > 0 else float("inf"))
                      for i in INITS} for a in ACTIVATIONS}
    study.numbers = {
        "depth": depth, "width": WIDTH, "epochs": epochs, "lr": lr, "samples": len(X),
        "optimizer": "sgd", "batch_size": 32,
        "loss_start": table("loss_start"), "loss_end": table("loss_end"),
        "diverged": table("diverged"), "distinct_units_layer1_end": table("distinct_units"),
        "act_var_start": table("var_start"), "act_var_end": table("var_end"),
        "grad_norm_start": table("grad_start"), "grad_norm_end": table("grad_end"),
        "act_var_max_over_min_start": var_ratio,
        "grad_norm_first_over_last_start": grad_ratio,
    }
    fig = _plot(res, depth, epochs, lr)

    r = res
    summary = (
        "A %d-layer, 64-wide network on digits, plain SGD (lr %g) for %d epochs. Zeros: "
        "hidden activations and gradients are exactly 0, layer 1 ends with %d distinct "
        "unit(s) of 64 and the loss stays at %.3f (ln 10 = 2.303): symmetry is never broken. "
        "N(0, 1) under tanh saturates every layer (activation variance %.2f-%.2f) and the "
        "gradient norm is %.1e times larger at layer 1 than at layer %d; under relu the "
        "variance grows from %.3g to %.3g across the layers and training %s. Under relu, "
        "xavier shrinks the variance from %.3g to %.3g (vanishing; final loss %.3g), while "
        "he keeps it within a factor %.1f and trains to %.3g. Under tanh, xavier, glorot "
        "and he train to %.3g, %.3g and %.3g."
        % (depth, lr, epochs, r["tanh", "zeros"]["distinct_units"],
           _final(r["tanh", "zeros"]), min(r["tanh", "normal"]["var_start"]),
           max(r["tanh", "normal"]["var_start"]), grad_ratio["tanh"]["normal"], depth,
           r["relu", "normal"]["var_start"][0], r["relu", "normal"]["var_start"][-1],
           "overflowed in the first epoch" if r["relu", "normal"]["diverged"]
           else "ended at loss %.3g" % _final(r["relu", "normal"]),
           r["relu", "xavier"]["var_start"][0], r["relu", "xavier"]["var_start"][-1],
           _final(r["relu", "xavier"]), var_ratio["relu"]["he"], _final(r["relu", "he"]),
           _final(r["tanh", "xavier"]), _final(r["tanh", "glorot"]), _final(r["tanh", "he"])))
    return study.finish(fig, summary)


def _final(r):
    """The loss at the trained weights (from the probe), else the last epoch's."""
    if r["loss_end"] is not None:
        return r["loss_end"]
    return r["curve"][-1] if r["curve"] else float("nan")


def _plot(res, depth, epochs, lr):
    fig, axes = c.new_figure(2, 3, 15, 8.8)
    fig.suptitle("Initialization of a %d-layer, 64-wide network on digits (SGD, lr %g): "
                 "solid = at the start, dashed = after %d epochs" % (depth, lr, epochs),
                 fontsize="large")
    layers = np.arange(1, depth + 1)
    notes = ["zeros: every hidden activation and hidden-layer gradient is exactly 0, so its "
             "variance and gradient curves are off the log scale."]
    for row, act in enumerate(ACTIVATIONS):
        ax_var, ax_grad, ax_loss = axes[3 * row:3 * row + 3]
        top = 1.0
        for k, init in enumerate(INITS):
            r = res[act, init]
            color = c.COLORS[k]
            marker = "x" if init == "glorot" else "."
            for key_v, key_g, style in (("var_start", "grad_start", "-"),
                                        ("var_end", "grad_end", "--")):
                if r[key_v] is None:
                    continue
                v = np.array(r[key_v])
                g = np.array(r[key_g])
                label = init if style == "-" else None
                ax_var.plot(layers[v > 0], v[v > 0], style, color=color, marker=marker,
                            ms=4, label=label)
                ax_grad.plot(layers[g > 0], g[g > 0], style, color=color, marker=marker,
                             ms=4, label=label)
            curve = [r["loss_start"]] + r["curve"]
            if r["diverged"]:
                notes.append("%s + %s: the loss at the initial weights is %.2g and training "
                             "overflows (NaN) in the first epoch." % (act, init, curve[0]))
                continue
            top = max(top, max(curve))
            ax_loss.plot(range(len(curve)), curve, color=color, label=init)
        ax_var.set_yscale("log")
        ax_grad.set_yscale("log")
        ax_loss.set_yscale("log")
        ax_loss.set_ylim(top=top * 2)
        for ax in (ax_var, ax_grad, ax_loss):
            c.integer_ticks(ax)
        c.label_axes(ax_var, "%s: activation variance per layer" % act,
                     "hidden layer (1 = next to the input)", "variance of activations (log)")
        c.label_axes(ax_grad, "%s: gradient norm per layer" % act,
                     "hidden layer (1 = next to the input)",
                     "L2 norm of the layer's dW and db (log)")
        c.label_axes(ax_loss, "%s: training loss" % act,
                     "epoch (0 = initial weights)", "cross-entropy (nats, log scale)")
        ax_var.legend(fontsize="small", ncol=2, title="init (both panels)",
                      title_fontsize="small")
        ax_loss.legend(fontsize="small", ncol=2, title="init", title_fontsize="small")
    notes.append("xavier and glorot coincide (every layer but the output is 64 -> 64, where "
                 "2 / (n_in + n_out) = 1 / n_in).")
    fig.supxlabel("\n".join(notes), fontsize="small")
    return fig
