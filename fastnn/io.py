"""Saving and loading models: a documented .npz format, written atomically,
read without ever unpickling.

Format (version 1), every entry a plain NumPy array:

- ``format``: the string "fastnn-model"; ``format_version``: int64 1
- ``architecture``: UTF-8 bytes (uint8) of a JSON object: {"layers": [...],
  "input_dim": int, "dtype": "float32"|"float64", "seed": int|null,
  "seed_": int, "loss": str|null, "epochs_trained": int, "t": int,
  "optimizer": {...}|null, "y_1d": bool}
- ``W0``, ``b0``, ``W1``, ``b1``, ...: the parameters of each Dense layer
- optionally ``centers``: the class centers of a center loss, (classes, features)
- optionally ``opt_state0``, ``opt_state1``: the optimizer state arenas
  (flat, like the parameters), so training resumes exactly where it stopped

save writes to a temporary file in the target's folder, flushes and fsyncs
it, then renames it over the target: a crash leaves the old file or the new
one, never a mix. load checks every name, and every array's shape and dtype
(from its .npy header) against the architecture before reading the array's
data or building anything; whatever is wrong with a file, down to a damaged
zip entry, raises ModelFileError.
"""

import json
import os
import warnings

import numpy as np

FORMAT = "fastnn-model"
FORMAT_VERSION = 1
MAX_UNITS = 1 << 24          # per layer: far beyond any MLP, far below an absurd allocation
MAX_PARAMS = 1 << 31         # whole model
MAX_LAYERS = 4096
MAX_ARCH_BYTES = 1 << 20


class ModelFileError(ValueError):
    """A model file is missing, truncated, malformed or inconsistent."""


def save(model, path, include_optimizer=True):
    """Write `model` to `path` (a .npz file) atomically."""
    model._check_built()
    path = os.fspath(path)
    arch = model.get_config()
    arch.update({"seed_": int(model.seed_), "loss": model.loss_,
                 "epochs_trained": int(model.epochs_trained_), "t": int(model.t_),
                 "y_1d": bool(getattr(model, "y_1d_", True)),
                 "optimizer": (model.optimizer_.get_config()
                               if include_optimizer and model.optimizer_ is not None else None)})
    arrays = {"format": np.array(FORMAT), "format_version": np.array(FORMAT_VERSION, np.int64),
              "architecture": np.frombuffer(json.dumps(arch).encode("utf-8"), dtype=np.uint8)}
    for i, (W, b) in enumerate(model.weights):
        arrays["W%d" % i] = W
        arrays["b%d" % i] = b
    if include_optimizer and model.optimizer_state_ is not None and model.optimizer_ is not None:
        for i, state in enumerate(model.optimizer_state_):
            arrays["opt_state%d" % i] = state
    if include_optimizer and getattr(model, "centers_", None) is not None:
        arrays["centers"] = model.centers_
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


def load(path):
    """Read a model written by save. Raises ModelFileError for anything malformed."""
    from fastnn.layers import Dense, layer_from_config
    from fastnn.model import Sequential
    from fastnn.optim import optimizer_from_config

    path = os.fspath(path)
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
            members = data.zip.namelist()
            _expect(len(set(members)) == len(members) and
                    all(name.endswith(".npy") for name in members),
                    "%s holds entries that are not distinct .npy arrays" % path)
            names = {name[:-4] for name in members}
            _expect({"format", "format_version", "architecture"} <= names,
                    "%s is not a fastnn model file (missing format or architecture)" % path)
            shape, dtype = _header(data, "format")
            _expect(dtype.kind == "U" and shape == () and dtype.itemsize <= 256,
                    "%s is not a fastnn model file (format entry is %s %s)" % (path, dtype, shape))
            fmt = _array(data, "format")
            _expect(str(fmt) == FORMAT,
                    "%s is not a fastnn model file (format is %r)" % (path, str(fmt)))
            shape, dtype = _header(data, "format_version")
            _expect(dtype.kind == "i" and shape == (),
                    "format_version must be an integer scalar, got %s %s" % (dtype, shape))
            version = _array(data, "format_version")
            _expect(int(version) == FORMAT_VERSION,
                    "unsupported model format version %r (this fastnn reads %d)"
                    % (int(version), FORMAT_VERSION))
            shape, dtype = _header(data, "architecture")
            _expect(dtype == np.uint8 and len(shape) == 1 and shape[0] <= MAX_ARCH_BYTES,
                    "architecture entry must be at most %d UTF-8 bytes" % MAX_ARCH_BYTES)
            raw = _array(data, "architecture")
            try:
                arch = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ModelFileError("architecture is not valid JSON: %s" % exc) from exc
            _expect(isinstance(arch, dict), "architecture must be a JSON object")
            model, input_dim = _build(arch, Sequential, Dense, layer_from_config)
            _fill(model, input_dim, data, names - {"format", "format_version", "architecture"},
                  arch, optimizer_from_config)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise ModelFileError("%s is malformed: %s" % (path, exc)) from exc
    return model


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


