"""The matrix products under the dense layers (src_c/gemm.inc.c and
gemm_blas.inc.c), on their own: every instruction set and both paths against
a float64 product, shapes that cross every panel, tile and K-block edge,
strided and unaligned operands, and bits that do not depend on the thread
count."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import _kernels, ops
from fastnn._threads import blas_threads

from .tolerances import assert_close, gemm_scale

# (M, N, K): single rows, columns and terms; sizes that are not a multiple of
# any panel (4, 6, 8, 16, 32 wide); M past one macro tile (32 panels of 6
# rows = 192); K past one and two K blocks (256 floats, 192 doubles); N wide
# enough for A to be packed (512 columns or more: the last shape), the others read A
# in place
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 9), (3, 4, 1), (6, 16, 8), (7, 17, 257),
          (13, 33, 193), (64, 10, 128), (193, 40, 70), (200, 257, 513), (31, 129, 385),
          (70, 530, 300)]
TRANSPOSES = [(0, 0), (1, 0), (0, 1), (1, 1)]


def _operands(rng, M, N, K, ta, tb, dtype):
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    return A, B


def _gemm(A, B, C, ta, tb, accumulate=False, nt=1):
    with blas_threads(1):  # the BLAS path makes one single-threaded call per block
        _kernels.gemm(A, B, C, ta, tb, accumulate, nt)
    return C


def _want(A, B, ta, tb):
    a = A.astype(np.float64).T if ta else A.astype(np.float64)
    b = B.astype(np.float64).T if tb else B.astype(np.float64)
    return a, b, a @ b


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("trans", TRANSPOSES, ids=lambda t: "t%d%d" % t)
def test_gemm_matches_the_float64_product(shape, trans, dtype, gemm_variant, rng):
    M, N, K = shape
    A, B = _operands(rng, M, N, K, *trans, dtype)
    a, b, want = _want(A, B, *trans)
    got = _gemm(A, B, np.full((M, N), np.nan, dtype), *trans)
    assert_close(got, want.astype(dtype), "gemm", scale=gemm_scale(a, b), k=K, dtype=dtype)


@pytest.mark.parametrize("shape", [(1, 1, 1), (13, 33, 193), (200, 257, 513)], ids=str)
def test_gemm_accumulates_onto_the_output(shape, dtype, gemm_variant, rng):
    M, N, K = shape
    A, B = _operands(rng, M, N, K, 1, 0, dtype)
    C0 = rng.standard_normal((M, N)).astype(dtype)
    a, b, want = _want(A, B, 1, 0)
    got = _gemm(A, B, C0.copy(), 1, 0, accumulate=True)
    assert_close(got, (want + C0).astype(dtype), "gemm", scale=gemm_scale(a, b) + 4, k=K + 1,
                 dtype=dtype)


@pytest.mark.parametrize("trans", TRANSPOSES, ids=lambda t: "t%d%d" % t)
def test_gemm_strided_unaligned_operands_and_nothing_written_outside(trans, dtype,
                                                                     gemm_variant, rng):
    """Operands are row-strided views starting one element into their buffer
    (so no panel is aligned); the output's neighbours keep their values."""
    M, N, K = 37, 45, 300
    A, B = _operands(rng, M, N, K, *trans, dtype)
    a, b, want = _want(A, B, *trans)

    def embed(x):
        big = rng.standard_normal((x.shape[0] + 2, x.shape[1] + 5)).astype(dtype)
        view = big[1:-1, 1:-4]
        view[...] = x
        return big, view

    _, Av = embed(A)
    _, Bv = embed(B)
    Cbig, Cv = embed(np.full((M, N), np.nan, dtype))
    Cbefore = Cbig.copy()
    _gemm(Av, Bv, Cv, *trans)
    assert_close(Cv, want.astype(dtype), "gemm", scale=gemm_scale(a, b), k=K, dtype=dtype)
    inside = np.zeros(Cbig.shape, bool)
    inside[1:-1, 1:-4] = True
    np.testing.assert_array_equal(Cbig[~inside], Cbefore[~inside])


@pytest.mark.parametrize("shape", [(130, 300, 257), (512, 70, 64), (9, 1030, 40)], ids=str)
@pytest.mark.parametrize("trans", TRANSPOSES, ids=lambda t: "t%d%d" % t)
def test_gemm_bits_do_not_depend_on_the_thread_count(shape, trans, dtype, gemm_variant, rng):
    M, N, K = shape
    A, B = _operands(rng, M, N, K, *trans, dtype)
    one = _gemm(A, B, np.empty((M, N), dtype), *trans, nt=1)
    for nt in (2, 3, 7):
        np.testing.assert_array_equal(_gemm(A, B, np.empty((M, N), dtype), *trans, nt=nt), one)


