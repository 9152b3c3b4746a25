"""Training data that does not fit in memory: a Parquet file or data set read
in chunks, which ``Sequential.fit`` takes in place of X and y.

    source = fastnn.data.parquet("train/", target="label", chunk_rows=65536)
    model.fit(source, epochs=5, batch_size=256)

Design: the unit of reading is a Parquet row group (the only unit a Parquet
file can be read from at random). Each epoch visits the row groups of every
file in a new order drawn from the model's seed, reads each in chunks of
``chunk_rows`` rows, and mixes the chunks in a shuffle buffer of
``shuffle_rows`` rows: when the buffer is full its rows are permuted, the
first part is trained on and the rest stays to mix with the chunks that
follow. Rows therefore mix within row groups and across them, and memory
stays bounded by the buffer (about shuffle_rows + chunk_rows rows, plus one
row group's compressed column chunks held by the reader), whatever the size
of the data. The same seed visits the same rows in the same order.

Every batch but the epoch's last holds batch_size rows, as with arrays, so
the number of steps per epoch, the learning-rate schedule and the epoch's
loss are those of the same rows held in memory. Each chunk is converted to
the model's dtype and checked (numeric columns, finite values) as it is
read: a bad chunk raises ValueError naming the file and its rows, and the
model keeps the weights of its last completed step.

pyarrow is needed (``pip install 'fastnn[data]'``); it is imported only when
a source is made.
"""

import os

import numpy as np

_SHUFFLE_STREAM = 1  # the epoch's order is drawn from the same stream as arrays' shuffling


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError("fastnn.data reads Parquet through pyarrow: "
                          "pip install 'fastnn[data]'") from exc
    return pq


def _parquet_files(path):
    """The Parquet files of a path: the file itself, the *.parquet files under
    a directory (sorted, so the order never depends on the file system), or a
    list of files."""
    if isinstance(path, (list, tuple)):
        files = [os.fspath(p) for p in path]
    elif os.path.isdir(path):
        files = sorted(os.path.join(root, name)
                       for root, _, names in os.walk(path) for name in names
                       if name.endswith(".parquet"))
    else:
        files = [os.fspath(path)]
    if not files:
        raise ValueError("no .parquet file under %r" % (path,))
    for f in files:
        if not os.path.isfile(f):
            raise FileNotFoundError("no Parquet file at %r" % (f,))
    return files


def _is_numeric(arrow_type):
    import pyarrow.types as pt
    return pt.is_integer(arrow_type) or pt.is_floating(arrow_type) or pt.is_boolean(arrow_type)


