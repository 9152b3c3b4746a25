"""Hostile model files, beyond tests/test_io.py: pickles that would run code
(here: create a marker file) wherever fastnn.load could meet them, a
compression bomb behind an entry that declares a small array, duplicated
entries, and device files. fastnn.load refuses each with ModelFileError,
never runs the pickle, and never allocates what the file merely declares.
"""

import io
import json
import os
import pickle
import subprocess
import sys
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastnn as fn

# seconds only a hang reaches: the loads and processes here take well under one
HANG_SECONDS = 120


class _CreatesFile:
    """Unpickling this creates the file at `path`: open(path, "w"). The pickle
    refers only to the built-in open, so it is live in any process."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
    model = fn.Sequential([fn.Dense(7, activation="relu"), fn.Dense(3, activation="softmax")],
                          input_dim=5, seed=0)
    model.fit(X, y, epochs=1, batch_size=16)
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    model.save(path)
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    return model, path, arrays


def _payload_array(marker):
    arr = np.empty(1, dtype=object)
    arr[0] = _CreatesFile(marker)
    return arr


def _npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _entry_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


# each maker writes a hostile file; it returns the path and a function that
# runs the payload the way an unguarded reader would (to show it is live)

def _raw_pickle(marker, tmp_path, arrays, protocol=2):
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(_CreatesFile(marker), protocol=protocol))
    return path, lambda: pickle.loads(path.read_bytes())


def _text_pickle(marker, tmp_path, arrays):
    return _raw_pickle(marker, tmp_path, arrays, protocol=0)


def _npy_file(marker, tmp_path, arrays):
    path = tmp_path / "model.npy"
    path.write_bytes(_entry_bytes(_payload_array(marker)))
    return path, lambda: np.load(path, allow_pickle=True)


def _entry_replaced(entry):
    def make(marker, tmp_path, arrays):
        path = _npz(tmp_path / "model.npz", dict(arrays, **{entry: _payload_array(marker)}))

        def run():
            with np.load(path, allow_pickle=True) as data:
                data[entry]
        return path, run
    return make


def _pickle_bytes_as_entry(marker, tmp_path, arrays):
    """A zip entry named like an array that holds a bare pickle, not an .npy."""
    path = tmp_path / "model.npz"
    _npz(path, arrays)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("W9.npy", pickle.dumps(_CreatesFile(marker)))

    def run():
        with zipfile.ZipFile(path) as z:
            pickle.loads(z.read("W9.npy"))
    return path, run


PAYLOADS = {
    "whole-file-is-a-pickle": _raw_pickle,
    "whole-file-is-a-protocol-0-pickle": _text_pickle,
    "npy-file-with-object-array": _npy_file,
    "W0-object-array": _entry_replaced("W0"),
    "b1-object-array": _entry_replaced("b1"),
    "opt_state0-object-array": _entry_replaced("opt_state0"),
    "architecture-object-array": _entry_replaced("architecture"),
    "format-object-array": _entry_replaced("format"),
    "format_version-object-array": _entry_replaced("format_version"),
    "extra-entry-object-array": _entry_replaced("payload"),
    "entry-holding-a-bare-pickle": _pickle_bytes_as_entry,
}


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_pickled_payload_in_a_model_file_never_runs(kind, saved, tmp_path):
    _, _, arrays = saved
    marker = tmp_path / "UNPICKLED"
    path, run_payload = PAYLOADS[kind](marker, tmp_path, arrays)
    with pytest.raises(fn.ModelFileError):
        fn.load(path)
    assert not marker.exists(), "loading the file ran the pickle"
    run_payload()  # the payload is live: an unguarded reader runs it
    assert marker.exists()


def test_pickled_payload_never_runs_in_a_fresh_process(saved, tmp_path):
    """The same in a process that has never imported this test module."""
    _, _, arrays = saved
    marker = tmp_path / "UNPICKLED"
    path = _npz(tmp_path / "model.npz", dict(arrays, W0=_payload_array(marker)))
    root = os.path.dirname(os.path.dirname(os.path.abspath(fn.__file__)))
    code = ("import sys, fastnn\n"
            "try:\n    fastnn.load(sys.argv[1])\n"
            "except fastnn.ModelFileError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=HANG_SECONDS,
                         env=dict(os.environ, PYTHONPATH=root + os.pathsep +
                                  os.environ.get("PYTHONPATH", "")))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused:")
    assert not marker.exists()


def test_compression_bomb_behind_a_small_declared_array_costs_nothing(saved, tmp_path):
    """W0.npy declares its real (5, 7) shape but is followed by 64 MB of
    zeros that compress to almost nothing: loading reads what it needs."""
    model, src, _ = saved
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            content = z.read(info.filename)
            if info.filename == "W0.npy":
                content += bytes(64 << 20)
            out.writestr(info.filename, content)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        try:
            loaded = fn.load(path)
        except fn.ModelFileError:
            loaded = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, "loading allocated %d MB" % (peak >> 20)
    if loaded is not None:  # the declared array is intact: the trailing bytes are ignored
        np.testing.assert_array_equal(loaded.get_params_flat(), model.get_params_flat())


def test_duplicated_entry_is_refused(saved, tmp_path):
    _, src, arrays = saved
    path = tmp_path / "dup.npz"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(path, "w") as out:
        for info in z.infolist():
            out.writestr(info.filename, z.read(info.filename))
        with pytest.warns(UserWarning, match="Duplicate name"):
            out.writestr("W0.npy", _entry_bytes(np.zeros_like(arrays["W0"])))
    with pytest.raises(fn.ModelFileError, match=r"not distinct"):
        fn.load(path)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_device_file_is_refused_without_reading_it_all(device):
    if not os.path.exists(device):
        pytest.skip("no %s" % device)
    raised = []

    def load():
        try:
            fn.load(device)
        except BaseException as exc:  # noqa: B036  (reported below)
            raised.append(exc)

    # /dev/zero and /dev/urandom never end: a reader that reads on never
    # returns, which only a hang bound can tell (the refusal takes milliseconds)
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive(), "loading %s has not returned" % device
    assert len(raised) == 1 and isinstance(raised[0], fn.ModelFileError), raised


def test_architecture_json_with_huge_numbers_is_refused(saved, tmp_path):
    _, _, arrays = saved
    arch = json.loads(arrays["architecture"].tobytes().decode("utf-8"))
    text = json.dumps(arch).replace('"input_dim": 5', '"input_dim": 1e999')
    path = _npz(tmp_path / "m.npz", dict(arrays, architecture=np.frombuffer(
        text.encode("utf-8"), np.uint8)))
    with pytest.raises(fn.ModelFileError, match="input_dim"):
        fn.load(path)
