"""The build: OpenMP as the environment expects, show_config, the BLAS that
threadpoolctl sees, and the ops/reference registry. What the wheel holds is
checked where a wheel is built (.ci/run)."""

import inspect
import io
import json
import os
import re
import subprocess
import sys

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


def test_threadpoolctl_sees_the_blas():
    assert any(lib["user_api"] == "blas" for lib in threadpool_info())


def test_ops_and_reference_export_the_same_functions():
    assert sorted(ops.__all__) == sorted(ref.__all__)
    for name in ops.__all__:
        fast, slow = getattr(ops, name), getattr(ref, name)
        assert inspect.signature(fast) == inspect.signature(slow), name
        assert fast.__doc__ and slow.__doc__, name


_USES_REFERENCE = re.compile(r"fastnn import .*\breference\b|fastnn\.reference")


def _ops_tested_in_a_new_run(wanted, tmp_path):
    """The ops among `wanted` that a test calls together with their reference
    twin, from a run of the test modules that use fastnn.reference (it stops
    as soon as each wanted op is found)."""
    here = os.path.dirname(os.path.abspath(__file__))
    modules = sorted(os.path.join(here, f) for f in os.listdir(here)
                     if f.startswith("test_") and f.endswith(".py") and f != "test_build.py"
                     and _USES_REFERENCE.search(open(os.path.join(here, f)).read()))
    report = tmp_path / "parity.json"
    env = dict(os.environ, FASTNN_PARITY_WANTED=",".join(wanted), FASTNN_PARITY_REPORT=str(report))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          *modules], cwd=os.path.dirname(here), env=env, capture_output=True,
                         text=True)
    found = set(json.loads(report.read_text())) if report.exists() else set()
    return found, run.stdout[-3000:]


@pytest.mark.after_all_tests
def test_every_op_is_tested_against_the_reference(parity_calls, tmp_path):
    # each public op is called by some test together with its fastnn.reference
    # twin (tests/conftest.py records the calls); when this session did not run
    # those tests (a single file, -k), a run of the modules that use the
    # reference finds them
    missing = [name for name in ops.__all__ if name not in parity_calls]
    output = ""
    if missing:
        found, output = _ops_tested_in_a_new_run(missing, tmp_path)
        missing = [name for name in missing if name not in found]
    assert not missing, ("no test calls these ops together with their reference twin",
                         missing, output)
