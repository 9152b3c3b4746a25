"""pytest configuration for the fastnn benchmarks: collects this folder's
``bench_*.py`` files (pytest's default ``python_files`` only matches
``test_*.py``) and prints the thread and BLAS setup in the report header.

Run from the repository root:

    python -m pytest bench/ --benchmark-only -p no:cacheprovider
"""

from fnmatch import fnmatch

import pytest


def pytest_collect_file(parent, file_path):
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    # pytest collects the file itself when it is named on the command line or
    # matches python_files (-o python_files=bench_*.py); don't add it twice
    if parent.session.isinitpath(file_path) or any(
            fnmatch(file_path.name, pat) for pat in parent.config.getini("python_files")):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_report_header(config):
    try:
        import numpy as np
        import fastnn
        from threadpoolctl import threadpool_info
        import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS so it is listed)
    except ImportError as exc:  # pragma: no cover
        return "fastnn benchmarks: %s" % exc
    pools = ", ".join("%s %s (%s threads)" % (p.get("internal_api"), p.get("version") or "",
                                              p.get("num_threads"))
                      for p in threadpool_info())
    return ["fastnn %s, numpy %s, fastnn threads: %d" % (fastnn.__version__, np.__version__,
                                                        fastnn.get_num_threads()),
            "thread pools: " + pools]