class ParquetSource:
    """Rows of one or more Parquet files, read in chunks; see fastnn.data.

    Attributes
    ----------
    files : list of str
    target : str or list of str
        The target column(s).
    features : list of str
        The feature columns, in the order the model takes them.
    n_rows : int
    row_groups : list of (file index, row group index, rows)
    """

    def __init__(self, path, target, features=None, chunk_rows=65536, shuffle_rows=262144):
        from fastnn._validation import check_int
        pq = _pyarrow_parquet()
        self.chunk_rows = check_int(chunk_rows, "chunk_rows", low=1)
        self.shuffle_rows = check_int(shuffle_rows, "shuffle_rows", low=1)
        self.files = _parquet_files(path)
        readers = [pq.ParquetFile(f) for f in self.files]
        schema = readers[0].schema_arrow
        for f, r in zip(self.files[1:], readers[1:]):
            if not r.schema_arrow.equals(schema):
                raise ValueError("%s has another schema than %s: a data set's files must share "
                                 "their columns" % (f, self.files[0]))
        names = list(schema.names)
        targets = [target] if isinstance(target, str) else list(target)
        if not targets or not all(isinstance(t, str) for t in targets):
            raise TypeError("target must be a column name or a list of them, got %r" % (target,))
        missing = [t for t in targets if t not in names]
        if missing:
            raise ValueError("target column %s is not in %s (its columns: %s)"
                             % (", ".join(map(repr, missing)), self.files[0], ", ".join(names)))
        if features is None:
            features = [n for n in names if n not in targets]
        else:
            features = list(features)
            absent = [c for c in features if c not in names]
            if absent:
                raise ValueError("feature columns %s are not in %s"
                                 % (", ".join(map(repr, absent)), self.files[0]))
            overlap = [c for c in features if c in targets]
            if overlap:
                raise ValueError("column %s is both a feature and the target" % overlap[0])
        if not features:
            raise ValueError("%s has no feature columns besides the target" % self.files[0])
        bad = [c for c in features if not _is_numeric(schema.field(c).type)]
        if bad:
            raise TypeError("feature columns %s are not numeric (%s); encode them as numbers "
                            "first" % (", ".join(map(repr, bad)),
                                       ", ".join(str(schema.field(c).type) for c in bad)))
        self.target = target
        self._targets = targets
        self.features = features
        self.row_groups = [(i, g, r.metadata.row_group(g).num_rows)
                           for i, r in enumerate(readers) for g in range(r.num_row_groups)]
        self.row_groups = [u for u in self.row_groups if u[2] > 0]
        self.n_rows = int(sum(u[2] for u in self.row_groups))
        if self.n_rows == 0:
            raise ValueError("%s holds no rows" % (path,))
        self._readers = readers

    @property
    def n_features(self):
        return len(self.features)

    @property
    def feature_names(self):
        return np.array(self.features, dtype=str)

    def __repr__(self):
        return ("ParquetSource(%d files, %d rows, %d features, target=%r, chunk_rows=%d, "
                "shuffle_rows=%d)" % (len(self.files), self.n_rows, self.n_features,
                                      self.target, self.chunk_rows, self.shuffle_rows))

    # ------------------------------------------------------------------ reading

    def _column(self, batch, name):
        col = batch.column(name)
        if col.null_count:
            raise ValueError("column %r has missing values" % name)
        return col.to_numpy(zero_copy_only=False)

    def target_values(self):
        """The target column(s), read alone, one row group at a time: yields
        1-D arrays (or 2-D for several target columns)."""
        for i, g, _ in self.row_groups:
            batch = self._readers[i].read_row_group(g, columns=self._targets)
            yield self._targets_of(batch)

    def _targets_of(self, batch):
        cols = [self._column(batch, t) for t in self._targets]
        return cols[0] if isinstance(self.target, str) else np.column_stack(cols)

    def chunks(self, order, dtype):
        """(X, y, where) for each chunk, the row groups visited in `order`:
        X (rows, n_features) C-ordered in dtype and finite, y the raw target
        values, where a text naming the file and rows."""
        columns = self.features + self._targets
        for u in order:
            i, g, _ = self.row_groups[u]
            start = 0
            for batch in self._readers[i].iter_batches(batch_size=self.chunk_rows,
                                                       row_groups=[g], columns=columns):
                where = "%s, row group %d, rows %d-%d" % (self.files[i], g, start,
                                                          start + batch.num_rows - 1)
                start += batch.num_rows
                X = np.empty((batch.num_rows, self.n_features), dtype=dtype)
                try:
                    for j, name in enumerate(self.features):
                        X[:, j] = self._column(batch, name)
                    y = self._targets_of(batch)
                except ValueError as exc:
                    raise ValueError("%s (%s)" % (exc, where)) from None
                if not np.all(np.isfinite(X)):
                    raise ValueError("the features contain NaN or infinity (%s)" % where)
                yield X, y, where

    def buffers(self, rng, batch_size, dtype, convert_targets):
        """One epoch's training rows as (X, Y, perm) buffers: the rows perm of
        X, Y are trained on in order. Every buffer but the last holds a whole
        number of batches. rng: the epoch's generator, or None to read the rows
        in file order. convert_targets(y, where) -> Y as the C loop takes them."""
        order = (np.arange(len(self.row_groups)) if rng is None
                 else rng.permutation(len(self.row_groups)))
        keep = self.shuffle_rows // 2
        X = Y = None
        for Xc, yc, where in self.chunks(order, dtype):
            Yc = convert_targets(yc, where)
            X = Xc if X is None else np.concatenate([X, Xc])
            Y = Yc if Y is None else np.concatenate([Y, Yc])
            if X.shape[0] < max(self.shuffle_rows, batch_size + keep):
                continue
            perm = (np.arange(X.shape[0], dtype=np.int64) if rng is None
                    else rng.permutation(X.shape[0]))
            n_out = (X.shape[0] - keep) // batch_size * batch_size
            yield X, Y, np.ascontiguousarray(perm[:n_out])
            rest = np.sort(perm[n_out:]) if rng is None else perm[n_out:]
            X, Y = X[rest], Y[rest]
        if X is not None and X.shape[0]:
            perm = (np.arange(X.shape[0], dtype=np.int64) if rng is None
                    else rng.permutation(X.shape[0]))
            yield X, Y, np.ascontiguousarray(perm, dtype=np.int64)


def parquet(path, target, features=None, chunk_rows=65536, shuffle_rows=262144):
    """A Parquet file or data set as training data for ``Sequential.fit``.

    Parameters
    ----------
    path : str, path-like or list of them
        A Parquet file, a directory holding *.parquet files (read in sorted
        order), or a list of files; every file has the same columns.
    target : str or list of str
        The target column (class labels or numbers), or several numeric
        target columns for a network with several outputs.
    features : list of str, default=None
        The feature columns, in the order the model takes them; None takes
        every other column. They must be numeric, without missing values.
    chunk_rows : int, default=65536
        Rows read at a time.
    shuffle_rows : int, default=262144
        Rows of the shuffle buffer that mixes chunks (see fastnn.data); with
        chunk_rows it bounds the memory used.

    Returns
    -------
    ParquetSource
    """
    return ParquetSource(path, target, features, chunk_rows, shuffle_rows)
