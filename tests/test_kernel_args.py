"""The arguments of every kernel, checked the same way in both implementations.

Generated from one table with an entry per public function of fastnn.ops (a
new kernel cannot be added without one):
- every buffer a call writes is tried against every array it reads and every
  other buffer it writes, partially overlapping and exactly aliased; only the
  in-place forms the table names may alias, nothing may partially overlap, and
  a refused call writes nothing;
- a matrix of bad inputs (wrong dtype, shape, dimensions, NaN, labels out of
  range, bad scalars, unknown options) goes to fastnn.ops and fastnn.reference:
  both must raise the same exception type, and where both accept they must
  agree.
"""

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from fastnn import ops
from fastnn import reference as ref
from tests.tolerances import assert_close

MODULES = [ops, ref]


@dataclass
class Kernel:
    build: Callable  # (rng, dtype) -> keyword arguments of a valid call
    writes: tuple = ()  # the arguments the call writes (buffers or arrays updated in place)
    in_place: tuple = ()  # (written, read) pairs that may be exactly the same array
    labels: tuple = ()  # arguments holding class labels, with the number of classes
    n_classes: int = 0
    list_args: tuple = ()  # arguments that are lists of arrays
    extra: dict = field(default_factory=dict)  # further keyword arguments to try as buffers


def _r(rng, dtype, *shape):
    return rng.standard_normal(shape).astype(dtype)


def _u(rng, dtype, *shape):  # in (0.05, 0.95): a sigmoid/tanh output, a probability
    return rng.uniform(0.05, 0.95, shape).astype(dtype)


def _opt(*states):
    def build(rng, dtype):
        kw = dict(param=_r(rng, dtype, 3, 4), grad=_r(rng, dtype, 3, 4), lr=0.01)
        for s in states:
            kw[s] = np.abs(_r(rng, dtype, 3, 4))
        return kw
    return build


def _adam(rng, dtype):
    kw = _opt("m", "v")(rng, dtype)
    kw["t"] = 3
    return kw


def _one_hot_probabilities(rng, dtype):
    Y = rng.uniform(0.0, 1.0, (5, 4))
    return (Y / Y.sum(axis=1, keepdims=True)).astype(dtype)


