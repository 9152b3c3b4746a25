"""Training a Sequential on a Dask Array or DataFrame that lives on a cluster,
without gathering it on the client.

    import fastnn.dask
    history = fastnn.dask.fit_partitions(model, X, y, epochs=3, classes=[0, 1],
                                         optimizer="adam", batch_size=256)

Design: the model visits the partitions in turn, where they live. Each
visit is one task that takes the model's state (weights, optimizer state,
step counts: a few arrays, ``Sequential.state_dict``) and one partition of X
and y, runs ``partial_fit`` on it, and returns the new state; the tasks are
chained, and only the model travels. On a distributed Client the blocks of
X and y are persisted first (a derived block, such as a column selection,
becomes a key in a worker's memory) and each visit is restricted to the
worker(s) holding its X block, so the scheduler's placement (which weighs
a worker's occupancy against the bytes to move) does not move a partition;
the restriction is loose, so a visit whose workers have all left runs
elsewhere instead of waiting for them (work stealing, when on, may also
move one); a y block held elsewhere moves to its X block. On
another scheduler the blocks are computed as part of each epoch's graph.
Each epoch visits the partitions in a new order drawn from the model's seed.
The result is bitwise that of calling ``partial_fit`` on the partitions, in
the same order, in one process.

For the scikit-learn estimators, dask-ml's ``Incremental`` wrapper does the
same through their ``partial_fit`` (docs/interop.md).
"""

import contextlib
import sys

import numpy as np

from fastnn._optional import import_optional
from fastnn._validation import check_int
from fastnn.history import History
from fastnn.model import Sequential

_PARTITION_ORDER_STREAM = 3  # seeds the partition order apart from init, shuffling, holdout


def _blocks(X, name):
    """The partitions of a Dask Array (as row blocks) or DataFrame/Series, as
    delayed objects, and their number."""
    if hasattr(X, "to_delayed") and hasattr(X, "chunks"):  # dask.array
        if X.ndim == 2 and len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})  # one block holds whole rows
        blocks = X.to_delayed()
        return list(blocks.ravel() if X.ndim == 1 else blocks[:, 0])
    if hasattr(X, "to_delayed") and hasattr(X, "npartitions"):  # dask.dataframe
        return list(X.to_delayed())
    raise TypeError("%s must be a Dask Array, DataFrame or Series, got %s"
                    % (name, type(X).__name__))


def _distributed_client(dask):
    """The distributed Client that dask.compute will run on, or None (no
    client, or another scheduler chosen in dask's configuration)."""
    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    distributed = sys.modules.get("distributed")  # imported by dask when it found a client
    if owner is None or distributed is None or not isinstance(owner, distributed.Client):
        return None
    return owner


def _persist_where_they_live(client, x_blocks, y_blocks):
    """Persist the blocks on the cluster; return them with the workers holding
    each X block."""
    import distributed  # a client exists, so does distributed

    blocks = client.persist(x_blocks + y_blocks)  # free for a block already in memory
    distributed.wait(blocks)
    x_blocks, y_blocks = blocks[:len(x_blocks)], blocks[len(x_blocks):]
    who_has = client.who_has(x_blocks)
    return x_blocks, y_blocks, [sorted(who_has[block.key]) for block in x_blocks]


def _visit(state, X, y, classes, options, partial_options):
    """One partition's pass, on the worker that holds it."""
    model = Sequential.from_state_dict(state)
    model._partial_fit_options = partial_options
    history = model.partial_fit(X, y, classes=classes, **options)
    logs = {k: v[-1] for k, v in history.history.items()}
    return model.state_dict(), logs, len(X), model._partial_fit_options


def fit_partitions(model, X, y, *, epochs=1, classes=None, shuffle=True, shuffle_rows=None,
                   **options):
    """Train `model` on the partitions of Dask collections X and y.

    Parameters
    ----------
    model : fastnn.Sequential
        Built, or built from X's width; updated in place. Each partition's
        visit counts as one of its epochs (``epochs_trained_``), as a
        partial_fit does.
    X : dask.array.Array (2-D) or dask.dataframe.DataFrame
        Inputs, in partitions of whole rows (an array's column chunks are
        joined first).
    y : dask.array.Array or dask.dataframe.Series/DataFrame
        Targets, partitioned as X (the same number of partitions, the same
        rows in each).
    epochs : int, default=1
        Passes over all partitions.
    classes : array-like, default=None
        Every class label, for a classifier (see Sequential.partial_fit).
    shuffle : bool, default=True
        Visit the partitions in a new order each epoch (from the model's
        seed).
    shuffle_rows : bool or None, default=None
        partial_fit's shuffle, the rows' order within each partition: False
        keeps it, as for time-ordered data; None leaves partial_fit's own
        (its default, True, or what its stream's first call set).
    **options
        Training options of Sequential.partial_fit (loss, optimizer,
        batch_size, l2, ...), given to every visit.

    Returns
    -------
    History
        One record per epoch: the row-weighted mean of the partitions'
        losses.
    """
    dask = import_optional("dask", "fastnn.dask", "dask", "Dask")
    epochs = check_int(epochs, "epochs", low=1)
    x_blocks, y_blocks = _blocks(X, "X"), _blocks(y, "y")
    if len(x_blocks) != len(y_blocks):
        raise ValueError("X has %d partitions but y has %d: partition them alike"
                         % (len(x_blocks), len(y_blocks)))
    if hasattr(X, "chunks") and X.ndim != 2:
        raise ValueError("X must be a 2-D dask array (rows, features), got %d-D" % X.ndim)
    if shuffle_rows is not None:
        if not isinstance(shuffle_rows, (bool, np.bool_)):
            raise TypeError("shuffle_rows must be True, False or None, got %r"
                            % (shuffle_rows,))
        options = dict(options, shuffle=bool(shuffle_rows))
    if not model.built:  # the width is known without reading a partition
        model.build(X.shape[1] if hasattr(X, "chunks") else len(X.columns))
    client = _distributed_client(dask)
    holders = None
    if client is not None:  # pin each visit to its partition (docs/interop.md)
        x_blocks, y_blocks, holders = _persist_where_they_live(client, x_blocks, y_blocks)
    history = History()
    state, partial_options = model.state_dict(), model._partial_fit_options
    visit = dask.delayed(_visit, pure=False, nout=4)
    for _ in range(epochs):
        epoch = model.epochs_trained_
        order = (np.random.default_rng([model.seed_, _PARTITION_ORDER_STREAM, epoch])
                 .permutation(len(x_blocks)) if shuffle else np.arange(len(x_blocks)))
        visits = []
        for i in order:
            with (dask.annotate(workers=holders[i], allow_other_workers=True)
                  if holders else contextlib.nullcontext()):
                state, logs, rows, partial_options = visit(state, x_blocks[i], y_blocks[i],
                                                           classes, options, partial_options)
            visits.append((logs, rows))
        # not optimized when pinned: there is nothing to gain over persisted
        # blocks, and no fusion may merge tasks with different restrictions
        state, partial_options, visits = dask.compute(state, partial_options, visits,
                                                      optimize_graph=not holders)
        model.load_state_dict(state)
        model._partial_fit_options = partial_options
        rows = np.array([r for _, r in visits], dtype=np.float64)
        losses = np.array([logs["loss"] for logs, _ in visits])
        history.record(epoch, {"loss": float(losses @ rows / rows.sum()),
                               "partitions": len(visits)})
        state = model.state_dict()
    model.history_ = history
    return history