def test_avx2_and_avx512_products_agree_to_the_bit(dtype, rng):
    """Both use FMA with the same K blocks and one chain per element, so their
    products are the same bits (runs where the CPU has both)."""
    if "avx512" not in fastnn.available_isas():
        pytest.skip("this CPU does not run AVX-512")
    A, B = _operands(rng, 200, 257, 513, 0, 1, dtype)
    fastnn.set_gemm_path("packed")
    fastnn.set_isa("avx2")
    two = _gemm(A, B, np.empty((200, 257), dtype), 0, 1, nt=2)
    fastnn.set_isa("avx512")
    np.testing.assert_array_equal(_gemm(A, B, np.empty((200, 257), dtype), 0, 1, nt=2), two)


def test_gemm_rejects_mismatched_shapes(dtype):
    A = np.ones((3, 4), dtype)
    with pytest.raises(ValueError, match="do not match"):
        _kernels.gemm(A, np.ones((5, 2), dtype), np.empty((3, 2), dtype), 0, 0, 0, 1)
    with pytest.raises(ValueError, match="do not match"):
        _kernels.gemm(A, np.ones((4, 2), dtype), np.empty((3, 3), dtype), 0, 0, 0, 1)


def test_gemm_path_selection():
    assert fastnn.get_gemm_path() == "auto"
    assert fastnn.set_gemm_path("blas") == "auto"
    assert fastnn.set_gemm_path(" Packed ") == "blas"
    assert fastnn.get_gemm_path() == "packed"
    with pytest.raises(ValueError, match="unknown GEMM path 'fast'"):
        fastnn.set_gemm_path("fast")
    with pytest.raises(TypeError):
        fastnn.set_gemm_path(1)
    assert fastnn.get_gemm_path() == "packed"


def _import_with_gemm(value):
    env = dict(os.environ, FASTNN_GEMM=value)
    code = "import fastnn; print(fastnn.get_gemm_path()); fastnn.show_config()"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("name, shown", [("packed", "packed micro-kernels"),
                                          ("blas", "the BLAS"), ("auto", "")])
def test_environment_variable_selects_the_gemm_path(name, shown):
    result = _import_with_gemm(name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == name
    assert "matrix products: %s" % shown in result.stdout


def test_environment_variable_refuses_an_unknown_gemm_path():
    result = _import_with_gemm("fastest")
    assert result.returncode != 0
    assert "FASTNN_GEMM=fastest" in result.stderr and "unknown GEMM path" in result.stderr


@pytest.mark.parametrize("act", list(fastnn.ACTIVATIONS))
def test_weight_gradient_prologue_gives_the_bits_of_separate_passes(act, dtype, isa, rng):
    """On the packed path dZ = dA g'(A) and db are computed while dZ is packed
    for the weight gradient; the BLAS path runs the separate passes. dZ and
    db (no GEMM in either) must be the same bits, on 1 and 2 threads."""
    m, n_in, n_out = 150, 40, 37  # 37 columns: a partial panel in every variant
    X = rng.standard_normal((m, n_in)).astype(dtype)
    W = rng.standard_normal((n_in, n_out)).astype(dtype)
    A = ops.dense_forward(X, W, rng.standard_normal(n_out).astype(dtype), act)
    dA = rng.standard_normal(A.shape).astype(dtype)
    got = {}
    for path in ("packed", "blas"):
        fastnn.set_gemm_path(path)
        for nt in (1, 2):
            dZ = np.empty_like(dA)
            _, _, db = ops.dense_backward(X, W, A, dA, act, out_dZ=dZ, n_threads=nt)
            got[path, nt] = (dZ, db)
    for key, (dZ, db) in got.items():
        np.testing.assert_array_equal(dZ, got["blas", 1][0], err_msg=str(key))
        np.testing.assert_array_equal(db, got["blas", 1][1], err_msg=str(key))


def test_auto_path_follows_the_instruction_set():
    paths = _kernels.GEMM_PATHS
    for isa in fastnn.available_isas():
        fastnn.set_isa(isa)
        fastnn.set_gemm_path("auto")
        want = paths["blas"] if isa == "generic" else paths["packed"]
        assert _kernels.gemm_path_in_use() == want, isa
        for forced in ("packed", "blas"):
            fastnn.set_gemm_path(forced)
            assert _kernels.gemm_path_in_use() == paths[forced]