KERNELS = {
    "activation_forward": Kernel(lambda r, d: dict(Z=_r(r, d, 5, 4), activation="tanh"),
                                 writes=("out",), in_place=(("out", "Z"),)),
    "bias_activation": Kernel(lambda r, d: dict(Z=_r(r, d, 5, 4), b=_r(r, d, 4),
                                                activation="sigmoid"),
                              writes=("out",), in_place=(("out", "Z"),)),
    "activation_backward": Kernel(lambda r, d: dict(A=_u(r, d, 5, 4), dA=_r(r, d, 5, 4),
                                                    activation="tanh"),
                                  writes=("out",), in_place=(("out", "dA"),)),
    "dense_forward": Kernel(lambda r, d: dict(X=_r(r, d, 5, 3), W=_r(r, d, 3, 4), b=_r(r, d, 4),
                                              activation="tanh"), writes=("out",)),
    "dense_backward": Kernel(lambda r, d: dict(X=_r(r, d, 5, 3), W=_r(r, d, 3, 4),
                                               A=_u(r, d, 5, 4), dA=_r(r, d, 5, 4),
                                               activation="sigmoid", l2=0.1),
                             writes=("out_dX", "out_dW", "out_db", "out_dZ"),
                             in_place=(("out_dZ", "dA"),)),
    "linear_backward": Kernel(lambda r, d: dict(X=_r(r, d, 5, 3), W=_r(r, d, 3, 4),
                                                dZ=_r(r, d, 5, 4), l2=0.1),
                              writes=("out_dX", "out_dW", "out_db")),
    "bias_grad": Kernel(lambda r, d: dict(dZ=_r(r, d, 5, 4)), writes=("out",)),
    "softmax_cross_entropy": Kernel(lambda r, d: dict(Z=_r(r, d, 5, 4),
                                                      y=np.array([0, 3, 1, 1, 2]),
                                                      sample_weight=_u(r, d, 5)),
                                    writes=("out",), in_place=(("out", "Z"),), labels=("y",),
                                    n_classes=4),
    "sigmoid_binary_cross_entropy": Kernel(lambda r, d: dict(Z=_r(r, d, 5, 4),
                                                             y=_one_hot_probabilities(r, d),
                                                             sample_weight=_u(r, d, 5)),
                                           writes=("out",), in_place=(("out", "Z"),)),
    "mse": Kernel(lambda r, d: dict(A=_r(r, d, 5, 4), Y=_r(r, d, 5, 4),
                                    sample_weight=_r(r, d, 5)),
                  writes=("out",), in_place=(("out", "A"),)),
    "poisson_loss": Kernel(lambda r, d: dict(Z=_r(r, d, 5, 4),
                                             Y=r.poisson(2.0, (5, 4)).astype(d),
                                             sample_weight=_u(r, d, 5)),
                           writes=("out",), in_place=(("out", "Z"),)),
    "sgd_step": Kernel(_opt(), writes=("param",)),
    "momentum_step": Kernel(_opt("velocity"), writes=("param", "velocity")),
    "classical_momentum_step": Kernel(_opt("velocity"), writes=("param", "velocity")),
    "rmsprop_step": Kernel(_opt("sq"), writes=("param", "sq")),
    "adam_step": Kernel(_adam, writes=("param", "m", "v")),
    "adam_folded_step": Kernel(_adam, writes=("param", "m", "v")),
    "global_norm": Kernel(lambda r, d: dict(arrays=[_r(r, d, 3, 4), _r(r, d, 5)]),
                          list_args=("arrays",)),
    "clip_grad_norm": Kernel(lambda r, d: dict(grads=[_r(r, d, 3, 4), _r(r, d, 5)],
                                               max_norm=0.5),
                             writes=("grads",), list_args=("grads",)),
    "clip_grad_value": Kernel(lambda r, d: dict(grads=[_r(r, d, 3, 4), _r(r, d, 5)],
                                                clip_value=0.5),
                              writes=("grads",), list_args=("grads",)),
    "l2_penalty": Kernel(lambda r, d: dict(weights=[_r(r, d, 3, 4), _r(r, d, 5)], l2=0.1, m=7),
                         list_args=("weights",)),
    "dropout_mask": Kernel(lambda r, d: dict(shape=(5, 4), rate=0.3, seed=1, step=2, layer=1,
                                             dtype=d)),
    "dropout_forward": Kernel(lambda r, d: dict(A=_r(r, d, 5, 4), rate=0.3, seed=1, step=2,
                                                layer=1),
                              writes=("out",), in_place=(("out", "A"),)),
    "dropout_backward": Kernel(lambda r, d: dict(dA=_r(r, d, 5, 4), rate=0.3, seed=1, step=2,
                                                 layer=1),
                               writes=("out",), in_place=(("out", "dA"),)),
    "standardize_fit": Kernel(lambda r, d: dict(X=_r(r, d, 6, 4))),
    "standardize_transform": Kernel(lambda r, d: dict(X=_r(r, d, 6, 4), mean=_r(r, d, 4),
                                                      std=_u(r, d, 4)),
                                    writes=("out",), in_place=(("out", "X"),)),
    "layer_stats": Kernel(lambda r, d: dict(A=_r(r, d, 5, 4))),
    "center_loss": Kernel(lambda r, d: dict(X=_r(r, d, 5, 4), y=np.array([0, 2, 1, 1, 2]),
                                            centers=_r(r, d, 3, 4), lam=0.5),
                          writes=("out",), labels=("y",), n_classes=3),
    "center_update": Kernel(lambda r, d: dict(X=_r(r, d, 5, 4), y=np.array([0, 2, 1, 1, 2]),
                                              centers=_r(r, d, 3, 4), alpha=0.5),
                            writes=("centers",), labels=("y",), n_classes=3),
}

