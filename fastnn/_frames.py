"""Data frames as Sequential takes them: pandas and polars DataFrames and
pyarrow Tables become arrays with their column names, and the names a model
was fitted with are checked as scikit-learn checks them. (Targets need
nothing: a Series or an arrow array converts through np.asarray.)

Design: no frame library is imported here; an object is recognized by the
module its type comes from, so fastnn works without any of them installed.
"""

import warnings

import numpy as np


def _library(obj):
    return type(obj).__module__.split(".")[0]


def is_frame(X):
    """Whether X is a pandas or polars DataFrame or a pyarrow Table."""
    lib = _library(X)
    if lib in ("pandas", "polars"):
        return hasattr(X, "columns") and not hasattr(X, "name")  # a Series has a name
    return lib == "pyarrow" and hasattr(X, "schema") and hasattr(X, "column_names")


def _columns(X):
    """[(name, 1-D array)] of a frame's columns, non-numeric ones refused by name."""
    lib = _library(X)
    names = list(X.column_names if lib == "pyarrow" else X.columns)
    repeated = sorted({str(n) for n in names if names.count(n) > 1})
    if repeated:  # a column looked up by a repeated name is each of them at once
        raise ValueError("X has duplicate column names %s; give each column its own name"
                         % ", ".join(repr(n) for n in repeated))
    if lib == "pyarrow":
        pairs = [(name, X.column(name).to_numpy()) for name in X.column_names]
    elif lib == "polars":
        pairs = [(name, X.get_column(name).to_numpy()) for name in X.columns]
    else:
        pairs = [(name, X[name].to_numpy()) for name in X.columns]
    bad = [str(name) for name, col in pairs if np.asarray(col).dtype.kind not in "biuf"]
    if bad:
        raise TypeError("X has non-numeric columns %s; encode them as numbers first"
                        % ", ".join(repr(b) for b in bad))
    return pairs


def frame_to_array(X):
    """(X as an array, its column names as a string array, or None): names only
    when every column name is a string, as scikit-learn records them."""
    if not is_frame(X):
        return X, None
    pairs = _columns(X)
    if not pairs:
        return np.empty((len(X) if hasattr(X, "__len__") else 0, 0)), None
    arr = np.column_stack([np.asarray(col) for _, col in pairs])
    names = [name for name, _ in pairs]
    if all(isinstance(n, str) for n in names):
        return arr, np.array(names, dtype=str)
    return arr, None


def check_feature_names(fitted, given, owner="Sequential"):
    """scikit-learn's rule for the names a model was fitted with (``fitted``)
    against those of new X (``given``), either None: different names raise,
    names on one side only warn."""
    if fitted is None and given is None:
        return
    if fitted is None:
        warnings.warn("X has feature names, but %s was fitted without feature names"
                      % owner, UserWarning, stacklevel=4)
        return
    if given is None:
        warnings.warn("X does not have valid feature names, but %s was fitted with feature "
                      "names" % owner, UserWarning, stacklevel=4)
        return
    if len(fitted) != len(given) or np.any(fitted != given):
        unseen = [n for n in given if n not in set(fitted)]
        missing = [n for n in fitted if n not in set(given)]
        detail = []
        if unseen:
            detail.append("names unseen at fit time: %s" % ", ".join(unseen[:10]))
        if missing:
            detail.append("names seen at fit time, yet now missing: %s"
                          % ", ".join(missing[:10]))
        if not detail:
            detail.append("the same names in another order")
        raise ValueError("the feature names should match those passed during fit (%s)"
                         % "; ".join(detail))
