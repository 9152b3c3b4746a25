"""History: what a fit records, and its plots."""

import sys

import numpy as np
import pytest

from .small_nets import blobs, small_net


# ---------------------------------------------------------------- History


def _history(diagnostics=False, validation=True):
    X, y = blobs(0, 64)
    kwargs = {"validation_data": blobs(1, 20)} if validation else {}
    return small_net(dropout=0.2).fit(X, y, batch_size=16, epochs=3, diagnostics=diagnostics,
                                      **kwargs)


def test_history_records():
    history = _history(diagnostics=True)
    assert len(history) == 3 and history.epochs == [0, 1, 2]
    for key in ("loss", "val_loss", "val_accuracy", "lr", "time", "samples_per_sec"):
        assert len(history[key]) == 3, key
    assert len(history.diagnostics) == 2  # one per Dense layer
    for layer in history.diagnostics:
        assert sorted(layer) == ["act_mean", "act_var", "dead_fraction", "grad_norm"]
        assert all(len(values) == 3 for values in layer.values())
    assert "3 epochs" in repr(history)


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10000  # a real picture, not an empty canvas


@pytest.mark.parametrize("diagnostics, validation", [(False, True), (True, True),
                                                     (False, False)],
                         ids=["curves", "diagnostics", "no-validation"])
def test_history_plot_writes_a_png(tmp_path, diagnostics, validation):
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    history = _history(diagnostics, validation)
    backend, open_figures = matplotlib.get_backend(), plt.get_fignums()
    path = tmp_path / "history.png"
    fig = history.plot(path)
    _assert_png(path)
    assert len(fig.axes) == (4 if diagnostics else 2)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["Learning curves",
                          "Validation metric" if validation else "Throughput"]
    if diagnostics:
        assert titles[2:] == ["Per-layer activation variance", "Per-layer gradient norm"]
        assert len(fig.axes[2].get_lines()) == 2  # one line per Dense layer
    lines = fig.axes[0].get_lines()
    assert len(lines) == (2 if validation else 1)
    np.testing.assert_array_equal(lines[0].get_ydata(), history["loss"])
    # plotting leaves the session's backend and pyplot's figures alone
    assert matplotlib.get_backend() == backend and plt.get_fignums() == open_figures


def test_history_plot_without_matplotlib(monkeypatch):
    history = _history()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="matplotlib"):
        history.plot()
