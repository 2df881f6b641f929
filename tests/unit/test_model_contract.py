"""One contract, every model family: the scikit-learn-style estimator interface plus the model store round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bentoml
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from pricing.config import FAMILIES
from pricing.models import model_class

# Small settings so the whole contract runs in seconds per family.
FAST = {
    "torch": {"hidden_layers": [16], "max_epochs": 40, "batch_size": 32, "learning_rate": 1e-2},
    "xgboost": {"n_estimators": 40},
    "lightgbm": {"n_estimators": 40, "min_child_samples": 5},
    "svr": {"max_train_rows": 300},
    "elasticnet": {},
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5)).astype(np.float32)
    y = 1.5 + 0.3 * X[:, 0] + X[:, 1] - 0.5 * X[:, 2] - 0.8 * X[:, 4] + rng.normal(0, 0.1, 600)
    return X[:450], y[:450], X[450:], y[450:]


def make(family: str, seed: int = 0):
    return model_class(family)(**FAST[family], random_state=seed)


@pytest.mark.parametrize("family", FAMILIES)
def test_fit_returns_self_and_predicts_a_float_vector(family: str, data) -> None:
    X, y, X_val, y_val = data
    model = make(family)
    assert model.fit(X, y, X_val, y_val) is model
    pred = model.predict(X_val)
    assert pred.shape == (len(X_val),)
    assert pred.dtype == np.float64
    assert np.isfinite(pred).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_learns_the_signal(family: str, data) -> None:
    X, y, X_val, y_val = data
    pred = make(family).fit(X, y, X_val, y_val).predict(X_val)
    r2 = 1 - np.mean((pred - y_val) ** 2) / np.var(y_val)
    assert r2 > 0.6, f"{family} R^2 {r2:.2f} on an easy linear problem"


@pytest.mark.parametrize("family", FAMILIES)
def test_unfitted_model_refuses_to_predict_or_save(family: str, data, tmp_path: Path) -> None:
    model = make(family)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(data[0])
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "m")


@pytest.mark.parametrize("family", FAMILIES)
def test_constructor_stores_hyperparameters_unchanged(family: str) -> None:
    model = make(family, seed=123)
    params = model.get_params()
    assert params["random_state"] == 123
    for name, value in FAST[family].items():
        assert params[name] == value
    assert not [k for k in vars(model) if k.endswith("_")], "learned state before fit"


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_predictions(family: str, data) -> None:
    X, y, X_val, y_val = data
    first = make(family, seed=5).fit(X, y, X_val, y_val).predict(X_val)
    second = make(family, seed=5).fit(X, y, X_val, y_val).predict(X_val)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_through_the_model_store(family: str, data) -> None:
    X, y, X_val, y_val = data
    model = make(family).fit(X, y, X_val, y_val)
    with bentoml.models.create(f"contract_{family}", labels={"family": family}) as stored:
        model.save(Path(stored.path) / "estimator")
    loaded = model_class(family).load(Path(bentoml.models.get(stored.tag).path) / "estimator")
    np.testing.assert_allclose(loaded.predict(X_val), model.predict(X_val), rtol=1e-6, atol=1e-6)
    assert loaded.get_params() == model.get_params()


@pytest.mark.parametrize("family", FAMILIES)
def test_rejects_a_matrix_of_the_wrong_width(family: str, data) -> None:
    X, y, X_val, y_val = data
    model = make(family).fit(X, y, X_val, y_val)
    with pytest.raises(ValueError, match="features"):
        model.predict(X_val[:, :4])


def test_load_refuses_another_familys_directory(data, tmp_path: Path) -> None:
    X, y, _, _ = data
    make("elasticnet").fit(X, y).save(tmp_path / "m")
    with pytest.raises(ValueError, match="elasticnet model, not svr"):
        model_class("svr").load(tmp_path / "m")


def test_svr_matrix_prediction_matches_libsvm(data) -> None:
    X, y, X_val, _ = data
    model = make("svr").fit(X, y)
    np.testing.assert_allclose(model.predict(X_val), model.pipeline_.predict(X_val), atol=1e-6)


def test_unknown_family_is_named() -> None:
    with pytest.raises(ValueError, match="unknown model family 'catboost'"):
        model_class("catboost")


def test_torch_keeps_an_unseen_value_of_a_column_constant_in_training_finite(data) -> None:
    # Standardising by a zero training spread once divided an unseen value by 1e-6 (val MSE in the millions).
    X, y, X_val, y_val = data
    X, X_val = X.copy(), X_val.copy()
    X[:, 3], X_val[:, 3] = 1.0, 0.0
    model = make("torch").fit(X, y)
    pred = model.predict(X_val)
    assert np.isfinite(pred).all()
    assert np.abs(pred - y_val).max() < 10 * np.abs(y_val).max()


@pytest.mark.parametrize("batch_norm", [True, False])
def test_torch_serves_the_trained_network_as_arrays(data, batch_norm: bool) -> None:
    # Serving runs the exported arrays with numpy (batch norm folded in): the same outputs as PyTorch's module.
    import torch

    from pricing.models import torch_network

    X, y, X_val, _ = data
    model = model_class("torch")(**{**FAST["torch"], "hidden_layers": [16, 8]}, batch_norm=batch_norm).fit(X, y)
    expected = torch_network.predict(model.network_, torch.from_numpy(X_val)).numpy()
    np.testing.assert_allclose(model.predict(X_val), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("family", "framework"), [("torch", "torch"), ("svr", "sklearn"), ("elasticnet", "sklearn")])
def test_a_stored_model_predicts_without_importing_its_training_framework(family, framework, data, tmp_path) -> None:
    X, y, X_val, _ = data
    model = make(family).fit(X, y)
    model.save(tmp_path / "m")
    np.save(tmp_path / "x.npy", X_val)
    np.save(tmp_path / "expected.npy", model.predict(X_val))
    script = (
        "import sys, numpy as np; from pathlib import Path; from pricing.models import model_class; "
        f"d = Path({str(tmp_path)!r}); m = model_class({family!r}).load(d / 'm'); "
        "np.testing.assert_array_equal(m.predict(np.load(d / 'x.npy')), np.load(d / 'expected.npy')); "
        f"assert {framework!r} not in sys.modules, {framework!r} + ' was imported'"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("family", "arrays"), [("torch", "network.npz"), ("svr", "arrays.npz"), ("elasticnet", "arrays.npz")]
)
def test_a_store_written_before_the_arrays_is_still_read(family, arrays, data, tmp_path: Path) -> None:
    X, y, X_val, _ = data
    model = make(family).fit(X, y)
    model.save(tmp_path / "m")
    (tmp_path / "m" / arrays).unlink()
    loaded = model_class(family).load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(X_val), model.predict(X_val), rtol=1e-6, atol=1e-6)


def test_elasticnet_arrays_predict_as_the_pipeline(data) -> None:
    X, y, X_val, _ = data
    model = make("elasticnet").fit(X, y)
    np.testing.assert_allclose(model.predict(X_val), model.pipeline_.predict(X_val), rtol=1e-6, atol=1e-6)