def _build(arch, Sequential, Dense, layer_from_config):
    """The model the architecture describes, validated but not built yet (no
    arena), and its input_dim."""
    layers_cfg = arch.get("layers")
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
    input_dim = _int(arch.get("input_dim"), "input_dim", 1, MAX_UNITS)
    _expect(arch.get("dtype") in ("float32", "float64"), "dtype must be float32 or float64")
    seed = arch.get("seed")
    if seed is not None:
        _int(seed, "seed", 0, 2**64 - 1)
    layers = [layer_from_config(cfg) for cfg in layers_cfg]
    n_params, n_in = 0, input_dim
    for layer in layers:
        if isinstance(layer, Dense):
            n_params += (n_in + 1) * layer.units
            n_in = layer.units
    _expect(n_params <= MAX_PARAMS, "the architecture declares %d parameters, more than "
            "fastnn loads (%d)" % (n_params, MAX_PARAMS))
    model = Sequential(layers, dtype=arch["dtype"], seed=seed)
    model.seed_ = _int(arch.get("seed_", seed if seed is not None else 0), "seed_", 0,
                       2**64 - 1)
    return model, input_dim


def _fill(model, input_dim, data, names, arch, optimizer_from_config):
    """Check the names, shapes and dtypes of the parameter and optimizer-state
    arrays against the architecture (from their .npy headers, before reading
    any data), read them, then build the model and fill it."""
    from fastnn.losses import LOSSES
    shapes, n_in = [], input_dim
    for layer in model.dense_layers_:
        shapes.append((n_in, layer.units))
        n_in = layer.units
    expected = {"W%d" % i: shape for i, shape in enumerate(shapes)}
    expected.update({"b%d" % i: (shape[1],) for i, shape in enumerate(shapes)})
    opt_cfg = arch.get("optimizer")
    optimizer = None
    if opt_cfg is not None:
        _expect(isinstance(opt_cfg, dict), "optimizer must be a JSON object or null")
        optimizer = optimizer_from_config(opt_cfg)
        n_params = sum((n_in + 1) * n_out for n_in, n_out in shapes)
        expected.update({"opt_state%d" % i: (n_params,) for i in range(optimizer.n_states)})
    if "centers" in names and len(shapes) >= 2:  # optional: a center loss's class centers
        expected["centers"] = (shapes[-1][1], shapes[-1][0])
    missing, extra = set(expected) - names, names - set(expected)
    _expect(not missing, "missing arrays: %s" % ", ".join(sorted(missing)))
    _expect(not extra, "unexpected arrays: %s" % ", ".join(sorted(extra)))
    dtype = model.dtype
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
        arrays[name] = arr
    loss = arch.get("loss")
    _expect(loss is None or loss in LOSSES, "unknown loss %r" % (loss,))
    y_1d = arch.get("y_1d", True)
    _expect(isinstance(y_1d, bool), "architecture field 'y_1d' must be true or false")
    epochs_trained = _int(arch.get("epochs_trained", 0), "epochs_trained", 0, 2**63 - 1)
    t = _int(arch.get("t", 0), "t", 0, 2**63 - 1)
    with warnings.catch_warnings():  # the initial weights are replaced by the file's
        warnings.filterwarnings("ignore", "zero initialization", UserWarning)
        model.build(input_dim)
    for i, (W, b) in enumerate(model.weights):
        W[...] = arrays["W%d" % i]
        b[...] = arrays["b%d" % i]
    model.loss_, model.epochs_trained_, model.t_, model.y_1d_ = loss, epochs_trained, t, y_1d
    if "centers" in arrays:
        model.centers_ = np.ascontiguousarray(arrays["centers"])
    if optimizer is not None:
        model.optimizer_ = optimizer
        model.optimizer_state_ = [np.ascontiguousarray(arrays["opt_state%d" % i])
                                  for i in range(optimizer.n_states)]
