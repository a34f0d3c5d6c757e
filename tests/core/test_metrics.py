"""Reconstruction-quality metrics: LLK/χ² by hand, PRTF, sharpness, comparison up to BCDI ambiguities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_bcdi_dl.core import metrics as mt
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.postprocess import invert, twin


def strained_particle(n: int = 48, phase_range: float = 3 * np.pi, seed: int = 0):
    """A faceted (non-centrosymmetric) particle with smoothed edges and a 3π phase made of Gaussian bumps."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) - n // 2] * 3, indexing="ij")
    shape = (z / 14) ** 2 + (y / 11) ** 2 + (x / 9) ** 2 <= 1
    shape &= z + 0.6 * y <= 11  # a truncation facet: the twin is not the object itself
    modulus = ndimage.gaussian_filter(shape.astype(float), 0.8)
    phase = np.zeros(shape.shape)
    for _ in range(4):
        c = rng.uniform(-8, 8, 3)
        w = rng.uniform(4, 8)
        phase += rng.normal() * np.exp(-((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) / (2 * w * w))
    phase -= phase[shape].mean()
    phase *= phase_range / np.ptp(phase[shape])
    return (modulus * np.exp(1j * phase)).astype(np.complex64), shape, phase


@pytest.fixture(scope="module")
def particle():
    return strained_particle()


# --------------------------------------------------------------------------------------------- compare
def test_twin_scores_as_equal(particle):
    obj, s, _ = particle
    r = mt.compare(obj, twin(obj), s, invert(s))
    assert r["twin"] and r["error"] < 1e-6 and r["phase_rmse"] < 1e-6 and r["iou"] == 1.0
    assert mt.is_match(r)
    # twin of a shifted copy, odd grid too
    odd, s_odd, _ = strained_particle(n=45)
    b = np.roll(twin(odd), (2, -1, 3), axis=(0, 1, 2)) * np.exp(-0.4j)
    r = mt.compare(odd, b, s_odd, np.roll(invert(s_odd), (2, -1, 3), axis=(0, 1, 2)))
    assert r["twin"] and r["error"] < 1e-6 and r["iou"] == 1.0
    assert r["shift"] == pytest.approx((2, -1, 3))  # applied to the twin of b


def test_shifted_phase_offset_copy_scores_zero(particle):
    obj, s, _ = particle
    shift = (2.4, -3.3, 1.7)
    b = np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(obj), shift)) * np.exp(1.3j) * 2.5
    r = mt.compare(obj, b)
    assert not r["twin"]
    assert r["error"] < 1e-4 and r["phase_rmse"] < 1e-4
    assert r["shift"] == pytest.approx(tuple(-v for v in shift), abs=0.05)
    assert r["phase_offset"] == pytest.approx(-1.3, abs=1e-4) and r["scale"] == pytest.approx(0.4, rel=1e-4)
    # integer shift + offset with the supports: identical supports after alignment
    b = np.roll(obj, (3, 0, -2), axis=(0, 1, 2)) * np.exp(2.0j)
    r = mt.compare(obj, b, s, np.roll(s, (3, 0, -2), axis=(0, 1, 2)), upsample=1)
    assert r["error"] < 1e-6 and r["iou"] == 1.0 and r["shift"] == (-3.0, 0.0, 2.0)
    np.testing.assert_allclose(mt.register(obj, b), obj, atol=1e-5)


def test_wrong_strain_fails_on_a_strained_case(particle):
    """Right shape with half the strain, or a flat phase: clearly wrong, although the shape is right."""
    obj, s, phase = particle
    modulus = np.abs(obj)
    good = mt.compare(obj, obj * np.exp(0.7j), s, s)
    assert mt.is_match(good)
    for wrong in (modulus * np.exp(0.5j * phase), modulus.astype(np.complex64)):
        r = mt.compare(obj, wrong, s, s)
        assert r["shape_iou"] == 1.0  # the shape is right ...
        assert r["error"] > 0.6 and r["phase_rmse"] > 0.6  # ... the phase is not
        assert not mt.is_match(r)


def test_a_noisy_but_right_reconstruction_matches(particle):
    """5 % complex noise on every voxel of the crystal and a 1-voxel blur stay under the thresholds."""
    obj, s, _ = particle
    rng = np.random.default_rng(3)
    m = np.abs(obj)
    noisy = obj + 0.05 * m.max() * (rng.normal(size=obj.shape) + 1j * rng.normal(size=obj.shape)) * (m > 0.05)
    r = mt.compare(obj, noisy, s, s)
    assert mt.is_match(r) and r["error"] < 0.15 and r["phase_rmse"] < 0.1
    blurred = ndimage.gaussian_filter(obj.real, 1) + 1j * ndimage.gaussian_filter(obj.imag, 1)
    assert mt.is_match(mt.compare(obj, blurred, s, s))


def test_compare_errors():
    a = np.ones((8, 8, 8), np.complex64)
    with pytest.raises(BCDIError, match="shape"):
        mt.compare(a, np.ones((8, 8, 9)))
    with pytest.raises(BCDIError, match="zero"):
        mt.compare(a, np.zeros_like(a))
    with pytest.raises(BCDIError, match="NaN"):
        mt.compare(a, np.full_like(a, np.nan))
    with pytest.raises(BCDIError, match="empty"):
        mt.compare(a, a, np.zeros((8, 8, 8)))


