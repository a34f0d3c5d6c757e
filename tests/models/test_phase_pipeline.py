"""DL phasing pipeline: model-grid round trips, object formation, support, refinement, the shipped model.

The oracle tests feed the *true* reciprocal phase through the same path the network's output takes, so
they check the pipeline (grids, FFT conventions, support, refinement) independently of the training.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.core.metrics import compare, is_match
from napari_bcdi_dl.core.phasing import autocorrelation_support, refine
from napari_bcdi_dl.core.reciprocal import crop_or_pad, from_model_grid, shift_crop, to_model_grid
from napari_bcdi_dl.core.simulate import simulate_pattern
from napari_bcdi_dl.models.dl_phasing import (
    DEFAULT_OVERSAMPLING_RANGE,
    PHASE_MODEL,
    dl_phase,
    load_phase_model,
    object_from_phase,
    predict_object,
    support_from_object,
    trained_oversampling_range,
)


def _ft(a):
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(a)))


def _ift(a):
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(a)))


@pytest.fixture(scope="module")
def strained():
    """A fixed strained crystal (3.5π) at 64³, oversampling 3, 1e7 photons at the peak."""
    return simulate_pattern(64, seed=11, phase_range=3.5 * np.pi, oversampling=3.0, max_counts=1e7,
                            field="gaussian_bumps", shape="wulff")


def _oracle_phase(p, t) -> np.ndarray:
    """The true field's phase on the model grid, taken there by the same maps as the intensity."""
    field = _ft(p.obj)
    assert not t.resampled
    return np.angle(field[tuple(slice(o, o + s) for o, s in zip(t.offset, t.size))])


def test_crop_round_trip_object_diffracts_the_model_field(strained):
    p = strained
    i_m, t = to_model_grid(p.intensity, 32, oversampling_range=DEFAULT_OVERSAMPLING_RANGE)
    assert t.crop_shape == (32, 32, 32) and not t.resampled  # oversampling 3 is in range: crop only
    phi = _oracle_phase(p, t)
    obj, phase_full = object_from_phase(i_m, phi, t)
    assert obj.shape == p.intensity.shape and obj.dtype == np.complex64
    psi = _ft(obj)
    region = tuple(slice(o, o + s) for o, s in zip(t.offset, t.size))
    want = np.sqrt(i_m) * np.exp(1j * phi)
    assert np.allclose(psi[region], want, atol=1e-3 * np.abs(want).max())
    outside = np.ones(psi.shape, bool)
    outside[region] = False
    assert np.abs(psi[outside]).max() < 1e-3 * np.abs(want).max()
    assert np.allclose(np.exp(1j * phase_full[region]), np.exp(1j * phi), atol=1e-4)
    assert np.all(phase_full[outside] == 0)


def test_zoom_round_trip_model_grid_to_data_grid_and_back():
    """An oversampling outside the trained range is resampled (Fourier zoom); forming the object on the data
    grid and taking its pattern back to the model grid gives the model-grid intensity again."""
    p = simulate_pattern(64, seed=2, phase_range=2 * np.pi, oversampling=(6.0, 6.0, 6.0), noise=False)
    i_m, t = to_model_grid(p.intensity, 32, oversampling_range=(2.15, 4.85))
    assert t.resampled and all(z < 1 for z in t.zoom)  # coarser q step: oversampling brought down
    # the true field on the model grid: crop in q, inverse FFT, crop/pad the (compact) object in real space
    # to the model's field of view, FFT
    field_c = shift_crop(_ft(p.obj), t.crop_shape, t.offset)
    psi_m = _ft(crop_or_pad(_ift(field_c), t.size))
    assert np.allclose(np.abs(psi_m) ** 2, i_m, atol=1e-2 * i_m.max())  # q-crop ringing
    obj, _ = object_from_phase(i_m, np.angle(psi_m), t)
    back, t2 = to_model_grid(np.abs(_ft(obj)) ** 2, 32, centre=t.centre, zoom=t.zoom)
    assert t2.crop_shape == t.crop_shape
    assert np.allclose(back, i_m, atol=1e-2 * i_m.max())
    # and the intensity itself round-trips through from_model_grid
    again = from_model_grid(i_m, t)
    region = tuple(slice(o, o + s) for o, s in zip(t.offset, t.crop_shape))
    assert np.allclose(again[region], p.intensity[region], atol=1e-2 * p.intensity.max())


