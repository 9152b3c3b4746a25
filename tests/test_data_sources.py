"""Training on data that arrives in pieces: Sequential.partial_fit over the
chunks of a stream, fit on a memory-mapped array, and fit on a Parquet file
or data set through fastnn.data."""

import subprocess
import sys

import numpy as np
import pytest

import fastnn as fn
from fastnn import data

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _problem(m=600, n=5, seed=0, labels=("ham", "spam", "eggs")):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1] - X[:, 2]
    y = np.array(sorted(labels))[np.digitize(score, [-0.6, 0.6])]
    return X, y


def _model(dtype="float32", k=3, seed=0):
    return fn.Sequential([fn.Dense(8, activation="tanh"), fn.Dense(k, activation="softmax")],
                         dtype=dtype, seed=seed)


def _write(path, X, y, row_group_size, target="label"):
    table = pa.table({**{"x%d" % j: X[:, j] for j in range(X.shape[1])}, target: y})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


# --------------------------------------------------------------------------
# partial_fit
# --------------------------------------------------------------------------

def test_partial_fit_over_chunks_is_fit_epoch_by_epoch_on_them():
    """Each call is one pass over its chunk with the first call's options, the
    optimizer and its state carried on: the same as one-epoch fits."""
    X, y = _problem()
    chunks = [(X[i:i + 150], y[i:i + 150]) for i in range(0, 600, 150)] * 2  # two passes
    options = dict(optimizer=fn.optim.Adam(lr=0.02), batch_size=32, l2=1e-3, clip_norm=2.0)

    streamed = _model()
    for Xc, yc in chunks:
        streamed.partial_fit(Xc, yc, classes=["eggs", "ham", "spam"], **options)

    fitted = _model()
    fitted.fit(*chunks[0], epochs=1, **options)
    for Xc, yc in chunks[1:]:
        opts = dict(options, optimizer=None)  # None continues the optimizer and its state
        fitted.fit(Xc, yc, epochs=1, **opts)
    np.testing.assert_array_equal(streamed.get_params_flat(), fitted.get_params_flat())
    assert streamed.t_ == fitted.t_ == 8 * 5 and streamed.epochs_trained_ == 8
    assert streamed.evaluate(X, y)["accuracy"] > 0.8


def test_partial_fit_takes_the_classes_before_a_chunk_shows_them():
    X, y = _problem()
    model = _model()
    only_two = y != "spam"
    model.partial_fit(X[only_two][:100], y[only_two][:100], classes=["spam", "ham", "eggs"])
    np.testing.assert_array_equal(model.classes_, ["eggs", "ham", "spam"])
    model.partial_fit(X[y == "spam"][:50], y[y == "spam"][:50])  # a later chunk: known
    assert set(model.predict(X)) <= {"eggs", "ham", "spam"}
    with pytest.raises(ValueError, match="differ from the classes the model was trained on"):
        model.partial_fit(X[:10], y[:10], classes=["eggs", "ham", "toast"])
    with pytest.raises(ValueError, match="labels the model was not trained on: \\['toast'\\]"):
        model.partial_fit(X[:2], np.array(["toast", "ham"]))
    with pytest.raises(ValueError, match="2 distinct labels .* stands for 3 classes"):
        _model().partial_fit(X[:10], y[:10], classes=["ham", "spam"])


def test_partial_fit_keeps_its_first_options():
    X, y = _problem()
    model = _model()
    before = model.get_params_flat() if model.built else None
    with pytest.raises(TypeError, match="unknown options epochs"):
        model.partial_fit(X, y, epochs=3)
    with pytest.raises(ValueError, match="'balanced' needs every row at once"):
        model.partial_fit(X, y, class_weight="balanced")
    assert before is None and not model.built  # nothing was kept from the failed calls
    model.partial_fit(X[:100], y[:100], l2=0.01, optimizer="sgd", batch_size=16)
    model.partial_fit(X[100:200], y[100:200], l2=0.01, optimizer="sgd")  # repeated: fine
    with pytest.raises(ValueError, match="l2 differ \\(first call: l2=0.01\\)"):
        model.partial_fit(X[:10], y[:10], l2=0.0)
    with pytest.raises(ValueError, match="optimizer differ"):
        model.partial_fit(X[:10], y[:10], optimizer="adam")
    t = model.t_
    model.partial_fit(X[:10], y[:10])  # a chunk smaller than the batch is one batch
    assert model.t_ == t + 1


