"""The build: OpenMP as the environment expects, show_config, shipped .pxd
files, the BLAS that threadpoolctl sees, and the ops/reference registry."""

import importlib.resources
import inspect
import io
import os

import pytest
from threadpoolctl import threadpool_info

import fastnn
from fastnn import ops
from fastnn import reference as ref


def test_openmp_as_expected():
    # CI builds with FASTNN_OPENMP=1 (fail without OpenMP) and sets this too
    if os.environ.get("FASTNN_EXPECT_OPENMP") == "1":
        assert fastnn._openmp.openmp_enabled()
        assert fastnn._kernels.openmp_enabled()
    assert fastnn._openmp.openmp_enabled() == fastnn._kernels.openmp_enabled()


def test_show_config_reports_the_build():
    buf = io.StringIO()
    fastnn.show_config(file=buf)
    text = buf.getvalue()
    assert fastnn.__version__ in text
    assert ("OpenMP: on" in text) == fastnn._openmp.openmp_enabled()
    assert "BLAS" in text and "-O3" in text
    assert "-march=native" not in text or os.environ.get("FASTNN_NATIVE") == "1"


def test_pxd_is_shipped():
    files = {p.name for p in importlib.resources.files("fastnn").iterdir()}
    assert "_kernels.pxd" in files


def test_threadpoolctl_sees_the_blas():
    assert any(lib["user_api"] == "blas" for lib in threadpool_info())


def test_ops_and_reference_export_the_same_functions():
    assert sorted(ops.__all__) == sorted(ref.__all__)
    for name in ops.__all__:
        fast, slow = getattr(ops, name), getattr(ref, name)
        assert inspect.signature(fast) == inspect.signature(slow), name
        assert fast.__doc__ and slow.__doc__, name


@pytest.mark.parametrize("name", ops.__all__)
def test_every_op_is_tested_against_the_reference(name):
    # each public op appears in a parity or gradient test module
    here = os.path.dirname(__file__)
    sources = "".join(open(os.path.join(here, f)).read() for f in os.listdir(here)
                      if f.startswith(("test_parity", "test_gradcheck")))
    assert "ops.%s(" % name in sources or "mod.%s(" % name in sources, name
