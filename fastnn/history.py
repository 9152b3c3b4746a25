"""History: what a fit recorded, per epoch, and its plots."""

from fastnn._optional import import_optional


class History:
    """Per-epoch records of a fit.

    Attributes
    ----------
    history : dict of lists
        "loss" (sample-weighted mean of the batch losses, with the L2 term),
        "val_loss" and the validation metric ("val_accuracy" or "val_r2") when
        there is validation data, "lr" (at the epoch's last step), "time" (wall
        seconds), "samples_per_sec".
    diagnostics : list of dicts, one per Dense layer (with diagnostics=True)
        "act_mean", "act_var" (batch means of the activations' mean and
        variance), "grad_norm" (batch mean of the layer's gradient L2 norm,
        before clipping) and "dead_fraction" (units with no positive output in
        the whole epoch), each a list over epochs. With a fused loss
        (cross_entropy, binary_cross_entropy) the output layer's statistics are
        those of its logits: the training loop never forms its softmax or
        sigmoid outputs, the loss kernel works from the logits.
    epochs : list of epoch numbers (counting across fits of the same model)
    stopped : None, or why training ended early ("early_stopping", "callback",
        "interrupted", "non_finite")
    validation_rows : None, or the indices of the rows of X that validation_split
        held out (drawn from the model's seed, so the same seed holds out the
        same rows)
    """

    def __init__(self, validation_rows=None):
        self.validation_rows = validation_rows
        self.history = {"loss": [], "time": [], "samples_per_sec": [], "lr": []}
        self.diagnostics = []
        self.epochs = []
        self.stopped = None
        self.stop_detail = None

    def record(self, epoch, logs):
        self.epochs.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def record_diagnostics(self, per_layer):
        if not self.diagnostics:
            self.diagnostics = [{"act_mean": [], "act_var": [], "grad_norm": [],
                                 "dead_fraction": []} for _ in per_layer]
        for store, values in zip(self.diagnostics, per_layer):
            for key, value in values.items():
                store[key].append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __len__(self):
        return len(self.epochs)

    def __repr__(self):
        return "History(%d epochs, keys=%s%s)" % (
            len(self.epochs), sorted(self.history),
            ", stopped=%r" % self.stopped if self.stopped else "")

    def plot(self, path=None, show=False):
        """Learning curves and, when recorded, the per-layer diagnostics.

        Returns the matplotlib Figure; saves it when `path` is given."""
        import_optional("matplotlib", "History.plot", "plot")
        if show:
            import matplotlib.pyplot as plt
        else:
            from matplotlib.figure import Figure
        n_rows = 2 if self.diagnostics else 1
        if show:
            fig, axes = plt.subplots(n_rows, 2, figsize=(11, 4 * n_rows), squeeze=False)
        else:  # a figure pyplot does not track: the backend is left alone, nothing stays open
            fig = Figure(figsize=(11, 4 * n_rows))
            axes = fig.subplots(n_rows, 2, squeeze=False)
        ax = axes[0][0]
        ax.plot(self.epochs, self.history["loss"], label="training loss")
        if "val_loss" in self.history:
            ax.plot(self.epochs, self.history["val_loss"], label="validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title("Learning curves")
        ax.legend()
        if min(self.history["loss"] or [1]) > 0:
            ax.set_yscale("log")
        ax = axes[0][1]
        metric = next((k for k in ("val_accuracy", "val_r2") if k in self.history), None)
        if metric:
            ax.plot(self.epochs, self.history[metric], label=metric.replace("_", " "))
            ax.set_ylabel(metric.replace("val_", "validation "))
            ax.set_title("Validation metric")
        else:
            ax.plot(self.epochs, self.history["samples_per_sec"], label="samples/s")
            ax.set_ylabel("samples per second")
            ax.set_title("Throughput")
        ax.set_xlabel("epoch")
        ax.legend()
        if self.diagnostics:
            panels = (("act_var", "activation variance", "activation variance"),
                      ("grad_norm", "gradient L2 norm", "gradient norm"))
            for ax, (key, label, title) in zip(axes[1], panels):
                for i, d in enumerate(self.diagnostics):
                    ax.plot(self.epochs, d[key], label="layer %d" % (i + 1))
                ax.set_yscale("log")
                ax.set_xlabel("epoch")
                ax.set_ylabel(label)
                ax.set_title("Per-layer " + title)
                ax.legend(fontsize="small")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        if show:
            plt.show()
        return fig
