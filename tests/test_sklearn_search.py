"""fastnn.sklearn in scikit-learn's model selection: test scores against
sklearn.neural_network on scikit-learn's bundled data sets, GridSearchCV and
RandomizedSearchCV in a Pipeline, thread limits in joblib's worker processes,
and the same search on a Dask cluster.

Run as a script, this file prints the parity and fit-time tables of the README:

    python -m tests.test_sklearn_search --repeats 3
"""

import argparse
import contextlib
import os
import time
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
import joblib  # noqa: E402
import sklearn.neural_network as sk  # noqa: E402
from scipy.stats import loguniform  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits,  # noqa: E402
                              load_iris, load_wine)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import (GridSearchCV, RandomizedSearchCV,  # noqa: E402
                                     train_test_split)
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import fastnn  # noqa: E402
from fastnn.sklearn import MLPClassifier  # noqa: E402

from .tolerances import assert_close  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# ---------------------------------------------------------------- parity of test scores

DATASETS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer,
            "digits": load_digits, "diabetes": load_diabetes}
REGRESSION = {"diabetes"}
SEEDS = (0, 1, 2)
# scikit-learn's defaults: hidden_layer_sizes=(100,), relu, adam, learning_rate_init=1e-3,
# batch_size='auto', max_iter=200, tol=1e-4, n_iter_no_change=10
PARAMS = {}


def split(name, seed):
    """A 75/25 split (stratified for classification), inputs standardized with
    the training statistics; for regression the target too (R^2 is unchanged)."""
    X, y = DATASETS[name](return_X_y=True)
    regression = name in REGRESSION
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed,
                                              stratify=None if regression else y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    if regression:
        mean, std = y_tr.mean(), y_tr.std()
        y_tr, y_te = (y_tr - mean) / std, (y_te - mean) / std
    return X_tr, X_te, y_tr, y_te


def fit_and_score(module, name, seed, repeats=1, **params):
    """(test score, fastest fit time in seconds, n_iter_) of one library's MLP."""
    X_tr, X_te, y_tr, y_te = split(name, seed)
    cls = module.MLPRegressor if name in REGRESSION else module.MLPClassifier
    best = np.inf
    for _ in range(repeats):
        est = cls(random_state=seed, **{**PARAMS, **params})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            started = time.perf_counter()
            est.fit(X_tr, y_tr)
            best = min(best, time.perf_counter() - started)
    return est.score(X_te, y_te), best, est.n_iter_


@pytest.mark.parametrize("name", list(DATASETS))
def test_test_scores_match_sklearn(name):
    """The test score of each seed (accuracy, or R^2 for diabetes) equal to
    scikit-learn's with the same hyperparameters: the two fits take the same
    steps (tests/test_sklearn_estimators.py), so the same epochs and the same
    predictions."""
    ours, theirs = [], []
    with threadpool_limits(1):  # scikit-learn's BLAS on one thread: stable run time
        for seed in SEEDS:
            score, _, n_iter = fit_and_score(fastnn.sklearn, name, seed)
            their_score, _, their_n_iter = fit_and_score(sk, name, seed)
            assert n_iter == their_n_iter, seed
            ours.append(score)
            theirs.append(their_score)
    if name in REGRESSION:
        # R^2 of predictions equal to the training's rounding
        assert_close(np.array(ours), np.array(theirs), "training")
    else:
        assert ours == theirs
    assert np.mean(ours) > (0.2 if name in REGRESSION else 0.85)


# ---------------------------------------------------------------- searches

@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def pipeline(mlp):
    return Pipeline([("scale", StandardScaler()), ("mlp", mlp)])


