"""The data of a Sequential fit or evaluation, checked and converted once:
inputs, targets (class labels encoded as indices), sample and class weights,
and the validation rows held out.

Design: everything here runs before the model or any buffer is touched, so
bad data raises with nothing lost. Class labels may be the indices 0..k-1 of
the output units, or any k distinct integers, booleans or strings: the model
keeps them sorted as ``classes_`` and trains on their indices. The held-out
validation rows are drawn from the model's seed (stratified by class for
classification), so the same seed holds out the same rows.
"""

import numpy as np

from fastnn._frames import check_feature_names, frame_to_array
from fastnn._kernel_args import labels as class_indices
from fastnn._validation import as_float_array, check_finite, check_mapped_layout
from fastnn.losses import CrossEntropy, check_loss

_VALIDATION_STREAM = 2  # seeds the held-out rows apart from initialization (0), shuffling (1)
VALIDATION_ROWS = ("random", "last")
CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")


def default_loss(model):
    return {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy",
            "exp": "poisson"}.get(model.output_activation, "mse")


# --------------------------------------------------------------------------
# targets and class labels
# --------------------------------------------------------------------------

def _label_array(y, name):
    """y as an array of numbers, booleans or strings (an object array of
    strings becomes a string array)."""
    arr = np.asarray(y)
    if arr.dtype.kind == "O":
        if not all(isinstance(v, str) for v in arr.ravel()):
            raise TypeError("%s holds Python objects; targets must be numbers, booleans or "
                            "strings" % name)
        arr = arr.astype(str)
    if arr.dtype.kind == "S":  # as scikit-learn: a bytes label has no text to save or export
        raise TypeError("%s holds bytes (dtype %s); targets must be numbers, booleans or "
                        "strings: decode them first, e.g. %s.astype(str)"
                        % (name, arr.dtype, name))
    if arr.dtype.kind not in "biufU":
        raise TypeError("%s has dtype %s; targets must be numbers, booleans or strings"
                        % (name, arr.dtype))
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("%s contains NaN or infinity" % name)
    return arr


def _same_kind(labels, classes):
    """Whether labels can be compared with classes: numbers with numbers,
    booleans with booleans, strings with strings."""
    def kind(a):
        return "n" if a.dtype.kind in "iuf" else a.dtype.kind.replace("S", "U")
    return kind(labels) == kind(classes)


def _indices_in(labels, classes, name):
    """The index of each label in the sorted classes; a label that is not a
    class raises, naming it."""
    if _same_kind(labels, classes):
        pos = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
        found = classes[pos] == labels
    else:
        pos, found = np.zeros(labels.shape, np.int64), np.zeros(labels.shape, bool)
    if not np.all(found):
        unknown = np.unique(labels[~found])
        raise ValueError("%s has labels the model was not trained on: %s; its classes_ are %s"
                         % (name, _show(unknown), _show(classes)))
    return pos.astype(np.int64)


def _show(values, most=10):
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:most])
    return "[%s%s]" % (shown, ", ..." if len(values) > most else "")


def _whole_numbers(arr):
    return arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and np.all(arr == np.round(arr)))


def encode_labels(model, y, loss, m, classes, name="y"):
    """(class indices as the C loop takes them, the classes) for a
    classification loss with one label per row.

    classes: the model's classes_ (from an earlier fit), or None to set them
    from y: integer labels all in [0, k) are the output units' indices
    (classes 0..k-1); otherwise the k distinct labels of y, sorted."""
    k = model.n_outputs
    arr = _label_array(y, name)
    if arr.shape != (m,):
        raise ValueError("X has %d samples but %s has shape %s" % (m, name, arr.shape))
    n_classes = 2 if loss == "binary_cross_entropy" else k
    if arr.dtype.kind == "f" and not _whole_numbers(arr):
        raise ValueError("%s holds class labels and must contain whole numbers, booleans or "
                         "strings" % name)
    if classes is None:
        if arr.dtype.kind in "iuf" and _whole_numbers(arr) and arr.min() >= 0 \
                and arr.max() < n_classes:
            classes = np.arange(n_classes)
        else:
            classes = np.unique(arr)
            if len(classes) != n_classes:
                raise ValueError(
                    "%s has %d distinct labels %s, but the output layer stands for %d classes: "
                    "class labels are the indices 0..%d or exactly %d distinct integers, "
                    "booleans or strings" % (name, len(classes), _show(classes), n_classes,
                                             n_classes - 1, n_classes))
    return _indices_in(arr, classes, name), classes


