"""Loss names, their kernel ids, and the output activation each needs (spec section 4)."""

# ids shared with src_c/fnn.h (FNN_LOSS_*)
LOSS_IDS = {"mse": 0, "binary_cross_entropy": 1, "cross_entropy": 2}
LOSSES = tuple(LOSS_IDS)

# fused losses: the output activation they are fused with
REQUIRED_OUTPUT = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax"}


def check_loss(loss, output_activation):
    """The loss id, after checking the name and that the output layer fits it."""
    if not isinstance(loss, str) or loss not in LOSS_IDS:
        raise ValueError("unknown loss %r; valid losses are: %s" % (loss, ", ".join(LOSSES)))
    needed = REQUIRED_OUTPUT.get(loss)
    if needed is not None and output_activation != needed:
        raise ValueError("loss %r needs a %s output layer (it is fused with it), but the "
                         "last Dense layer has activation %r" % (loss, needed, output_activation))
    return LOSS_IDS[loss]
