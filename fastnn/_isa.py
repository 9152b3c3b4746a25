"""Which instruction-set variant of the elementwise kernels runs.

The elementwise loops (activations, the vector exp/log/tanh behind them and
the fused losses, optimizer updates) are compiled for AVX-512, AVX2 and the
compiler's portable baseline (src_c/fnn_isa.h). At import fastnn uses the
fastest one this CPU runs, or the one the environment variable FASTNN_ISA
names (``avx512``, ``avx2``, ``generic``, or ``auto``). Every variant computes
the same bits; they differ in speed only. ``set_isa`` switches at run time,
for tests and comparisons: call it while no fastnn kernel is running.
"""

import os

from fastnn import _kernels

ENV_VAR = "FASTNN_ISA"
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


def _select_from_environment():
    value = os.environ.get(ENV_VAR, "").strip()
    try:
        set_isa(value or "auto")
    except (ValueError, RuntimeError) as exc:
        raise ImportError("%s=%s: %s" % (ENV_VAR, value, exc)) from None


_select_from_environment()
