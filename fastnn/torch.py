"""Conversion between :class:`fastnn.Sequential` and ``torch.nn.Sequential``.

    import fastnn.torch
    module = fastnn.torch.to_torch(model)        # nn.Linear and activation modules
    model = fastnn.torch.from_torch(module)      # and back, the same weights bit for bit

Design:

- Weights are copied, never cast, so values match bit for bit and the dtype is
  kept (float32 or float64). fastnn computes X @ W + b with W of shape
  (n_in, n_out); ``nn.Linear`` computes x @ weight.T + bias with weight of
  shape (out_features, in_features), so weight = W.T.
- fastnn fuses the softmax, sigmoid and exp output activations into its
  losses, as PyTorch's CrossEntropyLoss, BCEWithLogitsLoss and
  PoissonNLLLoss(log_input=True) take the output layer's pre-activations (the
  logits). to_torch therefore leaves them off by default and records the name
  on the module (``module.output_activation``); from_torch puts it back. Every
  other output activation (identity, tanh, relu, ...) is part of the module.
- A fastnn layer is Linear, then at most one activation, then at most one
  Dropout (dropout applies to the activation's output). from_torch takes
  exactly that order and refuses anything it cannot represent exactly, naming
  the module and its position, rather than converting it approximately.
- nn.Softplus replaces beta * x > threshold by x. That differs from fastnn's
  softplus by log1p(exp(-x)), which is below half an ulp of x once
  x >= 15 in float32 and x >= 34 in float64. to_torch uses torch's default
  threshold 20 for float32 and 40 for float64 (where 20 would differ by up to
  2e-9), and from_torch refuses smaller thresholds.
- New nn.Linear modules are made with ``torch.nn.utils.skip_init``, so a
  conversion draws nothing from torch's global random generator.
- PyTorch is imported here at import time; ``import fastnn`` never imports
  this module, so fastnn works without PyTorch installed.
"""

import numpy as np

from fastnn._optional import import_optional
from fastnn._validation import check_int
from fastnn.activations import LeakyReLU, get_activation
from fastnn.layers import Dense, Dropout
from fastnn.model import Sequential

# PyTorch itself (an absolute import: not this module of the same name)
torch = import_optional("torch", "fastnn.torch", "torch", "PyTorch")
nn = torch.nn

__all__ = ["Exp", "to_torch", "from_torch", "LOSS_OUTPUT_ACTIVATIONS"]

# the output activations fastnn's losses fuse, left to the PyTorch loss by default
LOSS_OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "exp")

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
_NUMPY_DTYPES = {t: d for d, t in _TORCH_DTYPES.items()}

# nn.Softplus thresholds: the one to_torch sets, and the smallest from_torch
# accepts (the linearization's error log1p(exp(-t)) below half an ulp of t)
_SOFTPLUS_THRESHOLD = {torch.float32: 20.0, torch.float64: 40.0}
_SOFTPLUS_MIN_THRESHOLD = {torch.float32: 15.0, torch.float64: 34.0}


class Exp(nn.Module):
    """exp(x) element-wise: fastnn's exp activation (the inverse of the Poisson
    model's log link) as a PyTorch module."""

    def forward(self, x):
        return torch.exp(x)


def _activation_module(activation, dtype):
    """The PyTorch module computing a fastnn activation, or None for identity."""
    name = activation.name
    if name == "identity":
        return None
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=activation.alpha)
    if name == "softplus":
        return nn.Softplus(beta=1.0, threshold=_SOFTPLUS_THRESHOLD[dtype])
    if name == "softmax":
        return nn.Softmax(dim=1)
    return {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "exp": Exp}[name]()


def _linear(W, b, dtype):
    """An nn.Linear holding exact copies of W.T and b."""
    linear = nn.utils.skip_init(nn.Linear, W.shape[0], W.shape[1], dtype=dtype)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(W.T))
        linear.bias.copy_(torch.from_numpy(b))
    return linear


