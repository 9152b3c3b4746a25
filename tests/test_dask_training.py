"""Training on Dask collections that live on a cluster (a LocalCluster of
two worker processes here): fastnn.dask.fit_partitions for Sequential, and
dask-ml's Incremental over the scikit-learn estimators' partial_fit."""

import numpy as np
import pytest

import fastnn as fn

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

import fastnn.dask as fdask  # noqa: E402  (after the importorskips)


def _problem(m=1200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, 6)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + 0.5 * X[:, 2] > 0).astype(np.int64)
    return X, y


def _model(seed=0):
    return fn.Sequential([fn.Dense(12, activation="tanh"), fn.Dense(2, activation="softmax")],
                         dtype="float32", seed=seed)


@pytest.fixture(scope="module")
def client():
    # without work stealing, which may move a task and its inputs to an idle
    # worker, the column blocks of a table are computed where its partitions
    # are (the visits are restricted to their blocks' workers in any case)
    with dask.config.set({"distributed.scheduler.work-stealing": False}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _partition_order(seed, epoch, n):
    return np.random.default_rng([seed, 3, epoch]).permutation(n)


def test_fit_partitions_is_partial_fit_over_the_partitions_in_turn(client):
    X, y = _problem()
    dX, dy = da.from_array(X, chunks=(300, 3)), da.from_array(y, chunks=300)
    options = dict(optimizer=fn.optim.Adam(lr=0.01), batch_size=32, l2=1e-4)
    model = _model()
    history = fdask.fit_partitions(model, dX, dy, epochs=3, classes=[0, 1], **options)
    assert len(history) == 3 and history.history["partitions"] == [4, 4, 4]

    expected = _model()
    expected.build(6)
    for _ in range(3):
        for i in _partition_order(expected.seed_, expected.epochs_trained_, 4):
            expected.partial_fit(X[300 * i:300 * (i + 1)], y[300 * i:300 * (i + 1)],
                                 classes=[0, 1], **options)
    np.testing.assert_array_equal(model.get_params_flat(), expected.get_params_flat())
    assert model.t_ == expected.t_ and model.epochs_trained_ == 12
    assert model.evaluate(X, y)["accuracy"] > 0.9


def test_fit_partitions_keeps_the_rows_order_when_told(client):
    # shuffle orders the partitions; shuffle_rows is partial_fit's shuffle, within one
    X, y = _problem()
    dX, dy = da.from_array(X, chunks=(300, 3)), da.from_array(y, chunks=300)
    model = _model()
    fdask.fit_partitions(model, dX, dy, classes=[0, 1], batch_size=32, shuffle=False,
                         shuffle_rows=False)
    expected = _model()
    expected.build(6)
    for i in range(4):
        expected.partial_fit(X[300 * i:300 * (i + 1)], y[300 * i:300 * (i + 1)],
                             classes=[0, 1], batch_size=32, shuffle=False)
    np.testing.assert_array_equal(model.get_params_flat(), expected.get_params_flat())
    with pytest.raises(ValueError, match="X must be a 2-D dask array"):
        fdask.fit_partitions(_model(), dX[:, 0], dy, classes=[0, 1])


def _gathered_keys(client, monkeypatch):
    """A list that collects the keys of every result the client gathers."""
    keys = []
    gather = type(client)._gather

    def recording(self, futures, *args, **kwargs):
        keys.extend(str(f.key) for f in distributed.client.futures_of(futures))
        return gather(self, futures, *args, **kwargs)
    monkeypatch.setattr(type(client), "_gather", recording)
    return keys


def test_the_partitions_stay_where_they_live(client, monkeypatch):
    """Each visit runs on the worker holding its partition: no worker fetches
    a partition from another, and the client never receives one."""
    # the model's state (a wide layer and Adam's moments) outweighs each
    # partition, so Dask's placement by the bytes to move would send the
    # partitions to the model: only the visits' worker restrictions keep them
    X, y = _problem(m=4000, seed=1)
    frame = pd.DataFrame(X, columns=["f%d" % j for j in range(6)])
    labels = np.array(["no", "yes"])[y]
    table = client.persist(dd.from_pandas(frame.assign(label=labels), npartitions=4))
    distributed.wait(table)
    assert len(set(w for ws in client.who_has(table).values() for w in ws)) == 2
    # the derived column blocks are what a visit reads
    dX, dy = table[list(frame.columns)], table["label"]
    partition_keys = {str(k) for c in (table, dX, dy) for k in c.__dask_keys__()}
    client.run(lambda dask_worker: dask_worker.transfer_incoming_log.clear())

    gathered = _gathered_keys(client, monkeypatch)
    model = fn.Sequential([fn.Dense(4096, activation="tanh"),
                           fn.Dense(2, activation="softmax")], dtype="float32", seed=0)
    fdask.fit_partitions(model, dX, dy, epochs=2, classes=["no", "yes"], batch_size=64,
                         optimizer=fn.optim.Adam(lr=0.001))
    assert gathered and not partition_keys & set(gathered)
    fetched = client.run(lambda dask_worker: [
        (str(k), nbytes) for t in dask_worker.transfer_incoming_log
        for k, nbytes in t["keys"].items()])
    moved = [k for keys in fetched.values() for k, _ in keys if k in partition_keys]
    assert not moved, moved
    # the model did travel, and it outweighs a whole partition of the table
    state_bytes = max(nbytes for keys in fetched.values() for _, nbytes in keys)
    assert state_bytes > 10 * dask.sizeof.sizeof(frame.assign(label=labels)[:1000])
    np.testing.assert_array_equal(model.classes_, ["no", "yes"])
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    assert (model.predict(frame) == labels).mean() > 0.9


def test_another_scheduler_leaves_the_cluster_alone(client):
    """With a scheduler other than the client's configured, nothing is
    persisted on the cluster and the result is the client's."""
    X, y = _problem()
    dX, dy = da.from_array(X, chunks=(300, 6)), da.from_array(y, chunks=300)
    on_cluster = _model()
    fdask.fit_partitions(on_cluster, dX, dy, epochs=2, classes=[0, 1], batch_size=32)
    in_process = _model()
    with dask.config.set(scheduler="sync"), distributed.get_task_stream(client) as tasks:
        fdask.fit_partitions(in_process, dX, dy, epochs=2, classes=[0, 1], batch_size=32)
    assert not tasks.data
    np.testing.assert_array_equal(in_process.get_params_flat(), on_cluster.get_params_flat())


def test_fit_partitions_refuses_unmatched_partitions(client):
    X, y = _problem()
    with pytest.raises(ValueError, match="X has 4 partitions but y has 3"):
        fdask.fit_partitions(_model(), da.from_array(X, chunks=(300, 6)),
                             da.from_array(y, chunks=400))
    with pytest.raises(TypeError, match="X must be a Dask Array, DataFrame or Series"):
        fdask.fit_partitions(_model(), X, da.from_array(y, chunks=400))


def test_dask_ml_incremental_trains_the_estimators_through_partial_fit(client):
    from dask_ml.wrappers import Incremental
    from fastnn.sklearn import MLPClassifier
    X, y = _problem(m=2000, seed=2)
    dX, dy = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    inc = Incremental(MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01,
                                    batch_size=32, random_state=0), scoring="accuracy",
                      shuffle_blocks=False)  # the blocks in order, to compare below
    inc.fit(dX, dy, classes=[0, 1])
    assert isinstance(inc.estimator_, MLPClassifier)
    # the same partial_fit calls in one process give the same weights
    local = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, batch_size=32,
                          random_state=0)
    for lo in range(0, 2000, 500):
        local.partial_fit(X[lo:lo + 500], y[lo:lo + 500], classes=[0, 1])
    for a, b in zip(inc.estimator_.coefs_, local.coefs_):
        np.testing.assert_array_equal(a, b)
    assert inc.score(dX, dy) > 0.85
