"""The package's layers (docs/architecture.md): a module imports only modules
of lower layers, at the top of the file or inside a function alike, and every
module has a layer, so a new module must be placed before it can import."""

import ast
import os

import pytest

import fastnn

PACKAGE = os.path.dirname(fastnn.__file__)

# lowest first; the same table as in docs/architecture.md
LAYERS = [
    ("compiled kernels", ["_kernels", "_openmp"]),
    ("runtime", ["_threads", "_isa", "_version", "_optional", "_collective"]),
    ("validation and build facts", ["_validation", "_config", "_frames"]),
    ("vocabulary", ["activations", "losses", "schedules", "initializers", "params", "history",
                    "callbacks"]),
    ("descriptions", ["optim", "layers", "_kernel_args"]),
    ("kernels", ["ops", "reference", "_lipo"]),
    ("engines and file format", ["_backends", "_epochs", "_inference", "io", "preprocessing",
                                 "_fit_data", "data"]),
    ("data-parallel epochs", ["_distributed"]),
    ("training", ["trainer"]),
    ("model", ["model"]),
    ("front ends", ["sklearn", "search"]),
    ("interop", ["onnx", "torch", "dask"]),
    ("package", ["__init__"]),
    ("applications", ["demo", "studies"]),
]
LAYER_OF = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def _modules():
    """(layer name, path) of every Python module of the package; a
    subpackage's modules take the subpackage's layer."""
    for root, _, files in os.walk(PACKAGE):
        rel = os.path.relpath(root, PACKAGE)
        for f in sorted(files):
            if f.endswith(".py"):
                name = f[:-3] if rel == "." else rel.split(os.sep)[0]
                yield name, os.path.join(root, f)


def _imported(path):
    """The fastnn modules a file imports (first component under fastnn, or
    "__init__" for the package itself), with line numbers."""
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "fastnn":
                continue
            if len(parts) > 1:
                yield parts[1], node.lineno
            else:  # from fastnn import x: a submodule, or a name of the package
                for alias in node.names:
                    yield (alias.name if alias.name in LAYER_OF else "__init__"), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "fastnn":
                    yield (parts[1] if len(parts) > 1 else "__init__"), node.lineno


def test_every_module_has_a_layer():
    missing = sorted({name for name, _ in _modules()} - set(LAYER_OF))
    assert not missing, "modules without a layer in LAYERS: %s" % missing


def test_imports_go_down_the_layers():
    wrong = []
    for name, path in _modules():
        for target, line in _imported(path):
            if target == name:  # within a subpackage
                continue
            if LAYER_OF[target] >= LAYER_OF[name]:
                wrong.append("%s:%d imports %s (layer %r from layer %r)" % (
                    os.path.relpath(path, PACKAGE), line, target, LAYERS[LAYER_OF[target]][0],
                    LAYERS[LAYER_OF[name]][0]))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("source, expected", [
    ("from fastnn import model\n", [("model", 1)]),
    ("import fastnn.trainer\n", [("trainer", 1)]),
    ("def f():\n    from fastnn.io import read_state\n", [("io", 2)]),
    ("import fastnn as fn\n", [("__init__", 1)]),
    ("from fastnn import __version__\n", [("__init__", 1)]),
])
def test_the_scan_finds_every_form_of_import(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert list(_imported(str(path))) == expected
