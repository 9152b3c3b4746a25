"""The README's main job: the digits demo trains to a useful accuracy."""

import pytest

pytest.importorskip("sklearn")

from fastnn import demo  # noqa: E402


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_demo_learns_digits(dtype):
    accuracy, seconds, model = demo.train(epochs=15, dtype=dtype)
    assert accuracy >= 0.95
    assert seconds > 0 and len(model.history_) >= 1


def test_demo_main_prints_accuracy_and_time(capsys):
    assert demo.main(["--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "training time:" in out