def test_a_fit_with_another_optimizer_ends_the_partial_fit_stream():
    # after it, the stream's options (its optimizer above all) start anew: a call
    # passing the stream's first optimizer trains with it, from a fresh state
    X, y = _problem()
    model = _model(dtype="float64")
    model.partial_fit(X[:100], y[:100], optimizer=fn.optim.SGD(lr=0.1), batch_size=50, l2=0.01)
    model.fit(X, y, optimizer="adam", batch_size=50, epochs=1)
    after_fit = model.get_params_flat()
    model.partial_fit(X[100:200], y[100:200], optimizer=fn.optim.SGD(lr=0.1), batch_size=50,
                      shuffle=False)
    assert model.optimizer_.get_config() == fn.optim.SGD(lr=0.1).get_config()
    assert model.t_ == 2  # a new optimizer counts its steps from 0
    same = _model(dtype="float64")
    same.build(X.shape[1])
    same.set_params_flat(after_fit)
    same.partial_fit(X[100:200], y[100:200], classes=model.classes_,
                     optimizer=fn.optim.SGD(lr=0.1), batch_size=50, shuffle=False)
    np.testing.assert_array_equal(model.get_params_flat(), same.get_params_flat())
    # a fit that continues the optimizer keeps the stream and its options
    model.fit(X, y, batch_size=100, epochs=1)
    with pytest.raises(ValueError, match="batch_size differ"):
        model.partial_fit(X[:10], y[:10], batch_size=10)


def test_loading_a_state_ends_the_partial_fit_stream():
    # the loaded optimizer and state replace the stream's: the next call is a first
    # call, whose optimizer trains (as on a model fastnn.load made)
    X, y = _problem()
    other = _model(dtype="float64")
    other.fit(X, y, optimizer=fn.optim.SGD(lr=0.5), batch_size=50, epochs=1)
    stream = dict(batch_size=50, optimizer=fn.optim.Adam(lr=0.05))
    model = _model(dtype="float64")
    model.partial_fit(X[:100], y[:100], **stream)
    model.load_state_dict(other.state_dict())
    model.partial_fit(X[100:200], y[100:200], **stream)
    assert model.optimizer_.get_config() == fn.optim.Adam(lr=0.05).get_config()
    assert model.t_ == 2 and model.history_["lr"] == [0.05]


def test_partial_fit_refuses_a_bad_chunk_and_keeps_the_weights():
    X, y = _problem()
    model = _model()
    model.partial_fit(X[:100], y[:100], classes=["eggs", "ham", "spam"])
    kept = model.get_params_flat()
    bad = X[100:200].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        model.partial_fit(bad, y[100:200])
    with pytest.raises(ValueError, match="X has 4 features, but the model was built for 5"):
        model.partial_fit(X[:10, :4], y[:10])
    np.testing.assert_array_equal(model.get_params_flat(), kept)


# --------------------------------------------------------------------------
# memory-mapped arrays
# --------------------------------------------------------------------------

def test_fit_on_a_memmap_trains_as_on_the_array(tmp_path):
    X, y = _problem()
    mapped = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="w+", shape=X.shape)
    mapped[...] = X
    mapped.flush()
    readonly = np.load(_save(tmp_path / "X.npy", X), mmap_mode="r")
    runs = []
    for inputs in (X, np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="r",
                                shape=X.shape), readonly):
        model = _model()
        model.fit(inputs, y, epochs=2, batch_size=32, validation_split=0.2)
        runs.append(model.get_params_flat())
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def _save(path, X):
    np.save(path, X)
    return path


def test_a_memmap_that_would_need_copying_is_refused(tmp_path):
    X, y = _problem()
    wide = np.load(_save(tmp_path / "X64.npy", X.astype(np.float64)), mmap_mode="r")
    with pytest.raises(TypeError, match="memory-mapped float64 array but the model computes in "
                                        "float32: converting it would copy"):
        _model().fit(wide, y, epochs=1)
    fortran = np.load(_save(tmp_path / "XF.npy", np.asfortranarray(X)), mmap_mode="r")
    with pytest.raises(ValueError, match="not in C order"):
        _model().fit(fortran, y, epochs=1)
    _model(dtype="float64").fit(wide, y, epochs=1)  # the model's dtype: used in place


# --------------------------------------------------------------------------
# Parquet through fastnn.data
# --------------------------------------------------------------------------

def test_a_parquet_source_in_file_order_trains_as_the_array(tmp_path):
    """Without shuffling, the batches are the rows of the file in order, so
    training is bitwise that on the array, whatever the chunking."""
    X, y = _problem(m=700)
    _write(tmp_path / "train.parquet", X, y, row_group_size=130)
    expected = _model()
    expected.fit(X, y, epochs=2, batch_size=32, shuffle=False)
    for chunk_rows, shuffle_rows in ((50, 100), (1000, 1000), (7, 64)):
        source = data.parquet(tmp_path / "train.parquet", target="label",
                              chunk_rows=chunk_rows, shuffle_rows=shuffle_rows)
        model = _model()
        history = model.fit(source, epochs=2, batch_size=32, shuffle=False)
        np.testing.assert_array_equal(model.get_params_flat(), expected.get_params_flat())
        np.testing.assert_allclose(history.history["loss"], expected.history_.history["loss"],
                                   rtol=1e-12)
    np.testing.assert_array_equal(model.classes_, ["eggs", "ham", "spam"])
    np.testing.assert_array_equal(model.feature_names_in_, ["x%d" % j for j in range(5)])