def test_support_from_object():
    obj = np.zeros((24, 24, 24), np.complex64)
    obj[8:16, 8:16, 8:16] = np.exp(1j * 2.0)
    obj[1, 1, 1] = 0.9  # an isolated speck is not part of the crystal
    s = support_from_object(obj)
    assert s.dtype == np.uint8 and s[12, 12, 12] == 1 and s[1, 1, 1] == 0
    assert 7**3 <= s.sum() <= 10**3
    with pytest.raises(BCDIError, match="zero"):
        support_from_object(np.zeros((8, 8, 8), np.complex64))


@pytest.mark.slow
def test_oracle_phase_then_refinement_recovers_the_strained_crystal(strained):
    """With the true phase on the 32³ crop, the pipeline's object + support + 400 border-only ER match
    the truth at full resolution: the crop to the model grid loses nothing the refinement cannot restore."""
    p = strained
    i_m, t = to_model_grid(p.intensity, 32, oversampling_range=DEFAULT_OVERSAMPLING_RANGE)
    obj, _ = object_from_phase(i_m, _oracle_phase(p, t), t)
    rec = refine(p.intensity, obj, support_from_object(obj), n_iter=400)
    assert is_match(compare(p.obj, rec.obj, p.support, rec.support))


def test_bad_input_is_a_one_line_error():
    for bad, what in [(np.ones((8, 8)), "3D"), (np.zeros((16, 16, 16)), "no positive"),
                      (np.full((16, 16, 16), np.nan), "NaN"), (np.ones((4, 16, 16)), "too small")]:
        with pytest.raises(BCDIError, match=what):
            dl_phase(bad)
    with pytest.raises(BCDIError, match="mask shape"):
        dl_phase(np.ones((16, 16, 16)), mask=np.zeros((8, 8, 8)))
    with pytest.raises(BCDIError, match="iterations"):
        dl_phase(np.ones((16, 16, 16)), refine_iter=-1)


# ------------------------------------------------------------------------------------ the shipped model
def test_shipped_model_loads_offline_and_predicts_finite_phases(real_pattern):
    from napari_bcdi_dl.models.registry import model_path

    path = model_path(PHASE_MODEL)
    assert path.stat().st_size <= 25e6
    model, card = load_phase_model()
    assert card["kind"] == "phase" and card["grid"] == model.input_shape[1]
    lo, hi = trained_oversampling_range(card)
    assert 2.0 <= lo < hi <= 5.0
    pred = predict_object(real_pattern)
    assert pred.phase.shape == real_pattern.shape and pred.obj.shape == real_pattern.shape
    assert np.all(np.isfinite(pred.phase_model)) and np.all(np.isfinite(pred.obj))
    assert np.abs(pred.phase).max() <= np.pi + 1e-5 and pred.phase_model.std() > 0.1
    assert 0 < pred.support.sum() < 0.25 * pred.support.size


def test_cancel_stops_dl_phasing(strained):
    token = threading.Event()
    token.set()
    with pytest.raises(Cancelled):
        dl_phase(strained.intensity, cancel=token)


@pytest.mark.slow
def test_dl_plus_er_beats_random_start_er_with_the_same_budget(strained):
    """The fixed 3.5π case: DL prediction + 300 ER against 310 ER from a random start (the budget of the
    prediction, < 1 s, is below 10 ER iterations at 64³)."""
    p = strained
    dl = dl_phase(p.intensity, refine_iter=300)
    rng = np.random.default_rng(0)
    s0 = autocorrelation_support(p.intensity, threshold=0.1)
    o0 = (rng.random(p.obj.shape) * np.exp(2j * np.pi * rng.random(p.obj.shape))).astype(np.complex64)
    er = refine(p.intensity, o0 * s0, s0, n_iter=310, border_only=False)
    c_dl = compare(p.obj, dl.obj, p.support, dl.support)
    c_er = compare(p.obj, er.obj, p.support, er.support)
    assert dl.method == "dl" and dl.llk < er.llk
    assert c_dl["error"] < c_er["error"] and c_dl["phase_rmse"] < c_er["phase_rmse"]
