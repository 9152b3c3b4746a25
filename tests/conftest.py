"""Shared fixtures: dtype, thread count, a seeded generator, and array layouts."""

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
