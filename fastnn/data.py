"""Training data that does not fit in memory: a Parquet file or data set read
in chunks, which ``Sequential.fit`` takes in place of X and y.

    source = fastnn.data.parquet("train/", target="label", chunk_rows=65536)
    model.fit(source, epochs=5, batch_size=256)

Design: the unit of reading is a Parquet row group (the only unit a Parquet
file can be read from at random). Each epoch visits the row groups of every
file in a new order drawn from the model's seed, reads each in chunks of
``chunk_rows`` rows (by default about 16 MiB), and mixes the chunks in a
shuffle buffer of ``shuffle_rows`` rows (about 64 MiB): when the buffer is
full its rows are permuted, the first part is trained on and the rest stays
to mix with the chunks that follow. Rows therefore mix within row groups and
across them, and memory stays bounded whatever the size of the data: the
buffer (shuffle_rows + chunk_rows rows) plus what pyarrow's reader holds,
which is about three times one row group's columns (it decodes a row group
whole; measured: 96 MiB for row groups of 32 MiB). Files written with row
groups of a few tens of MiB suit it; pyarrow writes row groups of up to 1Mi
rows by default. The same seed visits the same rows in the same order.

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

from fastnn._optional import import_optional
from fastnn._validation import check_int, is_finite

CHUNK_BYTES = 16 * 2**20
SHUFFLE_BYTES = 64 * 2**20


def _pyarrow_parquet():
    return import_optional("pyarrow.parquet", "fastnn.data", "data", "pyarrow")


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

    def __init__(self, path, target, features=None, chunk_rows=None, shuffle_rows=None):
        pq = _pyarrow_parquet()
        for value, name in ((chunk_rows, "chunk_rows"), (shuffle_rows, "shuffle_rows")):
            if value is not None:
                check_int(value, name, low=1)
        self.files = _parquet_files(path)
        readers = [pq.ParquetFile(f) for f in self.files]
        schema = readers[0].schema_arrow
        for f, r in zip(self.files[1:], readers[1:]):
            if not r.schema_arrow.equals(schema):
                raise ValueError("%s has another schema than %s: a data set's files must share "
                                 "their columns" % (f, self.files[0]))
        names = list(schema.names)
        targets = ([target] if isinstance(target, str)
                   else list(target) if isinstance(target, (list, tuple, np.ndarray)) else None)
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
        # by default a chunk holds about CHUNK_BYTES of float64 features, the
        # shuffle buffer about SHUFFLE_BYTES, whatever the number of columns
        row_bytes = 8 * self.n_features
        self.chunk_rows = chunk_rows or max(1, CHUNK_BYTES // row_bytes)
        self.shuffle_rows = shuffle_rows or max(1, SHUFFLE_BYTES // row_bytes)

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
        (1-D array, or 2-D for several target columns; a text naming the file
        and rows)."""
        for i, g, _ in self.row_groups:
            batch = self._readers[i].read_row_group(g, columns=self._targets)
            where = "%s, row group %d, rows 0-%d" % (self.files[i], g, batch.num_rows - 1)
            try:
                values = self._targets_of(batch)
            except ValueError as exc:
                raise ValueError("%s (%s)" % (exc, where)) from None
            yield values, where

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
                                                       row_groups=[g], columns=columns,
                                                       use_threads=False):
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
                if not is_finite(X):  # one pass of the kernel, no temporary
                    raise ValueError("the features contain NaN or infinity (%s)" % where)
                yield X, y, where

    def buffers(self, rng, batch_size, dtype, convert_targets):
        """One epoch's training rows as (X, Y, perm) buffers: the rows perm of
        X, Y are trained on in order. Every buffer but the last holds a whole
        number of batches. rng: the epoch's generator, or None to read the rows
        in file order. convert_targets(y, where) -> Y as the C loop takes them.

        One buffer of shuffle_rows + chunk_rows rows is allocated per epoch
        and refilled in place: when it holds shuffle_rows rows (and at least
        a batch more than it keeps), its rows are permuted, all but about
        half of shuffle_rows are trained on (whole batches), and the rest
        move to its front to mix with the next chunks."""
        order = (np.arange(len(self.row_groups)) if rng is None
                 else rng.permutation(len(self.row_groups)))
        keep = self.shuffle_rows // 2
        capacity = max(self.shuffle_rows, batch_size + keep) + self.chunk_rows
        X = np.empty((capacity, self.n_features), dtype=dtype)
        Y = None
        filled = 0
        for Xc, yc, where in self.chunks(order, dtype):
            Yc = convert_targets(yc, where)
            if Y is None:
                Y = np.empty((capacity,) + Yc.shape[1:], dtype=Yc.dtype)
            X[filled:filled + Xc.shape[0]] = Xc
            Y[filled:filled + Xc.shape[0]] = Yc
            filled += Xc.shape[0]
            del Xc, Yc
            if filled < capacity - self.chunk_rows:
                continue
            perm = (np.arange(filled, dtype=np.int64) if rng is None
                    else rng.permutation(filled))
            n_out = (filled - keep) // batch_size * batch_size
            yield X, Y, np.ascontiguousarray(perm[:n_out])
            rest = perm[n_out:]
            if rng is None:
                rest = np.sort(rest)
            X[:rest.shape[0]] = X[rest]
            Y[:rest.shape[0]] = Y[rest]
            filled = rest.shape[0]
        if filled:
            perm = (np.arange(filled, dtype=np.int64) if rng is None
                    else rng.permutation(filled))
            yield X, Y, np.ascontiguousarray(perm, dtype=np.int64)


def parquet(path, target, features=None, chunk_rows=None, shuffle_rows=None):
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
    chunk_rows : int, default=None
        Rows read at a time; None: those of 16 MiB of float64 features.
    shuffle_rows : int, default=None
        Rows of the shuffle buffer that mixes chunks (see fastnn.data); None:
        those of 64 MiB of float64 features. The memory a source uses is
        about (shuffle_rows + 2 chunk_rows) rows in the model's dtype, plus
        what the Parquet reader holds of one row group.

    Returns
    -------
    ParquetSource
    """
    return ParquetSource(path, target, features, chunk_rows, shuffle_rows)
