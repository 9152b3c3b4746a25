"""fastnn: fast, exact training of dense neural networks on the CPU.

    import fastnn as fn
    model = fn.Sequential([fn.Dense(64, activation="relu"), fn.Dense(10, activation="softmax")],
                          input_dim=64, seed=0)
    history = model.fit(X, y, optimizer=fn.optim.Adam(lr=1e-3), epochs=20)

Low-level kernels live in :mod:`fastnn.ops` (C and OpenMP) with NumPy twins in
:mod:`fastnn.reference`; :func:`show_config` reports how this copy was built.
"""

from fastnn._version import __version__  # noqa: E402,F401

from fastnn import _isa  # noqa: E402,F401  (chooses the instruction set before any kernel runs)
from fastnn import losses, ops, optim, reference, schedules, search  # noqa: E402
from fastnn._isa import available_isas, get_gemm_path, get_isa, set_gemm_path, set_isa  # noqa: E402
from fastnn._config import show_config  # noqa: E402
from fastnn._threads import get_num_threads, set_num_threads  # noqa: E402
from fastnn.activations import ACTIVATIONS, Activation, LeakyReLU  # noqa: E402
from fastnn.callbacks import Callback, EarlyStopping, ModelCheckpoint  # noqa: E402
from fastnn.history import History  # noqa: E402
from fastnn.io import ModelFileError  # noqa: E402
from fastnn.layers import Dense, Dropout  # noqa: E402
from fastnn.model import Sequential, load  # noqa: E402
from fastnn.preprocessing import Standardizer  # noqa: E402
from fastnn.trainer import NonFiniteError  # noqa: E402

__all__ = ["ops", "reference", "optim", "schedules", "losses", "search", "show_config", "get_num_threads",
           "set_num_threads", "get_isa", "set_isa", "available_isas", "get_gemm_path",
           "set_gemm_path", "ACTIVATIONS", "Activation", "LeakyReLU", "Sequential", "Dense",
           "Dropout", "Standardizer", "History", "Callback", "EarlyStopping", "ModelCheckpoint",
           "load", "ModelFileError", "NonFiniteError", "__version__"]