# ------------------------------------------------------------------------------------------- LLK, χ²
def test_llk_and_chi2_by_hand():
    obs = np.array([0.0, 5.0, 10.0, 3.0]).reshape(1, 2, 2)
    calc = np.array([2.0, 5.0, 20.0, 4.0]).reshape(1, 2, 2)
    terms = np.array([2.0, 0.0, 20 - 10 + 10 * np.log(0.5), 4 - 3 + 3 * np.log(3 / 4)])
    assert mt.llk(obs, calc) == pytest.approx(terms.sum() / 4)
    assert mt.llk(obs, calc, n_support=1) == pytest.approx(terms.sum() / 3)
    mask = np.array([0, 0, 1, 0]).reshape(1, 2, 2)
    assert mt.llk(obs, calc, mask) == pytest.approx(terms[[0, 1, 3]].sum() / 3)
    free = np.array([0, 0, 0, 1]).reshape(1, 2, 2)
    assert mt.llk(obs, calc, free=free) == pytest.approx(terms[:3].sum() / 3)
    assert mt.llk_free(obs, calc, free) == pytest.approx(terms[3])
    chi = ((obs - calc) ** 2 / (obs + 1)).ravel()
    assert mt.chi2(obs, calc) == pytest.approx(chi.mean())
    assert mt.chi2(obs, calc, mask) == pytest.approx(chi[[0, 1, 3]].mean())


def test_llk_of_an_ideal_model_is_about_one_half():
    rng = np.random.default_rng(0)
    calc = np.full((20, 20, 20), 1000.0)
    obs = rng.poisson(calc).astype(float)
    assert mt.llk(obs, calc) == pytest.approx(0.5, abs=0.05)
    assert mt.chi2(obs, calc) == pytest.approx(1.0, abs=0.1)
    assert mt.llk(obs, 0.9 * calc) > 5 * mt.llk(obs, calc)


def test_llk_errors():
    a = np.ones((4, 4, 4))
    with pytest.raises(BCDIError, match="shape"):
        mt.llk(a, np.ones((4, 4, 5)))
    with pytest.raises(BCDIError, match="NaN"):
        mt.llk(np.full_like(a, np.nan), a)
    with pytest.raises(BCDIError, match="negative"):
        mt.llk(-a, a)
    with pytest.raises(BCDIError, match="mask covers every voxel"):
        mt.llk(a, a, np.ones_like(a))
    with pytest.raises(BCDIError, match="no free voxel"):
        mt.llk_free(a, a, np.zeros_like(a))


# ------------------------------------------------------------------------------------ PRTF, sharpness
def test_prtf_of_a_perfect_reconstruction_is_one(particle):
    obj, _, _ = particle
    i_obs = mt.calc_intensity(obj)
    p = mt.prtf(i_obs, obj, voxel_size=(5.0, 5.0, 5.0))
    valid = p.counts > 0
    np.testing.assert_allclose(p.values[valid], 1.0, rtol=1e-5)
    assert p.frequency[0] == 0 and p.frequency[-1] == pytest.approx(1.0)
    assert p.resolution_frequency == 1.0 and p.resolution_voxels == 1.0 and p.resolution_nm == (5.0, 5.0, 5.0)
    # several runs that differ by the ambiguities (twin, shift, phase, scale) average coherently
    runs = [obj, np.roll(twin(obj), (1, -2, 0), axis=(0, 1, 2)) * np.exp(2j) * 3, obj * np.exp(-1j)]
    p = mt.prtf(i_obs * 7.0, runs)
    np.testing.assert_allclose(p.values[p.counts > 0], 1.0, rtol=1e-4)


def test_prtf_of_a_blurred_reconstruction_gives_a_finite_resolution(particle):
    obj, _, _ = particle
    i_obs = mt.calc_intensity(obj)
    blurred = ndimage.gaussian_filter(obj.real, 1.5) + 1j * ndimage.gaussian_filter(obj.imag, 1.5)
    p = mt.prtf(i_obs, blurred, voxel_size=4.0)
    v = p.values[p.counts > 0]
    assert v[-1] < 0.05 < p.threshold < v[1]
    assert 1.5 < p.resolution_voxels < 6
    assert p.resolution_nm == pytest.approx((4 * p.resolution_voxels,) * 3)
    below = p.frequency[(p.values < p.threshold) & (p.frequency > 0)]
    assert below.min() >= p.resolution_frequency


def test_prtf_mask_and_errors(particle):
    obj, _, _ = particle
    i_obs = mt.calc_intensity(obj)
    mask = np.zeros(obj.shape, np.uint8)
    mask[:, 20:24, :] = 1  # a gap: its voxels are left out
    p = mt.prtf(i_obs, obj, mask)
    assert p.counts.sum() < mt.prtf(i_obs, obj).counts.sum()
    np.testing.assert_allclose(p.values[p.counts > 0], 1.0, rtol=1e-5)
    with pytest.raises(BCDIError, match="shape"):
        mt.prtf(i_obs[:-1], obj)
    with pytest.raises(BCDIError, match="no reconstruction"):
        mt.prtf(i_obs, [])


def test_sharpness():
    assert mt.sharpness(np.ones((4, 4, 4))) == pytest.approx(1 / 64)
    a = np.zeros((4, 4, 4))
    a[0, 0, 0] = 3.0
    assert mt.sharpness(a) == pytest.approx(1.0)
    s = np.zeros((4, 4, 4), bool)
    s[:2] = True
    assert mt.sharpness(np.ones((4, 4, 4)) * 5, s) == pytest.approx(1 / 32)