DTYPES = [np.float32, np.float64]


def test_every_public_kernel_has_an_entry():
    assert set(KERNELS) == set(ops.__all__) == set(ref.__all__)


def _call(module, name, kw):
    return getattr(module, name)(**kw)


def _arrays(kw):
    """name -> ndarray of the arguments (list arguments by item: grads[0], ...)."""
    found = {}
    for name, value in kw.items():
        if isinstance(value, np.ndarray):
            found[name] = value
        elif isinstance(value, list):
            for i, a in enumerate(value):
                found["%s[%d]" % (name, i)] = a
    return found


def _out_shapes(module, name, kw):
    """The shape of every out_* buffer, from a call without buffers."""
    result = _call(module, name, copy.deepcopy(kw))
    if name in ("dense_backward", "linear_backward"):
        shapes = {"out_dX": result[0].shape, "out_dW": result[1].shape,
                  "out_db": result[2].shape}
        if name == "dense_backward":
            shapes["out_dZ"] = kw["A"].shape
        return shapes
    if isinstance(result, tuple):  # (loss, gradient)
        return {"out": result[1].shape}
    return {"out": result.shape}


def _with_buffers(kernel, name, kw, dtype):
    """kw plus a fresh buffer for every out_* argument the kernel writes."""
    kw = dict(kw)
    outs = [w for w in kernel.writes if w.startswith("out")]
    if outs:
        shapes = _out_shapes(ref, name, kw)
        for w in outs:
            kw[w] = np.zeros(shapes[w], dtype=dtype)
    return kw


def _set(kw, name, value):
    if "[" in name:
        base, i = name[:-1].split("[")
        kw[base][int(i)] = value
    else:
        kw[name] = value


def _get(kw, name):
    if "[" in name:
        base, i = name[:-1].split("[")
        return kw[base][int(i)]
    return kw[name]


def _overlap_pairs(kernel, name, kw):
    arrays = _arrays(kw)
    writes = [a for a in arrays if a.split("[")[0] in kernel.writes]
    pairs = []
    for w in writes:
        for other in arrays:
            if other != w and not (other in writes and (other, w) in pairs):
                pairs.append((w, other))
    return pairs


def _shifted(kw, w, other, shift):
    """kw with `w` placed in one flat buffer that also holds `other`'s values:
    other at offset 0, w at offset `shift` (0: w is exactly other when the
    shapes agree)."""
    kw = copy.deepcopy(kw)
    a, b = _get(kw, other), _get(kw, w)
    if b.dtype != a.dtype:
        return None
    buf = np.zeros(max(a.size, shift + b.size) + 1, dtype=a.dtype)
    buf[:a.size] = a.ravel()
    other_view = buf[:a.size].reshape(a.shape)
    w_view = buf[shift:shift + b.size].reshape(b.shape)
    _set(kw, other, other_view)
    _set(kw, w, w_view)
    return kw, buf