def to_torch(model, include_output_activation=False):
    """A ``torch.nn.Sequential`` computing what a fastnn model computes.

    Each Dense layer becomes an ``nn.Linear`` (weight = W.T, bias = b, copied
    bit for bit, in the model's dtype) followed by its activation module:
    ``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``, ``nn.LeakyReLU(alpha)``,
    ``nn.Softplus`` (threshold 20 for float32, 40 for float64, where both
    agree with fastnn's softplus to rounding), ``nn.Softmax(dim=1)``, or
    :class:`Exp`; identity adds no module. Each Dropout becomes
    ``nn.Dropout(p=rate)``.

    Parameters
    ----------
    model : fastnn.Sequential
        A built model (input_dim given, or fitted).
    include_output_activation : bool, default=False
        Whether to append a softmax, sigmoid or exp output activation. By
        default it is left to the PyTorch loss, which takes logits:
        ``CrossEntropyLoss``, ``BCEWithLogitsLoss``,
        ``PoissonNLLLoss(log_input=True)``. Other output activations are
        always included.

    Returns
    -------
    torch.nn.Sequential
        In eval mode (call ``.train()`` to train it further), on the CPU,
        with two attributes that ``state_dict()`` does not hold:
        ``output_activation``, the name of the output activation left off
        ("softmax", "sigmoid" or "exp") or None, which :func:`from_torch`
        restores; and ``classes_``, a copy of the model's class labels (the
        label of output unit j is ``classes_[j]``) or None.
    """
    if not isinstance(model, Sequential):
        raise TypeError("to_torch takes a fastnn.Sequential, got %s" % type(model).__name__)
    weights = model.weights  # RuntimeError for a model not built yet
    dtype = _TORCH_DTYPES[model.dtype]
    n_dense = len(weights)
    modules, left_off, i_dense = [], None, 0
    for layer in model.layers:
        if isinstance(layer, Dropout):
            modules.append(nn.Dropout(p=layer.rate))
            continue
        W, b = weights[i_dense]
        modules.append(_linear(W, b, dtype))
        i_dense += 1
        activation = layer.activation
        if i_dense == n_dense and activation.name in LOSS_OUTPUT_ACTIVATIONS \
                and not include_output_activation:
            left_off = activation.name
            continue
        act = _activation_module(activation, dtype)
        if act is not None:
            modules.append(act)
    module = nn.Sequential(*modules)
    module.output_activation = left_off
    module.classes_ = None if model.classes_ is None else np.array(model.classes_)
    return module.eval()


# ---------------------------------------------------------------------- from_torch

_ACTIVATION_TYPES = (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.Softplus, nn.Softmax, Exp)
_SUPPORTED = ("nn.Linear, nn.Dropout, nn.Identity, nested nn.Sequential and the activations "
              "nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.Softplus, nn.Softmax(dim=1) and "
              "fastnn.torch.Exp")


def _is(module, cls):
    """Whether module is a cls that computes what cls computes (a subclass that
    overrides forward may compute anything)."""
    return isinstance(module, cls) and type(module).forward is cls.forward


def _flatten(module, prefix=""):
    """[(position, child)] of a Sequential, nested Sequentials flattened; the
    position is the child's dotted name, as named_modules() gives it."""
    out = []
    # _modules, not named_children(): a module object that appears twice (one
    # activation reused, a tied Linear) runs twice in forward, and counts twice
    for name, child in module._modules.items():
        if child is None:
            continue
        path = prefix + name
        if _is(child, nn.Sequential):
            out.extend(_flatten(child, path + "."))
        else:
            out.append((path, child))
    return out


def _refuse_hooks(module):
    """Raise ValueError when a forward hook (a registered hook, spectral_norm,
    weight_norm's parametrization of old) may change what the module or one
    of its layers computes: the layers' own forward is all from_torch reads."""
    for path, sub in module.named_modules():
        if sub._forward_hooks or sub._forward_pre_hooks:
            raise ValueError("%s has forward hooks, which change what it computes and which "
                             "fastnn cannot carry over; remove them first (the hook handle's "
                             "remove(), torch.nn.utils.remove_spectral_norm, "
                             "torch.nn.utils.prune.remove)"
                             % (_describe(path, sub) if path else "the Sequential itself"))
    hooks = getattr(nn.modules.module, "_global_forward_hooks", None)
    pre = getattr(nn.modules.module, "_global_forward_pre_hooks", None)
    if hooks or pre:
        raise ValueError("torch has global forward hooks registered, which change what every "
                         "module computes; remove them first")


def _describe(path, module):
    return "%s at position %s (%r)" % (type(module).__name__, path, module)


def _stack_dtype(linears):
    """The one float dtype of every Linear parameter."""
    dtypes = {p.dtype for _, lin in linears for p in lin.parameters()}
    if len(dtypes) > 1:
        raise TypeError("the Linear layers mix dtypes %s; convert the module with .float() or "
                        ".double() first" % ", ".join(sorted(str(d) for d in dtypes)))
    dtype = dtypes.pop()
    if dtype not in _NUMPY_DTYPES:
        raise TypeError("the Linear layers are %s; fastnn takes torch.float32 or torch.float64 "
                        "(convert with .float() or .double())" % dtype)
    return dtype


