"""Shared fixtures: dtype, thread count, a seeded generator, and array layouts;
and the record of which ops each test holds against fastnn.reference."""

import functools
import json
import os
import sys
import zlib

import numpy as np
import pytest

import fastnn

DTYPES = [np.float32, np.float64]
THREADS = [1, 2]


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(params=THREADS, ids=["1thread", "2threads"])
def n_threads(request):
    return request.param


@pytest.fixture(params=fastnn.available_isas())
def isa(request):
    """Each instruction-set variant this machine runs (FASTNN_ISA's choices)."""
    fastnn.set_isa(request.param)
    return request.param


GEMM_VARIANTS = [(isa, path) for isa in fastnn.available_isas() for path in ("packed", "blas")]


@pytest.fixture(params=GEMM_VARIANTS, ids=["-".join(v) for v in GEMM_VARIANTS])
def gemm_variant(request):
    """Each instruction set this machine runs with each path of the matrix
    products: its packed micro-kernels and the BLAS."""
    isa, path = request.param
    fastnn.set_isa(isa)
    fastnn.set_gemm_path(path)
    return request.param


@pytest.fixture
def rng(request):
    # a different but reproducible stream per test
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


def with_layout(a, layout):
    """The same values as `a` in another memory layout: C order, Fortran order,
    a strided view, or a read-only array."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        big = np.zeros((a.shape[0] * 2,) + a.shape[1:] if a.ndim == 1
                       else (a.shape[0] * 2, a.shape[1] * 3), dtype=a.dtype)
        view = big[::2] if a.ndim == 1 else big[::2, ::3]
        view[...] = a
        return view
    if layout == "readonly":
        r = np.array(a)
        r.flags.writeable = False
        return r
    raise ValueError(layout)


LAYOUTS = ["C", "F", "strided", "readonly"]


@pytest.fixture(autouse=True)
def _restore_threads_and_isa():
    before, isa_before = fastnn.get_num_threads(), fastnn.get_isa()
    gemm_before = fastnn.get_gemm_path()
    yield
    fastnn.set_num_threads(before)
    fastnn.set_isa(isa_before)
    fastnn.set_gemm_path(gemm_before)


# ---------------------------------------------------------------- ops held against the reference

# Each public op and its fastnn.reference twin is wrapped, once for the session,
# in a proxy that notes the calls made from test code. A test that calls both
# holds one against the other; test_build.py checks that every op has such a
# test (collected at run time, so new test files count without being listed).
from fastnn import ops as _ops  # noqa: E402
from fastnn import reference as _ref  # noqa: E402

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_calls = None  # {"ops": set(), "ref": set()} while a test runs


def _recording(fn, name, side):
    @functools.wraps(fn)
    def proxy(*args, **kwargs):
        calls = _calls
        if calls is not None and sys._getframe(1).f_code.co_filename.startswith(_TESTS_DIR):
            calls[side].add(name)
        return fn(*args, **kwargs)
    return proxy


for _side, _module in (("ops", _ops), ("ref", _ref)):
    for _name in _module.__all__:
        setattr(_module, _name, _recording(getattr(_module, _name), _name, _side))

# a run started by test_build.py to find the tests of some ops: it stops as soon
# as each has one, and reports the ops found to a file
_WANTED = os.environ.get("FASTNN_PARITY_WANTED")
_REPORT = os.environ.get("FASTNN_PARITY_REPORT")


@pytest.fixture(scope="session")
def parity_calls():
    """The ops that a test of this session called together with their reference twin."""
    return set()


@pytest.fixture(autouse=True)
def _record_parity_calls(request, parity_calls):
    global _calls
    _calls = {"ops": set(), "ref": set()}
    yield
    parity_calls.update(_calls["ops"] & _calls["ref"])
    _calls = None
    if _REPORT:
        with open(_REPORT, "w") as f:
            json.dump(sorted(parity_calls), f)
        if set(_WANTED.split(",")) <= parity_calls:
            request.session.shouldstop = "every wanted op has a test against its reference"


def pytest_configure(config):
    config.addinivalue_line("markers", "after_all_tests: runs after every other test of the "
                                       "session (it checks what they did)")


def pytest_collection_modifyitems(items):
    if _REPORT:
        # first the first case of each test function and its first case named
        # after each wanted op (optimizers are parametrized by name), then the
        # second case of each function, ...: each op is found after few cases
        stems = [name[:-len("_step")] if name.endswith("_step") else name
                 for name in _WANTED.split(",")]
        cases, rank = {}, {}
        for item in items:
            function, _, case = item.nodeid.partition("[")
            index, named = cases.setdefault(function, [0, set()])
            new = {stem for stem in stems if stem in case} - named
            rank[item.nodeid] = 0 if index == 0 or new else index
            cases[function] = [index + 1, named | new]
        items.sort(key=lambda item: rank[item.nodeid])
    items.sort(key=lambda item: item.get_closest_marker("after_all_tests") is not None)
