"""The model file format: a documented .npz, written atomically, read without
ever unpickling. This module reads and writes a model's state dict
(:meth:`fastnn.Sequential.state_dict`); building the model is the model's job.

Format (version 1), every entry a plain NumPy array:

- ``format``: the string "fastnn-model"; ``format_version``: int64 1
- ``architecture``: UTF-8 bytes (uint8) of a JSON object: {"layers": [...],
  "input_dim": int, "dtype": "float32"|"float64", "seed": int|null,
  "seed_": int, "loss": str|null, "epochs_trained": int, "t": int,
  "optimizer_first_epoch": int|null (optional: the epochs_trained at which
  the optimizer took its first step; absent or null when not known, when an
  epoch-unit schedule takes its epoch from the steps), "optimizer": {...}|null,
  "y_1d": bool}
- ``W0``, ``b0``, ``W1``, ``b1``, ...: the parameters of each Dense layer
- optionally ``centers``: the class centers of a center loss, (classes, features)
- optionally ``classes``: the class labels of a classifier, sorted and distinct,
  one per output unit for cross_entropy, two for binary_cross_entropy with
  one output; integers, booleans, finite floats or unicode strings
- optionally ``feature_names``: the column names the model was fitted on,
  unicode strings, one per input feature
- optionally ``opt_state0``, ``opt_state1``: the optimizer state arenas
  (flat, like the parameters), so training resumes exactly where it stopped

write_state writes to a temporary file in the target's folder, flushes and fsyncs
it, then renames it over the target: a crash leaves the old file or the new
one, never a mix. read_state checks every name, and every array's shape and dtype
(from its .npy header) against the architecture before reading the array's
data or building anything; whatever is wrong with a file, down to a damaged
zip entry, raises ModelFileError.
"""

import json
import os
import stat

import numpy as np

from fastnn.layers import Dense, check_slopes, check_stack, dense_shapes, layer_from_config
from fastnn.losses import LOSSES
from fastnn.optim import optimizer_from_config

FORMAT = "fastnn-model"
MAX_LABEL_CHARS = 1024  # the longest class label or feature name a file may hold
FORMAT_VERSION = 1
MAX_UNITS = 1 << 24          # per layer: far beyond any MLP, far below an absurd allocation
MAX_PARAMS = 1 << 31         # whole model
MAX_LAYERS = 4096
MAX_ARCH_BYTES = 1 << 20


class ModelFileError(ValueError):
    """A model file is missing, truncated, malformed or inconsistent."""


def write_state(state, path):
    """Write a model's state (Sequential.state_dict()) to `path` atomically."""
    path = os.fspath(path)
    arrays = {"format": np.array(FORMAT), "format_version": np.array(FORMAT_VERSION, np.int64),
              "architecture": np.frombuffer(json.dumps(state["config"]).encode("utf-8"),
                                            dtype=np.uint8)}
    arrays.update(state["arrays"])
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _create_temp(folder):
    """A new, exclusively created temporary file in `folder`. Unlike
    tempfile.mkstemp (mode 0600) it gets the permissions any new file gets
    (0666 less the umask), so the saved model does too."""
    for _ in range(100):
        tmp = os.path.join(folder, ".fastnn-%s.npz.tmp" % os.urandom(8).hex())
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                           getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError("no free temporary file name in %s" % folder)


def _expect(cond, message):
    if not cond:
        raise ModelFileError(message)


def _int(value, name, low=0, high=None):
    _expect(isinstance(value, int) and not isinstance(value, bool),
            "architecture field %r must be an integer, got %r" % (name, value))
    _expect(value >= low and (high is None or value <= high),
            "architecture field %r = %d is out of range" % (name, value))
    return value


