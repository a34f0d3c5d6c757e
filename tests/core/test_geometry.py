"""Detector-frame voxel sizes and ID01 orthogonalisation, checked against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from napari_bcdi_dl.core import geometry as geo
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.types import Geometry

AU = 0.4078  # nm
SHAPE = (32, 40, 36)


def _geometry(**kw) -> Geometry:
    base = dict(energy_kev=9.0, distance_m=1.2, pixel_size_m=(55e-6, 55e-6), rocking_step_deg=0.01, rocking_motor="eta")
    base.update(kw)
    return Geometry(**base)


def _zyx(x: float, y: float, z: float) -> np.ndarray:
    """A lab vector written (x, y, z) by hand, stored in the project's (z, y, x) order."""
    return np.array([z, y, x], dtype=float)


def test_g_norm_and_bragg_angle_by_hand():
    assert geo.g_norm((1, 1, 1), AU) == pytest.approx(2 * np.pi * np.sqrt(3) / AU)
    lam = 1.23984198 / 9.0
    d111 = AU / np.sqrt(3)
    assert geo.bragg_angle(lam, (1, 1, 1), AU) == pytest.approx(np.arcsin(lam / (2 * d111)))
    with pytest.raises(BCDIError, match="not reachable"):
        geo.bragg_angle(lam, (9, 9, 9), AU)
    with pytest.raises(BCDIError, match="not a reflection"):
        geo.g_norm((0, 0, 0), AU)