def _fastnn_activation(path, module, dtype):
    """The fastnn activation an activation module computes, its settings checked."""
    if _is(module, nn.LeakyReLU):
        if module.negative_slope < 0:
            raise ValueError("%s: fastnn's leaky_relu needs negative_slope >= 0"
                             % _describe(path, module))
        return LeakyReLU(float(module.negative_slope))
    if _is(module, nn.Softplus):
        low = _SOFTPLUS_MIN_THRESHOLD[dtype]
        if module.beta != 1 or not module.threshold >= low:  # NaN too
            raise ValueError("%s: fastnn's softplus is nn.Softplus(beta=1) with threshold >= %g "
                             "for %s, where its linearization is exact to rounding; set "
                             "beta=1 and threshold=%g" % (_describe(path, module), low,
                                                          dtype, _SOFTPLUS_THRESHOLD[dtype]))
        return get_activation("softplus")
    if _is(module, nn.Softmax):
        if module.dim not in (1, -1):
            raise ValueError("%s: fastnn's softmax is over the features, nn.Softmax(dim=1)"
                             % _describe(path, module))
        return get_activation("softmax")
    names = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu", Exp: "exp"}
    return get_activation(next(n for cls, n in names.items() if _is(module, cls)))


def _not_convertible(path, child):
    return TypeError("from_torch cannot convert %s; it converts %s"
                     % (_describe(path, child), _SUPPORTED))


def _parse(children, dtype):
    """[{"path", "linear", "activation", "act", "dropout"}] per Linear (act: the
    activation's (position, module)): the
    stack read as Linear, optional activation, optional Dropout, repeated."""
    layers = []
    for path, child in children:
        last = layers[-1] if layers else None
        if _is(child, nn.Identity):
            continue
        if _is(child, nn.Linear):
            if nn.parameter.is_lazy(child.weight):
                raise ValueError("%s has no weights yet: run a forward pass first"
                                 % _describe(path, child))
            if last is not None and last["linear"].out_features != child.in_features:
                raise ValueError("%s takes %d features but the Linear at position %s gives %d"
                                 % (_describe(path, child), child.in_features, last["path"],
                                    last["linear"].out_features))
            layers.append({"path": path, "linear": child, "activation": None, "act": None,
                           "dropout": None})
        elif any(_is(child, cls) for cls in _ACTIVATION_TYPES):
            if last is None:
                raise ValueError("%s comes before the first Linear; fastnn applies an "
                                 "activation to a layer's output" % _describe(path, child))
            if last["activation"] is not None:
                raise ValueError("%s follows %s; fastnn applies one activation per Linear"
                                 % (_describe(path, child), _describe(*last["act"])))
            if last["dropout"] is not None:
                raise ValueError("%s follows a Dropout; fastnn applies dropout after the "
                                 "activation, so put the Dropout after it"
                                 % _describe(path, child))
            last["activation"] = _fastnn_activation(path, child, dtype)
            last["act"] = (path, child)
        elif _is(child, nn.Dropout):
            if last is None:
                raise ValueError("%s comes before the first Linear; fastnn does not drop "
                                 "inputs" % _describe(path, child))
            if last["dropout"] is not None:
                raise ValueError("%s follows another Dropout; use one with the combined rate"
                                 % _describe(path, child))
            if not 0 <= child.p < 1:
                raise ValueError("%s: fastnn's dropout rate is in [0, 1)" % _describe(path, child))
            last["dropout"] = float(child.p)
        else:
            raise _not_convertible(path, child)
    if not layers:
        raise ValueError("the module has no nn.Linear layer")
    if layers[-1]["dropout"] is not None:
        raise ValueError("the module ends with a Dropout; fastnn does not drop predictions")
    return layers


def _output_activation(module, layers, output_activation):
    """The output layer's activation: the module's own last activation, or the
    one the module leaves to the loss (the argument, or the name to_torch
    recorded), or identity."""
    recorded = getattr(module, "output_activation", None)
    if recorded is not None:
        recorded = get_activation(recorded)
    given = None if output_activation is None else get_activation(output_activation)
    if given is not None and recorded is not None and given != recorded:
        raise ValueError("output_activation=%r, but the module records output_activation=%r; "
                         "give the recorded one or None" % (output_activation, recorded.name))
    declared = given if given is not None else recorded
    own = layers[-1]["activation"]
    if own is None:
        return declared if declared is not None else get_activation("identity")
    if declared is not None and declared != own:
        raise ValueError("the module ends with %s, but output_activation is %r; a layer has "
                         "one activation" % (_describe(*layers[-1]["act"]), declared.name))
    return own