def read_state(path):
    """The state a file written by write_state holds: {"config": the
    architecture with every field present, "arrays": name -> array}, every
    field, name, shape and dtype checked. Raises ModelFileError for anything
    malformed."""
    path = os.fspath(path)
    # a pipe or a device would block or never end: only a regular file is read
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:  # a path through a file, a NUL, too long
        raise ModelFileError("%s is not a readable .npz model file: %s" % (path, exc)) from exc
    if not stat.S_ISREG(mode):
        raise ModelFileError("%s is not a regular file, so not a .npz model file" % path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ModelFileError("%s is not a readable .npz model file: %s" % (path, exc)) from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ModelFileError("%s holds a single .npy array, not a .npz model file" % path)
    with data:
        try:
            names = _entry_names(data, path)
            arch = _architecture(data, path)
            expected, dtype, n_classes = _expected_arrays(arch, names)
            rest = names - {"format", "format_version", "architecture", "classes",
                            "feature_names"}
            arrays = _read_arrays(data, rest, expected, dtype)
            if "classes" in names:
                arrays["classes"] = _read_classes(data, n_classes)
            if "feature_names" in names:
                arrays["feature_names"] = _read_feature_names(data, arch["input_dim"])
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise ModelFileError("%s is malformed: %s" % (path, exc)) from exc
    return {"config": arch, "arrays": arrays}


def _entry_names(data, path):
    members = data.zip.namelist()
    _expect(len(set(members)) == len(members) and all(name.endswith(".npy") for name in members),
            "%s holds entries that are not distinct .npy arrays" % path)
    names = {name[:-4] for name in members}
    _expect({"format", "format_version", "architecture"} <= names,
            "%s is not a fastnn model file (missing format or architecture)" % path)
    return names


def _architecture(data, path):
    """The architecture JSON object, after the format and version entries."""
    shape, dtype = _header(data, "format")
    _expect(dtype.kind == "U" and shape == () and dtype.itemsize <= 256,
            "%s is not a fastnn model file (format entry is %s %s)" % (path, dtype, shape))
    fmt = _array(data, "format")
    _expect(str(fmt) == FORMAT, "%s is not a fastnn model file (format is %r)" % (path, str(fmt)))
    shape, dtype = _header(data, "format_version")
    _expect(dtype.kind == "i" and shape == (),
            "format_version must be an integer scalar, got %s %s" % (dtype, shape))
    version = _array(data, "format_version")
    _expect(int(version) == FORMAT_VERSION, "unsupported model format version %r (this "
            "fastnn reads %d)" % (int(version), FORMAT_VERSION))
    shape, dtype = _header(data, "architecture")
    _expect(dtype == np.uint8 and len(shape) == 1 and shape[0] <= MAX_ARCH_BYTES,
            "architecture entry must be at most %d UTF-8 bytes" % MAX_ARCH_BYTES)
    raw = _array(data, "architecture")
    try:
        arch = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError("architecture is not valid JSON: %s" % exc) from exc
    _expect(isinstance(arch, dict), "architecture must be a JSON object")
    return arch


def _header(data, name):
    """(shape, dtype) from the .npy header of one entry, read without its data,
    so an entry that declares a huge or unexpected array costs nothing."""
    try:
        with data.zip.open(name + ".npy") as f:
            version = np.lib.format.read_magic(f)
            _expect(version in ((1, 0), (2, 0)),
                    "entry %s has unsupported .npy version %s" % (name, version))
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
    except ModelFileError:
        raise
    except Exception as exc:  # zipfile, zlib and numpy errors of a damaged entry
        raise ModelFileError("%s: entry %s cannot be read: %s"
                             % (data.zip.filename, name, exc)) from exc
    return shape, dtype


def _array(data, name):
    """One entry's array, after _header has accepted its shape and dtype."""
    try:
        with data.zip.open(name + ".npy") as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except Exception as exc:  # zipfile, zlib and numpy errors of a damaged entry
        raise ModelFileError("%s: entry %s cannot be read: %s"
                             % (data.zip.filename, name, exc)) from exc


def _check_layer_configs(layers_cfg):
    _expect(isinstance(layers_cfg, list) and 0 < len(layers_cfg) <= MAX_LAYERS,
            "architecture 'layers' must be a non-empty list")
    for cfg in layers_cfg:
        _expect(isinstance(cfg, dict), "each layer must be a JSON object")
        if cfg.get("type") == "Dense":
            _int(cfg.get("units"), "units", 1, MAX_UNITS)
            _expect(isinstance(cfg.get("activation"), str) and isinstance(cfg.get("init"), str),
                    "Dense layer needs string 'activation' and 'init'")
            _expect(isinstance(cfg.get("alpha", 0.01), (int, float)) and
                    not isinstance(cfg.get("alpha", 0.01), bool), "alpha must be a number")
        elif cfg.get("type") == "Dropout":
            _expect(isinstance(cfg.get("rate"), (int, float)) and
                    not isinstance(cfg.get("rate"), bool), "Dropout rate must be a number")
    return check_stack([layer_from_config(cfg) for cfg in layers_cfg])


def _expected_arrays(arch, names):
    """Check every architecture field, filling the optional ones in `arch` with
    their defaults; return ({array name: shape}, dtype) of the arrays it needs
    (and of the optional class centers when the file has them), and the number
    of class labels the model's loss has (0 for a regression)."""
    layers = _check_layer_configs(arch.get("layers"))
    input_dim = _int(arch.get("input_dim"), "input_dim", 1, MAX_UNITS)
    _expect(arch.get("dtype") in ("float32", "float64"), "dtype must be float32 or float64")
    try:
        check_slopes([layer for layer in layers if isinstance(layer, Dense)], arch["dtype"])
    except ValueError as exc:
        _expect(False, str(exc))
    seed = arch.get("seed")
    if seed is not None:
        _int(seed, "seed", 0, 2**64 - 1)
    arch["seed_"] = _int(arch.get("seed_", seed if seed is not None else 0), "seed_", 0,
                         2**64 - 1)
    shapes = dense_shapes(layers, input_dim)
    n_params = sum((n_in + 1) * n_out for n_in, n_out in shapes)
    _expect(n_params <= MAX_PARAMS, "the architecture declares %d parameters, more than "
            "fastnn loads (%d)" % (n_params, MAX_PARAMS))
    expected = {"W%d" % i: shape for i, shape in enumerate(shapes)}
    expected.update({"b%d" % i: (shape[1],) for i, shape in enumerate(shapes)})
    if "centers" in names and len(shapes) >= 2:  # a center loss's: (classes, features)
        expected["centers"] = (shapes[-1][1], shapes[-1][0])
    opt_cfg = arch.setdefault("optimizer", None)
    if opt_cfg is not None:
        _expect(isinstance(opt_cfg, dict), "optimizer must be a JSON object or null")
        n_states = optimizer_from_config(opt_cfg).n_states
        expected.update({"opt_state%d" % i: (n_params,) for i in range(n_states)})
    loss = arch.setdefault("loss", None)
    _expect(loss is None or loss in LOSSES, "unknown loss %r" % (loss,))
    _expect(isinstance(arch.setdefault("y_1d", True), bool),
            "architecture field 'y_1d' must be true or false")
    arch["epochs_trained"] = _int(arch.get("epochs_trained", 0), "epochs_trained", 0, 2**63 - 1)
    arch["t"] = _int(arch.get("t", 0), "t", 0, 2**63 - 1)
    first = arch.get("optimizer_first_epoch")  # absent or null: not known
    if first is not None:
        _int(first, "optimizer_first_epoch", 0)
        _expect(first <= arch["epochs_trained"], "architecture field 'optimizer_first_epoch' = "
                "%d is after epochs_trained = %d (the epoch the optimizer started at is one "
                "already trained)" % (first, arch["epochs_trained"]))
    arch["optimizer_first_epoch"] = first
    n_outputs = shapes[-1][1]
    n_classes = {"cross_entropy": n_outputs,
                 "binary_cross_entropy": 2 if n_outputs == 1 else 0}.get(loss, 0)
    _expect("classes" not in names or n_classes > 0,
            "the file has class labels, but its loss %r has no classes" % (loss,))
    return expected, np.dtype(arch["dtype"]), n_classes


def _read_feature_names(data, n_features):
    """The column names: n_features unicode strings (checked from the header)."""
    shape, dtype = _header(data, "feature_names")
    _expect(shape == (n_features,), "feature_names has shape %s but the model has %d inputs"
            % (shape, n_features))
    _expect(dtype.kind == "U" and dtype.itemsize <= 4 * MAX_LABEL_CHARS,
            "feature_names must hold strings, got dtype %s" % dtype)
    return _array(data, "feature_names")


def _read_classes(data, n_classes):
    """The class labels: n_classes sorted, distinct integers, booleans, finite
    whole-number floats (fit takes labels 1.0, 2.0, ...) or unicode strings
    (checked from the header before the data is read)."""
    shape, dtype = _header(data, "classes")
    _expect(shape == (n_classes,), "classes has shape %s but the model has %d classes"
            % (shape, n_classes))
    _expect(dtype.kind in "iubUf" and dtype.itemsize <= 4 * MAX_LABEL_CHARS,
            "classes must hold integers, booleans, floats or strings of at most %d "
            "characters, got dtype %s" % (MAX_LABEL_CHARS, dtype))
    classes = _array(data, "classes")
    if dtype.kind == "f":
        _expect(bool(np.all(np.isfinite(classes))), "classes contains NaN or infinity")
    _expect(np.array_equal(np.unique(classes), classes), "classes must be sorted and distinct")
    return classes


def _read_arrays(data, names, expected, dtype):
    """Check the names, shapes and dtypes of the arrays (from their .npy
    headers, before reading any data), then read them and check they are finite."""
    missing, extra = set(expected) - names, names - set(expected)
    _expect(not missing, "missing arrays: %s" % ", ".join(sorted(missing)))
    _expect(not extra, "unexpected arrays: %s" % ", ".join(sorted(extra)))
    for name in sorted(expected):
        shape, arr_dtype = _header(data, name)
        _expect(shape == expected[name], "%s has shape %s but the architecture needs %s"
                % (name, shape, expected[name]))
        _expect(arr_dtype == dtype, "%s has dtype %s but the model is %s"
                % (name, arr_dtype, dtype))
    arrays = {}
    for name in sorted(expected):
        arr = _array(data, name)
        _expect(bool(np.all(np.isfinite(arr))), "%s contains NaN or infinity" % name)
        arrays[name] = np.ascontiguousarray(arr)
    return arrays
