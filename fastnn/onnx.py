"""Export to ONNX: a fastnn.Sequential or a fitted fastnn.sklearn estimator as
an ONNX graph that onnxruntime runs with fastnn's own predictions.

    import fastnn.onnx
    proto = fastnn.onnx.to_onnx(model, "model.onnx")

Design:

- One writer of the forward pass, :func:`_forward`, serves both front ends.
  It writes through a small builder interface (``const``, ``node``) with two
  implementations: one collects plain ONNX nodes for a Sequential, the other
  writes into skl2onnx's container, so the estimators' converter, which
  skl2onnx also calls for a Pipeline, is the same code.
- The graph computes in the model's own dtype, as fastnn does: an estimator's
  input is cast to the dtype of its ``coefs_`` and its outputs back to the
  input's float type (skl2onnx's convention).
- onnxruntime has no float64 kernel for Softplus (and older releases none for
  LeakyRelu), so in float64 both are written with primitive operators:
  softplus(z) = max(z, 0) + log1p(exp(-|z|)), with log1p(u) computed as
  u * log(1 + u) / ((1 + u) - 1), which keeps full relative accuracy for small
  u, and leaky_relu(z) = where(z > 0, z, alpha z).
- The default opset and IR version are pinned (DEFAULT_OPSET, with the lowest
  IR version that allows it, 8), so a file written with a new onnx loads in
  every onnxruntime that implements opset 17 (1.13 and later by its version
  matrix), not only in the newest; an explicit opset gets the lowest IR
  version for it too.
- onnx, onnxruntime and skl2onnx are optional: importing fastnn never imports
  them, and this module imports onnx only when a function needs it. Importing
  this module registers the estimators with skl2onnx when skl2onnx is
  installed, so ``skl2onnx.to_onnx`` converts Pipelines that contain them.

Output names. A Sequential classifier gives "label" (what ``predict``
returns, in the dtype of ``classes_``: int, string, bool or float; a 0/1
int64 matrix for multi-label sigmoid outputs) and "probabilities" (what
``predict_proba`` returns); any other Sequential gives "output" (the network
output, shape (N, units)). A classifier built but never fitted has no
``classes_``, so it exports "probabilities" only (multi-label models, whose
labels need no classes, export both). The estimators follow skl2onnx:
"label" and "probabilities" with ``options={'zipmap': False}``, otherwise
"output_label" and "output_probability" (a list of {class: probability});
"variable" for a regressor.
"""

import numbers

import numpy as np

from fastnn._optional import import_optional
from fastnn._version import __version__
from fastnn.activations import DEFAULT_LEAKY_ALPHA
from fastnn.model import Sequential

__all__ = ["to_onnx", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17
# Softmax over an axis (not a flattened 2-D view) and the Gather, ArgMax and
# comparison operators as written here need opset 13
MIN_OPSET = 13
# scikit-learn's activation names (and fastnn's extras) -> fastnn's
_SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh",
                        "relu": "relu", "leaky_relu": "leaky_relu", "softplus": "softplus",
                        "softmax": "softmax", "exp": "exp"}
_NATIVE = {"identity": "Identity", "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
           "exp": "Exp"}


def _import(name):
    """The optional module `name`, or an ImportError that names the extra."""
    return import_optional(name, "fastnn.onnx", "onnx")


# ---------------------------------------------------------------- opsets

def _check_opset(opset):
    """The opset to write: DEFAULT_OPSET for None, else a checked integer."""
    onnx = _import("onnx")
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral):
        raise TypeError("opset must be an integer, got %r" % (opset,))
    opset = int(opset)
    newest = onnx.defs.onnx_opset_version()
    if opset < MIN_OPSET:
        raise ValueError("opset %d is too old for the operators fastnn exports (Softmax over "
                         "an axis, Gather, ArgMax, comparisons as of opset %d); use an opset "
                         "from %d to %d" % (opset, MIN_OPSET, MIN_OPSET, newest))
    if opset > newest:
        raise ValueError("opset %d is newer than the installed onnx %s knows (at most %d)"
                         % (opset, onnx.__version__, newest))
    return opset


