"""Loss names, their kernel ids, and the output activation each needs (spec section 4)."""

from fastnn._kernels import LOSS_IDS
from fastnn._validation import check_scalar

LOSSES = tuple(LOSS_IDS)

# fused losses: the output activation they are fused with
REQUIRED_OUTPUT = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax",
                   "poisson": "exp"}


def check_loss(loss, output_activation):
    """The loss id, after checking the name and that the output layer fits it."""
    if not isinstance(loss, str) or loss not in LOSS_IDS:
        raise ValueError("unknown loss %r; valid losses are: %s" % (loss, ", ".join(LOSSES)))
    needed = REQUIRED_OUTPUT.get(loss)
    if needed is not None and output_activation != needed:
        raise ValueError("loss %r needs the output activation %r (it is fused with it), but the "
                         "last Dense layer has activation %r" % (loss, needed, output_activation))
    return LOSS_IDS[loss]


class CrossEntropy:
    """Softmax cross-entropy as an object, for options the name cannot carry.

    center_loss : float >= 0
        lambda of the center loss (spec section 12): lambda / (2m) times the sum
        of ||x_i - c_(y_i)||^2 over the batch, where x_i are the features that
        feed the output layer (the previous layer's output, after its dropout)
        and c_j is a center per class. 0 turns it off.
    center_alpha : float in [0, 1]
        How fast the centers follow their class's features: after each step,
        c_j <- c_j - alpha sum_(i: y_i = j) (c_j - x_i) / (1 + n_j).
    """

    name = "cross_entropy"

    def __init__(self, center_loss=0.0, center_alpha=0.5):
        self.center_loss = check_scalar(center_loss, "center_loss", low=0.0)
        self.center_alpha = check_scalar(center_alpha, "center_alpha", low=0.0, high=1.0)

    def __repr__(self):
        return "CrossEntropy(center_loss=%r, center_alpha=%r)" % (self.center_loss,
                                                                  self.center_alpha)

    def get_config(self):
        """Its settings: two losses with the same are the same option (a later
        partial_fit may repeat its first call's loss as a new object)."""
        return {"type": "CrossEntropy", "center_loss": self.center_loss,
                "center_alpha": self.center_alpha}


def loss_name(loss):
    """The name of a loss given as a name or a loss object."""
    return loss.name if isinstance(loss, CrossEntropy) else loss
