"""The two engines a model trains with: the C loop (``backend="fast"``) and
the NumPy reference loop (``backend="reference"``), behind one interface.

Design: both receive the same arrays (the model's arenas, the optimizer state,
the activation buffers) and run the same algorithm: batch b of an epoch is the
rows perm[b*B:(b+1)*B]; the optimizer step counter t keys the dropout masks.
The reference engine exists to be compared with, as thinc's Ops seam: whole
training runs can be held against each other, step by step."""

import numpy as np

from fastnn import _kernels
from fastnn import reference as ref
from fastnn._validation import check_blas_dims
from fastnn.losses import LOSS_IDS

XENT = LOSS_IDS["cross_entropy"]
_NON_FINITE = _kernels.STATUS_CODES["enonfinite"]
_ZERO_WEIGHT = _kernels.STATUS_CODES["ezeroweight"]
_OPTIMIZER_NAMES = {kind: name for name, kind in _kernels.OPTIMIZER_IDS.items()}


class TrainingSetup:
    """Everything one fit needs besides the data: buffers sized for m_max rows."""

    def __init__(self, model, loss, optimizer, states, m_max, l2, clip_norm, clip_value,
                 diagnostics, center_lambda=0.0, center_alpha=0.0, weighted=False,
                 skip_zero_weight=False):
        arena = model.arena_
        dtype = arena.dtype
        dense = model.dense_layers_
        widths = [layer.units for layer in dense]
        # every product of the loop has a batch, a layer width or an input width as
        # a size; check them before anything is allocated for m_max rows
        check_blas_dims(m_max, what="rows per batch")
        check_blas_dims(arena.shapes[0][0], *widths, what="layer width")
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.m_max = m_max
        self.l2, self.clip_norm, self.clip_value = l2, clip_norm, clip_value
        self.states = states
        self.layers = []
        for i, layer in enumerate(dense):
            n_in, n_out = arena.shapes[i]
            rate = model.dropout_after_[i]
            self.layers.append({
                "n_in": n_in, "n_out": n_out,
                "act": _kernels_act(layer), "activation": layer.activation.name,
                "alpha": layer.activation.alpha, "dropout": rate,
                "W": arena.W[i], "b": arena.b[i], "dW": arena.dW[i], "db": arena.db[i],
                "a": np.zeros((m_max, n_out), dtype),
                "a_drop": np.zeros((m_max, n_out), dtype) if rate > 0 else None,
                "alive": np.zeros(n_out, np.uint8) if diagnostics else None,
                "stats": np.zeros(3, np.float64) if diagnostics else None,
            })
        self.xbuf = np.zeros((m_max, arena.shapes[0][0]), dtype)
        k = widths[-1]
        self.ybuf = (np.zeros(m_max, np.int64) if LOSS_IDS[loss] == XENT
                     else np.zeros((m_max, k), dtype))
        # a batch's sample weights, gathered with its rows; a batch whose
        # weights sum to zero is skipped (loss 0, no step) or raises
        self.swbuf = np.zeros(m_max, dtype) if weighted else None
        self.skip_zero_weight = skip_zero_weight
        self.gbuf1 = np.zeros((m_max, max(widths)), dtype)
        self.gbuf2 = np.zeros((m_max, max(widths)), dtype)
        # class centers of the center loss persist on the model between fits
        self.center_lambda, self.center_alpha = center_lambda, center_alpha
        self.centers = self.center_scratch = None
        if center_lambda > 0:
            shape = (widths[-1], arena.shapes[-1][0])
            self.centers = model._class_centers(shape)
            self.center_scratch = np.zeros(shape[0] * (shape[1] + 1))

    def reset_diagnostics(self):
        for layer in self.layers:
            if layer["stats"] is not None:
                layer["stats"][:] = 0
                layer["alive"][:] = 0


def _kernels_act(layer):
    return _kernels.ACTIVATION_IDS[layer.activation.name]


