"""Decisions that every process of an MPI communicator takes together, for
the code that works on shards of the rows (fastnn._distributed,
fastnn.preprocessing). comm is an mpi4py communicator; nothing here imports
mpi4py."""


def agree(comm, fn):
    """Run fn() on every process of comm and return its result; when it
    raises on any process, every process raises (its own error, or a
    ValueError naming the process that failed), so that none is left waiting
    in a later collective."""
    try:
        result, error = fn(), None
    except Exception as exc:  # re-raised below, on every process
        result, error = None, exc
    messages = comm.allgather(None if error is None else "%s: %s" % (type(error).__name__, error))
    if error is not None:
        raise error
    failed = [(r, m) for r, m in enumerate(messages) if m is not None]
    if failed:
        raise ValueError("the fit failed on process %d of %d: %s"
                         % (failed[0][0], comm.Get_size(), failed[0][1]))
    return result
