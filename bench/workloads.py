"""Training workloads and the peers that run them, shared by bench/compare.py,
bench/sweep.py and the pytest benchmarks.

Every peer trains the same network (same layer sizes, activations, loss,
optimizer, batch size and dtype) for one epoch over the same data, drawn from
a seeded random teacher network so the loss falls. A peer is a factory:
``make(workload, n_threads)`` returns a callable that runs one epoch (and
keeps its model between calls, so repeated epochs continue training) and the
number of samples it covers, or raises ``PeerUnavailable`` with the reason.

fastnn is imported inside its peer only, so a process that runs another peer
never loads fastnn's OpenMP runtime.
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np

from numpy_loop import NumpyMLP


class PeerUnavailable(Exception):
    """A peer library is not installed or cannot run this workload."""


@dataclass(frozen=True)
class Workload:
    name: str
    n_samples: int
    layers: tuple          # widths: input, hidden..., output
    loss: str              # "cross_entropy", "binary_cross_entropy" or "mse"
    optimizer: str         # a key of OPTIMIZERS
    lr: float
    batch_size: int
    predict_batch: int = 0  # > 0: measure prediction throughput instead of training
    activation: str = "relu"  # of the hidden layers
    dtype: str = "float32"

    @property
    def flops_per_sample(self):
        """Floating-point operations performed per sample (a multiply-add is 2).

        Forward: 2 n_in n_out per layer. Training adds the weight gradient
        dW = X^T dZ (2 n_in n_out per layer) and the input gradient
        dX = dZ W^T (2 n_in n_out per layer except the first). The first
        layer's dX would be the gradient with respect to the data, which no
        one needs and neither fastnn nor any peer computes; counting it would
        credit every peer with work it never does (W1's count would grow by
        40%: its first layer holds most of the weights). Bias, activation,
        loss and optimizer work are not counted.
        """
        pairs = list(zip(self.layers[:-1], self.layers[1:]))
        fwd = sum(2 * a * b for a, b in pairs)
        if self.predict_batch:
            return fwd
        first_dx = 2 * pairs[0][0] * pairs[0][1]
        return 3 * fwd - first_dx

    @property
    def output_activation(self):
        return {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid",
                "mse": "identity"}[self.loss]


# optimizer key -> fastnn's class name and hyperparameters besides lr; every peer
# maps the key to its own equivalent (heavy-ball momentum in fastnn's and
# scikit-learn's form is PyTorch's SGD(momentum) for a constant learning rate)
OPTIMIZERS = {
    "sgd": ("SGD", {}),
    "classical_momentum": ("ClassicalMomentum", {"momentum": 0.9}),
    "nesterov": ("Nesterov", {"momentum": 0.9}),
    "rmsprop": ("RMSProp", {"beta": 0.9, "eps": 1e-8}),
    "adam": ("Adam", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
}


WORKLOADS = {
    "W1": Workload("W1 mnist-like", 60000, (784, 256, 128, 10), "cross_entropy", "adam",
                   1e-3, 128),
    "W2": Workload("W2 tabular-small", 100000, (32, 64, 64, 1), "binary_cross_entropy",
                   "adam", 1e-3, 32),
    "W3": Workload("W3 wide", 8192, (1024, 2048, 2048, 10), "cross_entropy",
                   "classical_momentum", 1e-2, 512),
    "P1": Workload("predict W1 network", 60000, (784, 256, 128, 10), "cross_entropy", "adam",
                   1e-3, 128, predict_batch=4096),
}


def make_data(workload, seed=0):
    """Inputs and targets from a random teacher network (drawn in float32, then
    cast to the workload's dtype): class labels for cross_entropy, 0/1 for
    binary_cross_entropy, the teacher's outputs for mse."""
    rng = np.random.default_rng(seed)
    sizes = workload.layers
    X = rng.standard_normal((workload.n_samples, sizes[0]), dtype=np.float32)
    h = X
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = rng.standard_normal((a, b), dtype=np.float32) / np.sqrt(a)
        h = np.tanh(h @ W) if i < len(sizes) - 2 else h @ W
    dtype = np.dtype(workload.dtype)
    if workload.loss == "cross_entropy":
        y = np.argmax(h, axis=1).astype(np.int64)
    elif workload.loss == "binary_cross_entropy":
        y = (h[:, 0] > np.median(h[:, 0])).astype(dtype)
    else:
        y = h.astype(dtype)
    return X.astype(dtype, copy=False), y


# ---------------------------------------------------------------- peers

def _fastnn_model(workload, seed=0):
    import fastnn as fn
    sizes = workload.layers
    layers = [fn.Dense(b, activation=workload.activation) for b in sizes[1:-1]]
    layers.append(fn.Dense(sizes[-1], activation=workload.output_activation))
    return fn.Sequential(layers, input_dim=sizes[0], dtype=workload.dtype, seed=seed)


def _fastnn_optimizer(workload):
    import fastnn as fn
    cls, hyper = OPTIMIZERS[workload.optimizer]
    return getattr(fn.optim, cls)(lr=workload.lr, **hyper)


def fastnn_peer(workload, n_threads, backend="fast"):
    X, y = make_data(workload)
    model = _fastnn_model(workload)
    opt = _fastnn_optimizer(workload)
    if workload.predict_batch:
        def run():
            for lo in range(0, len(X), workload.predict_batch):
                model.predict_proba(X[lo:lo + workload.predict_batch], n_threads=n_threads)
        return run, len(X)

    def run():
        model.fit(X, y, loss=workload.loss, optimizer=opt, batch_size=workload.batch_size,
                  epochs=1, n_threads=n_threads, backend=backend)
    return run, len(X)


def reference_peer(workload, n_threads):
    """fastnn's own NumPy twin (backend="reference"): it accumulates reductions
    in float64 on purpose, so it is a correctness yardstick, not a fair NumPy
    baseline (that is numpy_peer)."""
    if workload.predict_batch:
        raise PeerUnavailable("the reference loop is a training loop")
    return fastnn_peer(workload, n_threads, backend="reference")


def numpy_peer(workload, n_threads):
    """The plain NumPy loop of bench/numpy_loop.py, in the workload's dtype."""
    X, y = make_data(workload)
    net = NumpyMLP(workload.layers, workload.activation, workload.loss, workload.optimizer,
                   workload.lr, OPTIMIZERS[workload.optimizer][1], dtype=workload.dtype,
                   seed=0)
    if workload.predict_batch:
        def run():
            for lo in range(0, len(X), workload.predict_batch):
                net.predict_proba(X[lo:lo + workload.predict_batch])
        return run, len(X)
    rng = np.random.default_rng(1)

    def run():
        net.train_epoch(X, y, workload.batch_size, rng)
    return run, len(X)


def sklearn_peer(workload, n_threads):
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise PeerUnavailable("scikit-learn is not installed (pip install scikit-learn)")
    if workload.predict_batch:
        raise PeerUnavailable("scikit-learn is measured on training only")
    solvers = {"adam": dict(solver="adam"),
               "classical_momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
               "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
               "sgd": dict(solver="sgd", momentum=0.0)}
    activations = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}
    if (workload.loss == "mse" or workload.optimizer not in solvers
            or workload.activation not in activations):
        raise PeerUnavailable("MLPClassifier has no %s / %s / %s" % (
            workload.loss, workload.optimizer, workload.activation))
    X, y = make_data(workload)
    clf = MLPClassifier(hidden_layer_sizes=workload.layers[1:-1],
                        activation=activations[workload.activation],
                        batch_size=workload.batch_size, learning_rate_init=workload.lr,
                        alpha=0.0, max_iter=1, shuffle=True, random_state=0, tol=0.0,
                        **solvers[workload.optimizer])
    classes = np.unique(y)

    def run():
        # partial_fit runs one epoch; the first call also sets the classes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if hasattr(clf, "coefs_"):
                clf.partial_fit(X, y)
            else:
                clf.partial_fit(X, y, classes=classes)
    return run, len(X)