def _valid_call_with_buffers(name, seed):
    """(the table entry, float64 arguments of a valid call with a buffer for
    every out_* argument)."""
    kernel = KERNELS[name]
    kw = kernel.build(np.random.default_rng(seed), np.float64)
    return kernel, _with_buffers(kernel, name, kw, np.float64)


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("module", MODULES, ids=["ops", "reference"])
def test_partially_overlapping_buffers_are_refused(module, name):
    kernel, kw = _valid_call_with_buffers(name, seed=0)
    pairs = _overlap_pairs(kernel, name, kw)
    if not kernel.writes:
        assert pairs == []
        return
    assert pairs, name
    for w, other in pairs:
        placed = _shifted(kw, w, other, 1)
        if placed is None:
            continue
        bad, buf = placed
        before = buf.copy()
        with pytest.raises(ValueError, match="must not overlap") as info:
            _call(module, name, bad)
        names = (w.split("[")[0], other.split("[")[0])
        assert all(n in str(info.value) for n in names), (w, other, str(info.value))
        np.testing.assert_array_equal(buf, before, err_msg="%s: a refused call wrote" % name)


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("module", MODULES, ids=["ops", "reference"])
def test_exact_aliasing_only_where_the_kernel_runs_in_place(module, name):
    kernel, kw = _valid_call_with_buffers(name, seed=1)
    dtype = np.float64
    for w, other in _overlap_pairs(kernel, name, kw):
        if _get(kw, w).shape != _get(kw, other).shape:
            continue  # exact aliasing needs equal shapes
        aliased, buf = _shifted(kw, w, other, 0)
        if (w, other) in kernel.in_place:
            separate = copy.deepcopy(kw)
            expected = _call(ref, name, separate)
            got = _call(module, name, aliased)
            _agree(got, expected, dtype, "%s(%s=%s)" % (name, w, other))
            _agree(_get(aliased, w), _get(separate, w), dtype, "%s: %s" % (name, w))
            if w == "out":
                assert (got[1] if isinstance(got, tuple) else got) is _get(aliased, w)
        else:
            before = buf.copy()
            with pytest.raises(ValueError, match="must not overlap"):
                _call(module, name, aliased)
            np.testing.assert_array_equal(buf, before)


def test_interleaved_views_of_one_array_do_not_count_as_overlap():
    """Two column slices of one array share bounds but no element: np.shares_memory
    decides, so the call is accepted."""
    rng = np.random.default_rng(2)
    big = rng.standard_normal((5, 8))
    A, dA = big[:, ::2], big[:, 1::2]
    out = np.empty((5, 4))
    got = ops.activation_backward(np.tanh(A), dA, "tanh", out=out)
    np.testing.assert_allclose(got, ref.activation_backward(np.tanh(A), dA, "tanh"),
                               rtol=1e-13)
    param = big[:, ::2]
    velocity = big[:, 1::2]
    ops.momentum_step(param, np.ones((5, 4)), velocity, 0.1)  # accepted, not refused


# --------------------------------------------------------------------------
# The bad-input matrix: ops and reference raise the same, or agree
# --------------------------------------------------------------------------

def _array_mutations(name, value, kernel):
    """(description, replacement) for an array argument."""
    if name in kernel.labels:
        k = kernel.n_classes
        yield "label -1", np.where(np.arange(value.size) == 0, -1, value)
        yield "label = classes", np.where(np.arange(value.size) == 0, k, value)
        yield "label 0.7", np.where(np.arange(value.size) == 0, 0.7, value.astype(float))
        yield "labels as float", value.astype(np.float64)
        yield "labels as bool", value.astype(bool)
        yield "labels 2-D", value.reshape(-1, 1)
        yield "one label short", value[:-1]
        return
    yield "bool", value > 0
    yield "complex", value.astype(np.complex128)
    yield "strings", value.astype(str)
    yield "int", np.round(value * 3).astype(np.int64)
    yield "other float dtype", value.astype(np.float32 if value.dtype == np.float64
                                            else np.float64)
    yield "one more dimension", value[None]
    if value.ndim > 1:
        yield "flattened", value.reshape(-1)
        if value.shape[0] != value.shape[1]:
            yield "transposed", value.T
        yield "a column short", value[:, :-1]
        yield "non-contiguous", np.asfortranarray(value)
    yield "a row short", value[:-1]
    yield "empty", value[:0]
    nan = value.astype(value.dtype, copy=True)
    nan.flat[0] = np.nan
    yield "NaN", nan
    inf = value.astype(value.dtype, copy=True)
    inf.flat[-1] = -np.inf
    yield "-inf", inf