def prepare_targets(model, y, loss, m, classes=None, name="y"):
    """(targets as the C loop takes them, the classes or None): int64 class
    indices for cross_entropy, a (m, n_outputs) float array otherwise. One-hot
    rows for cross_entropy and 0/1 or probability targets for
    binary_cross_entropy are taken as they are; other class labels are
    encoded through ``classes`` (see encode_labels)."""
    k = model.n_outputs
    y_arr = _label_array(y, name)
    if y_arr.shape[:1] != (m,):
        rows = y_arr.shape[0] if y_arr.ndim else 0
        raise ValueError("X has %d samples but %s has %d" % (m, name, rows))
    if loss == "cross_entropy":
        if y_arr.ndim == 2:
            if y_arr.dtype.kind not in "biuf" or y_arr.shape[1] != k or not (
                    np.all((y_arr == 0) | (y_arr == 1)) and np.all(y_arr.sum(axis=1) == 1)):
                raise ValueError("2-D %s for cross_entropy must be one-hot with %d columns"
                                 % (name, k))
            y_arr = np.argmax(y_arr, axis=1)
            if classes is None:
                classes = np.arange(k)
            elif not np.array_equal(classes, np.arange(k)):
                raise ValueError("one-hot %s gives class indices, but the model's classes_ "
                                 "are %s: pass the labels themselves" % (name, _show(classes)))
            return class_indices(y_arr, m, k, name), classes
        if y_arr.ndim != 1:
            raise ValueError("%s for cross_entropy must be class labels of shape (m,) or "
                             "one-hot (m, %d), got shape %s" % (name, k, y_arr.shape))
        return encode_labels(model, y_arr, loss, m, classes, name)
    if loss == "binary_cross_entropy" and k == 1 and (y_arr.ndim == 1 or y_arr.shape[1:] == (1,)):
        flat = y_arr.reshape(m)
        as_given = (flat.dtype.kind in "iuf" and flat.min() >= 0 and flat.max() <= 1
                    and (classes is None or np.array_equal(classes, [0, 1])))
        if as_given:  # 0/1 labels or probabilities
            Y = as_float_array(flat, name, model.dtype, convert_floats=True).reshape(m, 1)
            return Y, (np.arange(2) if classes is None else classes)
        idx, classes = encode_labels(model, flat, loss, m, classes, name)
        return idx.astype(model.dtype).reshape(m, 1), classes
    if y_arr.dtype.kind not in "biuf":
        raise TypeError("%s has dtype %s; targets of %s must be numeric"
                        % (name, y_arr.dtype, loss))
    if y_arr.dtype.kind == "b":
        y_arr = y_arr.astype(model.dtype)
    Y = as_float_array(y_arr, name, model.dtype, convert_floats=True)
    if Y.ndim == 1 and k == 1:
        Y = Y.reshape(m, 1)
    if Y.shape != (m, k):
        shapes = "(%d,) or (%d, 1)" % (m, m) if k == 1 else "(%d, %d)" % (m, k)
        raise ValueError("%s must have shape %s for an output layer of %d unit%s, got %s"
                         % (name, shapes, k, "" if k == 1 else "s", Y.shape))
    if loss == "binary_cross_entropy" and (Y.min() < 0 or Y.max() > 1):
        raise ValueError("%s for binary_cross_entropy must lie in [0, 1]" % name)
    if loss == "poisson" and Y.min() < 0:
        raise ValueError("%s for poisson must be counts or rates >= 0; its smallest value is "
                         "%g" % (name, Y.min()))
    return Y, None


def class_of_rows(Y, loss):
    """The class index of each row for a classification loss with one label per
    row (cross_entropy, or binary_cross_entropy with one 0/1 output), else None."""
    if loss == "cross_entropy":
        return Y
    if loss == "binary_cross_entropy" and Y.shape[1] == 1 and np.all((Y == 0) | (Y == 1)):
        return Y[:, 0].astype(np.int64)
    return None


# --------------------------------------------------------------------------
# sample and class weights
# --------------------------------------------------------------------------

def check_sample_weight(sample_weight, m, dtype, name="sample_weight"):
    """None, or the (m,) weights as a C-contiguous array of dtype: finite, >= 0."""
    if sample_weight is None:
        return None
    sw = as_float_array(sample_weight, name, dtype, ndim=1, convert_floats=True)
    if sw.shape != (m,):
        raise ValueError("%s must have shape (%d,) to match the %d rows, got %s"
                         % (name, m, m, sw.shape))
    check_finite(sw, name)
    if sw.min() < 0:
        raise ValueError("%s must be >= 0; its smallest value is %g" % (name, sw.min()))
    return sw


