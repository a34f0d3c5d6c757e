"""SPEC scans with TIFF frames (APS 34-ID-C): a real SPEC file written here, read with silx, its geometry.

The SPEC file follows the layout SPEC writes (``#F``/``#E``/``#D``/``#O`` file header; per scan ``#S``,
``#P`` positioners, ``#N``, ``#L`` labels and data lines); the frames are single-image TIFF files of a
516 × 516 Timepix quad in ``AD/<sample>_S<scan>/``, as at 34-ID-C.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core import io
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.geometry import detector_frame, detector_voxel_size, diffractometer_of

pytest.importorskip("silx")
tifffile = pytest.importorskip("tifffile")

N_FRAMES = 8
STEP = 0.004  # theta step (deg)
ENERGY = 10.0  # keV
CAMDIST = 1350.0  # mm
DELTA, GAMMA = 33.2, 0.0  # a symmetric in-plane reflection: 2θ = delta


def _scan_block(number: int, theta0: float, n: int, delta: float, gamma: float) -> str:
    rows = "\n".join(f"{theta0 + i * STEP:.6f} {1700000000 + i} 100000 {500 + i}" for i in range(n))
    return (f"#S {number}  ascan  Theta {theta0:.4f} {theta0 + (n - 1) * STEP:.4f} {n - 1} 1\n"
            "#D Mon Mar 11 10:00:00 2024\n#T 1  (Seconds)\n"
            f"#P0 {theta0:.4f} 90 0 {delta} {gamma} {ENERGY} {CAMDIST}\n"
            f"#N 4\n#L Theta  Epoch  Monitor  Detector\n{rows}\n\n")


@pytest.fixture
def spec_scan(tmp_path):
    """``sample.spec`` with scans 7 and 8, and the 8 TIFF frames of scan 8 in ``AD/sample_S0008/``."""
    text = ("#F sample.spec\n#E 1709999999\n#D Mon Mar 11 09:00:00 2024\n#C sample  User = s34idc\n"
            "#O0 Theta  Chi  Phi  Delta  Gamma  Energy  camdist\n\n")
    text += _scan_block(7, 15.0, 5, DELTA, GAMMA) + _scan_block(8, 16.6 - STEP * (N_FRAMES - 1) / 2, N_FRAMES,
                                                               DELTA, GAMMA)
    spec = tmp_path / "sample.spec"
    spec.write_text(text)
    frames = tmp_path / "AD" / "sample_S0008"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[:N_FRAMES, :516, :516]
    peak = 5000 * np.exp(-((z - 4) ** 2 / 4 + (y - 240) ** 2 / 20 + (x - 246) ** 2 / 20))
    stack = (rng.poisson(2.0, (N_FRAMES, 516, 516)) + np.round(peak)).astype(np.uint32)
    for i, frame in enumerate(stack):
        tifffile.imwrite(frames / f"sample_S0008_{i:05d}.tif", frame)
    return spec, stack


def test_spec_scan_reads_with_its_34idc_geometry(spec_scan):
    spec, stack = spec_scan
    assert io.format_of(spec) == "spec"
    assert io.list_scans(spec) == ["7", "8"]
    loaded = io.read(spec, scan="8")
    np.testing.assert_array_equal(loaded.data, stack.astype(np.float32))
    g = loaded.geometry
    assert g.rocking_motor == "theta" and g.rocking_step_deg == pytest.approx(STEP, rel=1e-6)
    assert g.energy_kev == pytest.approx(ENERGY) and g.distance_m == pytest.approx(CAMDIST / 1000)
    assert g.pixel_size_m == (55e-6, 55e-6) and g.detector == "timepix"
    assert g.angles_deg["theta"] == pytest.approx(16.6) and g.angles_deg["delta"] == pytest.approx(DELTA)
    assert g.angles_deg["gamma"] == 0 and g.angles_deg["chi"] == 90
    assert loaded.meta["format"] == "spec" and loaded.meta["scan"] == "8" and "Timepix" in loaded.meta["notes"][0]
    assert diffractometer_of(g).name == "34-ID-C"

    # voxel sizes: theta turns about the vertical, perpendicular to Q in this in-plane geometry, so the
    # rocking voxel is λ / (2 N Δθ sin θ); the detector voxels are λ D / (N p)
    lam = 1.23984198 / ENERGY
    theta = np.radians(DELTA / 2)
    expected = (lam / (2 * N_FRAMES * np.radians(STEP) * np.sin(theta)),
                lam * CAMDIST * 1e6 / (516 * 55e3), lam * CAMDIST * 1e6 / (516 * 55e3))
    np.testing.assert_allclose(detector_voxel_size(g, loaded.data.shape), expected, rtol=1e-9)


def test_34idc_out_of_plane_detector_angles(spec_scan):
    """gamma lifts the detector: 2θ follows cos 2θ = cos δ cos γ, whatever the circle order."""
    spec, _ = spec_scan
    g = io.read(spec, scan="8").geometry
    g.angles_deg = dict(g.angles_deg, delta=20.0, gamma=25.0)
    frame = detector_frame(g, (N_FRAMES, 516, 516))
    lam = 1.23984198 / ENERGY
    two_theta = np.arccos(np.cos(np.radians(20.0)) * np.cos(np.radians(25.0)))
    assert np.linalg.norm(frame.q_bragg) == pytest.approx(4 * np.pi / lam * np.sin(two_theta / 2), rel=1e-9)
    _qz, qy, qx = frame.q_bragg / np.linalg.norm(frame.q_bragg)
    assert qy > 0 and qx > 0, "gamma moves the detector up, delta outboard: Q points up and outboard"


def test_spec_errors_are_one_line(spec_scan, tmp_path):
    spec, _ = spec_scan
    with pytest.raises(BCDIError, match="holds 2 scans .* --scan") as e1:
        io.read(spec)
    with pytest.raises(BCDIError, match="no scan 9") as e2:
        io.read(spec, scan="9")
    with pytest.raises(BCDIError, match="no folder of TIFF frames for scan 7") as e3:
        io.read(spec, scan="7")
    from napari_bcdi_dl.core.io.spec import read_spec_scan

    frames = tmp_path / "AD" / "sample_S0008"
    with pytest.raises(BCDIError, match="8 frames but scan 7 .* has 5 points") as e4:
        read_spec_scan(spec, "7", frames=frames)
    for e in (e1, e2, e3, e4):
        assert "\n" not in str(e.value)


def test_prepare_reads_the_spec_scan(spec_scan, tmp_path, capsys):
    from napari_bcdi_dl.cli import main

    spec, _ = spec_scan
    out = tmp_path / "prepared.npz"
    assert main(["prepare", str(spec), "--scan", "8", "--out", str(out), "--crop", "8", "64", "64"]) == 0
    back = io.read(out)
    assert back.data.shape == (8, 64, 64) and back.geometry.rocking_motor == "theta"
    assert back.geometry.roi == (208, 272, 214, 278)  # the peak (240, 246) centred
    assert "detector gaps (pyFAI Maxipix2x2)" in capsys.readouterr().out