def _epoch_rows(source, seed, epoch, batch_size):
    """The rows an epoch of the source trains on, in order, as the values of
    a row-number column, and the sizes of its buffers."""
    rng = np.random.default_rng([seed, 1, epoch])
    rows, sizes = [], []
    for X, Y, perm in source.buffers(rng, batch_size, np.float64,
                                     lambda y, where: np.asarray(y, dtype=np.float64)):
        rows.append(X[perm, 0])
        sizes.append(perm.shape[0])
    return np.concatenate(rows).astype(np.int64), sizes


def test_a_shuffled_source_visits_every_row_once_in_a_new_order_each_epoch(tmp_path):
    m = 1000
    X = np.column_stack([np.arange(m), np.ones(m)]).astype(np.float64)  # column 0: row number
    _write(tmp_path / "rows.parquet", X, np.zeros(m), row_group_size=100)
    source = data.parquet(tmp_path / "rows.parquet", target="label", chunk_rows=40,
                          shuffle_rows=200)
    first, sizes = _epoch_rows(source, 3, 0, 16)
    np.testing.assert_array_equal(np.sort(first), np.arange(m))
    assert all(s % 16 == 0 for s in sizes[:-1]) and max(sizes) <= 200 + 40
    # rows of one buffer come from several row groups, and no row group is read in order
    assert len(np.unique(first[:sizes[0]] // 100)) > 1
    second, second_sizes = _epoch_rows(source, 3, 1, 16)
    # the row groups are visited in a new order each epoch
    assert set(first[:sizes[0]] // 100) != set(second[:second_sizes[0]] // 100)
    again, _ = _epoch_rows(source, 3, 0, 16)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, again)


def test_a_data_set_of_several_files_and_several_targets(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 3))
    T = np.column_stack([X @ [1.0, -1.0, 0.5], X[:, 0] * 0.3])
    (tmp_path / "set").mkdir()
    for i, part in enumerate(np.array_split(np.arange(300), 3)):
        table = pa.table({"a": X[part, 0], "b": X[part, 1], "c": X[part, 2],
                          "t1": T[part, 0], "t2": T[part, 1]})
        pq.write_table(table, tmp_path / "set" / ("part%d.parquet" % i), row_group_size=40)
    source = data.parquet(tmp_path / "set", target=["t1", "t2"], features=["a", "b", "c"])
    assert source.n_rows == 300 and len(source.files) == 3
    model = fn.Sequential([fn.Dense(2, activation="identity")], dtype="float64", seed=0)
    model.fit(source, epochs=40, batch_size=10, optimizer=fn.optim.Adam(lr=0.05),
              shuffle=False)
    expected = fn.Sequential([fn.Dense(2, activation="identity")], dtype="float64", seed=0)
    expected.fit(X, T, epochs=40, batch_size=10, optimizer=fn.optim.Adam(lr=0.05),
                 shuffle=False)
    np.testing.assert_array_equal(model.get_params_flat(), expected.get_params_flat())
    frame = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    assert model.evaluate(frame, T)["r2"] > 0.99


def test_a_source_refuses_what_it_cannot_train_on(tmp_path):
    X, y = _problem(m=200)
    path = _write(tmp_path / "ok.parquet", X, y, row_group_size=50)
    with pytest.raises(ValueError, match="target column 'y' is not in"):
        data.parquet(path, target="y")
    with pytest.raises(ValueError, match="feature columns 'z' are not in"):
        data.parquet(path, target="label", features=["x0", "z"])
    table = pa.table({"x0": X[:, 0], "city": ["a"] * 200, "label": y})
    pq.write_table(table, tmp_path / "text.parquet")
    with pytest.raises(TypeError, match="feature columns 'city' are not numeric"):
        data.parquet(tmp_path / "text.parquet", target="label")
    source = data.parquet(path, target="label")
    model = _model()
    with pytest.raises(ValueError, match="call fit\\(source\\) without y"):
        model.fit(source, y)
    with pytest.raises(ValueError, match="validation_split is not available"):
        model.fit(source, validation_split=0.1)
    with pytest.raises(ValueError, match="sample_weight is not available"):
        model.fit(source, sample_weight=np.ones(200))
    with pytest.raises(ValueError, match="class_weight is not available"):
        model.fit(source, class_weight={0: 1.0, 1: 2.0, 2: 1.0})
    with pytest.raises(TypeError, match="target must be a column name or a list of them, got 3"):
        data.parquet(path, target=3)
    with pytest.raises(TypeError, match="fit needs targets y"):
        model.fit(X)
    with pytest.raises(FileNotFoundError, match="no Parquet file"):
        data.parquet(tmp_path / "missing.parquet", target="label")


def test_a_bad_chunk_names_its_file_and_rows_and_keeps_the_weights(tmp_path):
    X, y = _problem(m=200)
    X[170, 2] = np.inf
    path = _write(tmp_path / "bad.parquet", X, y, row_group_size=100)
    model = _model()
    model.build(5)
    before = model.get_params_flat()
    source = data.parquet(path, target="label", chunk_rows=50, shuffle_rows=50)
    with pytest.raises(ValueError, match="NaN or infinity .*bad.parquet, row group 1, "
                                         "rows 50-99"):
        model.fit(source, epochs=1, batch_size=10, shuffle=False)
    # the batches before the bad chunk were trained on; the weights are finite
    assert np.all(np.isfinite(model.get_params_flat()))
    assert not np.array_equal(model.get_params_flat(), before)


def test_a_classifiers_bad_label_names_its_file_and_rows(tmp_path):
    # the classes are read from the target column before training: a missing or
    # NaN label there names where it lies, as a bad chunk does
    X, _ = _problem(m=200)
    codes = np.arange(200) % 3
    missing = pa.array([None if i == 130 else int(c) for i, c in enumerate(codes)])
    nan = np.where(np.arange(200) == 130, np.nan, codes.astype(float))
    for name, labels, message in (("missing", missing, "column 'label' has missing values"),
                                  ("nan", nan, "the target column contains NaN or infinity")):
        path = _write(tmp_path / (name + ".parquet"), X, labels, row_group_size=50)
        model = _model()
        with pytest.raises(ValueError, match=r"%s \(.*%s.parquet, row group 2, rows 0-49\)"
                                             % (message, name)):
            model.fit(data.parquet(path, target="label"), epochs=1, batch_size=10)
        assert not model.built


def test_fastnn_data_names_the_extra_when_pyarrow_is_missing(tmp_path):
    code = ("import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
            "import fastnn.data\n"
            "try:\n"
            "    fastnn.data.parquet('x.parquet', target='y')\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'fastnn[data]'" in out


@pytest.mark.parametrize("kind", ["one-hot", "multi-label"])
def test_several_target_columns_train_as_the_same_matrix_in_memory(tmp_path, kind):
    # one-hot columns are class indices (classes_ 0..k-1); 0/1 label columns are a
    # multi-label matrix, which has no classes
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    if kind == "one-hot":
        Y, out = np.eye(3, dtype=np.int64)[rng.integers(0, 3, 120)], "softmax"
    else:
        Y, out = (X[:, :3] > 0).astype(np.int64), "sigmoid"
    columns = {"x%d" % j: X[:, j] for j in range(3)}
    columns.update({"t%d" % j: Y[:, j] for j in range(3)})
    pq.write_table(pa.table(columns), tmp_path / "t.parquet")

    def model():
        return fn.Sequential([fn.Dense(8, activation="tanh"), fn.Dense(3, activation=out)],
                             seed=0, dtype="float64")
    in_memory, from_file = model(), model()
    in_memory.fit(X, Y, epochs=2, batch_size=20, shuffle=False)
    from_file.fit(data.parquet(tmp_path / "t.parquet", target=["t0", "t1", "t2"]), epochs=2,
                  batch_size=20, shuffle=False)
    np.testing.assert_array_equal(from_file.get_params_flat(), in_memory.get_params_flat())
    if kind == "one-hot":
        np.testing.assert_array_equal(from_file.classes_, [0, 1, 2])
    else:
        assert from_file.classes_ is None and in_memory.classes_ is None


def test_a_list_of_one_target_column_is_one_label_column(tmp_path):
    # target=["y"] is the column "y": its labels are the classes, as target="y"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    labels = np.where(X[:, 0] > 0, 7, 3)
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": labels}),
                   tmp_path / "t.parquet")

    def model():
        return fn.Sequential([fn.Dense(4, activation="relu"),
                              fn.Dense(1, activation="sigmoid")], seed=0, dtype="float64")
    from_file, in_memory = model(), model()
    from_file.fit(data.parquet(tmp_path / "t.parquet", target=["y"]),
                  loss="binary_cross_entropy", epochs=2, batch_size=16, shuffle=False)
    in_memory.fit(X, labels, loss="binary_cross_entropy", epochs=2, batch_size=16,
                  shuffle=False)
    np.testing.assert_array_equal(from_file.classes_, [3, 7])
    np.testing.assert_array_equal(from_file.get_params_flat(), in_memory.get_params_flat())
