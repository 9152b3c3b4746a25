"""Figures and comparisons from bench/sweep.py results.

    python bench/sweep_plot.py RESULTS.json [--out DIR]
    python bench/sweep_plot.py --compare AS_IS.json UNSET.json

The first form writes three PNGs beside the JSON (or into DIR): a heat map of
fastnn's speed over plain PyTorch's (samples/s ratio) on the width x batch
grid, each cell annotated, a bar chart of fastnn over PyTorch (plain and
fused Adam) per hidden activation, and a roofline: every config's performed
GFLOP/s against its arithmetic intensity (step_bytes below), under the
machine's GEMM peak and, when the sweep measured it, its copy bandwidth. The second prints a markdown table that
puts two sweeps side by side, config by config (made for the same sweep run
with --env-openblas as-is and unset): each peer's samples/s in both and the
second over the first.
"""

import argparse
import json
import os
import sys

import numpy as np


def load(path):
    with open(path) as f:
        return json.load(f)


# Passes over the parameter arena of one optimizer step: p read and written, g
# read, and each state array read and written.
OPTIMIZER_PASSES = {"sgd": 3, "classical_momentum": 5, "nesterov": 5, "rmsprop": 5, "adam": 7}


def step_bytes(layers, batch, dtype, optimizer):
    """Bytes a training step must move at the least, if every array is read or
    written once per use: the weights are read by the forward pass and by the
    input gradient, their gradient written, and the optimizer passes over the
    arena; each layer's output is written forward and read backward, its dZ
    written and read by the two products; the batch is read forward and by
    the weight gradient."""
    item = 4 if dtype == "float32" else 8
    pairs = list(zip(layers[:-1], layers[1:]))
    params = sum(a * b + b for a, b in pairs)
    outputs = sum(batch * b for _, b in pairs)
    return item * (params * (3 + OPTIMIZER_PASSES[optimizer]) + 4 * outputs
                   + 2 * batch * layers[0])