def _torch_optimizer(torch, params, workload, fused):
    lr, hyper = workload.lr, OPTIMIZERS[workload.optimizer][1]
    if workload.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(hyper["beta1"], hyper["beta2"]),
                                eps=hyper["eps"], fused=fused or None)
    if fused:
        raise PeerUnavailable("the fused variant is measured for Adam only")
    if workload.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=hyper["beta"], eps=hyper["eps"])
    momentum = hyper.get("momentum", 0.0)
    return torch.optim.SGD(params, lr=lr, momentum=momentum,
                           nesterov=workload.optimizer == "nesterov")


def torch_peer(workload, n_threads, fused=False):
    try:
        import torch
    except ImportError:
        raise PeerUnavailable("PyTorch is not installed (pip install torch==2.13.0, the CPU "
                              "build)")
    torch.set_num_threads(n_threads)
    torch.manual_seed(0)
    X, y = make_data(workload)
    activations = {"relu": torch.nn.ReLU, "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
                   "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
                   "softplus": torch.nn.Softplus}
    sizes = workload.layers
    mods = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(activations[workload.activation]())
    net = torch.nn.Sequential(*mods).to(getattr(torch, workload.dtype))
    Xt = torch.from_numpy(X)
    if workload.predict_batch:
        def run():
            with torch.no_grad():
                for lo in range(0, len(X), workload.predict_batch):
                    torch.softmax(net(Xt[lo:lo + workload.predict_batch]), dim=1)
        return run, len(X)
    if workload.loss == "cross_entropy":
        yt = torch.from_numpy(y)
        loss_fn = torch.nn.CrossEntropyLoss()
    elif workload.loss == "binary_cross_entropy":
        yt = torch.from_numpy(y).reshape(-1, 1)
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        yt = torch.from_numpy(y)
        loss_fn = torch.nn.MSELoss()
    opt = _torch_optimizer(torch, net.parameters(), workload, fused)
    gen = torch.Generator().manual_seed(0)
    B = workload.batch_size

    def run():
        perm = torch.randperm(len(X), generator=gen)
        for lo in range(0, len(X), B):
            idx = perm[lo:lo + B]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return run, len(X)


