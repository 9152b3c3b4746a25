"""Map the C kernels' status codes (src_c/fnn.h) to exceptions."""

FNN_EINVAL = -1
FNN_ENOMEM = -2
FNN_ELABEL = -3
FNN_ENONFINITE = -4

_MESSAGES = {
    FNN_EINVAL: (ValueError, "a kernel argument is outside its domain (size, option or rate)"),
    FNN_ENOMEM: (MemoryError, "a kernel could not allocate its scratch memory"),
    FNN_ELABEL: (ValueError, "a class label is outside [0, n_classes) for the output layer"),
    FNN_ENONFINITE: (FloatingPointError, "a loss or gradient became NaN or infinite"),
}


def raise_for_status(status):
    """Raise the exception that matches a non-zero kernel status."""
    cls, message = _MESSAGES.get(status, (RuntimeError, "kernel failed with status %d" % status))
    raise cls(message)
