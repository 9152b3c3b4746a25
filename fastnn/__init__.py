"""fastnn: fast, exact training of dense neural networks on the CPU.

Low-level kernels live in :mod:`fastnn.ops` (C and OpenMP) with NumPy twins in
:mod:`fastnn.reference`; :func:`show_config` reports how this copy was built.
"""

__version__ = "0.1.0"

from fastnn import ops, reference  # noqa: E402
from fastnn._config import show_config  # noqa: E402
from fastnn._threads import get_num_threads, set_num_threads  # noqa: E402
from fastnn.activations import ACTIVATIONS  # noqa: E402

__all__ = ["ops", "reference", "show_config", "get_num_threads", "set_num_threads",
           "ACTIVATIONS", "__version__"]
