"""scikit-learn's own MLP tests, the installed sklearn/neural_network/tests/test_mlp.py,
run against fastnn.sklearn.MLPClassifier and MLPRegressor.

The upstream module runs where it is installed, in one child pytest process in
which sklearn.neural_network.MLPClassifier and MLPRegressor are replaced by
fastnn's classes before the module is imported: about twenty of its tests take
the class from parametrize lists built at import time, so rebinding the names
after the import would leave them on scikit-learn's classes. Running it in a
child process keeps the scikit-learn of this process unpatched, as the other
tests need it to compare fastnn with.

Each upstream test is one case here, named by its upstream id. A case fails
with the upstream traceback when the upstream test fails, and also when the
upstream test built no fastnn estimator or built a scikit-learn one (the child
counts the constructions of both, per test).

Run as a script, this file is that child process:
python tests/test_sklearn_upstream_suite.py REPORT.json {fastnn,sklearn} [pytest args]
("sklearn" leaves scikit-learn's classes in place, with the same counts).
"""

import functools
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import fastnn

UPSTREAM_MODULE = "sklearn.neural_network.tests.test_mlp"
CLASS_NAMES = ("MLPClassifier", "MLPRegressor")

try:
    _spec = importlib.util.find_spec(UPSTREAM_MODULE)
except ImportError:
    _spec = None
if _spec is None:
    pytest.skip(f"{UPSTREAM_MODULE} is not installed (scikit-learn absent, or installed "
                "without its tests)", allow_module_level=True)
UPSTREAM_FILE = _spec.origin
# the directory holding the sklearn package: as the child's rootdir it makes the
# node ids read sklearn/neural_network/tests/test_mlp.py::test_fit
UPSTREAM_ROOT = str(Path(UPSTREAM_FILE).parents[3])
# the fastnn this process tests, first on the child's path
FASTNN_ROOT = str(Path(fastnn.__file__).resolve().parents[1])

# Upstream test functions that construct no MLP estimator at all, so that
# building no fastnn one is expected of them. Empty: run unpatched (mode
# "sklearn"), every test of scikit-learn 1.9.1 constructs at least one of
# scikit-learn's own.
CONSTRUCT_NO_ESTIMATOR = frozenset()

NOTHING_COLLECTED = "<no upstream test collected>"
RUN_TIMEOUT = 1200  # seconds; the run takes a few tens of seconds


# ---------------------------------------------------------------- the child process

class _Recorder:
    """pytest plugin of the child process: each upstream test's outcome and the
    MLP estimators it constructed, by library."""

    def __init__(self):
        self.nodeid = None  # the test running now
        self.collected = []
        self.collection_errors = []
        self.results = {}

    def _result(self, nodeid):
        return self.results.setdefault(
            nodeid, {"outcome": "passed", "details": [], "fastnn": 0, "sklearn": 0})

    def count_constructions(self, cls, library):
        init = cls.__init__

        # functools.wraps keeps the signature, from which scikit-learn reads
        # the estimator's parameters
        @functools.wraps(init)
        def counted_init(estimator, *args, **kwargs):
            if self.nodeid is not None:
                self._result(self.nodeid)[library] += 1
            init(estimator, *args, **kwargs)

        cls.__init__ = counted_init

    @pytest.fixture
    def global_random_seed(self):
        # scikit-learn's conftest, which pytest loads from the installed
        # package, parametrizes this name directly, and that takes precedence
        # over this fixture; without that conftest, its default seed
        return 42

    @pytest.fixture(autouse=True)
    def one_fastnn_thread(self):
        # set per test, after scikit-learn's conftest has set the thread
        # limits to the number of cores: the upstream fits are tiny (a few
        # hundred rows), where a second OpenMP thread only adds
        # synchronization, and where other processes keep the cores busy its
        # spinning made the run 15 to 30 times slower (fastnn's results are
        # the same with 1 or 2 threads; test_threads.py holds them together)
        fastnn.set_num_threads(1)

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_finish(self, session):
        self.collected = [item.nodeid for item in session.items]

    def pytest_runtest_logstart(self, nodeid):
        self.nodeid = nodeid
        self._result(nodeid)

    def pytest_runtest_logfinish(self, nodeid):
        self.nodeid = None

    def pytest_runtest_logreport(self, report):
        result = self._result(report.nodeid)
        if report.failed:
            result["outcome"] = "failed"
            result["details"].append(f"[{report.when}] {report.longreprtext}")
        elif report.skipped and result["outcome"] == "passed":
            result["outcome"] = "skipped"
            reason = report.longrepr
            result["details"].append(reason[-1] if isinstance(reason, tuple) else str(reason))


def main(argv):
    report, estimators, *pytest_args = argv
    import sklearn.neural_network

    import fastnn.sklearn

    recorder = _Recorder()
    for name in CLASS_NAMES:
        recorder.count_constructions(getattr(sklearn.neural_network, name), "sklearn")
        recorder.count_constructions(getattr(fastnn.sklearn, name), "fastnn")
        if estimators == "fastnn":
            # before pytest imports the upstream module, so that its
            # `from sklearn.neural_network import ...` gets fastnn's classes
            setattr(sklearn.neural_network, name, getattr(fastnn.sklearn, name))
    exit_code = int(pytest.main(pytest_args, plugins=[recorder]))
    with open(report, "w") as f:
        json.dump({"exit_code": exit_code, "collected": recorder.collected,
                   "collection_errors": recorder.collection_errors,
                   "results": recorder.results}, f)
    return exit_code


