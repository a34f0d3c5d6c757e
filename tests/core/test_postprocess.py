"""Post-processing: twin, crop, unwrapping, ramp/offset, displacement and strain (known fields)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import ndimage

from napari_bcdi_dl.core import geometry as geo
from napari_bcdi_dl.core import postprocess as pp
from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.core.types import Geometry, Reconstruction

AU = 0.4078
G111 = 2 * np.pi * np.sqrt(3) / AU  # 1/nm


def _grid(n: int = 40):
    return np.meshgrid(*[np.arange(n, dtype=float) - n // 2] * 3, indexing="ij")


def _crystal(n: int = 40) -> np.ndarray:
    """Truncated ellipsoid (no inversion symmetry), bool."""
    z, y, x = _grid(n)
    s = (z / 13) ** 2 + (y / 10) ** 2 + (x / 8) ** 2 <= 1
    return s & (z + 0.7 * y < 9)


def _surface(s: np.ndarray) -> np.ndarray:
    return s & ~ndimage.binary_erosion(s)


# ------------------------------------------------------------------------------------------------ strain
@pytest.mark.parametrize("direction", [(1.0, 0.0, 0.0), (0.3, -0.8, 0.5)])
def test_strain_of_linear_displacement_is_the_constant_everywhere(direction):
    """u = ε0 (ĝ·r) + c (p̂·r) with p̂ ⟂ ĝ (a rotation-like term): ε = ĝ·∇u = ε0 inside AND at the surface."""
    s = _crystal()
    voxel = np.array([1.5, 2.0, 2.5])
    ghat = np.asarray(direction) / np.linalg.norm(direction)
    z, y, x = _grid()
    r = np.stack([z, y, x], axis=-1) * voxel
    eps0 = 1e-2
    perp = np.cross(ghat, [0.0, 0.0, 1.0]) if abs(ghat[2]) < 0.9 else np.cross(ghat, [1.0, 0, 0])
    perp /= np.linalg.norm(perp)
    u = eps0 * (r @ ghat) + 2e-3 * (r @ perp)
    phase = G111 * u  # spans more than 2π: the unwrapping is exercised
    assert np.ptp(phase[s]) > 2 * np.pi
    obj = (s * np.exp(1j * phase)).astype(np.complex64)
    res = pp.postprocess(
        obj, s, hkl=(1, 1, 1), lattice_nm=AU, voxel_size_nm=voxel, g_direction=direction,
        remove_ramp=False, offset=None,
    )
    assert res.frame == "array" and res.voxel_size == tuple(voxel)
    np.testing.assert_allclose(res.strain[s], eps0, rtol=2e-4)
    surface = _surface(s)
    assert surface.sum() > 300
    np.testing.assert_allclose(res.strain[surface], eps0, rtol=2e-4)
    assert np.all(res.strain[~s] == 0) and np.all(res.displacement[~s] == 0)
    # displacement in nm, up to the 2π/|G| of the (unknown) unwrapping origin
    d = res.displacement[s] - u[s]
    np.testing.assert_allclose(d, d[0], atol=1e-5)


def test_strain_ignores_displacement_perpendicular_to_g():
    s = _crystal()
    z, y, x = _grid()
    u = 5e-3 * y  # along y, G along z
    eps = pp.strain(u, s, voxel_size=(1, 1, 1), g_direction=(1, 0, 0))
    assert np.all(eps == 0)
    eps = pp.strain(u, s, voxel_size=(1, 2, 1), g_direction=(0, 1, 0))
    np.testing.assert_allclose(eps[s], 2.5e-3)


def test_quadratic_displacement_gives_exact_gradient_inside():
    """Central differences are exact for a parabola inside; first order at the surface is off by α/2."""
    s = _crystal()
    z, _, _ = _grid()
    alpha = 1e-4
    u = 0.5 * alpha * z**2
    eps = pp.strain(u, s)
    inner = s & np.roll(s, 1, 0) & np.roll(s, -1, 0)
    np.testing.assert_allclose(eps[inner], alpha * z[inner], atol=1e-12)
    np.testing.assert_allclose(eps[s & ~inner], alpha * z[s & ~inner], atol=alpha / 2 + 1e-12)


def test_one_voxel_thick_column_borrows_the_nearest_derivative():
    s = np.zeros((9, 9, 9), bool)
    s[2:7, 2:7, 2:7] = True
    s[4, 4, 7] = True  # a lonely voxel sticking out along x: no neighbour along z
    z, _, _ = np.meshgrid(*[np.arange(9.0)] * 3, indexing="ij")
    np.testing.assert_allclose(pp.strain(3e-3 * z, s)[s], 3e-3)


# --------------------------------------------------------------------------------------------- the twin
@pytest.mark.parametrize("n", [16, 17])
def test_twin_has_the_same_intensity_and_keeps_the_centre(n):
    rng = np.random.default_rng(0)
    obj = np.zeros((n, n, n), complex)
    obj[4:11, 5:12, 3:13] = rng.normal(size=(7, 7, 10)) + 1j * rng.normal(size=(7, 7, 10))
    t = pp.twin(obj)

    def intensity(a):
        return np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(a)))) ** 2

    np.testing.assert_allclose(intensity(t), intensity(obj), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(pp.twin(t), obj)
    # a centred symmetric modulus is unchanged by the inversion about N // 2 (not by a plain [::-1] when even)
    z, y, x = np.meshgrid(*[np.arange(n) - n // 2] * 3, indexing="ij")
    ball = (z**2 + y**2 + x**2 <= 16).astype(float)
    np.testing.assert_array_equal(pp.invert(ball), ball)
    if n % 2 == 0:
        assert not np.array_equal(ball[::-1, ::-1, ::-1], ball)


def test_choose_twin_follows_the_reference_and_postprocess_flips_back():
    s = _crystal()
    z, y, x = _grid()
    obj = (s * np.exp(1j * 0.05 * (z + 0.5 * y) ** 2 / 4)).astype(np.complex64)
    got, flipped = pp.choose_twin(pp.twin(obj), obj)
    assert flipped
    np.testing.assert_allclose(got, obj, atol=1e-6)
    got, flipped = pp.choose_twin(obj, obj)
    assert not flipped
    a = pp.postprocess(obj, s)
    b = pp.postprocess(pp.twin(obj), pp.invert(s), reference=obj)
    assert b.twin
    np.testing.assert_allclose(b.phase, a.phase, atol=1e-4)
    c = pp.postprocess(pp.twin(obj), pp.invert(s), flip=True)
    assert c.twin
    np.testing.assert_allclose(c.phase, a.phase, atol=1e-4)


# ------------------------------------------------------------------------------------------------ phase
def test_unwrap_ramp_and_offset():
    s = _crystal()
    z, y, x = _grid()
    bumps = 2.0 * np.exp(-((z - 3) ** 2 + y**2 + (x + 2) ** 2) / 30)
    plane = 0.9 * z - 0.6 * y + 0.4 * x + 1.0
    true = bumps + plane
    wrapped = np.angle(np.exp(1j * true))
    un = pp.unwrap(wrapped, s)
    d = (un - true)[s]
    np.testing.assert_allclose(d, d[0], atol=1e-9)
    assert abs(d[0] / (2 * np.pi) - round(d[0] / (2 * np.pi))) < 1e-9
    flat, g = pp.remove_phase_ramp(plane, s)
    np.testing.assert_allclose(g, [0.9, -0.6, 0.4], atol=1e-12)
    np.testing.assert_allclose(flat[s], 1.0, atol=1e-9)  # the constant is left to the offset step
    np.testing.assert_allclose(pp.complex_phase_ramp(np.exp(1j * plane), s), [0.9, -0.6, 0.4], atol=1e-9)
    p, off = pp.remove_offset(bumps, s, "mean")
    assert off == pytest.approx(bumps[s].mean()) and abs(p[s].mean()) < 1e-12
    p, off = pp.remove_offset(bumps, s, "com")
    com = np.rint(ndimage.center_of_mass(s)).astype(int)
    assert s[tuple(com)] and off == pytest.approx(bumps[tuple(com)])
    assert pp.remove_offset(bumps, s, None)[1] == 0.0
    with pytest.raises(BCDIError, match="offset"):
        pp.remove_offset(bumps, s, "median")


def test_postprocess_removes_a_large_ramp_and_keeps_the_field():
    """An off-centre Bragg peak (ramp of several 2π) is removed; the strain field underneath is kept."""
    s = _crystal()
    z, y, x = _grid()
    field = 1.5 * np.sin(z / 6) * np.cos(y / 7)
    obj = (s * np.exp(1j * (field + 1.1 * z - 0.7 * x + 0.3))).astype(np.complex64)
    res = pp.postprocess(obj, s)
    g_field = pp.phase_ramp(field, s)[0]  # the field's own linear part goes with the ramp
    np.testing.assert_allclose(res.ramp, np.array([1.1, 0, -0.7]) + g_field, atol=1e-6)
    fit = pp.remove_phase_ramp(field, s)[0]
    fit = np.where(s, fit - fit[s].mean(), 0)
    np.testing.assert_allclose(res.phase, fit, atol=1e-4)
    # not unwrapped: wrapped phase, the same field up to a plane (the ramp is then the mean complex
    # gradient instead of the least-squares plane), and a strain that does not see the wraps
    res2 = pp.postprocess(obj, s, unwrap=False)
    assert np.abs(res2.phase).max() <= np.pi
    diff = np.angle(np.exp(1j * (res2.phase - res.phase)))
    assert np.ptp(pp.remove_phase_ramp(diff, s)[0][s]) < 1e-4  # a plane (and a constant) apart
    res3 = pp.postprocess(obj, s, unwrap=False, remove_ramp=False, offset=None)
    res4 = pp.postprocess(obj, s, remove_ramp=False, offset=None)
    assert np.ptp(res4.phase[s]) > 2 * np.pi
    np.testing.assert_allclose(res3.strain, res4.strain, atol=1e-9)


def test_postprocess_without_geometry_documents_its_defaults():
    s = _crystal()
    z, y, x = _grid()
    obj = (s * np.exp(1j * 0.02 * z**2)).astype(np.complex64)
    rec = Reconstruction(obj=obj, support=s.astype(np.uint8))
    res = pp.postprocess(rec)
    assert res.voxel_size == (1.0, 1.0, 1.0) and res.g_direction == (1.0, 0.0, 0.0) and res.g_norm is None
    assert res.frame == "array"
    assert any("voxel" in n for n in res.notes) and any("units of d" in n for n in res.notes)
    for name in ("modulus", "phase", "displacement", "strain"):
        assert getattr(res, name).dtype == np.float32 and getattr(res, name).shape == obj.shape
    assert res.support.dtype == np.uint8
    np.testing.assert_allclose(res.displacement, res.phase / (2 * np.pi), atol=1e-6)
    assert set(res.arrays()) >= {"modulus", "phase", "displacement", "strain", "support", "voxel_size"}
    # the input is not modified
    np.testing.assert_array_equal(rec.obj, obj)


def test_crop_and_isosurface():
    s = _crystal()
    sl = pp.crop_slices(s, margin=3)
    idx = np.argwhere(s)
    assert [x.start for x in sl] == list(np.maximum(idx.min(0) - 3, 0))
    assert [x.stop for x in sl] == list(np.minimum(idx.max(0) + 4, s.shape))
    obj = (ndimage.gaussian_filter(s.astype(float), 1.0) * np.exp(0.1j)).astype(np.complex64)
    res = pp.postprocess(obj, obj != 0, crop_margin=2, isosurface=0.5)
    assert res.support.sum() < (obj != 0).sum()
    assert res.modulus.shape[0] <= s.shape[0] and res.support[:2].sum() == 0


def test_bad_input_gives_clear_errors():
    s = _crystal()
    obj = s.astype(np.complex64)
    with pytest.raises(BCDIError, match="NaN"):
        bad = obj.copy()
        bad[0, 0, 0] = np.nan
        pp.postprocess(bad, s)
    with pytest.raises(BCDIError, match="empty"):
        pp.postprocess(obj, np.zeros_like(s))
    with pytest.raises(BCDIError, match="shape"):
        pp.postprocess(obj, s[:-1])
    with pytest.raises(BCDIError, match="3D"):
        pp.postprocess(obj[0], s[0])
    with pytest.raises(BCDIError, match="lattice"):
        pp.postprocess(obj, s, hkl=(1, 1, 1), lattice_nm=-1)
    with pytest.raises(BCDIError, match="orthogonalisation needs a geometry"):
        pp.postprocess(obj, s, orthogonalise=True)


def test_progress_and_cancel():
    s = _crystal()
    obj = s.astype(np.complex64)
    seen = []
    pp.postprocess(obj, s, progress=lambda d, t: seen.append((d, t)))
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1]
    token = threading.Event()
    token.set()
    with pytest.raises(Cancelled):
        pp.postprocess(obj, s, cancel=token)


# ------------------------------------------------------------------------------- with a real geometry
def _detector_crystal(frame: geo.DetectorFrame, eps0: float):
    """A crystal defined in the lab (nm), with u = eps0 (Q̂·r), sampled on the detector-frame grid."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in frame.shape], indexing="ij"), axis=-1)
    r = geo.detector_to_lab_positions(frame, idx)
    radii = np.array([260.0, 220.0, 200.0])
    s = np.sum((r / radii) ** 2, axis=-1) <= 1
    u = eps0 * (r @ frame.g_direction)
    return (s * np.exp(1j * G111 * u)).astype(np.complex64), s