def _ml_opset(opset):
    """The ai.onnx.ml opset that goes with a main opset (ZipMap needs 1)."""
    return 3 if opset >= 15 else 2


def _pin_ir_version(proto):
    """Give proto the lowest IR version its opsets allow, so that older
    runtimes load it (onnx writes its own newest by default)."""
    onnx = _import("onnx")
    proto.ir_version = onnx.helper.find_min_ir_version_for(list(proto.opset_import))


# ---------------------------------------------------------------- builders

class _ProtoBuilder:
    """Collects the nodes and initializers of a graph built from scratch."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers = [], []
        self._count = 0

    def name(self, hint):
        self._count += 1
        return "%s_%d" % (hint, self._count)

    def const(self, value, hint="const"):
        name = self.name(hint)
        self.initializers.append(_tensor(self.onnx, np.asarray(value), name))
        return name

    def node(self, op, inputs, out=None, **attrs):
        out = out or self.name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out],
                                                     name=self.name("n_" + op), **attrs))
        return out


class _Skl2onnxBuilder:
    """Writes into skl2onnx's scope and container (the converter's side)."""

    def __init__(self, onnx, scope, container):
        self.onnx, self.scope, self.container = onnx, scope, container

    def name(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def const(self, value, hint="const"):
        name = self.name(hint)
        tensor = _tensor(self.onnx, np.asarray(value), name)
        if tensor.data_type == self.onnx.TensorProto.STRING:  # the container copies raw data only
            self.container.add_initializer(name, tensor.data_type, list(tensor.dims),
                                           list(tensor.string_data))
        else:
            self.container.add_initializer(name, tensor.data_type, list(tensor.dims), tensor)
        return name

    def node(self, op, inputs, out=None, **attrs):
        out = out or self.name(op.lower())
        self.container.add_node(op, list(inputs), [out],
                                name=self.scope.get_unique_operator_name(op), **attrs)
        return out


def _tensor(onnx, value, name):
    """A TensorProto of value; strings (str or object arrays of str) as UTF-8."""
    if value.dtype.kind in "UO":
        if not all(isinstance(v, str) for v in value.ravel()):
            raise TypeError("class labels of dtype %s must all be strings to be exported"
                            % value.dtype)
        return onnx.helper.make_tensor(name, onnx.TensorProto.STRING, value.shape,
                                       [v.encode("utf-8") for v in value.ravel()])
    return onnx.numpy_helper.from_array(value, name)


def _elem_type(onnx, dtype):
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# ---------------------------------------------------------------- the network

def _activation(b, z, name, alpha, dtype):
    """Output name of activation `name` applied to z (a dtype tensor)."""
    if name in _NATIVE:
        return b.node(_NATIVE[name], [z])
    if name == "softmax":
        return b.node("Softmax", [z], axis=-1)
    if name == "leaky_relu":
        if dtype == np.float32:
            return b.node("LeakyRelu", [z], alpha=float(alpha))
        positive = b.node("Greater", [z, b.const(dtype.type(0), "zero")])
        scaled = b.node("Mul", [z, b.const(dtype.type(alpha), "alpha")])
        return b.node("Where", [positive, z, scaled])
    if name == "softplus":
        if dtype == np.float32:
            return b.node("Softplus", [z])
        one = b.const(dtype.type(1), "one")
        u = b.node("Exp", [b.node("Neg", [b.node("Abs", [z])])])  # exp(-|z|) in (0, 1]
        w = b.node("Add", [one, u])
        # log1p(u) = u log(w) / (w - 1): w - 1 is exact, so the ratio undoes the
        # rounding of w = 1 + u; where w rounds to 1, log1p(u) is u to working precision
        ratio = b.node("Div", [b.node("Log", [w]), b.node("Sub", [w, one])])
        log1p = b.node("Where", [b.node("Equal", [w, one]), u, b.node("Mul", [u, ratio])])
        return b.node("Add", [b.node("Max", [z, b.const(dtype.type(0), "zero")]), log1p])
    raise ValueError("activation %r cannot be exported to ONNX" % (name,))


def _forward(b, x, layers, dtype):
    """The network outputs for x (a dtype tensor [N, n_in]).

    layers : (W, b, activation name, alpha) per Dense layer
    """
    for W, bias, name, alpha in layers:
        z = b.node("MatMul", [x, b.const(np.asarray(W, dtype=dtype), "W")])
        z = b.node("Add", [z, b.const(np.asarray(bias, dtype=dtype), "b")])
        x = _activation(b, z, name, alpha, dtype)
    return x


def _argmax_labels(b, p, classes, out=None):
    """classes[argmax(p, axis=1)]: the first of equal maxima, as NumPy's argmax."""
    index = b.node("ArgMax", [p], axis=1, keepdims=0)
    return b.node("Gather", [b.const(classes, "classes"), index], out=out, axis=0)


