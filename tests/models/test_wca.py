"""The Weighted Coherent Average loss: invariant to global offset, 2π wraps and the sign of the truth, and
to nothing else; the Keras loss equals the numpy metric."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.models.wca import pack_targets, wca_loss, wca_numpy, wca_weights

S = 12


@pytest.fixture
def case(rng):
    """A smooth 'reciprocal phase' and a peaked log-intensity (weights) on a small grid."""
    z, y, x = np.meshgrid(*(np.arange(S) - S // 2,) * 3, indexing="ij")
    r2 = (z**2 + y**2 + x**2).astype(float)
    log_i = np.log1p(1e5 * np.exp(-r2 / 8.0) + rng.poisson(1.0, r2.shape))
    phi = 2.5 * np.sin(0.4 * z + 0.2 * x * y / S) + 1.5 * np.cos(0.3 * y)
    return phi.astype(np.float32), (log_i / log_i.max()).astype(np.float32)


def test_weights_sum_to_one_per_sample(case):
    _, w = case
    assert wca_weights(w).sum() == pytest.approx(1.0)
    batch = np.stack([w, 2 * w, w**2])
    assert np.allclose(wca_weights(batch).sum(axis=(1, 2, 3)), 1.0)


def test_perfect_prediction_costs_nothing(case):
    phi, w = case
    assert wca_numpy(phi, phi, w) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("offset", [0.3, -2.0, np.pi, 17.0])
def test_invariant_to_global_offset(case, offset):
    phi, w = case
    assert wca_numpy(phi, phi + offset, w) == pytest.approx(0.0, abs=1e-6)


def test_invariant_to_2pi_wraps(case, rng):
    phi, w = case
    wraps = 2 * np.pi * rng.integers(-3, 4, phi.shape)
    assert wca_numpy(phi, phi + wraps, w) == pytest.approx(0.0, abs=1e-6)
    wrapped = np.angle(np.exp(1j * phi))
    assert wca_numpy(phi, wrapped, w) == pytest.approx(0.0, abs=1e-6)


def test_invariant_to_sign_of_truth(case, rng):
    phi, w = case
    wraps = 2 * np.pi * rng.integers(-2, 3, phi.shape)
    assert wca_numpy(phi, -phi + 0.7 + wraps, w) == pytest.approx(0.0, abs=1e-6)
    assert wca_numpy(-phi, phi, w) == pytest.approx(0.0, abs=1e-6)


def test_not_invariant_to_other_changes(case, rng):
    phi, w = case
    others = {
        "half": 0.5 * phi,
        "flat": np.zeros_like(phi),
        "noise": phi + rng.normal(0, 1.0, phi.shape),
        "shuffled": rng.permutation(phi.ravel()).reshape(phi.shape),
        "partly negated": np.where(np.arange(S)[:, None, None] < S // 2, phi, -phi) * np.ones_like(phi),
    }
    for name, pred in others.items():
        assert wca_numpy(phi, pred, w) > 0.05, name
    # and it grows with the error
    small = wca_numpy(phi, phi + rng.normal(0, 0.2, phi.shape), w)
    large = wca_numpy(phi, phi + rng.normal(0, 1.0, phi.shape), w)
    assert 0 < small < large


def test_weights_scale_free(case, rng):
    phi, w = case
    pred = phi + rng.normal(0, 0.5, phi.shape)
    assert wca_numpy(phi, pred, w) == pytest.approx(wca_numpy(phi, pred, 37.0 * w))


def test_keras_loss_matches_numpy(case, rng):
    from napari_bcdi_dl.models._keras import keras

    k = keras()
    phi, w = case
    preds = np.stack([phi + 1.0, -phi + 2 * np.pi, 0.5 * phi, phi + rng.normal(0, 0.7, phi.shape)]).astype(np.float32)
    truth = np.stack([phi] * len(preds))
    weights = np.stack([w] * len(preds))
    y_true = pack_targets(truth, weights)
    got = k.ops.convert_to_numpy(wca_loss(k.ops.convert_to_tensor(y_true),
                                          k.ops.convert_to_tensor(preds[..., None])))
    want = wca_numpy(truth, preds, weights, per_sample=True)
    assert got.shape == (len(preds),)
    assert np.allclose(got, want, atol=2e-5)
    assert abs(got[0]) < 1e-5 and abs(got[1]) < 1e-5
    assert got[2] > 0.05 and got[3] > 0.05


def test_shape_mismatch_is_an_error(case):
    phi, w = case
    with pytest.raises(ValueError, match="shapes differ"):
        wca_numpy(phi, phi[:-1], w)