def roofline(data, path, peer="fastnn"):
    """Performed GFLOP/s against FLOP per byte of step_bytes, one point per
    config, with the float32 and float64 GEMM peaks and the copy bandwidth."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    env = data["env"]
    points = {"float32": [], "float64": []}
    for row in data["configs"]:
        res = row["peers"].get(peer, {})
        if not res.get("samples_per_s"):
            continue
        flops = row["flops_per_sample"] * row["batch"]
        intensity = flops / step_bytes(row["layers"], row["batch"], row["dtype"], row["optimizer"])
        points[row["dtype"]].append((intensity, res["samples_per_s"] * row["flops_per_sample"] / 1e9,
                                     row["name"]))
    if not any(points.values()):
        return None
    fig, ax = plt.subplots(figsize=(9, 6))
    xs = [p[0] for pts in points.values() for p in pts]
    grid = np.logspace(np.log10(min(xs) / 2), np.log10(max(xs) * 2), 200)
    for dtype, marker, color in (("float32", "o", "tab:blue"), ("float64", "s", "tab:orange")):
        peak = env["peak_gflops"][dtype]
        ceiling = np.full_like(grid, peak)
        if env.get("copy_gbs"):
            ceiling = np.minimum(ceiling, grid * env["copy_gbs"])
        ax.plot(grid, ceiling, color=color, lw=1, ls="--",
                label="%s ceiling: %.0f GFLOP/s%s" % (
                    dtype, peak, ", %.0f GB/s" % env["copy_gbs"] if env.get("copy_gbs") else ""))
        pts = points[dtype]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color,
                       label="%s %s" % (peer, dtype))
            for x, y, name in pts:
                ax.annotate(name, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (performed FLOP per byte a step must move)")
    ax.set_ylabel("performed GFLOP/s")
    ax.set_title("%s training steps, %d threads, %s" % (peer, env["threads"], env["date"]))
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _ratio(row, peer):
    return row["ratios"].get(peer)


def heatmap(data, path, peer="pytorch"):
    """fastnn / peer over the width x batch grid; cells without a value stay blank."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cells = {(r["width"], r["batch"]): _ratio(r, peer) for r in data["configs"]
             if "width_x_batch" in r["factors"]}
    if not cells:
        return None
    widths = sorted({w for w, _ in cells})
    batches = sorted({b for _, b in cells})
    grid = np.full((len(widths), len(batches)), np.nan)
    for (w, b), v in cells.items():
        if v is not None:
            grid[widths.index(w), batches.index(b)] = v
    # log2 so that 2x faster and 2x slower are equally far from the neutral colour
    span = max(1.0, np.nanmax(np.abs(np.log2(grid)))) if np.isfinite(grid).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.4 * len(batches) + 2, 1.0 * len(widths) + 1.5))
    image = ax.imshow(np.log2(grid), cmap="RdYlGn", vmin=-span, vmax=span, origin="lower")
    for i in range(len(widths)):
        for j in range(len(batches)):
            if np.isfinite(grid[i, j]):
                dark = abs(np.log2(grid[i, j])) > 0.6 * span
                ax.text(j, i, "%.2fx" % grid[i, j], ha="center", va="center", fontsize=10,
                        color="white" if dark else "black")
    ax.set_xticks(range(len(batches)), [str(b) for b in batches])
    ax.set_yticks(range(len(widths)), [str(w) for w in widths])
    ax.set_xlabel("batch size")
    ax.set_ylabel("hidden width (2 hidden layers)")
    env = data["env"]
    ax.set_title("fastnn / PyTorch%s samples/s, %d threads, OpenBLAS env %s" % (
        " fused Adam" if peer == "pytorch-fused" else "", env["threads"], env["env_openblas"]),
        fontsize=10)
    cbar = fig.colorbar(image, ax=ax)
    cbar.set_label("log2 of the ratio (> 0: fastnn faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def activation_bars(data, path):
    """fastnn / PyTorch (plain and fused Adam) per hidden activation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in data["configs"] if "activation" in r["factors"]]
    if not rows:
        return None
    peers = [p for p in ("pytorch", "pytorch-fused", "numpy") if p in data["env"]["peers"]]
    labels = {"pytorch": "PyTorch", "pytorch-fused": "PyTorch fused Adam", "numpy": "NumPy"}
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(peers))
    fig, ax = plt.subplots(figsize=(1.3 * len(rows) + 2, 4))
    for k, peer in enumerate(peers):
        values = [_ratio(r, peer) or 0.0 for r in rows]
        bars = ax.bar(x + (k - (len(peers) - 1) / 2) * width, values, width, label=labels[peer])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(x, [r["activation"] for r in rows])
    ax.set_ylabel("fastnn samples/s / peer samples/s")
    ax.set_title("Base network 64-256-256-10, batch 64, by hidden activation", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def compare_table(first, second):
    """Markdown: per config and peer, samples/s in both runs and second / first."""
    name_a, name_b = first["env"]["env_openblas"], second["env"]["env_openblas"]
    if name_a == name_b:
        name_a, name_b = "first", "second"
    peers = [p for p in first["env"]["peers"] if p in second["env"]["peers"]]
    by_name = {r["name"]: r for r in second["configs"]}
    head = ["config"]
    for p in peers:
        head += ["%s %s" % (p, name_a), "%s %s" % (p, name_b), "%s / %s" % (name_b, name_a)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in first["configs"]:
        other = by_name.get(row["name"])
        if other is None:
            continue
        cells = [row["name"]]
        for p in peers:
            a = row["peers"].get(p, {}).get("samples_per_s")
            b = other["peers"].get(p, {}).get("samples_per_s")
            cells += [_k(a), _k(b), "%.2fx" % (b / a) if a and b else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _k(v):
    if v is None:
        return ""
    return "%.1fk" % (v / 1e3) if v < 1e6 else "%.2fM" % (v / 1e6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", help="a sweep JSON")
    parser.add_argument("--out", help="folder for the PNGs (default: beside the JSON)")
    parser.add_argument("--compare", nargs=2, metavar=("FIRST", "SECOND"),
                        help="two sweep JSONs to put side by side")
    args = parser.parse_args(argv)
    if args.compare:
        first, second = (load(p) for p in args.compare)
        print(compare_table(first, second))
        return 0
    if not args.results:
        parser.error("give a results JSON or --compare FIRST SECOND")
    data = load(args.results)
    stem = os.path.splitext(os.path.basename(args.results))[0]
    out = args.out or os.path.dirname(os.path.abspath(args.results))
    os.makedirs(out, exist_ok=True)
    written = [heatmap(data, os.path.join(out, stem + "-heatmap.png")),
               activation_bars(data, os.path.join(out, stem + "-activations.png")),
               roofline(data, os.path.join(out, stem + "-roofline.png"))]
    for path in written:
        if path:
            print("wrote", path)
    if not any(written):
        print("no width x batch or activation configs in %s" % args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