def _threshold(b, p, compare, dtype, out=None):
    """int64 1 where p is above one half, else 0 (compare: Greater or GreaterOrEqual)."""
    above = b.node(compare, [p, b.const(dtype.type(0.5), "half")])
    return b.node("Cast", [above], out=out, to=b.onnx.TensorProto.INT64)


def _threshold_labels(b, p, classes, compare, dtype, out=None):
    """classes[1] where p [N, 1] is above one half, else classes[0], shape [N]."""
    index = b.node("Reshape", [_threshold(b, p, compare, dtype),
                               b.const(np.array([-1], np.int64), "flat")])
    return b.node("Gather", [b.const(classes, "classes"), index], out=out, axis=0)


# ---------------------------------------------------------------- Sequential

def _sequential_proto(onnx, model, opset):
    if not model.built:
        raise ValueError("the model is not built: give input_dim or fit it before exporting")
    dtype = model.dtype
    b = _ProtoBuilder(onnx)
    layers = [(W, bias, layer.activation.name, layer.activation.alpha)
              for (W, bias), layer in zip(model.weights, model.dense_layers_)]
    p = _forward(b, "X", layers, dtype)
    elem, k = _elem_type(onnx, dtype), model.n_outputs
    make = onnx.helper.make_tensor_value_info
    task = model._task()
    if task == "regression":
        outputs = [make("output", elem, ["N", k])]
        b.node("Identity", [p], out="output")
    else:
        outputs = [make("probabilities", elem, ["N", k])]
        if task == "binary" and k > 1:  # multi-label: a 0/1 matrix, as predict gives
            _threshold(b, p, "GreaterOrEqual", dtype, out="label")
            outputs.insert(0, make("label", onnx.TensorProto.INT64, ["N", k]))
        elif model.classes_ is not None:
            classes = np.asarray(model.classes_)
            if task == "binary":
                _threshold_labels(b, p, classes, "GreaterOrEqual", dtype, out="label")
            else:
                _argmax_labels(b, p, classes, out="label")
            label_type = onnx.TensorProto.STRING if classes.dtype.kind in "UO" \
                else _elem_type(onnx, classes.dtype)
            outputs.insert(0, make("label", label_type, ["N"]))
        b.node("Identity", [p], out="probabilities")
    graph = onnx.helper.make_graph(
        b.nodes, "fastnn_Sequential", [make("X", elem, ["N", model.input_dim])], outputs,
        initializer=b.initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="fastnn", producer_version=__version__)
    proto.doc_string = repr(model)
    _pin_ir_version(proto)
    return proto


# ---------------------------------------------------------------- estimators

def _estimator_classes():
    """(MLPClassifier, MLPRegressor) of fastnn.sklearn, or () without scikit-learn."""
    try:
        from fastnn.sklearn import MLPClassifier, MLPRegressor
    except ImportError:
        return ()
    return MLPClassifier, MLPRegressor