def from_torch(module, input_dim=None, output_activation=None, seed=None):
    """A fastnn.Sequential computing what a stack of PyTorch modules computes.

    The module is read as repetitions of ``nn.Linear``, an optional
    activation (``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``, ``nn.LeakyReLU``,
    ``nn.Softplus(beta=1)``, ``nn.Softmax(dim=1)``, :class:`Exp`) and an
    optional ``nn.Dropout``; ``nn.Identity`` is skipped and nested
    ``nn.Sequential`` containers are flattened. Each Linear becomes a Dense
    layer with W = weight.T and b = bias, copied bit for bit; a Linear without
    bias gets a zero bias, which computes the same and is trained by fastnn.

    Parameters
    ----------
    module : torch.nn.Sequential
        float32 or float64 parameters, all of one dtype, on any device.
    input_dim : int, default=None
        Number of input features; taken from the first Linear's in_features,
        which an explicit value must equal.
    output_activation : str, default=None
        The output activation the module leaves to the loss, when it ends
        with a Linear: "softmax" or "sigmoid" for a classifier trained with
        fastnn's cross_entropy or binary_cross_entropy, "exp" for poisson.
        None takes the name to_torch recorded on the module
        (``module.output_activation``); a module that records none gives an
        identity output (a regression model, trained with mse). A value that
        differs from the recorded one, or from the activation the module ends
        with, raises ValueError.
    seed : int, default=None
        The fastnn model's seed (shuffling and dropout in later fits).

    Returns
    -------
    fastnn.Sequential
        Built, untrained (a fit starts a new optimizer), with each Dense
        layer's default initializer recorded.

    Raises
    ------
    TypeError
        For a module that is not a Sequential, a child module that cannot be
        converted (named with its position), or parameters that are not all
        float32 or all float64.
    ValueError
        For a stack fastnn cannot represent exactly: an activation or Dropout
        before the first Linear, two activations or two Dropouts in a row, a
        Dropout before an activation or at the end, Linear sizes that do not
        chain, unsupported settings (Softmax over another dim, Softplus with
        beta != 1 or a low threshold, a negative LeakyReLU slope), or an
        output_activation or input_dim that contradicts the module.
    """
    if not _is(module, nn.Sequential):
        raise TypeError("from_torch takes a torch.nn.Sequential, got %s; wrap a single layer "
                        "as nn.Sequential(layer)" % type(module).__name__)
    _refuse_hooks(module)
    children = _flatten(module)
    linears = [(path, child) for path, child in children if _is(child, nn.Linear)]
    if not linears:
        # a module it cannot convert (a subclass of Linear that overrides forward,
        # a convolution) is named, not taken for a stack without a Linear
        for path, child in children:
            if not any(_is(child, cls) for cls in
                       (nn.Identity, nn.Dropout) + tuple(_ACTIVATION_TYPES)):
                raise _not_convertible(path, child)
        raise ValueError("the module has no nn.Linear layer")
    dtype = _stack_dtype(linears)
    layers = _parse(children, dtype)
    n_in = layers[0]["linear"].in_features
    if input_dim is not None and check_int(input_dim, "input_dim", low=1) != n_in:
        raise ValueError("input_dim=%d, but the first Linear takes %d features"
                         % (input_dim, n_in))
    layers[-1]["activation"] = _output_activation(module, layers, output_activation)
    np_dtype = _NUMPY_DTYPES[dtype]
    stack, weights = [], []
    for layer in layers:
        linear = layer["linear"]
        activation = layer["activation"] or get_activation("identity")
        stack.append(Dense(linear.out_features, activation=activation))
        if layer["dropout"] is not None:
            stack.append(Dropout(layer["dropout"]))
        W = linear.weight.detach().cpu().numpy().T
        b = np.zeros(linear.out_features, np_dtype) if linear.bias is None \
            else linear.bias.detach().cpu().numpy()
        weights.append((W, b))
    model = Sequential(stack, dtype=np_dtype, seed=seed)
    return model.build(n_in, weights=weights)
