"""Optimizers (spec section 8). Each object holds hyperparameters; the update
runs in C over the model's flat parameter arena, one pass per step.

Which convention matches which library:

- :class:`Momentum` is the exponentially weighted form of the spec:
  V <- beta V + (1 - beta) dW; W <- W - lr V.
- :class:`ClassicalMomentum` is the heavy-ball form used by scikit-learn's
  MLP: V <- mu V - lr dW; W <- W + V. With ``nesterov=True`` (or
  :class:`Nesterov`) the step is W <- W + (mu V - lr dW), scikit-learn's
  Nesterov update. PyTorch's SGD(momentum=mu) keeps b <- mu b + dW,
  W <- W - lr b, which is the same trajectory for a constant learning rate.
- :class:`Adam` is PyTorch's form: bias-corrected moments,
  W <- W - lr V^ / (sqrt(S^) + eps). scikit-learn folds the corrections into the
  step size instead, which moves eps by a factor sqrt(1 - beta2^t).
- :class:`AdamW` adds decoupled weight decay W <- W - lr wd W on the weights
  (never the biases).
"""

from fastnn._kernels import OPTIMIZER_IDS
from fastnn._validation import check_scalar
from fastnn.schedules import SCHEDULES, as_schedule



class Optimizer:
    """Base class: ``lr`` is a number or a fastnn.schedules.Schedule."""

    kind = None
    n_states = 0
    defaults = {}

    def __init__(self, lr, **hyper):
        self.lr = as_schedule(lr)
        self.hyper = hyper

    def kernel_args(self):
        """(kind, beta1, beta2, eps, weight_decay) for the C loop."""
        h = self.hyper
        return (self.kind, h.get("beta", h.get("beta1", h.get("momentum", 0.0))),
                h.get("beta2", 0.0), h.get("eps", 0.0), h.get("weight_decay", 0.0))

    def get_config(self):
        return {"type": type(self).__name__, "lr": self.lr.get_config(), **self.hyper}

    def __repr__(self):
        args = ", ".join("%s=%r" % kv for kv in self.hyper.items())
        return "%s(lr=%r%s)" % (type(self).__name__, self.lr.get_config().get("lr", self.lr),
                                ", " + args if args else "")


class SGD(Optimizer):
    """W <- W - lr dW."""

    kind = OPTIMIZER_IDS["sgd"]

    def __init__(self, lr=0.01):
        super().__init__(lr)


class Momentum(Optimizer):
    """Exponentially weighted momentum: V <- beta V + (1 - beta) dW; W <- W - lr V."""

    kind = OPTIMIZER_IDS["momentum"]
    n_states = 1

    def __init__(self, lr=0.01, beta=0.9):
        super().__init__(lr, beta=check_scalar(beta, "beta", 0.0, 1.0, high_inclusive=False))


class ClassicalMomentum(Optimizer):
    """Heavy-ball momentum: V <- mu V - lr dW; W <- W + V; with nesterov=True
    W <- W + (mu V - lr dW) (scikit-learn's forms)."""

    n_states = 1

    def __init__(self, lr=0.01, momentum=0.9, nesterov=False):
        super().__init__(lr, momentum=check_scalar(momentum, "momentum", 0.0, 1.0),
                         nesterov=bool(nesterov))

    @property
    def kind(self):
        return OPTIMIZER_IDS["nesterov" if self.hyper["nesterov"] else "classical_momentum"]


class Nesterov(ClassicalMomentum):
    """ClassicalMomentum with nesterov=True."""

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr, momentum, nesterov=True)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("nesterov")
        return cfg


class RMSProp(Optimizer):
    """S <- beta S + (1 - beta) dW^2; W <- W - lr dW / (sqrt(S) + eps)."""

    kind = OPTIMIZER_IDS["rmsprop"]
    n_states = 1

    def __init__(self, lr=0.001, beta=0.9, eps=1e-8):
        super().__init__(lr, beta=check_scalar(beta, "beta", 0.0, 1.0, high_inclusive=False),
                         eps=check_scalar(eps, "eps", 0.0, low_inclusive=False))


class Adam(Optimizer):
    """V <- b1 V + (1 - b1) dW; S <- b2 S + (1 - b2) dW^2;
    W <- W - lr (V / (1 - b1^t)) / (sqrt(S / (1 - b2^t)) + eps), t counting from 1.
    weight_decay > 0 adds decoupled decay W <- W - lr wd W on the weights (AdamW)."""

    kind = OPTIMIZER_IDS["adam"]
    n_states = 2

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, beta1=check_scalar(beta1, "beta1", 0.0, 1.0, high_inclusive=False),
                         beta2=check_scalar(beta2, "beta2", 0.0, 1.0, high_inclusive=False),
                         eps=check_scalar(eps, "eps", 0.0, low_inclusive=False),
                         weight_decay=check_scalar(weight_decay, "weight_decay", low=0.0))

    def kernel_args(self):
        h = self.hyper
        return (self.kind, h["beta1"], h["beta2"], h["eps"], h["weight_decay"])


class AdamFolded(Optimizer):
    """Adam as scikit-learn's MLP computes it: the bias correction folded into
    the step size, W <- W - lr_t V / (sqrt(S) + eps) with
    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t). Identical to Adam but for eps, which
    here is effectively larger by 1 / sqrt(1 - b2^t) early in training."""

    kind = OPTIMIZER_IDS["adam_folded"]
    n_states = 2

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr, beta1=check_scalar(beta1, "beta1", 0.0, 1.0, high_inclusive=False),
                         beta2=check_scalar(beta2, "beta2", 0.0, 1.0, high_inclusive=False),
                         eps=check_scalar(eps, "eps", 0.0, low_inclusive=False))

    def kernel_args(self):
        h = self.hyper
        return (self.kind, h["beta1"], h["beta2"], h["eps"], 0.0)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01) on the weights."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "classical_momentum": ClassicalMomentum,
              "nesterov": Nesterov, "rmsprop": RMSProp, "adam": Adam, "adamw": AdamW,
              "adam_folded": AdamFolded}


def get_optimizer(optimizer):
    """An Optimizer from a name (with default hyperparameters) or an Optimizer."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError("unknown optimizer %r; valid optimizers are: %s (or an instance of "
                     "fastnn.optim.Optimizer)" % (optimizer, ", ".join(OPTIMIZERS)))


def optimizer_from_config(config):
    cfg = dict(config)
    cls = {c.__name__: c for c in (SGD, Momentum, ClassicalMomentum, Nesterov, RMSProp, Adam,
                                   AdamW, AdamFolded)}.get(cfg.pop("type", None))
    if cls is None:
        raise ValueError("unknown optimizer type in %r" % (config,))
    cfg["lr"] = _schedule_from_config(cfg["lr"], SCHEDULES)
    return cls(**cfg)


def _schedule_from_config(cfg, table):
    if not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    cls = table.get(cfg.pop("type", None))
    if cls is None:
        raise ValueError("unknown schedule in %r" % (cfg,))
    unit = cfg.pop("unit", "step")
    if "target" in cfg:
        cfg["target"] = _schedule_from_config(cfg["target"], table)
    obj = cls(**cfg) if cls.__name__ == "Constant" else cls(**cfg, unit=unit)
    return obj