class FastNetwork:
    """The C training loop (src_c/train.inc.c) over a TrainingSetup."""

    def __init__(self, setup, t):
        model, opt = setup.model, setup.optimizer
        arena = model.arena_
        kind, beta1, beta2, eps, wd = opt.kernel_args()
        s = setup.states + [None, None]
        self.setup = setup
        self._net = _kernels.Net(
            arena.dtype == np.float32, setup.layers, LOSS_IDS[setup.loss], arena.params,
            arena.grads, arena.n_weights, setup.l2, setup.clip_norm, setup.clip_value,
            model.seed_ % 2**64, setup.m_max, setup.xbuf, setup.ybuf, setup.gbuf1, setup.gbuf2,
            kind, beta1, beta2, eps, wd, s[0], s[1], t, setup.center_lambda, setup.center_alpha,
            setup.centers, setup.center_scratch, setup.swbuf, setup.skip_zero_weight)

    @property
    def t(self):
        return self._net.t

    def set_t(self, t):
        self._net.set_t(t)

    def train_batches(self, X, y, perm, batch_size, first, n, lrs, losses, nt, sw=None):
        st, done = self._net.train_batches(X, y, perm, batch_size, first, n, lrs, losses, nt, sw)
        if st == _ZERO_WEIGHT:
            raise zero_weight_error(first + done)
        return st == _NON_FINITE, done

    def train_grad(self, X, y, rows, positions, start, m, denom, nt, sw=None):
        """The gradient phase of a data-parallel step (fastnn._distributed):
        rows[start:start + m] of X, at positions[start:start + m] of their
        batch, the loss and gradient divided by denom; returns this part's
        data loss."""
        return self._net.train_grad(X, y, rows, positions, start, m, denom, nt, sw)

    def train_shard_batches(self, X, y, rows, positions, starts, counts, denoms, first, n, lrs,
                            data_loss, l2_loss, nt, c_sum, sw=None):
        """Steps first .. first + n - 1 of a data-parallel epoch in one call:
        each step's gradient phase, the sum of the gradient arena over the
        processes through c_sum (a _kernels.ProcessSum), and its apply phase.
        Returns the kernel status (ok, enonfinite or ecomm) and the steps
        done."""
        return self._net.train_shard_batches(X, y, rows, positions, starts, counts, denoms,
                                             first, n, lrs, data_loss, l2_loss, nt, c_sum, sw)

    def train_apply(self, denom, lr, nt):
        """The apply phase on the summed gradient: (whether the gradient was
        not finite, so no step was taken; the batch's L2 loss term)."""
        st, l2_loss = self._net.train_apply(denom, lr, nt)
        return st == _NON_FINITE, l2_loss


class ReferenceNetwork:
    """The same loop in NumPy, from fastnn.reference.train_step."""

    def __init__(self, setup, t):
        self.setup = setup
        self.t = t
        opt = setup.optimizer
        kind = opt.kernel_args()[0]
        self.kind = _OPTIMIZER_NAMES[kind]
        self.hyper = dict(opt.hyper)

    def set_t(self, t):
        self.t = t

    def train_batches(self, X, y, perm, batch_size, first, n, lrs, losses, nt, sw=None):
        s = self.setup
        arena = s.model.arena_
        for i in range(n):
            rows = perm[(first + i) * batch_size:(first + i + 1) * batch_size]
            try:
                with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected below
                    J, finite = ref.train_step(s.layers, arena.params, arena.grads,
                                               arena.n_weights, X[rows], y[rows], s.loss,
                                               l2=s.l2, clip_norm=s.clip_norm,
                                               clip_value=s.clip_value,
                                               seed=s.model.seed_ % 2**64, step=self.t,
                                               centers=s.centers, center_lambda=s.center_lambda,
                                               center_alpha=s.center_alpha,
                                               sw=None if sw is None else sw[rows])
            except ZeroDivisionError:
                if not s.skip_zero_weight:
                    raise zero_weight_error(first + i) from None
                losses[i] = 0.0  # no mean, no step
                continue
            losses[i] = J
            if not finite:
                return True, i
            ref.optimizer_update(self.kind, arena.params, arena.grads, s.states,
                                 arena.n_weights, self.t + 1, float(lrs[i]), self.hyper)
            self.t += 1
        return False, n


def zero_weight_error(batch):
    """The error of a batch whose sample weights sum to zero (no step was taken
    for it; the parameters are those of the previous step)."""
    return ZeroDivisionError(
        "the sample weights of batch %d of the epoch sum to zero, so its weighted mean loss "
        "is undefined; the parameters are those of the step before it" % batch)


def make_network(setup, backend, t):
    if backend == "fast":
        return FastNetwork(setup, t)
    if backend == "reference":
        return ReferenceNetwork(setup, t)
    raise ValueError("backend must be 'fast' or 'reference', got %r" % (backend,))