def test_symmetric_bragg_case_matches_hand_computation():
    """nu = 0, delta = 2θ, eta = θ, rocking eta: every vector of the frame written out by hand."""
    theta = np.radians(17.0)
    g = _geometry(angles_deg={"delta": 34.0, "eta": 17.0, "nu": 0.0, "phi": 0.0})
    f = geo.detector_frame(g, SHAPE)
    lam = 1.23984198 / 9.0
    k = 2 * np.pi / lam
    d, p, dw = 1.2e9, 55e-6 * 1e9, np.radians(0.01)
    nz, ny, nx = SHAPE
    # exit beam up by 2θ, Q = k_f - k_i
    kf = _zyx(0, np.sin(2 * theta), np.cos(2 * theta))
    q = k * (kf - _zyx(0, 0, 1))
    np.testing.assert_allclose(f.q_bragg, q, rtol=1e-12, atol=1e-12)
    assert np.linalg.norm(q) == pytest.approx(2 * k * np.sin(theta))
    # reciprocal steps: rows go down the tilted detector, columns along +x, rocking = Δω x × Q
    b_row = k * p / d * _zyx(0, -np.cos(2 * theta), np.sin(2 * theta))
    b_col = k * p / d * _zyx(1, 0, 0)
    b_rock = dw * 2 * k * np.sin(theta) * _zyx(0, np.sin(theta), np.cos(theta))
    np.testing.assert_allclose(f.q_basis[:, 0], b_rock, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(f.q_basis[:, 1], b_row, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(f.q_basis[:, 2], b_col, rtol=1e-9, atol=1e-15)
    # conjugate real-space grid
    np.testing.assert_allclose(f.r_basis.T @ f.q_basis, 2 * np.pi * np.diag(1 / np.array(SHAPE)), atol=1e-12)
    # hand results: a_row is along -Q with |a| = λD/(N p cos θ); a_rock along k_f with |a| = λ/(N Δω sin 2θ)
    a_row = lam * d / (ny * p * np.cos(theta)) * (-q / np.linalg.norm(q))
    a_rock = lam / (nz * dw * np.sin(2 * theta)) * kf
    a_col = lam * d / (nx * p) * _zyx(1, 0, 0)
    np.testing.assert_allclose(f.r_basis[:, 0], a_rock, rtol=1e-9)
    np.testing.assert_allclose(f.r_basis[:, 1], a_row, rtol=1e-9)
    np.testing.assert_allclose(f.r_basis[:, 2], a_col, rtol=1e-9)
    # detector-frame voxel sizes: λ/(2 N Δω sin θ), λD/(N p), λD/(N p)
    expected = (lam / (2 * nz * dw * np.sin(theta)), lam * d / (ny * p), lam * d / (nx * p))
    np.testing.assert_allclose(geo.detector_voxel_size(g, SHAPE), expected, rtol=1e-9)
    q_steps = (dw * 2 * k * np.sin(theta), k * p / d, k * p / d)
    np.testing.assert_allclose(geo.reciprocal_voxel_size(g, SHAPE), q_steps, rtol=1e-9)
    # bcdi's λ/(N Δω) leaves out the 2 sin θ of the rocking axis
    assert expected[0] == pytest.approx(lam / (nz * dw) / (2 * np.sin(theta)))
    # strain direction on the skewed grid: Q is along -a_row only
    w = f.index_direction()
    np.testing.assert_allclose(w, [0, -1 / np.linalg.norm(a_row), 0], atol=1e-12)


def test_symmetric_geometry_assumed_from_hkl_and_said_so():
    g = _geometry(hkl=(1, 1, 1), lattice_nm=AU)
    f = geo.detector_frame(g, SHAPE)
    theta = geo.bragg_angle(g.wavelength_nm, (1, 1, 1), AU)
    assert f.angles_deg["delta"] == pytest.approx(2 * np.degrees(theta))
    assert f.angles_deg["eta"] == pytest.approx(np.degrees(theta))
    assert any("symmetric" in n for n in f.notes)
    assert np.linalg.norm(f.q_bragg) == pytest.approx(geo.g_norm((1, 1, 1), AU))


def test_in_plane_detector_rocking_phi_by_hand():
    """delta = 0, nu = 2θ (horizontal scattering), rocking phi (vertical axis at eta = 0)."""
    nu = np.radians(30.0)
    g = _geometry(angles_deg={"delta": 0.0, "nu": 30.0, "eta": 0.0, "phi": 0.0}, rocking_motor="phi")
    f = geo.detector_frame(g, SHAPE)
    k = 2 * np.pi / g.wavelength_nm
    dw = np.radians(0.01)
    q = k * _zyx(-np.sin(nu), 0, np.cos(nu) - 1)  # nu turns the arm towards -x
    np.testing.assert_allclose(f.q_bragg, q, atol=1e-12)
    qx, _, qz = q[2], q[1], q[0]
    np.testing.assert_allclose(f.q_basis[:, 0], dw * _zyx(qz, 0, -qx), atol=1e-15)  # Δω ŷ × Q
    lam = g.wavelength_nm
    assert f.voxel_size[0] == pytest.approx(lam / (2 * SHAPE[0] * dw * np.sin(nu / 2)))


def test_rocking_eta_with_a_horizontal_detector_is_degenerate():
    """delta = 0, nu ≠ 0: rocking eta moves q along x × Q, vertical, like the detector rows: no 3D data."""
    g = _geometry(angles_deg={"delta": 0.0, "nu": 30.0, "eta": 0.0})
    with pytest.raises(BCDIError, match="detector plane"):
        geo.detector_frame(g, SHAPE)


def test_roi_off_the_arm_equals_a_smaller_delta():
    """An array centred dr rows below the detector arm sees delta - atan(dr p / D) (rows go down)."""
    dr = 60
    g1 = _geometry(angles_deg={"delta": 34.0, "eta": 17.0}, beam_center=(100.0, 200.0), roi=(140, 180, 182, 218))
    # array centre row = 140 + 40 // 2 = 160, col = 182 + 36 // 2 = 200 -> dr = 60 rows, 0 cols
    f1 = geo.detector_frame(g1, (32, 40, 36))
    delta2 = 34.0 - np.degrees(np.arctan(dr * 55e-6 / 1.2))
    f2 = geo.detector_frame(_geometry(angles_deg={"delta": delta2, "eta": 17.0}), (32, 40, 36))
    np.testing.assert_allclose(f1.q_bragg, f2.q_bragg, rtol=1e-10)


def test_direct_beam_and_missing_values_give_clear_errors():
    with pytest.raises(BCDIError, match="direct beam"):
        geo.detector_frame(_geometry(angles_deg={"delta": 0.0, "nu": 0.0}), SHAPE)
    with pytest.raises(BCDIError, match="angles"):
        geo.detector_frame(_geometry(), SHAPE)
    with pytest.raises(BCDIError, match="energy"):
        geo.detector_frame(_geometry(energy_kev=None, hkl=(1, 1, 1), lattice_nm=AU), SHAPE)
    with pytest.raises(BCDIError, match="pixel"):
        geo.detector_frame(_geometry(pixel_size_m=None, hkl=(1, 1, 1), lattice_nm=AU), SHAPE)
    with pytest.raises(BCDIError, match="rocking step"):
        geo.detector_frame(_geometry(rocking_step_deg=0.0, hkl=(1, 1, 1), lattice_nm=AU), SHAPE)
    with pytest.raises(BCDIError, match="rocking motor"):
        geo.detector_frame(_geometry(rocking_motor="mu", hkl=(1, 1, 1), lattice_nm=AU), SHAPE)


def test_orthogonalise_identity_frame_is_identity():
    """A frame whose voxels are already orthogonal (A = diag(v)) resamples an array onto itself."""
    v = (2.0, 3.0, 4.0)
    shape = (10, 12, 14)
    frame = geo.DetectorFrame(
        shape=shape,
        q_basis=2 * np.pi * np.linalg.inv(np.diag(v)).T @ np.diag(1 / np.array(shape, float)),
        r_basis=np.diag(v),
        q_bragg=np.array([1.0, 0, 0]),
        wavelength_nm=0.1,
    )
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    out, voxel = geo.orthogonalise(arr, frame, voxel_size_nm=v, shape=shape)
    assert voxel == v and out.dtype == np.complex64
    np.testing.assert_allclose(out, arr, atol=1e-5)


def test_orthogonalise_recovers_a_lab_defined_crystal():
    """Sample a smooth ellipsoid defined in the lab on the skewed detector grid, then orthogonalise back."""
    g = _geometry(distance_m=0.5, angles_deg={"delta": 34.0, "eta": 17.0, "nu": 5.0})
    shape = (48, 48, 48)
    f = geo.detector_frame(g, shape)
    radii = np.array([300.0, 220.0, 180.0])  # nm along lab (z, y, x); voxels are ~27 nm

    def crystal(r):
        rho = np.sqrt(np.sum((r / radii) ** 2, axis=-1))
        return expit((1 - rho) * 8)

    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    det = crystal(geo.detector_to_lab_positions(f, idx))
    lab, voxel = geo.orthogonalise(det, f)
    assert voxel == pytest.approx((min(f.voxel_size),) * 3)
    grid = np.stack(np.meshgrid(*[(np.arange(n) - n // 2) * vv for n, vv in zip(lab.shape, voxel)], indexing="ij"), -1)
    truth = crystal(grid)
    inside = truth > 0.01
    err = np.abs(lab - truth)[inside]
    assert det[0].max() < 1e-3 and det[:, 0].max() < 1e-3  # the crystal fits in the detector-frame box
    assert err.mean() < 0.01 and err.max() < 0.05  # trilinear interpolation of a ~2-voxel-wide edge
    # the lab extent of the crystal along each axis is right (half-maximum crossings on the central lines)
    c = np.asarray(lab.shape) // 2
    for axis in range(3):
        line = lab[tuple(slice(None) if i == axis else c[i] for i in range(3))]
        width = np.sum(line > 0.5) * voxel[axis]
        assert width == pytest.approx(2 * radii[axis], abs=2 * voxel[axis])


def test_orthogonalise_shape_mismatch_is_an_error():
    f = geo.detector_frame(_geometry(hkl=(1, 1, 1), lattice_nm=AU), SHAPE)
    with pytest.raises(BCDIError, match="does not match"):
        geo.orthogonalise(np.zeros((4, 4, 4)), f)