def _scalar_mutations(value):
    yield "NaN", float("nan")
    yield "inf", float("inf")
    yield "negative", -abs(value) - 1
    yield "zero", 0
    yield "huge", 1e300
    yield "string", "0.1"
    yield "bool", True
    yield "None", None
    if isinstance(value, int):
        yield "fraction", value + 0.5


def _option_mutations():
    yield "unknown name", "tanhh"
    yield "not a string", 3
    yield "softmax", "softmax"
    yield "leaky_relu", "leaky_relu"


def _mutations(kernel, kw):
    for name, value in kw.items():
        if isinstance(value, np.ndarray):
            for desc, v in _array_mutations(name, value, kernel):
                yield name, desc, v
        elif name in kernel.list_args:
            yield name, "empty list", []
            yield name, "one array", value[0]
            yield name, "the same array twice", [value[0], value[0]]
            for desc, v in _array_mutations(name + "[0]", value[0], kernel):
                yield name, "first item " + desc, [v] + value[1:]
        elif name == "activation":
            for desc, v in _option_mutations():
                yield name, desc, v
        elif name == "dtype":
            yield name, "int", np.int32
            yield name, "not a dtype", "floaty"
        elif name == "shape":
            yield name, "negative", (-1, 4)
            yield name, "empty", (0, 4)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            for desc, v in _scalar_mutations(value):
                yield name, desc, v
    yield "n_threads", "zero", 0
    yield "n_threads", "string", "2"
    yield "n_threads", "two", 2
    if "b" in kw:
        yield "b", "None", None


def _outcome(module, name, kw):
    kw = copy.deepcopy(kw)
    try:
        result = _call(module, name, kw)
    except Exception as exc:  # the type is what is compared
        return type(exc), None, None
    return None, result, kw


def _agree(got, expected, dtype, what):
    if isinstance(expected, (tuple, list)):
        assert type(got) is type(expected) and len(got) == len(expected), what
        for g, e in zip(got, expected):
            _agree(g, e, dtype, what)
    elif expected is None:
        assert got is None, what
    elif isinstance(expected, np.ndarray) or isinstance(expected, float):
        e = np.asarray(expected)
        scale = 1.0 + (float(np.max(np.abs(e[np.isfinite(e)]))) if np.any(np.isfinite(e))
                       else 0.0)
        assert_close(np.asarray(got), e, "gemm", scale=scale, k=64, err_msg=what, dtype=dtype)
    else:
        assert got == expected, what


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_ops_and_reference_refuse_the_same_inputs_and_agree_on_the_rest(name, dtype):
    kernel = KERNELS[name]
    kw = kernel.build(np.random.default_rng(3), dtype)
    failures = []
    n_cases = 0
    for arg, desc, value in _mutations(kernel, kw):
        case = dict(kw)
        case[arg] = value
        what = "%s(%s: %s)" % (name, arg, desc)
        with np.errstate(all="ignore"):
            exc_ops, res_ops, after_ops = _outcome(ops, name, case)
            exc_ref, res_ref, after_ref = _outcome(ref, name, case)
        n_cases += 1
        if exc_ops is not exc_ref:
            failures.append("%s: ops %s, reference %s" % (
                what, exc_ops.__name__ if exc_ops else "accepts",
                exc_ref.__name__ if exc_ref else "accepts"))
            continue
        if exc_ops is None:
            # the computation runs in float32 when any float array of it is float32
            low = any(a.dtype == np.float32 for a in _arrays(case).values())
            comp = np.float32 if low else np.float64
            try:
                _agree(res_ops, res_ref, comp, what + " result")
                for key in kernel.writes:  # arrays updated in place
                    if key in after_ops and not key.startswith("out"):
                        _agree(after_ops[key], after_ref[key], comp, what + " " + key)
            except AssertionError as err:
                failures.append("%s: results differ: %s" % (what, str(err)[:300]))
    assert n_cases > 10
    assert not failures, "\n".join(failures)