# ---------------------------------------------------------------- the cases

def _run_upstream(directory, *pytest_args):
    """Runs the upstream module against fastnn in a child process; returns its
    report (None if it wrote none) and the tail of its output."""
    directory = Path(directory)
    # an empty configuration: none of this repository's pytest settings, and
    # rootdir and confcutdir at the installed package, so that pytest loads
    # scikit-learn's own conftest (global_random_seed, thread limits) and not
    # this repository's, whose fixtures concern fastnn's kernels only
    ini = directory / "pytest.ini"
    ini.write_text("[pytest]\n")
    report = directory / "report.json"
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [FASTNN_ROOT, env.get("PYTHONPATH")]))
    # only the plugins named here: an installed plugin that reorders or reseeds
    # tests (pytest-randomly) or distributes them (xdist) has no say
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # no bytecode written into the installed scikit-learn
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, os.path.abspath(__file__), str(report), "fastnn",
               "-c", str(ini), "--rootdir", UPSTREAM_ROOT, "--confcutdir", UPSTREAM_ROOT,
               "-p", "no:cacheprovider", "-q", "--tb=short", *pytest_args]
    run = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True,
                         timeout=RUN_TIMEOUT)
    data = json.loads(report.read_text()) if report.exists() else None
    output = f"exit code {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return data, output


@functools.cache
def _collection():
    with tempfile.TemporaryDirectory() as directory:
        return _run_upstream(directory, "--collect-only", UPSTREAM_FILE)


def _short(nodeid):
    return nodeid.split("::", 1)[-1]


def pytest_generate_tests(metafunc):
    if "upstream_test" in metafunc.fixturenames:
        data, _ = _collection()
        # a failed collection still gives one case, which fails, rather than
        # an empty parameter set, which pytest would skip
        nodeids = (data or {}).get("collected") or [NOTHING_COLLECTED]
        metafunc.parametrize("upstream_test", nodeids, ids=map(_short, nodeids))


@pytest.fixture(scope="module")
def upstream_run(request, tmp_path_factory):
    """The report of one run of the upstream tests whose cases were selected
    (all of them, or those chosen by -k, --lf, ...), the run's output, and the
    node ids it had to run."""
    collected = (_collection()[0] or {}).get("collected", [])
    selected = {item.callspec.params.get("upstream_test") for item in request.session.items
                if hasattr(item, "callspec")}
    wanted = [nodeid for nodeid in collected if nodeid in selected]
    if wanted and wanted != collected:
        targets = [UPSTREAM_FILE + "::" + _short(nodeid) for nodeid in wanted]
    else:
        wanted, targets = collected, [UPSTREAM_FILE]
    data, output = _run_upstream(tmp_path_factory.mktemp("upstream"), *targets)
    return data, output, wanted


def test_upstream_module_is_collected():
    data, output = _collection()
    assert data is not None and data["exit_code"] == 0, output
    assert not data["collection_errors"], "\n".join(data["collection_errors"])
    # an empty or truncated module would otherwise pass unnoticed
    assert len(data["collected"]) > 50, data["collected"]


def test_upstream_run_completed(upstream_run):
    data, output, wanted = upstream_run
    # 0: all passed, 1: some failed, each reported by its own case below;
    # anything else (interrupted, internal error, no tests) is the run's fault
    assert data is not None and data["exit_code"] in (0, 1), output
    assert not data["collection_errors"], "\n".join(data["collection_errors"])
    assert data["collected"] == wanted


def test_upstream(upstream_test, upstream_run):
    if upstream_test == NOTHING_COLLECTED:
        pytest.fail(f"the upstream module gave no test to run\n{_collection()[1]}", pytrace=False)
    data, output, _ = upstream_run
    result = (data or {}).get("results", {}).get(upstream_test)
    if result is None:
        pytest.fail(f"{upstream_test} did not run\n{output}", pytrace=False)
    if result["outcome"] == "skipped":
        pytest.skip(f"skipped upstream: {' '.join(result['details'])}")
    problems = list(result["details"]) if result["outcome"] == "failed" else []
    if result["sklearn"]:
        problems.append(f"built {result['sklearn']} scikit-learn MLP estimator(s): "
                        "fastnn's classes did not replace scikit-learn's")
    test_function = _short(upstream_test).split("[")[0]
    if test_function in CONSTRUCT_NO_ESTIMATOR:
        if result["fastnn"]:
            problems.append(f"built {result['fastnn']} fastnn estimator(s); remove "
                            f"{test_function} from CONSTRUCT_NO_ESTIMATOR")
    elif not result["fastnn"]:
        problems.append("built no fastnn estimator (if it builds no scikit-learn one either "
                        "when run unpatched, list it in CONSTRUCT_NO_ESTIMATOR)")
    if problems:
        pytest.fail(f"{upstream_test}\n" + "\n".join(problems), pytrace=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
