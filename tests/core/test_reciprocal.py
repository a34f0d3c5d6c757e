"""Centring, crop/pad and model-grid resampling round trips (reciprocal space and real-space objects)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core import reciprocal as rc
from napari_bcdi_dl.core.errors import BCDIError

N = 64


def fft(o):
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(o)))


def ifft(p):
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(p)))


def _grid(n=N):
    return np.meshgrid(*[np.arange(n) - n // 2] * 3, indexing="ij")


def _ellipsoid_object(n=N, radii=(8, 7, 6), shift=(0, 0, 0)):
    z, y, x = _grid(n)
    z, y, x = z - shift[0], y - shift[1], x - shift[2]
    inside = (z / radii[0]) ** 2 + (y / radii[1]) ** 2 + (x / radii[2]) ** 2 < 1
    return inside * np.exp(1j * (0.4 * np.pi * z / radii[0] + 0.3 * np.sin(x / 3.0)))


# ------------------------------------------------------------------------------------------ centring
def test_centre_of_mass_and_mask():
    a = np.zeros((10, 12, 14), np.float32)
    a[2, 3, 4] = 1
    a[4, 3, 4] = 3
    assert rc.centre_of_mass(a) == pytest.approx((3.5, 3.0, 4.0))
    hot = a.copy()
    hot[9, 11, 13] = 1e6
    m = np.zeros(a.shape, np.uint8)
    m[9, 11, 13] = 1
    assert rc.centre_of_mass(hot, m) == pytest.approx((3.5, 3.0, 4.0))
    with pytest.raises(BCDIError, match="no positive"):
        rc.centre_of_mass(np.zeros((4, 4, 4)))
    with pytest.raises(BCDIError):
        rc.centre_of_mass(np.ones((4, 4)))


@pytest.mark.parametrize("shape", [(40, 50, 33), (80, 70, 91), (64, 30, 100)])
def test_crop_or_pad_centres_and_round_trips(rng, shape):
    a = rng.random((64, 60, 65)).astype(np.float32)
    b = rc.crop_or_pad(a, shape)
    assert b.shape == shape and b.dtype == a.dtype
    assert b[tuple(s // 2 for s in shape)] == a[32, 30, 32]
    back = rc.crop_or_pad(b, a.shape)
    kept = rc.crop_or_pad(np.ones(shape, bool), a.shape)
    assert np.array_equal(back[kept], a[kept])  # exact on what was kept
    assert np.all(back[~kept] == 0)
    centre = (10, 50, 20)
    c = rc.crop_or_pad(a, (16, 16, 16), centre=centre)
    assert c[8, 8, 8] == a[centre]


def test_log_normalise():
    a = np.zeros((8, 8, 8), np.float32)
    a[4, 4, 4] = 1000
    a[1, 1, 1] = 10
    a[0, 0, 0] = -5
    a[7, 7, 7] = 1e6
    m = np.zeros(a.shape, np.uint8)
    m[7, 7, 7] = 1
    v = rc.log_normalise(a, m)
    assert v.dtype == np.float32 and v.max() == 1.0 and v.min() == 0.0
    assert v[4, 4, 4] == 1.0 and v[7, 7, 7] == 0 and v[0, 0, 0] == 0
    assert v[1, 1, 1] == pytest.approx(np.log1p(10) / np.log1p(1000))
    with pytest.raises(BCDIError):
        rc.log_normalise(np.zeros((4, 4, 4)))


# --------------------------------------------------------------------------------------- oversampling
def test_estimate_oversampling_simulated_and_real(real_pattern):
    radii = (10, 6, 12)
    obj = _ellipsoid_object(radii=radii)
    intensity = np.abs(fft(obj)) ** 2
    sig = rc.estimate_oversampling(intensity)
    true = [N / (2 * r - 1) for r in radii]  # voxels inside along each axis
    assert np.allclose(sig, true, rtol=0.15)
    noisy = np.random.default_rng(0).poisson(intensity / intensity.max() * 1e5).astype(np.float32)
    assert np.allclose(rc.estimate_oversampling(noisy), true, rtol=0.2)
    real = rc.estimate_oversampling(real_pattern)
    assert np.allclose(real, (2.6, 3.7, 2.3), rtol=0.35)  # the data README's rough values


# --------------------------------------------------------------------------------------- model grid
def test_crop_only_round_trip_is_exact(real_pattern):
    small, t = rc.to_model_grid(real_pattern, 32)
    assert small.shape == (32, 32, 32) and small.dtype == np.float32 and not t.resampled
    assert t.zoom == (1.0, 1.0, 1.0) and t.voxel_factor == (2.0, 2.0, 2.0)
    com = rc.centre_of_mass(real_pattern)
    assert t.centre == tuple(int(np.floor(c + 0.5)) for c in com)
    back = rc.from_model_grid(small, t)
    kept = rc.from_model_grid(np.ones((32, 32, 32), np.float32), t) == 1
    assert kept.sum() == 32**3
    assert np.array_equal(back[kept], real_pattern[kept])
    assert np.all(back[~kept] == 0)
    big, t2 = rc.to_model_grid(real_pattern, 80, centre="array")  # pad
    assert np.array_equal(rc.from_model_grid(big, t2), real_pattern)


def test_off_centre_peak_is_centred():
    obj = _ellipsoid_object(radii=(5, 5, 5))
    intensity = np.abs(fft(obj)) ** 2
    shifted = np.roll(intensity, (7, -5, 3), axis=(0, 1, 2))
    model, t = rc.to_model_grid(shifted, 48)
    com = rc.centre_of_mass(shifted)
    assert t.centre == tuple(int(np.floor(c + 0.5)) for c in com)
    assert np.allclose(t.centre, (32 + 7, 32 - 5, 32 + 3), atol=2)  # the object's phase ramp moves it a bit
    assert np.allclose(rc.centre_of_mass(model), (24, 24, 24), atol=1.0)
    model_max, _ = rc.to_model_grid(shifted, 48, centre="max")
    assert np.unravel_index(model_max.argmax(), model_max.shape) == (24, 24, 24)


def test_fourier_zoom_is_exact_and_round_trips():
    obj = _ellipsoid_object()  # ~15 voxels in 64: oversampling ~4
    intensity = np.abs(fft(obj)) ** 2
    model, t = rc.to_model_grid(intensity, 32, zoom=0.5, centre="array")
    assert t.crop_shape == (64, 64, 64) and t.zoom == (0.5, 0.5, 0.5) and t.fov_factor == (0.5, 0.5, 0.5)
    # coarser q step = smaller field of view: exactly the diffraction of the object in a 32³ box
    expect = np.abs(fft(obj[16:48, 16:48, 16:48])) ** 2
    assert np.abs(model - expect).max() < 1e-5 * intensity.max()
    back = rc.from_model_grid(model, t)
    assert np.abs(back - intensity).max() < 1e-5 * intensity.max()
    up, t2 = rc.to_model_grid(intensity, 64, zoom=2.0, centre="array")  # finer q step: crop 32, zoom 2
    assert t2.crop_shape == (32, 32, 32)
    back2 = rc.from_model_grid(up, t2)
    kept = rc.crop_or_pad(np.ones((32,) * 3, bool), intensity.shape)
    # up then down is exact but for the Gibbs negatives clipped on the model grid
    assert np.allclose(back2[kept], intensity[kept], rtol=1e-3, atol=5e-5 * intensity.max())


@pytest.mark.parametrize("method", ["linear", "cubic"])
def test_spline_zoom_round_trip_is_accurate(real_pattern, method):
    model, t = rc.to_model_grid(real_pattern, 48, zoom=1.5, method=method)
    assert t.crop_shape == (32, 32, 32)
    back = rc.from_model_grid(model, t)
    kept = rc.from_model_grid(np.ones(model.shape, np.float32), t, log=False) > 0.5
    a, b = np.log1p(back[kept]), np.log1p(real_pattern[kept])
    assert np.corrcoef(a, b)[0, 1] > 0.99


def test_oversampling_range_brings_sigma_inside():
    obj = _ellipsoid_object(radii=(6, 4, 7))
    intensity = np.abs(fft(obj)) ** 2
    sig = np.array(rc.estimate_oversampling(intensity))
    _, t = rc.to_model_grid(intensity, 32, oversampling_range=(2.5, 4.0))
    new = sig * np.array(t.zoom)
    assert np.all(new > 2.3) and np.all(new < 4.3)
    with pytest.raises(BCDIError, match="either"):
        rc.to_model_grid(intensity, 32, zoom=1.0, oversampling_range=(2, 3))


def test_object_back_to_the_original_grid_crop_and_off_centre():
    """Crop: the seed's diffraction is the model's on the crop region, at the original peak position."""
    obj = _ellipsoid_object(radii=(6, 5, 7))
    psi = fft(obj)
    psi_shifted = np.roll(psi, (5, -4, 3), axis=(0, 1, 2))  # off-centre peak = a phase ramp
    intensity = np.abs(psi_shifted) ** 2
    model, t = rc.to_model_grid(intensity, 40)
    psi_model = rc.shift_crop(psi_shifted, t.size, t.offset)
    assert np.allclose(np.abs(psi_model) ** 2, model, rtol=1e-4, atol=1e-3)
    obj_model = ifft(psi_model)  # what the network + iFFT would produce
    seed = rc.from_model_grid(obj_model, t, space="object")
    assert seed.shape == intensity.shape and seed.dtype == np.complex64
    window = rc.shift_crop(np.ones(t.size), t.in_shape, tuple(-o for o in t.offset)) > 0
    assert np.allclose(fft(seed), psi_shifted * window, atol=1e-3 * np.abs(psi).max())
    assert np.allclose(seed, ifft(psi_shifted * window), atol=1e-5 * np.abs(obj).max())


def test_object_back_to_the_original_grid_zoom_is_exact():
    obj = _ellipsoid_object()
    intensity = np.abs(fft(obj)) ** 2
    model, t = rc.to_model_grid(intensity, 32, zoom=0.5, centre="array")
    obj_model = obj[16:48, 16:48, 16:48]  # the object in the model's 32-voxel field of view
    assert np.allclose(np.abs(fft(obj_model)) ** 2, model, atol=1e-5 * intensity.max())
    seed = rc.from_model_grid(obj_model, t, space="object")
    assert np.allclose(seed, obj, atol=1e-5)
    sup = rc.from_model_grid((np.abs(obj_model) > 0).astype(np.uint8), t, space="support")
    assert np.array_equal(sup, (np.abs(obj) > 0).astype(np.uint8))


def test_support_back_with_coarser_voxels():
    obj = _ellipsoid_object(radii=(12, 12, 12))
    intensity = np.abs(fft(obj)) ** 2
    _, t = rc.to_model_grid(intensity, 32, centre="array")  # crop: model voxels twice as large
    z, y, x = _grid(32)
    support_model = ((z**2 + y**2 + x**2) < 6**2).astype(np.uint8)  # radius 6 model voxels = 12 original
    sup = rc.from_model_grid(support_model, t, space="support")
    assert sup.shape == intensity.shape
    assert abs(sup.sum() / (np.abs(obj) > 0).sum() - 1) < 0.15  # voxelised spheres of radius 6 and 12


def test_mask_to_model_grid():
    intensity = np.abs(fft(_ellipsoid_object())) ** 2
    mask = np.zeros(intensity.shape, np.uint8)
    mask[:, 30:33, :] = 1
    _, t = rc.to_model_grid(intensity, 80, centre="array")
    mm = rc.mask_to_model_grid(mask, t)
    assert mm.shape == (80, 80, 80) and mm[0, 0, 0] == 1  # padded = unmeasured
    assert np.array_equal(mm[8:72, 8:72, 8:72], mask)
    _, t2 = rc.to_model_grid(intensity, 32, zoom=0.5, centre="array")
    mm2 = rc.mask_to_model_grid(mask, t2)
    assert mm2.shape == (32, 32, 32) and 1 <= np.flatnonzero(mm2[0].all(axis=1)).size <= 2


def test_errors():
    a = np.ones((16, 16, 16), np.float32)
    with pytest.raises(BCDIError):
        rc.to_model_grid(np.ones((16, 16)), 8)
    with pytest.raises(BCDIError, match="resampling method"):
        rc.to_model_grid(a, 8, zoom=0.5, method="lanczos")
    with pytest.raises(BCDIError, match="centre"):
        rc.to_model_grid(a, 8, centre="middle")
    _, t = rc.to_model_grid(a, 8)
    with pytest.raises(BCDIError, match="model grid"):
        rc.from_model_grid(np.ones((9, 9, 9)), t)
    with pytest.raises(BCDIError, match="space"):
        rc.from_model_grid(np.ones((8, 8, 8)), t, space="fourier")
    with pytest.raises(BCDIError):
        rc.to_model_grid(a, 8, zoom=-1)