def test_grid_search_in_a_pipeline_matches_sklearn(cancer):
    X_tr, X_te, y_tr, y_te = cancer
    grid = {"mlp__alpha": [1e-4, 1e-1], "mlp__hidden_layer_sizes": [(8,), (16, 8)]}
    params = dict(max_iter=30, learning_rate_init=0.01, random_state=0)
    ours = GridSearchCV(pipeline(MLPClassifier(**params)), grid, cv=3).fit(X_tr, y_tr)
    theirs = GridSearchCV(pipeline(sk.MLPClassifier(**params)), grid, cv=3).fit(X_tr, y_tr)
    np.testing.assert_array_equal(ours.cv_results_["mean_test_score"],
                                  theirs.cv_results_["mean_test_score"])
    assert ours.best_params_ == theirs.best_params_
    best = ours.best_estimator_
    assert isinstance(best[-1], MLPClassifier) and best[-1].n_iter_ >= 1
    assert ours.score(X_te, y_te) == theirs.score(X_te, y_te) > 0.9


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_randomized_search_with_loguniform(name, cancer):
    X_tr, X_te, y_tr, y_te = cancer
    if name == "MLPRegressor":  # regress the label: a smooth target with a known answer
        y_tr, y_te = y_tr.astype(float), y_te.astype(float)
    distributions = {"mlp__learning_rate_init": loguniform(1e-4, 1e-1),
                     "mlp__alpha": loguniform(1e-6, 1e-1)}
    searches = []
    for module in (fastnn.sklearn, sk):
        est = getattr(module, name)(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
        searches.append(RandomizedSearchCV(pipeline(est), distributions, n_iter=6, cv=3,
                                           random_state=0).fit(X_tr, y_tr))
    ours, theirs = searches
    sampled = ours.cv_results_["params"]
    assert sampled == theirs.cv_results_["params"] and len(sampled) == 6
    for p in sampled:
        assert 1e-4 <= p["mlp__learning_rate_init"] <= 1e-1 and 1e-6 <= p["mlp__alpha"] <= 1e-1
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               theirs.cv_results_["mean_test_score"], rtol=1e-9)
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_estimator_[-1].n_iter_ >= 1 and np.isfinite(ours.score(X_te, y_te))