def test_strain_in_detector_and_lab_frames_matches_the_input():
    g = Geometry(
        energy_kev=9.0, distance_m=0.5, pixel_size_m=(55e-6, 55e-6), rocking_step_deg=0.01,
        rocking_motor="eta", angles_deg={"delta": 34.0, "eta": 17.0, "nu": 3.0},
        hkl=(1, 1, 1), lattice_nm=AU,
    )
    shape = (40, 40, 40)
    frame = geo.detector_frame(g, shape)
    eps0 = 5e-4
    obj, s = _detector_crystal(frame, eps0)
    det = pp.postprocess(obj, s, g, orthogonalise=False, remove_ramp=False)
    assert det.frame == "detector" and det.voxel_size == pytest.approx(frame.voxel_size)
    assert det.g_norm == pytest.approx(G111)
    np.testing.assert_allclose(det.strain[s], eps0, rtol=1e-4)  # exact on the skewed grid
    lab = pp.postprocess(obj, s, g, remove_ramp=False)
    assert lab.frame == "lab" and len(set(lab.voxel_size)) == 1
    np.testing.assert_allclose(lab.g_direction, frame.g_direction, atol=1e-12)
    core = ndimage.binary_erosion(lab.support, iterations=2)
    assert core.sum() > 500
    np.testing.assert_allclose(np.median(lab.strain[core]), eps0, rtol=0.02)
    assert np.percentile(np.abs(lab.strain[core] - eps0), 90) < 0.1 * eps0
    # with ramp removal the homogeneous strain is taken as the reference lattice: ~0 left
    flat = pp.postprocess(obj, s, g, orthogonalise=False)
    assert np.abs(flat.strain[s]).max() < 1e-6


def test_incomplete_geometry_falls_back_with_a_note():
    s = _crystal()
    res = pp.postprocess(s.astype(np.complex64), s, Geometry(energy_kev=9.0), voxel_size_nm=(2, 2, 2))
    assert res.frame == "array" and res.voxel_size == (2.0, 2.0, 2.0)
    assert any("geometry incomplete" in n for n in res.notes)
