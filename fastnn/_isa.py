"""Which instruction-set variant of the kernels runs, and which path the
matrix products take.

The elementwise loops (activations, the vector exp/log/tanh behind them and
the fused losses, optimizer updates) and the GEMM micro-kernels are compiled
for AVX-512, AVX2 and the compiler's portable baseline (src_c/fnn_isa.h). At
import fastnn uses the fastest one this CPU runs, or the one the environment
variable FASTNN_ISA names (``avx512``, ``avx2``, ``generic``, or ``auto``).
The elementwise loops compute the same bits in every variant; the matrix
products of AVX2 and AVX-512 use fused multiply-adds, so their last bits
differ from the generic variant's (never with the thread count).

The matrix products take the packed micro-kernels with AVX2 and AVX-512 and
the BLAS with the generic variant (``auto``); FASTNN_GEMM or ``set_gemm_path``
forces ``packed`` or ``blas``, to compare them. ``set_isa`` and
``set_gemm_path`` switch at run time, for tests and comparisons: call them
while no fastnn kernel is running.
"""

import os

from fastnn import _kernels

ENV_VAR = "FASTNN_ISA"
GEMM_ENV_VAR = "FASTNN_GEMM"
ISA_NAMES = tuple(_kernels.isa_names())  # by id: generic, avx2, avx512


def available_isas():
    """The variants this machine runs, fastest first."""
    return [name for i, name in reversed(list(enumerate(ISA_NAMES))) if _kernels.isa_supported(i)]


def get_isa():
    """The name of the variant in use."""
    return ISA_NAMES[_kernels.isa_current()]


def set_isa(name):
    """Use the named variant ('auto' for the fastest); returns the previous name.

    Raises ValueError for an unknown name and RuntimeError for a variant this
    CPU cannot run."""
    if not isinstance(name, str):
        raise TypeError("the instruction set must be a string, got %r" % (name,))
    key = name.strip().lower()
    if key == "auto":
        isa = _kernels.isa_best()
    elif key in ISA_NAMES:
        isa = ISA_NAMES.index(key)
        if not _kernels.isa_supported(isa):
            raise RuntimeError(
                "instruction set %r is not supported by this CPU or this build; available: %s"
                % (key, ", ".join(available_isas())))
    else:
        raise ValueError("unknown instruction set %r: expected one of auto, %s"
                         % (name, ", ".join(reversed(ISA_NAMES))))
    previous = get_isa()
    _kernels.isa_select(isa)
    return previous


def get_gemm_path():
    """The GEMM path in use: 'auto', 'packed' or 'blas'."""
    by_id = {v: k for k, v in _kernels.GEMM_PATHS.items()}
    return by_id[_kernels.gemm_selected_path()]


def set_gemm_path(name):
    """Force the matrix products onto 'packed' or 'blas', or back to 'auto'
    (the instruction set decides); returns the previous name."""
    if not isinstance(name, str):
        raise TypeError("the GEMM path must be a string, got %r" % (name,))
    key = name.strip().lower()
    if key not in _kernels.GEMM_PATHS:
        raise ValueError("unknown GEMM path %r: expected one of %s"
                         % (name, ", ".join(_kernels.GEMM_PATHS)))
    previous = get_gemm_path()
    _kernels.gemm_select_path(_kernels.GEMM_PATHS[key])
    return previous


def _select_from_environment():
    for var, select in ((ENV_VAR, set_isa), (GEMM_ENV_VAR, set_gemm_path)):
        value = os.environ.get(var, "").strip()
        try:
            select(value or "auto")
        except (ValueError, RuntimeError) as exc:
            raise ImportError("%s=%s: %s" % (var, value, exc)) from None


_select_from_environment()