# ---------------------------------------------------------------- threads under joblib

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture
def no_thread_variables(monkeypatch):
    """joblib gives its workers cores // n_jobs threads unless the variable is
    already set here (then that value wins): test the default rule."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_loky_workers_split_the_cores(no_thread_variables):
    """joblib's loky workers start with OMP_NUM_THREADS (and the BLAS
    variables) = cores // n_jobs, and fastnn reads that limit at each call."""
    n_jobs = 2
    expected = max(joblib.cpu_count() // n_jobs, 1)

    def _threads_in_worker(_):  # local, so it travels by value to the workers
        import os

        import threadpoolctl

        import fastnn
        blas = {lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"}
        return fastnn.get_num_threads(), blas, os.getpid()

    out = joblib.Parallel(n_jobs=n_jobs, backend="loky")(
        joblib.delayed(_threads_in_worker)(i) for i in range(4))
    assert {threads for threads, _, _ in out} == {expected}
    assert set().union(*(blas for _, blas, _ in out)) == {expected}
    assert os.getpid() not in {pid for _, _, pid in out}
    assert n_jobs * expected <= joblib.cpu_count()
    # an explicit per-worker limit, whatever the environment says
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        out = joblib.Parallel(n_jobs=n_jobs)(
            joblib.delayed(_threads_in_worker)(i) for i in range(2))
    assert {threads for threads, _, _ in out} == {1}


def test_grid_search_with_n_jobs_does_not_oversubscribe(cancer, no_thread_variables):
    X_tr, _, y_tr, _ = cancer
    expected = max(joblib.cpu_count() // 2, 1)

    def threads_used(estimator, X, y):
        return estimator[-1].n_threads_

    search = GridSearchCV(pipeline(MLPClassifier(hidden_layer_sizes=(16,), max_iter=10,
                                                 random_state=0)),
                          {"mlp__alpha": [1e-4, 1e-2]}, cv=2, n_jobs=2,
                          scoring={"accuracy": "accuracy", "threads": threads_used},
                          refit="accuracy").fit(X_tr, y_tr)
    per_fit = [search.cv_results_["split%d_test_threads" % i] for i in range(2)]
    assert set(np.concatenate(per_fit)) == {expected}
    # the refit runs here, with this process's limit
    assert search.best_estimator_[-1].n_threads_ == fastnn.get_num_threads()


# ---------------------------------------------------------------- Dask

def _distributed():
    pytest.importorskip("dask", reason="dask is not installed: pip install 'fastnn[dask]'")
    return pytest.importorskip("distributed", reason="dask.distributed is not installed: "
                                                     "pip install 'fastnn[dask]'")


@pytest.fixture
def nanny_environ(monkeypatch):
    """A Dask nanny copies its pre-spawn variables (OMP_NUM_THREADS=1, ...) into
    the environment of the process that runs it, where they would reach every
    process started later (joblib's workers among them) and take precedence
    over Dask's configuration: start without OMP_NUM_THREADS, and put the
    environment back afterwards."""
    saved = dict(os.environ)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_search_on_a_dask_cluster(cancer, nanny_environ):
    distributed = _distributed()
    X_tr, X_te, y_tr, y_te = cancer

    def worker_pid(estimator, X, y):
        import os
        return os.getpid()

    def threads_used(estimator, X, y):
        return estimator[-1].n_threads_

    search = RandomizedSearchCV(
        pipeline(MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0)),
        {"mlp__learning_rate_init": loguniform(1e-4, 1e-1), "mlp__alpha": loguniform(1e-6, 1e-1)},
        n_iter=4, cv=3, random_state=0, refit="accuracy",
        scoring={"accuracy": "accuracy", "pid": worker_pid, "threads": threads_used})
    local = clone(search).fit(X_tr, y_tr)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
        # Dask's nanny starts each worker process with OMP_NUM_THREADS=1
        assert set(client.run(fastnn.get_num_threads).values()) == {1}
        with joblib.parallel_config(backend="dask"):
            search.fit(X_tr, y_tr)
        # more threads for one estimator: n_threads overrides the worker's limit
        wide = client.submit(lambda: MLPClassifier(n_threads=2, max_iter=2).fit(X_tr, y_tr))
        assert wide.result().n_threads_ == 2
    assert cluster.status.name == "closed" and client.status == "closed"
    results = search.cv_results_
    pids = {int(results["split%d_test_pid" % i][j]) for i in range(3) for j in range(4)}
    assert pids <= worker_pids and os.getpid() not in pids
    assert {results["split%d_test_threads" % i][j] for i in range(3) for j in range(4)} == {1}
    np.testing.assert_array_equal(results["mean_test_accuracy"],
                                  local.cv_results_["mean_test_accuracy"])
    assert search.best_params_ == local.best_params_
    assert search.score(X_te, y_te) == local.score(X_te, y_te)


@pytest.mark.parametrize("how", ["dask-config", "environment"])
def test_dask_workers_get_more_threads(how, nanny_environ, monkeypatch):
    """The two ways the README gives: Dask's pre-spawn configuration, or
    OMP_NUM_THREADS in the environment of the process that starts the workers
    (which takes precedence over the configuration)."""
    distributed = _distributed()
    import dask
    config = {}
    if how == "dask-config":
        config = {"distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS": 2}
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with dask.config.set(config):
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            assert set(client.run(fastnn.get_num_threads).values()) == {2}
    assert cluster.status.name == "closed"


# ---------------------------------------------------------------- the README's table

def _table(repeats, single_thread, names, params):
    """Markdown rows: data set, shape, mean test score of each library, fit
    time summed over the seeds (the fastest of `repeats` per seed), ratio."""
    rows = ["| data set | samples x features | metric | scikit-learn score | fastnn score "
            "| scikit-learn fits (s) | fastnn fits (s) | speed-up |",
            "|---|---|---|---|---|---|---|---|"]
    for name in names:
        X, _ = DATASETS[name](return_X_y=True)
        res = {}
        for module in (sk, fastnn.sklearn):
            with threadpool_limits(1) if single_thread else contextlib.nullcontext():
                runs = [fit_and_score(module, name, s, repeats, **params) for s in SEEDS]
            res[module] = (np.mean([r[0] for r in runs]), sum(r[1] for r in runs))
        (s_sk, t_sk), (s_fn, t_fn) = res[sk], res[fastnn.sklearn]
        rows.append("| %s | %d x %d | %s | %.4f | %.4f | %.3f | %.3f | %.1fx |" % (
            name, X.shape[0], X.shape[1], "R^2" if name in REGRESSION else "accuracy",
            s_sk, s_fn, t_sk, t_fn, t_sk / t_fn))
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3,
                        help="fits per data set and seed; the fastest counts")
    parser.add_argument("--hidden", type=int, nargs="+", default=None,
                        help="hidden_layer_sizes (default: scikit-learn's, 100)")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="max_iter (default: scikit-learn's, 200)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args()
    params = {}
    if args.hidden:
        params["hidden_layer_sizes"] = tuple(args.hidden)
    if args.max_iter:
        params["max_iter"] = args.max_iter
    print("scikit-learn %s, fastnn %s, %d cores; scikit-learn's default hyperparameters%s; "
          "75/25 split, inputs standardized; scores: mean test score over seeds %s; fit "
          "times: the fastest of %d fits per seed, summed over the seeds\n"
          % (sklearn.__version__, fastnn.__version__, joblib.cpu_count(),
             "".join(", %s=%s" % kv for kv in params.items()), list(SEEDS), args.repeats))
    for module in (sk, fastnn.sklearn):  # one-time costs (imports, thread pools) first
        fit_and_score(module, "iris", 0, max_iter=2)
    print("Default threads (fastnn: %d OpenMP threads; scikit-learn: NumPy's BLAS threads)\n"
          % fastnn.get_num_threads())
    print(_table(args.repeats, False, args.datasets, params))
    print("\nOne thread each (threadpoolctl.threadpool_limits(1))\n")
    print(_table(args.repeats, True, args.datasets, params))


if __name__ == "__main__":
    main()