def torch_fused_peer(workload, n_threads):
    if workload.optimizer != "adam":
        raise PeerUnavailable("the fused variant is measured for Adam only")
    return torch_peer(workload, n_threads, fused=True)


def jax_peer(workload, n_threads, scan=False):
    """A jit-compiled training step (forward, loss, grad and the optimizer
    update in one XLA computation) that a Python loop feeds batch by batch;
    with scan=True the whole epoch is one compiled lax.scan over the batches,
    the fastest form JAX offers. XLA sizes its own CPU thread pool (all
    cores); n_threads does not reach it."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise PeerUnavailable("JAX is not installed (pip install jax jaxlib)")
    if (workload.activation != "relu" or workload.dtype != "float32" or workload.loss == "mse"
            or workload.optimizer not in ("adam", "classical_momentum")):
        raise PeerUnavailable("this JAX loop covers float32 relu classification with Adam or "
                              "heavy-ball momentum")
    X, y = make_data(workload)
    sizes = workload.layers
    key = jax.random.PRNGKey(0)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (a, b), jnp.float32) * jnp.sqrt(2.0 / a),
                       jnp.zeros(b, jnp.float32)))

    def forward(params, xb):
        h = xb
        for i, (W, b) in enumerate(params):
            h = h @ W + b
            if i < len(params) - 1:
                h = jax.nn.relu(h)
        return h

    if workload.predict_batch:
        predict = jax.jit(lambda p, xb: jax.nn.softmax(forward(p, xb), axis=1))
        Xj = jnp.asarray(X)

        def run():
            for lo in range(0, len(X), workload.predict_batch):
                predict(params, Xj[lo:lo + workload.predict_batch]).block_until_ready()
        return run, len(X)

    def loss_fn(params, xb, yb):
        z = forward(params, xb)
        if workload.loss == "cross_entropy":
            logp = jax.nn.log_softmax(z, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))
        zz = z[:, 0]
        return jnp.mean(jnp.maximum(zz, 0) - zz * yb + jnp.log1p(jnp.exp(-jnp.abs(zz))))

    lr, b1, b2, eps = workload.lr, 0.9, 0.999, 1e-8
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = {"p": params, "m": zeros, "v": zeros, "t": jnp.zeros((), jnp.float32)}

    @jax.jit
    def step(state, xb, yb):
        grads = jax.grad(loss_fn)(state["p"], xb, yb)
        t = state["t"] + 1
        if workload.optimizer == "adam":
            m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
            v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"],
                                       grads)
            p = jax.tree_util.tree_map(
                lambda p, m, v: p - lr * (m / (1 - b1 ** t)) / (jnp.sqrt(v / (1 - b2 ** t))
                                                                + eps),
                state["p"], m, v)
        else:  # heavy-ball momentum 0.9
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m - lr * g, state["m"], grads)
            v = state["v"]
            p = jax.tree_util.tree_map(lambda p, m: p + m, state["p"], m)
        return {"p": p, "m": m, "v": v, "t": t}

    B = workload.batch_size
    n_full = len(X) // B

    @jax.jit
    def epoch(state, Xs, ys):
        # full batches in one compiled scan: no Python between steps
        xb = Xs[:n_full * B].reshape(n_full, B, -1)
        yb = ys[:n_full * B].reshape((n_full, B) + ys.shape[1:])
        state, _ = jax.lax.scan(lambda st, b: (step(st, b[0], b[1]), None), state, (xb, yb))
        return state

    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    rng = np.random.default_rng(0)
    holder = [state]

    def run():
        perm = jnp.asarray(rng.permutation(len(X)))
        Xs, ys = Xj[perm], yj[perm]
        if scan:
            st = epoch(holder[0], Xs, ys)
        else:
            st = holder[0]
            for lo in range(0, n_full * B, B):
                st = step(st, Xs[lo:lo + B], ys[lo:lo + B])
        if n_full * B < len(X):  # the last, smaller batch
            st = step(st, Xs[n_full * B:], ys[n_full * B:])
        jax.block_until_ready(st)
        holder[0] = st
    return run, len(X)


def jax_scan_peer(workload, n_threads):
    if workload.predict_batch:
        raise PeerUnavailable("scan applies to the training loop")
    return jax_peer(workload, n_threads, scan=True)


PEERS = {
    "fastnn": fastnn_peer,
    "numpy": numpy_peer,
    "fastnn-reference": reference_peer,
    "scikit-learn": sklearn_peer,
    "pytorch": torch_peer,
    "pytorch-fused": torch_fused_peer,
    "jax": jax_peer,
    "jax-scan": jax_scan_peer,
}


# the modules each peer imports first (workers load them before any peer runs);
# creating a torch.optim optimizer imports torch._dynamo, which takes seconds
LIBRARIES = {
    "fastnn": ("fastnn",),
    "numpy": ("numpy",),
    "fastnn-reference": ("fastnn",),
    "scikit-learn": ("sklearn.neural_network",),
    "pytorch": ("torch", "torch._dynamo"),
    "pytorch-fused": ("torch", "torch._dynamo"),
    "jax": ("jax",),
    "jax-scan": ("jax",),
}

# how tables name the peers
LABELS = {
    "fastnn": "fastnn",
    "numpy": "NumPy",
    "fastnn-reference": "fastnn.reference (float64 accumulations)",
    "scikit-learn": "scikit-learn",
    "pytorch": "PyTorch",
    "pytorch-fused": "PyTorch fused Adam",
    "jax": "JAX jitted step",
    "jax-scan": "JAX lax.scan epoch",
}


def timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
