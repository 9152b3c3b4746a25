"""Bad input at the boundary of fastnn.ops: every case raises a TypeError (wrong
type or dtype) or a ValueError (wrong shape or value) whose message names the
problem, and leaves the arrays a call updates in place exactly as they were.
Unusual but valid input (any memory layout, read-only, memory-mapped, integer)
works and gives the same result as plain C-ordered input."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

import fastnn
from fastnn import ops

M, N_IN, N_OUT = 5, 3, 4
NAN, INF = float("nan"), float("inf")


def _other(dtype):
    return np.float32 if np.dtype(dtype) == np.float64 else np.float64


def _put(a, index, value):
    a = np.array(a)
    a[index] = value
    return a


def _readonly(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


@pytest.fixture
def d(dtype, rng):
    X = rng.standard_normal((M, N_IN)).astype(dtype)
    Z = rng.standard_normal((M, N_OUT)).astype(dtype)
    return SimpleNamespace(
        dtype=dtype, other=_other(dtype), X=X, Z=Z,
        W=rng.standard_normal((N_IN, N_OUT)).astype(dtype),
        b=rng.standard_normal(N_OUT).astype(dtype),
        A=(1 / (1 + np.exp(-Z))).astype(dtype),
        dA=rng.standard_normal((M, N_OUT)).astype(dtype),
        y=np.arange(M) % N_OUT,
        Y=(rng.random((M, N_OUT)) < 0.5).astype(dtype),
        mean=X.mean(axis=0), std=X.std(axis=0) + dtype(0.5),
    )


def _case(id, call, exc, pattern):
    return pytest.param(call, exc, pattern, id=id)


E = np.empty
CASES = [
    # number of dimensions
    _case("dense_forward-1d-X", lambda d: ops.dense_forward(d.X[0], d.W, d.b, "relu"),
          ValueError, r"\bX\b.*\(3,\)"),
    _case("activation_forward-3d-Z", lambda d: ops.activation_forward(d.Z[None], "relu"),
          ValueError, r"\bZ\b.*\(1, 5, 4\)"),
    _case("standardize_fit-1d-X", lambda d: ops.standardize_fit(d.X[:, 0]),
          ValueError, r"\bX\b.*\(5,\)"),
    # mismatched shapes
    _case("dense_forward-X-vs-W", lambda d: ops.dense_forward(d.X, d.W[:2], d.b, "relu"),
          ValueError, r"X has 3 features.*W has shape \(2, 4\)"),
    _case("dense_backward-X-vs-W",
          lambda d: ops.dense_backward(d.X, d.W[:2], d.A, d.dA, "sigmoid"),
          ValueError, r"X has 3 features.*W has shape \(2, 4\)"),
    _case("linear_backward-X-vs-W", lambda d: ops.linear_backward(d.X, d.W[:2], d.dA),
          ValueError, r"X has 3 features.*W has shape \(2, 4\)"),
    _case("dense_forward-b-length",
          lambda d: ops.dense_forward(d.X, d.W, np.append(d.b, d.b[0]), "relu"),
          ValueError, r"\bb must have shape \(4,\), got \(5,\)"),
    _case("bias_activation-b-length", lambda d: ops.bias_activation(d.Z, d.b[:3], "tanh"),
          ValueError, r"\bb must have shape \(4,\), got \(3,\)"),
    _case("activation_backward-dA-shape",
          lambda d: ops.activation_backward(d.A, d.dA[:, :3], "sigmoid"),
          ValueError, r"\bdA must have shape \(5, 4\), got \(5, 3\)"),
    _case("dense_backward-dA-shape",
          lambda d: ops.dense_backward(d.X, d.W, d.A, d.dA[:4], "sigmoid"),
          ValueError, r"\bdA must have shape \(5, 4\), got \(4, 4\)"),
    _case("dense_backward-A-shape",
          lambda d: ops.dense_backward(d.X, d.W, d.A[:4], d.dA[:4], "sigmoid"),
          ValueError, r"\bA must have shape \(5, 4\), got \(4, 4\)"),
    _case("linear_backward-dZ-shape", lambda d: ops.linear_backward(d.X, d.W, d.dA[:, :2]),
          ValueError, r"\bdZ must have shape \(5, 4\), got \(5, 2\)"),
    _case("softmax_xent-y-length", lambda d: ops.softmax_cross_entropy(d.Z, d.y[:4]),
          ValueError, r"\by must have shape \(5,\).*\(4,\)"),
    _case("softmax_xent-Y-shape", lambda d: ops.softmax_cross_entropy(d.Z, d.Y[:, :3]),
          ValueError, r"\by must have shape \(5, 4\), got \(5, 3\)"),
    _case("sigmoid_bce-y-length",
          lambda d: ops.sigmoid_binary_cross_entropy(d.Z[:, :1], d.Y[:4, 0]),
          ValueError, r"\by must have shape \(5, 1\), got \(4,\)"),
    _case("mse-Y-shape", lambda d: ops.mse(d.A, d.Y[:, :3]),
          ValueError, r"\bY must have shape \(5, 4\), got \(5, 3\)"),
    _case("standardize_transform-mean-length",
          lambda d: ops.standardize_transform(d.X, np.append(d.mean, d.mean[:1]), d.std),
          ValueError, r"\bmean\b.*\b4\b"),
    _case("standardize_transform-std-length",
          lambda d: ops.standardize_transform(d.X, d.mean, np.append(d.std, d.std[:1])),
          ValueError, r"\bstd\b.*\b4\b"),
    # NaN and infinity
    _case("dense_forward-X-nan", lambda d: ops.dense_forward(_put(d.X, (1, 2), NAN), d.W,
                                                             d.b, "relu"),
          ValueError, r"\bX contains NaN"),
    _case("dense_forward-X-inf", lambda d: ops.dense_forward(_put(d.X, (0, 0), -INF), d.W,
                                                             d.b, "relu"),
          ValueError, r"\bX contains NaN or infinity"),
    _case("standardize_fit-X-nan", lambda d: ops.standardize_fit(_put(d.X, (4, 1), NAN)),
          ValueError, r"\bX contains NaN"),
    _case("standardize_fit-X-inf", lambda d: ops.standardize_fit(_put(d.X, (4, 1), INF)),
          ValueError, r"\bX contains NaN or infinity"),
    _case("standardize_transform-X-nan",
          lambda d: ops.standardize_transform(_put(d.X, (2, 2), NAN), d.mean, d.std),
          ValueError, r"\bX contains NaN"),
    _case("standardize_transform-X-inf",
          lambda d: ops.standardize_transform(_put(d.X, (2, 2), INF), d.mean, d.std),
          ValueError, r"\bX contains NaN or infinity"),
    _case("softmax_xent-y-labels-nan",
          lambda d: ops.softmax_cross_entropy(d.Z, _put(d.y.astype(float), 3, NAN)),
          ValueError, r"\by contains NaN"),
    _case("softmax_xent-Y-inf", lambda d: ops.softmax_cross_entropy(d.Z, _put(d.Y, 0, INF)),
          ValueError, r"\by contains NaN or infinity"),
    _case("sigmoid_bce-y-nan",
          lambda d: ops.sigmoid_binary_cross_entropy(d.Z, _put(d.Y, (1, 1), NAN)),
          ValueError, r"\by contains NaN"),
    _case("mse-Y-nan", lambda d: ops.mse(d.A, _put(d.Y, (2, 3), NAN)),
          ValueError, r"\bY contains NaN"),
    _case("mse-Y-inf", lambda d: ops.mse(d.A, _put(d.Y, (2, 3), INF)),
          ValueError, r"\bY contains NaN or infinity"),
    # empty arrays
    _case("dense_forward-empty-X",
          lambda d: ops.dense_forward(E((0, 3), d.dtype), d.W, d.b, "relu"),
          ValueError, r"\bX is empty.*\(0, 3\)"),
    _case("standardize_fit-empty-X", lambda d: ops.standardize_fit(E((0, 3), d.dtype)),
          ValueError, r"\bX is empty.*\(0, 3\)"),
    _case("softmax_xent-empty",
          lambda d: ops.softmax_cross_entropy(E((0, 3), d.dtype), np.zeros(0, int)),
          ValueError, r"\bZ is empty.*\(0, 3\)"),
    _case("sigmoid_bce-empty",
          lambda d: ops.sigmoid_binary_cross_entropy(E((0, 3), d.dtype), E((0, 3), d.dtype)),
          ValueError, r"\bZ is empty.*\(0, 3\)"),
    _case("mse-empty", lambda d: ops.mse(E((0, 3), d.dtype), E((0, 3), d.dtype)),
          ValueError, r"\bA is empty.*\(0, 3\)"),
    # activation names
    _case("dense_forward-unknown-activation",
          lambda d: ops.dense_forward(d.X, d.W, d.b, "relux"),
          ValueError, r"relux.*\brelu\b.*\bsigmoid\b|relux.*\bsigmoid\b.*\brelu\b"),
    _case("activation_forward-unknown-activation",
          lambda d: ops.activation_forward(d.Z, "ReLU"), ValueError, r"ReLU.*\brelu\b"),
    _case("activation_backward-unknown-activation",
          lambda d: ops.activation_backward(d.A, d.dA, "gelu"), ValueError, r"gelu.*\brelu\b"),
    _case("dense_backward-unknown-activation",
          lambda d: ops.dense_backward(d.X, d.W, d.A, d.dA, ""), ValueError, r"\brelu\b"),
    _case("activation_forward-activation-int", lambda d: ops.activation_forward(d.Z, 3),
          TypeError, r"activation"),
    _case("dense_forward-activation-None", lambda d: ops.dense_forward(d.X, d.W, d.b, None),
          TypeError, r"activation"),
    # bad scalars
    _case("leaky_alpha-negative",
          lambda d: ops.activation_forward(d.Z, "leaky_relu", alpha=-0.1),
          ValueError, r"\balpha\b.*-0\.1"),
    _case("leaky_alpha-nan", lambda d: ops.dense_forward(d.X, d.W, d.b, "leaky_relu", NAN),
          ValueError, r"\balpha\b.*nan"),
    _case("leaky_alpha-bool", lambda d: ops.activation_forward(d.Z, "leaky_relu", alpha=True),
          TypeError, r"\balpha\b"),
    _case("leaky_alpha-str",
          lambda d: ops.activation_backward(d.A, d.dA, "leaky_relu", alpha="0.1"),
          TypeError, r"\balpha\b"),
    _case("dense_backward-l2-negative",
          lambda d: ops.dense_backward(d.X, d.W, d.A, d.dA, "sigmoid", l2=-0.01),
          ValueError, r"\bl2\b.*>= 0"),
    _case("linear_backward-l2-nan", lambda d: ops.linear_backward(d.X, d.W, d.dA, l2=NAN),
          ValueError, r"\bl2\b.*finite"),
    _case("l2_penalty-l2-negative", lambda d: ops.l2_penalty([d.W], -1.0, M),
          ValueError, r"\bl2\b.*>= 0"),
    _case("l2_penalty-l2-bool", lambda d: ops.l2_penalty([d.W], True, M),
          TypeError, r"\bl2\b"),
    _case("dropout-rate-negative", lambda d: ops.dropout_forward(d.A, -0.1, 0, 0, 0),
          ValueError, r"\brate\b.*-0\.1"),
    _case("dropout-rate-one", lambda d: ops.dropout_forward(d.A, 1.0, 0, 0, 0),
          ValueError, r"\brate\b.*< 1"),
    _case("dropout-rate-nan", lambda d: ops.dropout_backward(d.dA, NAN, 0, 0, 0),
          ValueError, r"\brate\b.*finite"),
    _case("dropout_mask-rate-one", lambda d: ops.dropout_mask((3, 4), 1.0, 0, 0, 0),
          ValueError, r"\brate\b"),
    _case("dropout-rate-bool", lambda d: ops.dropout_forward(d.A, True, 0, 0, 0),
          TypeError, r"\brate\b"),
    _case("clip_grad_norm-max_norm-zero", lambda d: ops.clip_grad_norm([d.W.copy()], 0.0),
          ValueError, r"\bmax_norm\b.*> 0"),
    _case("clip_grad_norm-max_norm-negative",
          lambda d: ops.clip_grad_norm([d.W.copy()], -1.0), ValueError, r"\bmax_norm\b"),
    _case("clip_grad_norm-max_norm-nan", lambda d: ops.clip_grad_norm([d.W.copy()], NAN),
          ValueError, r"\bmax_norm\b.*finite"),
    _case("clip_grad_norm-max_norm-bool", lambda d: ops.clip_grad_norm([d.W.copy()], True),
          TypeError, r"\bmax_norm\b"),
    _case("clip_grad_value-negative", lambda d: ops.clip_grad_value([d.W.copy()], -0.5),
          ValueError, r"\bclip_value\b.*>= 0"),
    # class labels and targets
    _case("softmax_xent-label-negative",
          lambda d: ops.softmax_cross_entropy(d.Z, _put(d.y, 2, -1)),
          ValueError, r"\[0, 4\).*-1"),
    _case("softmax_xent-label-k",
          lambda d: ops.softmax_cross_entropy(d.Z, _put(d.y, 2, N_OUT)),
          ValueError, r"\[0, 4\).*\b4\b"),
    _case("softmax_xent-label-fractional",
          lambda d: ops.softmax_cross_entropy(d.Z, _put(d.y.astype(float), 0, 1.5)),
          ValueError, r"\by\b.*whole numbers"),
    _case("softmax_xent-label-bool",
          lambda d: ops.softmax_cross_entropy(d.Z, d.y > 1), TypeError, r"\by\b.*bool"),
    _case("softmax_xent-targets-above-1",
          lambda d: ops.softmax_cross_entropy(d.Z, _put(d.Y, (0, 0), 1.5)),
          ValueError, r"\by must lie in \[0, 1\]"),
    _case("sigmoid_bce-target-negative",
          lambda d: ops.sigmoid_binary_cross_entropy(d.Z, _put(d.Y, (0, 0), -0.5)),
          ValueError, r"\by must lie in \[0, 1\]"),
    _case("sigmoid_bce-target-above-1",
          lambda d: ops.sigmoid_binary_cross_entropy(d.Z[:, :1], _put(d.Y[:, 0], 4, 2.0)),
          ValueError, r"\by must lie in \[0, 1\]"),
    # mixed float32 / float64 operands
    _case("dense_forward-mixed-X-W", lambda d: ops.dense_forward(d.X.astype(d.other), d.W,
                                                                 d.b, "relu"),
          TypeError, None),
    _case("dense_forward-mixed-b", lambda d: ops.dense_forward(d.X, d.W, d.b.astype(d.other),
                                                               "relu"),
          TypeError, None),
    _case("dense_backward-mixed-dA",
          lambda d: ops.dense_backward(d.X, d.W, d.A, d.dA.astype(d.other), "sigmoid"),
          TypeError, None),
    _case("activation_backward-mixed",
          lambda d: ops.activation_backward(d.A, d.dA.astype(d.other), "tanh"),
          TypeError, None),
    _case("standardize_transform-mixed",
          lambda d: ops.standardize_transform(d.X.astype(d.other), d.mean, d.std),
          TypeError, None),
    _case("sgd_step-mixed-grad",
          lambda d: ops.sgd_step(d.W.copy(), d.W.astype(d.other), 0.1),
          TypeError, None),
]


@pytest.mark.parametrize("call, exc, pattern", CASES)
def test_bad_input_raises_a_named_error(call, exc, pattern, d):
    with pytest.raises(exc, match=pattern) as info:
        call(d)
    if pattern is None:  # mixed precision: the message names both dtypes
        msg = str(info.value)
        assert "float32" in msg and "float64" in msg, msg


# --------------------------------------------------------------------------
# refused dtypes
# --------------------------------------------------------------------------

BAD_DTYPES = {
    "object": (lambda X: X.astype(object), r"\bobject\b"),
    "str": (lambda X: X.astype(str), r"<U\d+"),
    "complex": (lambda X: X.astype(np.complex128), r"complex128"),
    "bool": (lambda X: X > 0, r"\bbool\b"),
    "float16": (lambda X: X.astype(np.float16), r"float16"),
}

X_CALLS = {
    "dense_forward": lambda d, X: ops.dense_forward(X, d.W, d.b, "relu"),
    "standardize_fit": lambda d, X: ops.standardize_fit(X),
    "standardize_transform": lambda d, X: ops.standardize_transform(X, d.mean, d.std),
    "activation_forward": lambda d, X: ops.activation_forward(X, "relu"),
}


@pytest.mark.parametrize("kind", list(BAD_DTYPES))
@pytest.mark.parametrize("func", list(X_CALLS))
def test_refused_dtype_is_named(func, kind, d):
    make, pattern = BAD_DTYPES[kind]
    name = "Z" if func == "activation_forward" else "X"
    with pytest.raises(TypeError, match=r"\b%s\b.*%s" % (name, pattern)):
        X_CALLS[func](d, make(d.X))


# --------------------------------------------------------------------------
# out= buffers
# --------------------------------------------------------------------------

OUT_CALLS = {
    "dense_forward": ("out", (M, N_OUT), lambda d, o: ops.dense_forward(d.X, d.W, d.b, "relu",
                                                                         out=o)),
    "activation_forward": ("out", (M, N_OUT),
                           lambda d, o: ops.activation_forward(d.Z, "tanh", out=o)),
    "activation_backward": ("out", (M, N_OUT),
                            lambda d, o: ops.activation_backward(d.A, d.dA, "sigmoid", out=o)),
    "dense_backward-dW": ("out_dW", (N_IN, N_OUT),
                          lambda d, o: ops.dense_backward(d.X, d.W, d.A, d.dA, "sigmoid",
                                                          out_dW=o)),
    "linear_backward-dX": ("out_dX", (M, N_IN),
                           lambda d, o: ops.linear_backward(d.X, d.W, d.dA, out_dX=o)),
    "bias_grad": ("out", (N_OUT,), lambda d, o: ops.bias_grad(d.dA, out=o)),
    "softmax_xent": ("out", (M, N_OUT), lambda d, o: ops.softmax_cross_entropy(d.Z, d.y, out=o)),
    "mse": ("out", (M, N_OUT), lambda d, o: ops.mse(d.A, d.Y, out=o)),
    "dropout_forward": ("out", (M, N_OUT),
                        lambda d, o: ops.dropout_forward(d.A, 0.5, 1, 2, 3, out=o)),
    "standardize_transform": ("out", (M, N_IN),
                              lambda d, o: ops.standardize_transform(d.X, d.mean, d.std, out=o)),
}


def _bad_out(kind, shape, dtype):
    if kind == "shape":
        return np.empty((shape[0] + 1,) + shape[1:], dtype), ValueError, r"shape.*%s" % (
            re.escape(str(shape)))
    if kind == "dtype":
        return (np.empty(shape, _other(dtype)), TypeError,
                r"(?=.*float32)(?=.*float64).*dtype")
    if kind == "non_contiguous":
        return np.empty(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2], ValueError, "contiguous"
    if kind == "read_only":
        return _readonly(np.empty(shape, dtype)), ValueError, "read-only"
    if kind == "list":
        return np.zeros(shape, dtype).tolist(), TypeError, "ndarray"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["shape", "dtype", "non_contiguous", "read_only", "list"])
@pytest.mark.parametrize("func", list(OUT_CALLS))
def test_bad_out_buffer(func, kind, d):
    name, shape, call = OUT_CALLS[func]
    out, exc, pattern = _bad_out(kind, shape, d.dtype)
    with pytest.raises(exc, match=r"\b%s\b.*%s" % (name, pattern)):
        call(d, out)


def test_out_overlapping_input_is_refused(d):
    X = d.Z.copy()
    W = np.eye(N_OUT, dtype=d.dtype)
    with pytest.raises(ValueError, match=r"\bout\b.*overlap"):
        ops.dense_forward(X, W, d.b, "relu", out=X)


# --------------------------------------------------------------------------
# arrays updated in place
# --------------------------------------------------------------------------

INPLACE_CASES = [
    ("sgd-param-read-only", lambda d, p: ops.sgd_step(_readonly(p), p, 0.1),
     ValueError, r"\bparam\b.*read-only"),
    ("sgd-param-list", lambda d, p: ops.sgd_step(p.tolist(), p, 0.1),
     TypeError, r"\bparam\b.*ndarray.*list"),
    ("sgd-param-int", lambda d, p: ops.sgd_step(np.ones(p.shape, np.int64), p, 0.1),
     TypeError, r"\bparam\b.*int64"),
    ("adam-param-int32",
     lambda d, p: ops.adam_step(np.ones(p.shape, np.int32), p, p.copy(), p.copy(), 1, 0.1),
     TypeError, r"\bparam\b.*int32"),
    ("momentum-velocity-read-only",
     lambda d, p: ops.momentum_step(p.copy(), p, _readonly(p), 0.1),
     ValueError, r"\bvelocity\b.*read-only"),
    ("momentum-velocity-list",
     lambda d, p: ops.momentum_step(p.copy(), p, np.zeros_like(p).tolist(), 0.1),
     TypeError, r"\bvelocity\b.*ndarray"),
    ("classical-velocity-read-only",
     lambda d, p: ops.classical_momentum_step(p.copy(), p, _readonly(p), 0.1),
     ValueError, r"\bvelocity\b.*read-only"),
    ("rmsprop-sq-list", lambda d, p: ops.rmsprop_step(p.copy(), p, p.tolist(), 0.1),
     TypeError, r"\bsq\b.*ndarray"),
    ("adam-v-read-only", lambda d, p: ops.adam_step(p.copy(), p, p.copy(), _readonly(p), 1,
                                                    0.1),
     ValueError, r"\bv\b.*read-only"),
    ("clip_grad_norm-read-only", lambda d, p: ops.clip_grad_norm([_readonly(p)], 0.1),
     ValueError, r"grads\[0\].*read-only"),
    ("clip_grad_norm-list", lambda d, p: ops.clip_grad_norm([p.tolist()], 0.1),
     TypeError, r"grads\[0\].*ndarray"),
    ("clip_grad_value-read-only", lambda d, p: ops.clip_grad_value([_readonly(p)], 0.1),
     ValueError, r"grads\[0\].*read-only"),
]


@pytest.mark.parametrize("call, exc, pattern",
                         [pytest.param(*c[1:], id=c[0]) for c in INPLACE_CASES])
def test_bad_inplace_argument(call, exc, pattern, d):
    with pytest.raises(exc, match=pattern):
        call(d, d.W.copy() * 10)


# --------------------------------------------------------------------------
# thread counts
# --------------------------------------------------------------------------

THREAD_CALLS = {
    "dense_forward": lambda d, nt: ops.dense_forward(d.X, d.W, d.b, "relu", n_threads=nt),
    "dense_backward": lambda d, nt: ops.dense_backward(d.X, d.W, d.A, d.dA, "sigmoid",
                                                       n_threads=nt),
    "softmax_xent": lambda d, nt: ops.softmax_cross_entropy(d.Z, d.y, n_threads=nt),
    "sgd_step": lambda d, nt: ops.sgd_step(d.W.copy(), d.W, 0.1, n_threads=nt),
    "standardize_fit": lambda d, nt: ops.standardize_fit(d.X, n_threads=nt),
    "global_norm": lambda d, nt: ops.global_norm([d.W], n_threads=nt),
}


@pytest.mark.parametrize("n_threads, exc", [(0, ValueError), ("2", TypeError),
                                             (2.0, TypeError), (True, TypeError)],
                         ids=["zero", "str", "float", "bool"])
@pytest.mark.parametrize("func", list(THREAD_CALLS))
def test_bad_n_threads(func, n_threads, exc, d):
    with pytest.raises(exc, match=r"\bn_threads\b"):
        THREAD_CALLS[func](d, n_threads)


@pytest.mark.parametrize("n, exc", [(0, ValueError), (-1, ValueError), ("2", TypeError),
                                    (2.0, TypeError)], ids=["zero", "negative", "str", "float"])
def test_set_num_threads_refuses(n, exc):
    before = fastnn.get_num_threads()
    with pytest.raises(exc, match=r"threads.*%s" % re.escape(repr(n))):
        fastnn.set_num_threads(n)
    assert fastnn.get_num_threads() == before


# --------------------------------------------------------------------------
# a failed call loses nothing
# --------------------------------------------------------------------------

OPTIMIZERS = {  # name: (call with keyword overrides, state names)
    "sgd": (lambda p, g, s, **kw: ops.sgd_step(p, g, **{"lr": 0.1, **kw}), []),
    "momentum": (lambda p, g, s, **kw: ops.momentum_step(p, g, s[0], **{"lr": 0.1, **kw}),
                 ["velocity"]),
    "classical": (lambda p, g, s, **kw: ops.classical_momentum_step(
        p, g, s[0], **{"lr": 0.1, "nesterov": True, **kw}), ["velocity"]),
    "rmsprop": (lambda p, g, s, **kw: ops.rmsprop_step(p, g, s[0], **{"lr": 0.1, **kw}),
                ["sq"]),
    "adam": (lambda p, g, s, **kw: ops.adam_step(p, g, s[0], s[1],
                                                 **{"t": 3, "lr": 0.1, **kw}), ["m", "v"]),
}

BAD_HYPER = [
    ("sgd", {"lr": -0.1}, ValueError, r"\blr\b.*>= 0"),
    ("sgd", {"lr": NAN}, ValueError, r"\blr\b.*finite"),
    ("sgd", {"lr": True}, TypeError, r"\blr\b"),
    ("momentum", {"lr": -1.0}, ValueError, r"\blr\b"),
    ("momentum", {"beta": 1.0}, ValueError, r"\bbeta\b.*< 1"),
    ("momentum", {"beta": -0.1}, ValueError, r"\bbeta\b.*>= 0"),
    ("momentum", {"beta": NAN}, ValueError, r"\bbeta\b"),
    ("classical", {"momentum": -0.1}, ValueError, r"\bmomentum\b"),
    ("classical", {"momentum": 1.5}, ValueError, r"\bmomentum\b"),
    ("classical", {"lr": INF}, ValueError, r"\blr\b"),
    ("rmsprop", {"beta": 1.0}, ValueError, r"\bbeta\b.*< 1"),
    ("rmsprop", {"eps": 0.0}, ValueError, r"\beps\b.*> 0"),
    ("rmsprop", {"eps": -1e-8}, ValueError, r"\beps\b"),
    ("rmsprop", {"beta": False}, TypeError, r"\bbeta\b"),
    ("adam", {"t": 0}, ValueError, r"\bt\b.*>= 1"),
    ("adam", {"t": True}, TypeError, r"\bt\b"),
    ("adam", {"t": 1.5}, TypeError, r"\bt\b"),
    ("adam", {"lr": NAN}, ValueError, r"\blr\b"),
    ("adam", {"beta1": 1.0}, ValueError, r"\bbeta1\b.*< 1"),
    ("adam", {"beta1": -0.5}, ValueError, r"\bbeta1\b"),
    ("adam", {"beta2": 1.0}, ValueError, r"\bbeta2\b.*< 1"),
    ("adam", {"eps": 0.0}, ValueError, r"\beps\b.*> 0"),
    ("adam", {"weight_decay": -0.01}, ValueError, r"\bweight_decay\b.*>= 0"),
]


def _optimizer_arrays(name, dtype, rng, strided):
    n_state = len(OPTIMIZERS[name][1])
    if strided:
        big = rng.standard_normal((6, 8)).astype(dtype)
        p = big[::2, ::2]
    else:
        p = rng.standard_normal((3, 4)).astype(dtype)
    g = rng.standard_normal((3, 4)).astype(dtype)
    state = [np.abs(rng.standard_normal((3, 4))).astype(dtype) for _ in range(n_state)]
    return p, g, state


def _snapshot(arrays):
    return [(a, np.array(a).tobytes()) for a in arrays]


def _assert_unchanged(snapshot):
    for a, before in snapshot:
        assert np.array(a).tobytes() == before


@pytest.mark.parametrize("strided", [False, True], ids=["C", "strided"])
@pytest.mark.parametrize("name, kw, exc, pattern", [
    pytest.param(*c, id="%s-%s=%r" % (c[0], *next(iter(c[1].items())))) for c in BAD_HYPER])
def test_optimizer_bad_hyperparameter_changes_nothing(name, kw, exc, pattern, strided, dtype,
                                                     rng):
    step = OPTIMIZERS[name][0]
    p, g, state = _optimizer_arrays(name, dtype, rng, strided)
    snap = _snapshot([p, g] + state)
    with pytest.raises(exc, match=pattern):
        step(p, g, state, **kw)
    _assert_unchanged(snap)


STATE_CASES = [(name, i, kind) for name, (_, names) in OPTIMIZERS.items()
               for i in range(len(names) + 1) for kind in ["shape", "dtype"]]


@pytest.mark.parametrize("strided", [False, True], ids=["C", "strided"])
@pytest.mark.parametrize("name, which, kind", STATE_CASES,
                         ids=["%s-%s-%s" % (n, (["grad"] + OPTIMIZERS[n][1])[i], k)
                              for n, i, k in STATE_CASES])
def test_optimizer_bad_state_changes_nothing(name, which, kind, strided, dtype, rng):
    """A grad or state array of the wrong shape or dtype: the step raises
    before touching param or any state array, whichever array is the bad one."""
    step, names = OPTIMIZERS[name]
    p, g, state = _optimizer_arrays(name, dtype, rng, strided)
    arrays = [g] + state
    bad = arrays[which]
    if kind == "shape":
        arrays[which] = np.ascontiguousarray(bad.T)
        exc, pattern = ValueError, r"\(3, 4\).*\(4, 3\)"
    else:
        arrays[which] = bad.astype(_other(dtype))
        exc, pattern = TypeError, r"float32.*float64|float64.*float32"
    label = (["grad"] + names)[which]
    snap = _snapshot([p] + arrays)
    with pytest.raises(exc, match=r"\b%s\b.*%s" % (label, pattern)):
        step(p, arrays[0], arrays[1:])
    _assert_unchanged(snap)


BAD_GRADS = {
    "read_only": (lambda g: _readonly(g), ValueError, r"read-only"),
    "int": (lambda g: np.ones(g.shape, np.int64), TypeError, r"int64"),
    "list": (lambda g: g.tolist(), TypeError, r"ndarray"),
    "complex": (lambda g: g.astype(np.complex128), TypeError, r"complex128"),
}

CLIPPERS = {
    "clip_grad_norm": lambda grads: ops.clip_grad_norm(grads, 0.5),
    "clip_grad_value": lambda grads: ops.clip_grad_value(grads, 0.5),
}


@pytest.mark.parametrize("position", [1, 2])
@pytest.mark.parametrize("kind", list(BAD_GRADS))
@pytest.mark.parametrize("clip", list(CLIPPERS))
def test_clipping_with_one_bad_array_scales_nothing(clip, kind, position, dtype, rng):
    grads = [rng.standard_normal((4, 5)).astype(dtype) * 10,
             rng.standard_normal(5).astype(dtype) * 10]
    snap = _snapshot(grads)
    make, exc, pattern = BAD_GRADS[kind]
    grads.insert(position, make(rng.standard_normal(3).astype(dtype) * 10))
    with pytest.raises(exc, match=r"grads\[%d\].*%s" % (position, pattern)):
        CLIPPERS[clip](grads)
    _assert_unchanged(snap)


def test_bias_activation_in_place_unchanged_on_error(d):
    Z = d.Z.copy()
    with pytest.raises(ValueError, match=r"\bb\b"):
        ops.bias_activation(Z, d.b[:2], "relu", out=Z)
    np.testing.assert_array_equal(Z, d.Z)


# --------------------------------------------------------------------------
# what must work
# --------------------------------------------------------------------------

def _layout(a, layout, path):
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        big = np.zeros(tuple(3 * s for s in a.shape), a.dtype)
        view = big[tuple(slice(None, None, 3) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "read_only":
        return _readonly(a)
    if layout == "memmap":
        mm = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
        mm[...] = a
        mm.flush()
        del mm
        return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)
    raise ValueError(layout)


LAYOUTS = ["F", "strided", "read_only", "memmap"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dense_forward_accepts_any_layout(layout, d, tmp_path):
    want = ops.dense_forward(d.X, d.W, d.b, "tanh", n_threads=1)
    X, W, b = (_layout(a, layout, tmp_path / n) for a, n in [(d.X, "X.dat"), (d.W, "W.dat"),
                                                              (d.b, "b.dat")])
    got = ops.dense_forward(X, W, b, "tanh", n_threads=1)
    assert got.dtype == d.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(X, d.X)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_standardize_fit_accepts_any_layout(layout, d, tmp_path):
    want = ops.standardize_fit(d.X, n_threads=1)
    X = _layout(d.X, layout, tmp_path / "X.dat")
    got = ops.standardize_fit(X, n_threads=1)
    for g, w in zip(got, want):
        assert g.dtype == d.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("int_dtype", [np.int8, np.int32, np.int64, np.uint16])
def test_integer_X_is_converted(int_dtype, d, rng):
    Xi = rng.integers(0, 50, size=(M, N_IN)).astype(int_dtype)
    got = ops.dense_forward(Xi, d.W, d.b, "relu", n_threads=1)
    assert got.dtype == d.dtype
    np.testing.assert_array_equal(
        got, ops.dense_forward(Xi.astype(d.dtype), d.W, d.b, "relu", n_threads=1))
    mean, std = ops.standardize_fit(Xi)
    assert mean.dtype == std.dtype == np.float64
    want_mean, want_std = ops.standardize_fit(Xi.astype(np.float64))
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(std, want_std)
