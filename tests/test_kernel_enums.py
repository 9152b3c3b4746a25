"""The C enumerations (src_c/fnn.h) and the tables fastnn._kernels exports agree:
every FNN_ACT_*, FNN_LOSS_*, FNN_OPT_* and status code appears under its
lower-case name with the header's value, and nothing else does."""

import os
import re

import pytest

from fastnn import _kernels, activations, losses, optim

HEADER = os.path.join(os.path.dirname(__file__), os.pardir, "src_c", "fnn.h")


def _defines(prefix):
    """{lower-case suffix: value} of the header's `#define FNN_<prefix>_X value`."""
    with open(HEADER) as f:
        text = f.read()
    found = re.findall(r"^#define FNN_%s_([A-Z0-9_]+)\s+\(?(-?\d+)\)?" % prefix, text, re.M)
    return {name.lower(): int(value) for name, value in found}


@pytest.mark.parametrize("prefix, table", [
    ("ACT", _kernels.ACTIVATION_IDS),
    ("LOSS", _kernels.LOSS_IDS),
    ("OPT", _kernels.OPTIMIZER_IDS),
])
def test_each_table_is_its_header_enumeration(prefix, table):
    header = _defines(prefix)
    count = header.pop("count")
    assert table == header
    assert sorted(table.values()) == list(range(count))
    assert _kernels.ENUM_COUNTS[prefix] == count


def test_status_codes_are_the_headers():
    with open(HEADER) as f:
        found = re.findall(r"^#define FNN_(OK|E[A-Z]+)\s+\(?(-?\d+)\)?", f.read(), re.M)
    assert len(found) == 7
    assert _kernels.STATUS_CODES == {name.lower(): int(value) for name, value in found}


def test_the_python_layers_use_the_exported_tables():
    assert activations.ACTIVATION_IDS is _kernels.ACTIVATION_IDS
    assert activations.ACTIVATIONS == tuple(_kernels.ACTIVATION_IDS)
    assert losses.LOSS_IDS is _kernels.LOSS_IDS
    kinds = {optim.SGD().kind, optim.Momentum().kind, optim.ClassicalMomentum().kind,
             optim.Nesterov().kind, optim.RMSProp().kind, optim.Adam().kind,
             optim.AdamFolded().kind}
    assert kinds == set(_kernels.OPTIMIZER_IDS.values())


@pytest.mark.parametrize("status, exc", [("einval", ValueError), ("enomem", MemoryError),
                                         ("elabel", ValueError),
                                         ("enonfinite", FloatingPointError),
                                         ("ezeroweight", ZeroDivisionError),
                                         ("ecomm", RuntimeError)])
def test_each_failure_status_raises_its_exception(status, exc):
    with pytest.raises(exc):
        _kernels.raise_for_status(_kernels.STATUS_CODES[status])
