"""fastnn.torch: a fastnn model and a torch.nn.Sequential convert into each
other with the same weights bit for bit, compute the same outputs to
rounding, and a model defined in PyTorch trains with fastnn's loop and comes
back as a PyTorch module."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn as fn

from .tolerances import MAX_ULP, assert_close

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastnn.torch")
nn = torch.nn

torch.set_num_threads(1)  # the CPU is shared; these nets are tiny

DTYPES = [np.float32, np.float64]
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
ACTIVATION_MODULE = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
                     "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus,
                     "softmax": nn.Softmax, "exp": ft.Exp}


def _activation(name):
    return fn.LeakyReLU(0.2) if name == "leaky_relu" else name


def _model(layers, input_dim, dtype, seed=0):
    """A built model with random weights and biases (biases start at zero)."""
    model = fn.Sequential(layers, input_dim=input_dim, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in model.dense_layers_:
        layer.b = rng.uniform(-0.5, 0.5, layer.units).astype(dtype)
    return model


def _expected_types(model, include_output_activation=False):
    """The module types to_torch gives for a model."""
    types, last = [], len(model.dense_layers_) - 1
    for layer in model.layers:
        if isinstance(layer, fn.Dropout):
            types.append(nn.Dropout)
            continue
        types.append(nn.Linear)
        name = layer.activation.name
        left_off = layer is model.dense_layers_[last] and name in ft.LOSS_OUTPUT_ACTIVATIONS \
            and not include_output_activation
        if name != "identity" and not left_off:
            types.append(ACTIVATION_MODULE[name])
    return types


def _assert_same_weights(model, module):
    """module's Linear parameters are model's (W.T, b), bit for bit, same dtype."""
    linears = [m for m in module if isinstance(m, nn.Linear)]
    assert len(linears) == len(model.weights)
    for (W, b), linear in zip(model.weights, linears):
        weight, bias = linear.weight.detach().numpy(), linear.bias.detach().numpy()
        assert weight.dtype == bias.dtype == model.dtype
        assert np.array_equal(weight, W.T) and np.array_equal(bias, b)


def _assert_same_models(a, b):
    """Two fastnn models with the same layers, dtype and weights, bit for bit."""
    assert [layer.get_config()["type"] for layer in a.layers] == \
        [layer.get_config()["type"] for layer in b.layers]
    assert [layer.activation for layer in a.dense_layers_] == \
        [layer.activation for layer in b.dense_layers_]
    assert [layer.units for layer in a.dense_layers_] == [layer.units for layer in b.dense_layers_]
    assert [layer.rate for layer in a.layers if isinstance(layer, fn.Dropout)] == \
        [layer.rate for layer in b.layers if isinstance(layer, fn.Dropout)]
    assert a.dtype == b.dtype and a.input_dim == b.input_dim
    for (W1, b1), (W2, b2) in zip(a.weights, b.weights, strict=True):
        assert W1.dtype == W2.dtype == b1.dtype == b2.dtype == a.dtype
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)


def _logits(model, X):
    """The model's output layer before its activation: the same weights under an
    identity output."""
    layers = [fn.Dense(layer.units, activation=layer.activation) if isinstance(layer, fn.Dense)
              else fn.Dropout(layer.rate) for layer in model.layers]
    layers[-1] = fn.Dense(model.n_outputs, activation="identity")
    twin = fn.Sequential(layers, dtype=model.dtype)
    twin.build(model.input_dim, weights=model.weights)
    return twin.predict_proba(X)


def _forward_scale(model, X):
    """The magnitude the forward pass's rounding is relative to: the largest
    |A| @ |W| + |b| of any layer, from float64 activations (tolerances.py's
    GEMM scale, taken over the layers)."""
    A, scale = X.astype(np.float64), 0.0
    for layer, (W, b) in zip(model.dense_layers_, model.weights):
        W, b = W.astype(np.float64), b.astype(np.float64)
        scale = max(scale, float(np.max(np.abs(A) @ np.abs(W) + np.abs(b))))
        one = fn.Sequential([fn.Dense(layer.units, activation=layer.activation)],
                            dtype="float64")
        A = one.build(A.shape[1], weights=[(W, b)]).predict_proba(A)
    return scale


def _assert_forward_agrees(model, module, X):
    """module(X) in eval mode equals the model's outputs (or its logits, when the
    module leaves the output activation to the loss) to the GEMM tolerance of
    tests/tolerances.py: both sides round the same products in different
    summation orders (fastnn's kernels against torch's BLAS)."""
    module.eval()
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    assert out.dtype == model.dtype
    left_off = getattr(module, "output_activation", None)  # None on a module made in PyTorch
    desired = model.predict_proba(X) if left_off is None else _logits(model, X)
    k = max([model.input_dim] + [layer.units for layer in model.dense_layers_])
    assert_close(out, desired, "gemm", scale=_forward_scale(model, X), k=k)


# ------------------------------------------------------------------ fastnn -> torch -> fastnn

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_to_torch_copies_weights_bitwise_in_the_model_dtype(dtype):
    model = _model([fn.Dense(7, activation="tanh"), fn.Dropout(0.25), fn.Dense(1, "sigmoid")],
                   input_dim=5, dtype=dtype)
    module = ft.to_torch(model)
    assert isinstance(module, nn.Sequential)
    assert [type(m) for m in module] == [nn.Linear, nn.Tanh, nn.Dropout, nn.Linear]
    assert module[0].weight.shape == (7, 5)  # (out_features, in_features): W.T
    assert module[0].weight.dtype == module[3].bias.dtype == TORCH_DTYPE[dtype]
    assert module[2].p == 0.25
    _assert_same_weights(model, module)
    # copies: changing the module leaves the model alone
    with torch.no_grad():
        module[0].weight.add_(1.0)
    assert not np.array_equal(module[0].weight.detach().numpy(), model.weights[0][0].T)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("activation", fn.ACTIVATIONS)
def test_every_activation_as_hidden_and_output(activation, dtype):
    X = np.random.default_rng(1).standard_normal((6, 4)).astype(dtype)
    model = _model([fn.Dense(5, activation=_activation(activation)),
                    fn.Dense(3, activation=_activation(activation))], input_dim=4, dtype=dtype)
    for include in (False, True):
        module = ft.to_torch(model, include_output_activation=include)
        assert [type(m) for m in module] == _expected_types(model, include)
        left_off = activation in ("softmax", "sigmoid", "exp") and not include
        assert module.output_activation == (activation if left_off else None)
        if activation == "leaky_relu":
            assert module[1].negative_slope == 0.2
        _assert_same_weights(model, module)
        _assert_forward_agrees(model, module, X)
        _assert_same_models(ft.from_torch(module), model)


@pytest.mark.parametrize("arch", range(6))
def test_random_architectures_round_trip_and_agree(arch):
    """Depth 1-4, widths including a single unit and odd sizes, random
    activations and dropout, both dtypes, batches of 1 and 5 rows."""
    rng = np.random.default_rng(arch)
    dtype = DTYPES[arch % 2]
    layers = []
    for i in range(int(rng.integers(1, 5))):
        layers.append(fn.Dense(int(rng.choice([1, 2, 3, 7, 13])),
                               activation=_activation(str(rng.choice(fn.ACTIVATIONS)))))
        if rng.random() < 0.5:
            layers.append(fn.Dropout(float(rng.choice([0.0, 0.1, 0.5]))))
    if isinstance(layers[-1], fn.Dropout):
        layers.pop()
    input_dim = int(rng.choice([1, 3, 9]))
    model = _model(layers, input_dim, dtype, seed=arch)
    for include in (False, True):
        module = ft.to_torch(model, include_output_activation=include)
        assert [type(m) for m in module] == _expected_types(model, include)
        _assert_same_weights(model, module)
        for rows in (1, 5):
            X = rng.standard_normal((rows, input_dim)).astype(dtype)
            _assert_forward_agrees(model, module, X)
        back = ft.from_torch(module)
        _assert_same_models(back, model)
        # and on to PyTorch again: the same modules and parameters
        again = ft.to_torch(back, include_output_activation=include)
        assert [type(m) for m in again] == [type(m) for m in module]
        assert again.output_activation == module.output_activation
        for p, q in zip(module.parameters(), again.parameters(), strict=True):
            assert p.dtype == q.dtype and torch.equal(p, q)


def test_the_module_is_in_eval_mode_records_the_classes_and_leaves_torch_rng_alone():
    X = np.random.default_rng(0).standard_normal((40, 3))
    y = np.where(X[:, 0] > 0, "yes", "no")
    model = fn.Sequential([fn.Dense(4), fn.Dropout(0.5), fn.Dense(2, activation="softmax")],
                          seed=0)
    model.fit(X, y, epochs=1)
    state = torch.random.get_rng_state()
    module = ft.to_torch(model)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not any(m.training for m in module.modules())
    np.testing.assert_array_equal(module.classes_, ["no", "yes"])
    module.classes_[0] = "changed"  # a copy
    np.testing.assert_array_equal(model.classes_, ["no", "yes"])
    assert ft.to_torch(_model([fn.Dense(1)], 2, np.float32)).classes_ is None


def test_to_torch_refuses_what_is_not_a_built_model():
    with pytest.raises(TypeError, match="fastnn.Sequential, got Linear"):
        ft.to_torch(nn.Linear(2, 3))
    with pytest.raises(RuntimeError, match="not built"):
        ft.to_torch(fn.Sequential([fn.Dense(2)]))


# ------------------------------------------------------------------ torch -> fastnn -> torch

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_from_torch_copies_weights_bitwise_and_round_trips(dtype):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 1),
                           nn.Linear(1, 4), nn.LeakyReLU(0.05), nn.Linear(4, 2),
                           nn.Softplus(threshold=40.0), nn.Linear(2, 3)).to(TORCH_DTYPE[dtype])
    model = ft.from_torch(module, seed=3)
    assert model.dtype == dtype and model.input_dim == 5 and model.seed == 3
    assert [layer.activation.name for layer in model.dense_layers_] == \
        ["relu", "identity", "leaky_relu", "softplus", "identity"]
    assert model.dense_layers_[2].activation.alpha == 0.05
    assert model.dropout_after_ == [0.3, 0.0, 0.0, 0.0, 0.0]
    _assert_same_weights(model, module)
    back = ft.to_torch(model)
    assert [type(m) for m in back] == [type(m) for m in module]
    for p, q in zip(module.parameters(), back.parameters(), strict=True):
        assert p.dtype == q.dtype and torch.equal(p, q)
    X = np.random.default_rng(2).standard_normal((3, 5)).astype(dtype)
    _assert_forward_agrees(model, module, X)


def test_nested_sequentials_identity_and_linear_without_bias():
    torch.manual_seed(1)
    module = nn.Sequential(nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh()),
                           nn.Identity(), nn.Sequential(nn.Sequential(nn.Linear(4, 2))))
    model = ft.from_torch(module)
    assert [layer.activation.name for layer in model.dense_layers_] == ["tanh", "identity"]
    assert np.array_equal(model.weights[0][0], module[0][0].weight.detach().numpy().T)
    assert np.array_equal(model.weights[0][1], np.zeros(4, np.float32))  # the missing bias
    assert np.array_equal(model.weights[1][0], module[2][0][0].weight.detach().numpy().T)
    X = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    assert_close(model.predict_proba(X), out, "gemm", scale=_forward_scale(model, X), k=4)


def test_output_activation_is_recorded_restored_and_checked():
    torch.manual_seed(2)
    logits = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))
    # a stack ending in Linear: identity (regression) unless told
    assert ft.from_torch(logits).output_activation == "identity"
    for name in ("softmax", "sigmoid", "exp"):
        model = ft.from_torch(logits, output_activation=name)
        assert model.output_activation == name
        module = ft.to_torch(model)
        assert module.output_activation == name and isinstance(module[-1], nn.Linear)
        assert ft.from_torch(module).output_activation == name  # restored from the record
        assert ft.from_torch(module, output_activation=name).output_activation == name
        other = "sigmoid" if name != "sigmoid" else "softmax"
        with pytest.raises(ValueError, match="output_activation='%s', but the module records "
                                             "output_activation='%s'" % (other, name)):
            ft.from_torch(module, output_activation=other)
        # the recorded activation appended to the module is the same model
        appended = nn.Sequential(*module, {"softmax": nn.Softmax(dim=1), "sigmoid": nn.Sigmoid(),
                                           "exp": ft.Exp()}[name])
        appended.output_activation = name
        assert ft.from_torch(appended).output_activation == name
        # appended in full: the module computes the outputs and records nothing
        full = ft.to_torch(model, include_output_activation=True)
        assert full.output_activation is None
        assert type(full[-1]) is ACTIVATION_MODULE[name]
        assert ft.from_torch(full).output_activation == name
    ends_in_tanh = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    with pytest.raises(ValueError, match=r"ends with Tanh at position 1 \(Tanh\(\)\), but "
                                         "output_activation is 'softmax'"):
        ft.from_torch(ends_in_tanh, output_activation="softmax")
    with pytest.raises(ValueError, match="unknown activation 'logits'"):
        ft.from_torch(logits, output_activation="logits")


def test_input_dim_comes_from_the_first_linear():
    module = nn.Sequential(nn.Linear(6, 2))
    assert ft.from_torch(module).input_dim == 6
    assert ft.from_torch(module, input_dim=6).input_dim == 6
    with pytest.raises(ValueError, match="input_dim=5, but the first Linear takes 6 features"):
        ft.from_torch(module, input_dim=5)


@pytest.mark.parametrize("modules, error, match", [
    ([nn.Linear(2, 3), nn.Conv1d(1, 1, 1)], TypeError,
     r"cannot convert Conv1d at position 1 \(Conv1d\(1, 1"),
    ([nn.Linear(2, 3), nn.Sequential(nn.BatchNorm1d(3))], TypeError,
     "cannot convert BatchNorm1d at position 1.0"),
    ([nn.Linear(2, 3), nn.GELU()], TypeError, "cannot convert GELU at position 1"),
    ([nn.ReLU(), nn.Linear(2, 3)], ValueError,
     "ReLU at position 0 .* comes before the first Linear"),
    ([nn.Linear(2, 3), nn.ReLU(), nn.Tanh()], ValueError,
     r"Tanh at position 2 \(Tanh\(\)\) follows ReLU at position 1"),
    ([nn.Linear(2, 3), nn.Sigmoid(), nn.Sigmoid()], ValueError,
     "Sigmoid at position 2 .* follows Sigmoid at position 1"),
    ([nn.Linear(2, 3), nn.Dropout(0.1), nn.ReLU()], ValueError,
     "ReLU at position 2 .* follows a Dropout"),
    ([nn.Dropout(0.1), nn.Linear(2, 3)], ValueError,
     "Dropout at position 0 .* comes before the first Linear"),
    ([nn.Linear(2, 3), nn.Dropout(0.1), nn.Dropout(0.2), nn.Linear(3, 1)], ValueError,
     "Dropout at position 2 .* follows another Dropout"),
    ([nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.1)], ValueError, "ends with a Dropout"),
    ([nn.Linear(2, 3), nn.Dropout(1.0), nn.Linear(3, 1)], ValueError,
     r"Dropout at position 1 \(Dropout\(p=1.0.*rate is in \[0, 1\)"),
    ([nn.Linear(2, 3), nn.Linear(4, 1)], ValueError,
     "Linear at position 1 .* takes 4 features but the Linear at position 0 gives 3"),
    ([nn.Linear(2, 3), nn.Softmax(dim=0)], ValueError,
     r"Softmax at position 1 \(Softmax\(dim=0\)\): .* nn.Softmax\(dim=1\)"),
    ([nn.Linear(2, 3), nn.Softplus(beta=2.0)], ValueError,
     "Softplus at position 1 .* set beta=1"),
    ([nn.Linear(2, 3), nn.LeakyReLU(-0.1)], ValueError,
     "LeakyReLU at position 1 .* negative_slope >= 0"),
    ([nn.ReLU()], ValueError, "no nn.Linear layer"),
])
def test_unsupported_stacks_are_refused_naming_the_module(modules, error, match):
    with pytest.raises(error, match=match):
        ft.from_torch(nn.Sequential(*modules))


def test_a_module_that_appears_twice_runs_twice():
    # one activation object reused, a Linear tied to itself: nn.Sequential runs each
    # entry, repeats included
    torch.manual_seed(0)
    act, tied = nn.Tanh(), nn.Linear(4, 4)
    X = torch.randn(5, 4)
    for net in (nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 4), act, nn.Linear(4, 2)),
                nn.Sequential(tied, nn.ReLU(), tied)):
        model = ft.from_torch(net)
        assert len(model.dense_layers_) == 3 - (net[0] is tied)
        with torch.no_grad():
            assert_close(model.predict_proba(X.numpy()), net(X).numpy(), "gemm", k=8,
                         dtype=np.float32)


def test_forward_hooks_and_modules_it_cannot_convert_are_refused():
    # a hook changes what its module computes: fastnn would read the plain layer
    lin = nn.Linear(3, 2)
    lin.register_forward_hook(lambda module, inputs, output: output.clamp(min=0))
    with pytest.raises(ValueError, match=r"Linear at position 0 .* has forward hooks"):
        ft.from_torch(nn.Sequential(lin))
    normed = nn.Sequential(nn.utils.spectral_norm(nn.Linear(3, 4)), nn.ReLU())
    with pytest.raises(ValueError, match="has forward hooks.*remove_spectral_norm"):
        ft.from_torch(normed)
    whole = nn.Sequential(nn.Linear(3, 2))
    whole.register_forward_pre_hook(lambda module, inputs: inputs)
    with pytest.raises(ValueError, match="the Sequential itself has forward hooks"):
        ft.from_torch(whole)
    with pytest.raises(ValueError, match=r"Softplus at position 1 \(Softplus\(beta=1.*, "
                                         r"threshold=nan\)\)"):
        ft.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Softplus(threshold=float("nan"))))
    # alone, a module it cannot convert is named, not taken for a stack without a Linear
    with pytest.raises(TypeError, match="cannot convert Conv1d at position 0"):
        ft.from_torch(nn.Sequential(nn.Conv1d(1, 2, 3)))


def test_custom_modules_and_containers_are_refused():
    class Doubled(nn.ReLU):  # computes something else than its base class
        def forward(self, x):
            return 2 * torch.relu(x)

    with pytest.raises(TypeError, match="cannot convert Doubled at position 1"):
        ft.from_torch(nn.Sequential(nn.Linear(2, 3), Doubled()))

    class Scaled(nn.Linear):  # a Linear that computes something else
        def forward(self, x):
            return 2 * super().forward(x)

    # named as any other module it cannot convert, also when it is the only Linear
    with pytest.raises(TypeError, match="cannot convert Scaled at position 2"):
        ft.from_torch(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), Scaled(3, 1)))
    with pytest.raises(TypeError, match="cannot convert Scaled at position 0"):
        ft.from_torch(nn.Sequential(Scaled(2, 1)))
    with pytest.raises(ValueError, match="the module has no nn.Linear layer"):
        ft.from_torch(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="takes a torch.nn.Sequential, got ModuleList"):
        ft.from_torch(nn.ModuleList([nn.Linear(2, 3)]))
    with pytest.raises(TypeError, match="takes a torch.nn.Sequential, got Linear"):
        ft.from_torch(nn.Linear(2, 3))


def test_dtypes_other_than_float32_and_float64_are_refused():
    with pytest.raises(TypeError, match="torch.float16; fastnn takes torch.float32 or "
                                        "torch.float64"):
        ft.from_torch(nn.Sequential(nn.Linear(2, 3).half()))
    with pytest.raises(TypeError, match="mix dtypes torch.float32, torch.float64"):
        ft.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1).double()))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_softplus_thresholds_keep_fastnns_softplus(dtype):
    """torch's Softplus is linear above its threshold; the threshold to_torch sets
    agrees with fastnn's softplus within the vector math's ulp bound
    (tests/tolerances.py MAX_ULP) over [-60, 60], where torch's default 20 is
    2e-9 off in float64; from_torch refuses thresholds below that point."""
    z = np.linspace(-60, 60, 24001).astype(dtype)
    fast = fn.ops.activation_forward(z[None, :].copy(), "softplus")[0]
    model = _model([fn.Dense(1, activation="softplus")], 1, dtype)
    softplus = ft.to_torch(model)[1]
    with torch.no_grad():
        out = softplus(torch.from_numpy(z)).numpy()
    ulps = np.abs(out - fast) / np.spacing(np.abs(fast))
    assert ulps.max() <= MAX_ULP[dtype]
    assert softplus.threshold == {np.float32: 20.0, np.float64: 40.0}[dtype]
    torch_dtype = TORCH_DTYPE[dtype]
    low = nn.Sequential(nn.Linear(1, 1), nn.Softplus(threshold=14.0)).to(torch_dtype)
    with pytest.raises(ValueError, match="threshold >= %g for %s" % (
            {np.float32: 15, np.float64: 34}[dtype], torch_dtype)):
        ft.from_torch(low)
    default = nn.Sequential(nn.Linear(1, 1), nn.Softplus()).to(torch_dtype)
    if dtype == np.float32:
        assert ft.from_torch(default).output_activation == "softplus"
    else:
        with pytest.raises(ValueError, match="threshold=40"):
            ft.from_torch(default)


# ------------------------------------------------------------------ a torch model, fastnn's loop

def test_define_in_torch_train_with_fastnn_get_torch_back():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = rng.integers(0, 3, 300)
    X = (centers[y] + rng.standard_normal((300, 2))).astype(np.float32)
    torch.manual_seed(0)
    defined = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    model = ft.from_torch(defined, output_activation="softmax", seed=0)
    model.fit(X, y, loss="cross_entropy", epochs=15, batch_size=32)
    trained = ft.to_torch(model)
    assert trained.output_activation == "softmax"
    np.testing.assert_array_equal(trained.classes_, [0, 1, 2])
    with torch.no_grad():
        logits = trained(torch.from_numpy(X))
    predicted = trained.classes_[logits.argmax(dim=1).numpy()]
    np.testing.assert_array_equal(predicted, model.predict(X))
    assert np.mean(predicted == y) > 0.95
    # PyTorch's loss on the logits is fastnn's (its mean over float32 rows, to
    # float32 rounding; fastnn sums the loss in float64)
    loss = nn.CrossEntropyLoss()(logits, torch.from_numpy(y)).item()
    assert_close(loss, model.evaluate(X, y)["loss"], "gemm", dtype=np.float32)


# ------------------------------------------------------------------ imports

def test_fastnn_does_not_import_torch_and_names_the_extra_without_it():
    code = ("import sys\n"
            "import fastnn\n"
            "print('torch' in sys.modules)\n"
            "sys.modules['torch'] = None\n"  # import torch now fails, as without PyTorch
            "try:\n"
            "    import fastnn.torch\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=root)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "False"
    assert lines[1].startswith("fastnn.torch needs PyTorch: pip install 'fastnn[torch]'")
