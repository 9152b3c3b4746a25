"""Optional dependencies: imported where a feature needs them, never by
``import fastnn``, with one error that names the extra to install."""

import importlib


def import_optional(module, needed_by, extra, library=None):
    """The module `module`, or an ImportError "<needed_by> needs <library>:
    pip install 'fastnn[<extra>]'" chained to the original one."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError("%s needs %s: pip install 'fastnn[%s]'"
                          % (needed_by, library or module, extra)) from exc
