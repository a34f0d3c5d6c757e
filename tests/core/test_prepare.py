"""core.prepare: crop around the peak, binning with the geometry, hot and dead pixels, detector gaps,
flat field and background, provenance, and the one-line errors of bad input."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core import prepare as prep
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.geometry import detector_voxel_size, reciprocal_voxel_size
from napari_bcdi_dl.core.types import Geometry, LoadedData

GEOM = Geometry(energy_kev=9.0, distance_m=1.2, pixel_size_m=(55e-6, 55e-6), rocking_step_deg=0.01,
                rocking_motor="eta", angles_deg={"eta": 17.0, "delta": 34.0, "nu": 0.0, "phi": 0.0},
                roi=(200, 290, 180, 280), beam_center=(250.0, 240.0), detector="mpx1x4")


@pytest.fixture(scope="module")
def sim():
    from napari_bcdi_dl.core.simulate import simulate_pattern

    return simulate_pattern(64, seed=2, field="gaussian_bumps", phase_range=1.0, oversampling=3.0,
                            max_counts=1e6, compute_phase=False)


def _shifted(sim, shape=(70, 90, 100), at=(30, 41, 57)):
    """The simulated peak placed at voxel ``at`` of a larger, weakly noisy stack."""
    rng = np.random.default_rng(0)
    a = rng.poisson(0.05, shape).astype(np.float32)
    dst, src = [], []
    for n, c in zip(shape, at):
        o = c - 32  # the simulated peak is at 32
        lo, hi = max(0, o), min(n, o + 64)
        dst.append(slice(lo, hi))
        src.append(slice(lo - o, hi - o))
    a[tuple(dst)] += sim.intensity[tuple(src)]
    return a


def test_fft_friendly_sizes():
    assert [n for n in range(1, 31) if prep.is_fft_friendly(n)] == [
        1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 25, 27, 30]
    assert prep.fft_size_at_most(71) == 64 and prep.fft_size_at_most(83) == 80 and prep.fft_size_at_most(515) == 512
    assert not prep.is_fft_friendly(14) and not prep.is_fft_friendly(0)


def test_crop_keeps_the_peak_at_the_centre_with_an_fft_friendly_size(sim):
    a = _shifted(sim)
    loaded = LoadedData(data=a, mask=np.zeros(a.shape, np.uint8), geometry=GEOM, meta={})
    peak = prep.find_peak(a)
    assert peak == (30, 41, 57)
    out = prep.crop(loaded)  # largest even FFT-friendly size around the peak, per axis
    # peak at 30 of 70 -> at most 60 (30 on each side); 41 of 90 -> 82 -> 80; 57 of 100 -> 86 -> 80
    assert out.data.shape == (60, 80, 80)
    assert all(prep.is_fft_friendly(n) for n in out.data.shape)
    assert prep.find_peak(out.data) == tuple(n // 2 for n in out.data.shape)
    rec = out.meta["provenance"][-1]
    assert rec["step"] == "crop" and rec["result"]["peak"] == [30, 41, 57] and rec["result"]["offset"] == [0, 1, 17]
    np.testing.assert_array_equal(out.data, a[0:60, 1:81, 17:97])
    # the detector ROI and the rocking motor's mean angle follow the crop
    assert out.geometry.roi == (201, 281, 197, 277)
    assert out.geometry.angles_deg["eta"] == pytest.approx(17.0 + 0.01 * ((60 - 1) / 2 - (70 - 1) / 2))
    assert loaded.geometry.roi == (200, 290, 180, 280) and loaded.geometry.angles_deg["eta"] == 17.0  # untouched
    # a given size, and the centre of mass
    out2 = prep.crop(loaded, (48, 54, 50), centre="com")
    assert out2.data.shape == (48, 54, 50)
    assert np.allclose(prep.find_peak(out2.data), (24, 27, 25), atol=1)
    with pytest.raises(BCDIError, match=r"do not fit around the peak .* largest centred crop is 61") as err:
        prep.crop(loaded, (64, 64, 64))
    assert "\n" not in str(err.value)


def test_binning_sums_counts_and_updates_the_geometry(sim):
    loaded = LoadedData(data=sim.intensity, mask=np.zeros(sim.intensity.shape, np.uint8), geometry=GEOM, meta={})
    before_q = reciprocal_voxel_size(GEOM, sim.intensity.shape)
    before_r = detector_voxel_size(GEOM, sim.intensity.shape)
    out = prep.bin_pattern(loaded, (2, 4, 1))
    assert out.data.shape == (32, 16, 64)
    assert out.data.sum(dtype=np.float64) == pytest.approx(sim.intensity.sum(dtype=np.float64), rel=1e-6)
    g = out.geometry
    assert g.rocking_step_deg == pytest.approx(0.02) and g.pixel_size_m == pytest.approx((220e-6, 55e-6))
    # one binned voxel spans b steps of q: the reciprocal step grows by the factors...
    np.testing.assert_allclose(reciprocal_voxel_size(g, out.data.shape), np.multiply(before_q, (2, 4, 1)),
                               rtol=1e-3)
    # ...and the real-space voxel (1 / q extent) stays: binning trades field of view, not resolution
    np.testing.assert_allclose(detector_voxel_size(g, out.data.shape), before_r, rtol=1e-3)
    assert out.meta["binning"] == [2, 4, 1] and out.meta["provenance"][-1]["step"] == "bin"
    # a masked voxel masks its binned voxel
    m = np.zeros(sim.intensity.shape, np.uint8)
    m[10, 20, 30] = 1
    out_m = prep.bin_pattern(LoadedData(data=sim.intensity, mask=m, geometry=GEOM, meta={}), (2, 2, 2))
    assert out_m.mask[5, 10, 15] == 1 and out_m.mask.sum() == 1
    with pytest.raises(BCDIError, match="factor 3 does not divide the size 64 of axis 0") as err:
        prep.bin_pattern(loaded, (3, 1, 1))
    assert "\n" not in str(err.value)


def test_hot_pixel_filter_removes_planted_hot_pixels_and_nothing_else(sim):
    rng = np.random.default_rng(5)
    a = sim.intensity.copy()
    planted = [(3, 7), (32, 33), (40, 12), (60, 60), (20, 50)]  # (32, 33) sits next to the Bragg peak
    for y, x in planted:
        a[:, y, x] += rng.uniform(200, 5e4) + rng.poisson(50, a.shape[0])
    a[::2, 10, 20] += 500  # hot in half of the frames only: not "most frames"
    before = a.copy()
    out = prep.remove_hot_pixels(LoadedData(data=a, meta={}))
    hot = out.mask.all(axis=0)
    assert sorted(map(tuple, np.argwhere(hot))) == sorted(planted)
    assert out.mask.sum() == len(planted) * a.shape[0], "nothing else is masked"
    for y, x in planted:
        assert not out.data[:, y, x].any()
    keep = ~out.mask.astype(bool)
    np.testing.assert_array_equal(out.data[keep], a[keep])
    np.testing.assert_array_equal(a, before)  # the input is not modified
    assert out.meta["provenance"][-1]["result"]["n_pixels"] == len(planted)
    # the clean simulated pattern has no hot pixel
    assert not prep.hot_pixel_map(sim.intensity).any()


def test_dead_pixels_are_masked_and_reported(sim):
    a = sim.intensity.copy()
    a[:, 30, 31] = 0  # in the bright region: dead
    a[:, 2, 2] = 0  # in the dark corner: indistinguishable from no signal, not reported
    a[:, 40, 40] = 7.5e6  # saturated in every frame
    dead, sat = prep.dead_pixel_maps(a, min_expected=20, saturation=7.5e6)
    assert list(map(tuple, np.argwhere(dead))) == [(30, 31)] and list(map(tuple, np.argwhere(sat))) == [(40, 40)]
    out = prep.mask_dead_pixels(LoadedData(data=a, meta={}), saturation=7.5e6)
    assert out.meta["dead_pixels"] == 1 and out.meta["saturated_pixels"] == 1
    assert out.mask[:, 30, 31].all() and out.mask[:, 40, 40].all() and out.mask.sum() == 2 * a.shape[0]


def test_detector_gaps_from_pyfai_where_it_covers_the_detector():
    pytest.importorskip("pyFAI")
    from napari_bcdi_dl.core.masks import detector_gap_mask, preset_mask

    plane, origin = detector_gap_mask("mpx1x4", (64, 64), (225, 225))
    assert origin == "pyFAI Maxipix2x2"
    rows = np.flatnonzero(plane.all(axis=1))
    assert list(rows + 225) == [256, 257, 258, 259]  # pyFAI: the 4 pixels where there is no sensor
    wide, origin_p = detector_gap_mask("mpx1x4", (64, 64), (225, 225), source="preset")
    assert origin_p == "preset maxipix"
    np.testing.assert_array_equal(wide, preset_mask("maxipix", (64, 64), (225, 225)))
    e4, o4 = detector_gap_mask("eiger2_4m", (100, 100), (1000, 1000))
    assert o4 == "pyFAI Eiger2_4M" and list(np.flatnonzero(e4.all(axis=1)) + 1000) == list(range(1062, 1100))
    # pyFAI lacks ID01's eiger2M and has no gap in one Eiger 500k module: the presets remain
    assert detector_gap_mask("eiger2m", (10, 10), (0, 0))[1] == "preset eiger2m"
    assert detector_gap_mask("eiger500k", (10, 10), (0, 0))[1] == "preset eiger500k"
    with pytest.raises(BCDIError, match="unknown detector 'nodetector'"):
        detector_gap_mask("nodetector", (10, 10))

    # pyFAI's import tries silx.gui.qt: core must not load a GUI toolkit (checked in a fresh process)
    import subprocess
    import sys

    code = ("import sys; from napari_bcdi_dl.core.masks import detector_gap_mask; "
            "detector_gap_mask('mpx1x4', (8, 8)); print(sorted(m for m in sys.modules if m.startswith('PyQt')))")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_prepare_chain_with_flat_background_gaps_and_provenance(sim):
    pytest.importorskip("pyFAI")
    data = sim.intensity + 2.0  # a flat background of 2 counts
    flat = np.full((516, 516), 0.5, np.float32)  # half efficiency everywhere, for the full detector
    flat[230, 230] = 0  # a pixel that sees nothing (row 20, col 30 of the data)
    geom = Geometry(roi=(210, 274, 200, 264), detector="mpx1x4")
    loaded = LoadedData(data=data, geometry=geom, meta={})
    out = prep.prepare(loaded, background=np.full((64, 64), 2.0, np.float32), flat=flat, crop_size=(48, 48, 48),
                       bin_factors=(2, 2, 2), threshold=1.0)
    steps = [r["step"] for r in out.meta["provenance"]]
    assert steps == ["background", "flat_field", "detector_gaps", "dead_pixels", "photon_threshold", "crop", "bin"]
    assert out.data.shape == (24, 24, 24) and out.mask.shape == (24, 24, 24)
    gaps = out.meta["provenance"][2]["result"]
    assert gaps["library"] == "pyFAI Maxipix2x2" and gaps["gap_pixels"] == 4 * 64 * 2 - 16
    # detector rows 256-259 are rows 46-49 of the data, 38-41 after the crop (offset 8), 19-20 binned; the
    # gap columns 256-259 (data 56-59) are outside the crop; the blind flat-field pixel is at binned (6, 11)
    assert out.mask[:, 19:21, :].all() and out.mask[:, 6, 11].all()
    assert out.mask.sum() == 24 * (2 * 24 + 1)
    valid = out.mask == 0
    assert out.data[valid].sum() > 0 and np.isfinite(out.data).all()
    assert np.unravel_index(np.argmax(np.where(valid, out.data, 0)), out.data.shape)[0] == 12
    np.testing.assert_array_equal(loaded.data, data)  # the input is untouched


@pytest.mark.parametrize("suffix", [".npz", ".cxi"])
def test_write_prepared_round_trip(tmp_path, sim, suffix):
    from napari_bcdi_dl.core import io

    loaded = LoadedData(data=sim.intensity, mask=np.zeros(sim.intensity.shape, np.uint8), geometry=GEOM, meta={})
    out = prep.prepare(loaded, crop_size=(32, 32, 32), dead_pixels=False, detector=None)
    path = prep.write_prepared(tmp_path / f"p{suffix}", out)
    back = io.read(path)
    np.testing.assert_array_equal(back.data, out.data)
    assert back.mask is not None and back.mask.shape == (32, 32, 32)
    assert back.geometry.roi == out.geometry.roi and back.geometry.energy_kev == 9.0
    assert [r["step"] for r in prep.read_provenance(path)] == ["detector_gaps", "crop"]


def test_bad_input_gives_one_line_errors(sim):
    loaded = LoadedData(data=sim.intensity, mask=np.zeros((64, 64, 63), np.uint8), meta={})
    with pytest.raises(BCDIError, match=r"mask has shape \(64, 64, 63\) but the intensity \(64, 64, 64\)") as e1:
        prep.prepare(loaded)
    with pytest.raises(BCDIError, match="pattern is empty") as e2:
        prep.prepare(LoadedData(data=np.zeros((8, 8, 8), np.float32), meta={}))
    with pytest.raises(BCDIError, match="does not divide") as e3:
        prep.prepare(LoadedData(data=sim.intensity, meta={}), bin_factors=(1, 5, 1))
    with pytest.raises(BCDIError, match="holds a reconstruction") as e4:
        prep.crop(LoadedData(data=sim.obj, kind="object", meta={}))
    for e in (e1, e2, e3, e4):
        assert "\n" not in str(e.value)