def _estimator_dtype(est):
    """The dtype fastnn predicts in: that of coefs_ (float64 for anything else)."""
    dtype = np.dtype(est.coefs_[0].dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _multilabel(est):
    return est.out_activation_ == "logistic" and est.n_outputs_ > 1


def _label_values(scope, est):
    """The classes as skl2onnx writes labels: int64 for integer, bool and
    integral float classes, strings otherwise; indices with option nocl."""
    classes = np.asarray(est.classes_)
    if scope.get_options(est, dict(nocl=False))["nocl"]:
        return np.arange(len(classes), dtype=np.int64)
    if classes.dtype.kind in "UO":
        return classes
    if classes.dtype.kind == "f" and not np.all(classes == np.round(classes)):
        raise ValueError("class labels %s are not integers; ONNX labels (as skl2onnx writes "
                         "them) are integers or strings" % (classes,))
    return classes.astype(np.int64)


def _estimator_network(onnx, scope, operator, container):
    """(builder, network outputs in the model's dtype, that dtype, the ONNX
    float type of the outputs) for the estimator of a skl2onnx operator."""
    from skl2onnx.common.data_types import guess_proto_type

    if container.target_opset < MIN_OPSET:
        raise ValueError("fastnn's estimators export with opset %d or newer; the target "
                         "opset is %d" % (MIN_OPSET, container.target_opset))
    est = operator.raw_operator
    b = _Skl2onnxBuilder(onnx, scope, container)
    dtype = _estimator_dtype(est)
    x, in_type = operator.inputs[0].full_name, guess_proto_type(operator.inputs[0].type)
    if in_type != _elem_type(onnx, dtype):
        x = b.node("Cast", [x], to=_elem_type(onnx, dtype))
    hidden = _SKLEARN_ACTIVATIONS[est.activation]
    last = len(est.coefs_) - 1
    layers = [(W, bias, _SKLEARN_ACTIVATIONS[est.out_activation_] if i == last else hidden,
               DEFAULT_LEAKY_ALPHA)
              for i, (W, bias) in enumerate(zip(est.coefs_, est.intercepts_))]
    out_type = onnx.TensorProto.DOUBLE if in_type == onnx.TensorProto.DOUBLE \
        else onnx.TensorProto.FLOAT
    return b, _forward(b, x, layers, dtype), dtype, out_type


def _to_type(b, x, dtype, out_type, out):
    """x written to out, cast to out_type when the model's dtype differs."""
    if out_type == _elem_type(b.onnx, dtype):
        return b.node("Identity", [x], out=out)
    return b.node("Cast", [x], out=out, to=out_type)


def _convert_classifier(scope, operator, container):
    """skl2onnx converter of fastnn.sklearn.MLPClassifier: outputs the labels
    (as predict) and the probabilities (as predict_proba)."""
    onnx = _import("onnx")
    est = operator.raw_operator
    b, p, dtype, out_type = _estimator_network(onnx, scope, operator, container)
    if out_type == onnx.TensorProto.DOUBLE and \
            scope.get_options(est, dict(zipmap=True))["zipmap"] is True:
        raise ValueError("ONNX's ZipMap takes float32 probabilities only: export a float64 "
                         "classifier with options={'zipmap': False} (or 'columns')")
    label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
    # scikit-learn's label binarizer decides at p > 0.5, where Sequential.predict uses >=
    if _multilabel(est):
        _threshold(b, p, "Greater", dtype, out=label)
    elif est.n_outputs_ == 1:
        _threshold_labels(b, p, _label_values(scope, est), "Greater", dtype, out=label)
        p = b.node("Concat", [b.node("Sub", [b.const(dtype.type(1), "one"), p]), p], axis=1)
    else:
        _argmax_labels(b, p, _label_values(scope, est), out=label)
    _to_type(b, p, dtype, out_type, proba)


def _convert_regressor(scope, operator, container):
    """skl2onnx converter of fastnn.sklearn.MLPRegressor: the predictions, [N, n_outputs]."""
    onnx = _import("onnx")
    b, p, dtype, out_type = _estimator_network(onnx, scope, operator, container)
    _to_type(b, p, dtype, out_type, operator.outputs[0].full_name)


def _float_type(operator):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    return DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) \
        else FloatTensorType


def _classifier_shapes(operator):
    """skl2onnx shape calculator: label [N] (or [N, k] multi-label), probabilities [N, k]."""
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    est, n = operator.raw_operator, operator.inputs[0].get_first_dimension()
    n_classes = est.n_outputs_ if _multilabel(est) else len(est.classes_)
    if _multilabel(est):
        label = Int64TensorType([n, n_classes])
    elif np.asarray(est.classes_).dtype.kind in "UO" and \
            not operator.scope_inst.get_options(est, dict(nocl=False))["nocl"]:
        label = StringTensorType([n])
    else:
        label = Int64TensorType([n])
    operator.outputs[0].type = label
    operator.outputs[1].type = _float_type(operator)([n, n_classes])


