"""Studies: the numerical specification's lessons as runnable experiments.

Each study trains real networks in seconds, writes a figure (``NAME.png``), its
key numbers (``NAME.json``) and the curves behind the figure (``NAME.csv``),
and returns the key numbers with a one-paragraph summary::

    python -m fastnn.studies standardization --out studies_out
    python -m fastnn.studies all --quick

    from fastnn import studies
    result = studies.run("clipping", out="studies_out")
    result = studies.clipping.run(out="studies_out")   # the same study
    print(result["summary"])

| name | lesson (spec section) |
|---|---|
| standardization | standardized inputs train faster and at more learning rates (1) |
| initialization | zeros, normal, xavier, he, glorot in a deep tanh and relu network (2, 10) |
| activations | sigmoid, tanh, relu, leaky_relu, softplus: speed and dead units (3) |
| optimizers | sgd, momentum, rmsprop, adam, adamw from the same weights (8) |
| regularization | L2 and dropout on an over-parameterized network (5, 6) |
| clipping | a run that overflows without gradient clipping and trains with it (9) |
| search | grid against random search over learning rate and L2 (11) |

``python -m fastnn.studies search_strategies`` compares grid, random and LIPO
search on standard test functions and on digits
(:mod:`fastnn.studies.search_strategies`); it measures the library rather than
a lesson of the specification, so ``all`` does not run it.

The studies need matplotlib (``pip install 'fastnn[plot]'``) and, except for
standardization, scikit-learn's bundled data sets (``fastnn[sklearn]``).
"""

from fastnn.studies import (activations, clipping, initialization, optimizers,  # noqa: F401
                            regularization, search, standardization)

STUDIES = {
    "standardization": standardization,
    "initialization": initialization,
    "activations": activations,
    "optimizers": optimizers,
    "regularization": regularization,
    "clipping": clipping,
    "search": search,
}


def run(name, out="studies_out", quick=False, seed=0, n_threads=1):
    """Run one study by name; returns its key numbers and summary (a dict,
    also written to OUT/NAME.json next to OUT/NAME.png and OUT/NAME.csv).

    Parameters
    ----------
    name : one of STUDIES
    out : output directory, created if needed
    quick : a smaller version (fewer samples, epochs and settings) for tests
    seed : seeds the data split, the initial weights and the batch order
    n_threads : fastnn threads while the study runs (1: see _common)
    """
    if name not in STUDIES:
        raise ValueError("unknown study %r; valid studies are: %s"
                         % (name, ", ".join(STUDIES)))
    return STUDIES[name].run(out=out, quick=quick, seed=seed, n_threads=n_threads)


__all__ = ["STUDIES", "run"] + list(STUDIES)