def class_weights(class_weight, classes, rows_class, name="class_weight"):
    """The weight of each class index (float64, one per class): from a dict
    {label: weight} (missing classes weigh 1), or "balanced": n / (classes
    present * rows of the class), scikit-learn's definition, over rows_class."""
    n_classes = len(classes)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError("%s must be a dict {label: weight} or 'balanced', got %r"
                             % (name, class_weight))
        counts = np.bincount(rows_class, minlength=n_classes).astype(np.float64)
        present = counts > 0
        out = np.ones(n_classes)
        out[present] = rows_class.shape[0] / (present.sum() * counts[present])
        return out
    if not isinstance(class_weight, dict):
        raise TypeError("%s must be a dict {label: weight} or 'balanced', got %r"
                        % (name, class_weight))
    out = np.ones(n_classes)
    keys = list(class_weight)
    idx = _indices_in(_label_array(keys, name + " keys"), classes, name) if keys else []
    for i, key in zip(idx, keys):
        w = class_weight[key]
        if not isinstance(w, (int, float, np.integer, np.floating)) or isinstance(w, bool) \
                or not np.isfinite(w) or w < 0:
            raise ValueError("%s[%r] must be a finite number >= 0, got %r" % (name, key, w))
        out[i] = float(w)
    return out


# --------------------------------------------------------------------------
# the validation rows
# --------------------------------------------------------------------------

def holdout_rows(m, fraction, rows, strata, seed):
    """(training rows, validation rows), each sorted: the last fraction of the
    rows with rows="last", else a random draw from the seed, stratified by
    class when strata (the class of each row) is given: each class holds out
    its share of the validation rows, rounded by largest remainder."""
    n_train = int(m * (1.0 - fraction))
    n_val = m - n_train
    if n_train < 1 or n_val < 1:
        raise ValueError("validation_split=%g of %d samples leaves %d for training and %d "
                         "for validation; both need at least one"
                         % (fraction, m, n_train, n_val))
    if rows == "last":
        return np.arange(n_train), np.arange(n_train, m)
    rng = np.random.default_rng([seed, _VALIDATION_STREAM])
    if strata is None:
        val = rng.permutation(m)[:n_val]
    else:
        counts = np.bincount(strata)
        quota = n_val * counts / m
        take = np.floor(quota).astype(np.int64)
        extra = n_val - take.sum()
        take[np.argsort(-(quota - take), kind="stable")[:extra]] += 1
        val = np.concatenate([rng.permutation(np.flatnonzero(strata == c))[:take[c]]
                              for c in range(len(counts))])
    held = np.zeros(m, bool)
    held[val] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


# --------------------------------------------------------------------------
# a fit's data
# --------------------------------------------------------------------------

class TrainingData:
    """The validated arrays of one fit. X, Y and sw (None without weights)
    hold every row given; train_rows are the rows training visits (None: all
    of them), so holding rows out never copies X. The validation arrays are
    None without validation; val_rows are the held-out row indices. Also the
    loss name, the classes, the center loss's parameters. A fit on a
    fastnn.data source has a source instead of X, Y and sw."""

    def __init__(self, X, Y, sw, train_rows, X_val, Y_val, sw_val, val_rows, loss, classes,
                 y_1d, center_lambda, center_alpha, feature_names=None, source=None):
        self.X, self.Y, self.sw, self.train_rows = X, Y, sw, train_rows
        self.source = source
        self.X_val, self.Y_val, self.sw_val, self.val_rows = X_val, Y_val, sw_val, val_rows
        self.loss, self.classes, self.y_1d = loss, classes, y_1d
        self.center_lambda, self.center_alpha = center_lambda, center_alpha
        self.feature_names = feature_names
        if source is not None:  # rows read in chunks (fastnn.data): X and Y are None
            self.n_train, self.n_features = source.n_rows, source.n_features
        else:
            self.n_train = X.shape[0] if train_rows is None else train_rows.shape[0]
            self.n_features = X.shape[1]

    def epoch_rows(self, order):
        """The rows of X an epoch visits, given their order as positions
        0..n_train-1 among the training rows (int64, C order)."""
        rows = order if self.train_rows is None else self.train_rows[order]
        return np.ascontiguousarray(rows, dtype=np.int64)