def _regressor_shapes(operator):
    """skl2onnx shape calculator: predictions [N, n_outputs]."""
    est, n = operator.raw_operator, operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator)([n, est.n_outputs_])


def register_skl2onnx():
    """Register fastnn.sklearn's MLPClassifier and MLPRegressor with
    skl2onnx, so that ``skl2onnx.to_onnx`` converts them, alone or inside a
    scikit-learn Pipeline. Importing fastnn.onnx calls this when skl2onnx and
    scikit-learn are installed.

    The classifier takes skl2onnx's classifier options: ``zipmap`` (True,
    False or "columns") and ``nocl``.

    Returns
    -------
    bool
        Whether skl2onnx and scikit-learn were found (and the estimators
        registered).
    """
    try:
        import skl2onnx
    except ImportError:
        return False
    estimators = _estimator_classes()
    if not estimators:
        return False
    classifier, regressor = estimators
    # the zipmap option makes skl2onnx parse the classifier as its own ones
    # (label and probabilities, then ZipMap unless zipmap=False)
    skl2onnx.update_registered_converter(
        classifier, "FastnnMLPClassifier", _classifier_shapes, _convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    skl2onnx.update_registered_converter(
        regressor, "FastnnMLPRegressor", _regressor_shapes, _convert_regressor)
    return True


def _estimator_proto(onnx, est, opset, options):
    skl2onnx = _import("skl2onnx")
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    register_skl2onnx()
    tensor_type = DoubleTensorType if _estimator_dtype(est) == np.float64 else FloatTensorType
    proto = skl2onnx.convert_sklearn(
        est, initial_types=[("X", tensor_type([None, est.n_features_in_]))],
        target_opset={"": opset, "ai.onnx.ml": _ml_opset(opset)},
        options=None if options is None else {id(est): dict(options)})
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    batch.dim_param = "N"
    _pin_ir_version(proto)
    return proto


# ---------------------------------------------------------------- entry point

def to_onnx(model, path=None, opset=None, options=None):
    """Export a model to ONNX.

    Parameters
    ----------
    model : fastnn.Sequential or fitted fastnn.sklearn.MLPClassifier / MLPRegressor
        A Sequential must be built (input_dim given, or fitted). Dropout
        layers are left out: they are the identity at inference.
    path : str or path-like, default=None
        Also write the model to this file.
    opset : int, default=None
        The ONNX opset; None is DEFAULT_OPSET (17), with IR version 8,
        which onnxruntime 1.13 and later load. At least MIN_OPSET (13).
    options : dict, default=None
        For an estimator, skl2onnx's converter options, e.g.
        ``{"zipmap": False}``; a Sequential takes none.

    Returns
    -------
    onnx.ModelProto
        One input "X" of shape [N, n_features] in the model's dtype (N is
        dynamic). Outputs: "label" and "probabilities" for a classifier,
        "output" otherwise, for a Sequential (see the module's docstring);
        skl2onnx's names for an estimator.

    Raises
    ------
    ImportError
        Without onnx (or, for an estimator, skl2onnx): install the extra
        with ``pip install 'fastnn[onnx]'``.
    """
    onnx = _import("onnx")
    opset = _check_opset(opset)
    if isinstance(model, Sequential):
        if options is not None:
            raise ValueError("options are skl2onnx's converter options for fastnn.sklearn "
                             "estimators; a Sequential takes none")
        proto = _sequential_proto(onnx, model, opset)
    elif isinstance(model, _estimator_classes()):
        proto = _estimator_proto(onnx, model, opset, options)
    else:
        raise TypeError("to_onnx exports a fastnn.Sequential or a fastnn.sklearn "
                        "MLPClassifier or MLPRegressor, got %s" % type(model).__name__)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save_model(proto, path)
    return proto


register_skl2onnx()
