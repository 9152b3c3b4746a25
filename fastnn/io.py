"""Saving and loading models: a documented .npz format, written atomically,
read without ever unpickling.

Format (version 1), every entry a plain NumPy array:

- ``format``: the string "fastnn-model"; ``format_version``: int64 1
- ``architecture``: UTF-8 bytes (uint8) of a JSON object: {"layers": [...],
  "input_dim": int, "dtype": "float32"|"float64", "seed": int|null,
  "seed_": int, "loss": str|null, "epochs_trained": int, "t": int,
  "optimizer": {...}|null, "y_1d": bool}
- ``W0``, ``b0``, ``W1``, ``b1``, ...: the parameters of each Dense layer
- optionally ``opt_state0``, ``opt_state1``: the optimizer state arenas
  (flat, like the parameters), so training resumes exactly where it stopped

save writes to a temporary file in the target's folder, flushes and fsyncs
it, then renames it over the target: a crash leaves the old file or the new
one, never a mix. load checks every name, shape and dtype against the
architecture before building anything.
"""

import json
import os
import tempfile

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
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".npz.tmp", dir=folder)
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
    with data:
        try:
            names = set(data.files)
            _expect({"format", "format_version", "architecture"} <= names,
                    "%s is not a fastnn model file (missing format or architecture)" % path)
            fmt = data["format"]
            _expect(fmt.dtype.kind == "U" and fmt.shape == () and str(fmt) == FORMAT,
                    "%s is not a fastnn model file (format is %r)" % (path, fmt))
            version = data["format_version"]
            _expect(version.dtype.kind == "i" and version.shape == () and
                    int(version) == FORMAT_VERSION,
                    "unsupported model format version %r (this fastnn reads %d)"
                    % (version, FORMAT_VERSION))
            raw = data["architecture"]
            _expect(raw.dtype == np.uint8 and raw.ndim == 1 and raw.size <= MAX_ARCH_BYTES,
                    "architecture entry must be UTF-8 bytes")
            try:
                arch = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ModelFileError("architecture is not valid JSON: %s" % exc) from exc
            _expect(isinstance(arch, dict), "architecture must be a JSON object")
            model = _build(arch, Sequential, Dense, layer_from_config)
            arrays = {name: data[name] for name in names
                      if name not in ("format", "format_version", "architecture")}
            _fill(model, arrays, arch, optimizer_from_config)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ModelFileError("%s is malformed: %s" % (path, exc)) from exc
    return model


def _build(arch, Sequential, Dense, layer_from_config):
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
    model.build(input_dim)
    return model


def _fill(model, arrays, arch, optimizer_from_config):
    from fastnn.losses import LOSSES
    n_dense = len(model.dense_layers_)
    expected = {"W%d" % i for i in range(n_dense)} | {"b%d" % i for i in range(n_dense)}
    opt_cfg = arch.get("optimizer")
    optimizer = None
    if opt_cfg is not None:
        _expect(isinstance(opt_cfg, dict), "optimizer must be a JSON object or null")
        optimizer = optimizer_from_config(opt_cfg)
        expected |= {"opt_state%d" % i for i in range(optimizer.n_states)}
    missing, extra = expected - set(arrays), set(arrays) - expected
    _expect(not missing, "missing arrays: %s" % ", ".join(sorted(missing)))
    _expect(not extra, "unexpected arrays: %s" % ", ".join(sorted(extra)))
    dtype = model.dtype
    for i, (W, b) in enumerate(model.weights):
        for name, target in (("W%d" % i, W), ("b%d" % i, b)):
            arr = arrays[name]
            _expect(arr.shape == target.shape, "%s has shape %s but the architecture needs %s"
                    % (name, arr.shape, target.shape))
            _expect(arr.dtype == dtype, "%s has dtype %s but the model is %s"
                    % (name, arr.dtype, dtype))
            _expect(bool(np.all(np.isfinite(arr))), "%s contains NaN or infinity" % name)
            target[...] = arr
    loss = arch.get("loss")
    _expect(loss is None or loss in LOSSES, "unknown loss %r" % (loss,))
    model.loss_ = loss
    model.epochs_trained_ = _int(arch.get("epochs_trained", 0), "epochs_trained")
    model.t_ = _int(arch.get("t", 0), "t")
    model.y_1d_ = bool(arch.get("y_1d", True))
    if optimizer is not None:
        states = []
        for i in range(optimizer.n_states):
            arr = arrays["opt_state%d" % i]
            _expect(arr.shape == (model.arena_.n_params,) and arr.dtype == dtype,
                    "opt_state%d must be a flat %s array of %d values"
                    % (i, dtype, model.arena_.n_params))
            states.append(np.ascontiguousarray(arr))
        model.optimizer_ = optimizer
        model.optimizer_state_ = states