def weighted_rows(data):
    """(training rows, validation rows) of a fit's data whose weight is above
    0: every row without weights. check_weighted_rows reads them, summed over
    the processes in a fit on shards, where one shard may weigh nothing."""
    if data.sw is None:
        train = data.n_train
    else:
        train = np.count_nonzero((data.sw if data.train_rows is None
                                  else data.sw[data.train_rows]) > 0)
    if data.X_val is None:
        val = 0
    else:
        val = data.X_val.shape[0] if data.sw_val is None else np.count_nonzero(data.sw_val > 0)
    return train, val


def check_weighted_rows(data, train, val):
    """Refuse a fit, before it changes the model, whose training rows or
    validation rows all weigh 0: it would train on nothing, or validate on
    nothing after its first epoch."""
    if train == 0:
        raise ValueError("every training sample has weight 0: nothing to train on")
    if data.X_val is not None and val == 0:
        raise ValueError("every validation sample has weight 0 (%s): there is nothing to "
                         "validate on" % ("sample_weight_val" if data.val_rows is None
                                          else "the rows validation_split holds out"))


def _loss_and_center(model, loss):
    """(loss name, center lambda, center alpha), the loss checked against the model."""
    loss = default_loss(model) if loss is None else loss
    center_lambda = center_alpha = 0.0
    if isinstance(loss, CrossEntropy):
        center_lambda, center_alpha = loss.center_loss, loss.center_alpha
        if center_lambda > 0 and len(model.dense_layers_) < 2:
            raise ValueError("the center loss acts on the features feeding the output layer: "
                             "the model needs at least two Dense layers")
        loss = loss.name
    check_loss(loss, model.output_activation)
    return loss, center_lambda, center_alpha


def _inputs(model, X, name, n_features_of_X=None):
    """X (or X_val, whose features must match X's) in the model's dtype and C order
    (a data frame's numeric columns)."""
    X, _ = frame_to_array(X)
    if n_features_of_X is None:  # the training rows: a mapped file is never copied whole
        check_mapped_layout(X, name, model.dtype)
    X = as_float_array(X, name, model.dtype, ndim=2, convert_floats=True)
    check_finite(X, name)
    if n_features_of_X is not None and X.shape[1] != n_features_of_X:
        raise ValueError("%s has %d features but X has %d"
                         % (name, X.shape[1], n_features_of_X))
    if model.built and X.shape[1] != model.input_dim:
        raise ValueError("%s has %d features, but the model was built for %d"
                         % (name, X.shape[1], model.input_dim))
    return X


def _feature_names(model, names):
    """The feature names a fit records: the data's, checked against the
    model's when it continues a trained model (which keeps its own)."""
    if model.epochs_trained_ > 0:
        check_feature_names(model.feature_names_in_, names)
        return model.feature_names_in_
    return names


def _validation_arrays(model, validation_data, loss, classes, n_features):
    """(X_val, Y_val, sample_weight_val or None) of a fit's validation_data."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be (X_val, y_val) or "
                         "(X_val, y_val, sample_weight_val)")
    X_val = _inputs(model, validation_data[0], "X_val", n_features)
    Y_val, _ = prepare_targets(model, validation_data[1], loss, X_val.shape[0], classes,
                               "y_val")
    sw_val = None
    if len(validation_data) == 3:
        sw_val = check_sample_weight(validation_data[2], X_val.shape[0], model.dtype,
                                     "sample_weight_val")
    return X_val, Y_val, sw_val


def check_classes(model, classes, loss):
    """The classes a partial fit is told of, sorted: every label that will
    appear, as many as the output layer stands for; they must equal the
    model's classes_ when it has them."""
    arr = np.unique(_label_array(classes, "classes"))
    n_classes = 2 if loss == "binary_cross_entropy" else model.n_outputs
    if loss not in CLASSIFICATION_LOSSES or (loss == "binary_cross_entropy"
                                             and model.n_outputs != 1):
        raise ValueError("classes is for a classifier with one label per row (loss is %r)"
                         % loss)
    if arr.ndim != 1 or len(arr) != n_classes:
        raise ValueError("classes has %d distinct labels %s, but the output layer stands for "
                         "%d classes" % (arr.size, _show(arr.ravel()), n_classes))
    if model.classes_ is not None and not (
            _same_kind(arr, model.classes_) and np.array_equal(arr, model.classes_)):
        raise ValueError("classes %s differ from the classes the model was trained on, %s"
                         % (_show(arr), _show(model.classes_)))
    return arr


def prepare_source(model, source, y, loss, validation_split, validation_data, sample_weight,
                   class_weight):
    """A fit's data when X is a fastnn.data source: the loss and the classes
    (read from the target column when the model has none yet), the
    validation arrays, the feature names; no training row is read here."""
    if y is not None:
        raise ValueError("a fastnn.data source holds its targets: call fit(source) without y")
    for given, name in ((validation_split, "validation_split"), (sample_weight, "sample_weight"),
                        (class_weight, "class_weight")):
        if given is not None and not (np.isscalar(given) and not given):  # an array too
            raise ValueError("%s is not available when training on a fastnn.data source "
                             "(give validation_data to validate)" % name)
    names = _feature_names(model, source.feature_names)
    if model.built and source.n_features != model.input_dim:
        raise ValueError("the source has %d feature columns, but the model was built for %d"
                         % (source.n_features, model.input_dim))
    loss, center_lambda, center_alpha = _loss_and_center(model, loss)
    classes = model.classes_ if loss in CLASSIFICATION_LOSSES else None
    # several target columns are one-hot rows, whose classes are the column indices
    # (as for a one-hot y), or a 0/1 matrix of labels (multi-label), which has none
    one_column = isinstance(source.target, str) or len(source.target) == 1
    if classes is None and not one_column and loss == "cross_entropy":
        classes = np.arange(model.n_outputs)
    if classes is None and loss in CLASSIFICATION_LOSSES and one_column:
        groups = []
        for values, where in source.target_values():
            try:
                groups.append(np.unique(_label_array(values, "the target column")))
            except ValueError as exc:  # NaN or infinity among the labels
                raise ValueError("%s (%s)" % (exc, where)) from None
        labels = np.unique(np.concatenate(groups))
        _, classes = prepare_targets(model, labels, loss, labels.shape[0], None,
                                     "the target column")
    X_val = Y_val = sw_val = None
    if validation_data is not None:
        X_val, Y_val, sw_val = _validation_arrays(model, validation_data, loss, classes,
                                                  source.n_features)
    return TrainingData(None, None, None, None, X_val, Y_val, sw_val, None, loss, classes,
                        isinstance(source.target, str), center_lambda, center_alpha, names,
                        source=source)


def prepare_data(model, X, y, loss, validation_split, validation_data, validation_rows,
                 sample_weight, class_weight, classes=None, seed=None):
    """Check and convert a fit's data once (see TrainingData). classes: the
    labels a partial fit is told of (see check_classes), or None; seed: the
    seed validation_split draws from (None: the model's)."""
    X, names = frame_to_array(X)
    names = _feature_names(model, names)
    X = _inputs(model, X, "X")
    loss, center_lambda, center_alpha = _loss_and_center(model, loss)
    m = X.shape[0]
    if classes is not None:
        classes = check_classes(model, classes, loss)
    elif loss in CLASSIFICATION_LOSSES:
        classes = model.classes_
    Y, classes = prepare_targets(model, y, loss, m, classes)
    rows_class = class_of_rows(Y, loss)
    sw = check_sample_weight(sample_weight, m, model.dtype)
    if class_weight is not None and rows_class is None:
        raise ValueError("class_weight needs class labels: cross_entropy, or "
                         "binary_cross_entropy with one 0/1 output (loss is %r)" % loss)
    if center_lambda > 0 and (sw is not None or class_weight is not None):
        raise ValueError("the center loss is not weighted: train it without sample_weight "
                         "and class_weight")
    if validation_rows not in VALIDATION_ROWS:
        raise ValueError("validation_rows must be 'random' or 'last', got %r"
                         % (validation_rows,))
    X_val = Y_val = sw_val = val_rows = train_rows = None
    if validation_data is not None:
        X_val, Y_val, sw_val = _validation_arrays(model, validation_data, loss, classes,
                                                  X.shape[1])
    elif validation_split > 0:
        train_rows, val_rows = holdout_rows(m, validation_split, validation_rows, rows_class,
                                            model.seed_ if seed is None else seed)
        X_val, Y_val = X[val_rows], Y[val_rows]
        sw_val = None if sw is None else sw[val_rows]
    if class_weight is not None:
        fitted_on = rows_class if train_rows is None else rows_class[train_rows]
        per_row = class_weights(class_weight, classes, fitted_on)[rows_class]
        sw = (per_row if sw is None else sw * per_row).astype(model.dtype)
    if sw is not None:
        sw = np.ascontiguousarray(sw)
    return TrainingData(X, Y, sw, train_rows, X_val, Y_val, sw_val, val_rows, loss, classes,
                        np.ndim(y) == 1, center_lambda, center_alpha, names)
