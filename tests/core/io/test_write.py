"""Writers: PyNX layouts (checked with h5py at PyNX's paths), round trips, atomicity, inputs protected."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from bcdi_test_files import complex_object, pattern, with_gap

from napari_bcdi_dl.core import io
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.types import Geometry, Reconstruction

GEOMETRY = Geometry(
    energy_kev=9.0,
    distance_m=0.835,
    pixel_size_m=(55e-6, 55e-6),
    rocking_step_deg=0.005,
    rocking_motor="eta",
    beam_center=(301.0, 255.5),
    angles_deg={"eta": 17.3, "delta": 34.6},
    roi=(0, 24, 0, 20),
    detector="mpx1x4",
)


def _rec():
    obj, sup = complex_object()
    history = [
        {"iteration": i * 10, "llk": 3.0 - i * 0.1, "llk_free": 3.1 - i * 0.1, "support_size": 400}
        for i in range(4)
    ]
    return Reconstruction(
        obj=obj,
        support=sup,
        llk=1.07,
        llk_free=1.09,
        method="dl",
        history=history,
        meta={"seed": 3, "voxel_size_nm": (5.0, 6.0, 7.0)},
    )


def test_cxi_data_file_has_pynx_layout_and_round_trips(tmp_path):
    counts = with_gap(pattern())
    mask = (counts == 0).astype(np.uint8)
    p = io.write_cxi_data(tmp_path / "data.cxi", counts, mask, GEOMETRY)
    with h5py.File(p, "r") as f:
        assert int(f["cxi_version"][()]) == 140
        det = f["entry_1/instrument_1/detector_1"]
        assert det["data"].dtype == np.float32 and det["mask"].dtype == np.uint8
        assert f["entry_1/data_1"].get("data", getlink=True).path == "/entry_1/instrument_1/detector_1/data"
        assert f["entry_1/instrument_1/source_1/energy"][()] == pytest.approx(9.0 * 1.602176634e-16)
        assert f["entry_1/instrument_1/source_1/energy"].attrs["units"] == "J"
        assert det["distance"][()] == pytest.approx(0.835)
    loaded = io.read(p)
    np.testing.assert_array_equal(loaded.data, counts.astype(np.float32))
    np.testing.assert_array_equal(loaded.mask, mask)
    assert loaded.geometry == GEOMETRY


def test_cxi_result_has_pynx_layout_and_round_trips(tmp_path):
    rec = _rec()
    p = io.write_cxi_result(tmp_path / "rec.cxi", rec, GEOMETRY)
    with h5py.File(p, "r") as f:
        assert int(f["cxi_version"][()]) == 150
        assert f["entry_1/image_1/data"].dtype == np.complex64
        assert f["entry_1/image_1"].get("support", getlink=True).path == "/entry_1/image_1/mask"
        assert f["entry_last/image_1/process_1/results/llk_poisson"][()] == pytest.approx(1.07)
        hist = f["entry_1/image_1/process_1/results/cycle_history"][()]
        assert list(hist["cycle"]) == [0, 10, 20, 30]
        assert f["entry_1/image_1/image_size"][()] == pytest.approx(
            np.array([5.0, 6.0, 7.0]) * 1e-9 * np.array(rec.obj.shape)
        )
    loaded = io.read(p)
    back = io.reconstruction_from(loaded)
    np.testing.assert_array_equal(back.obj, rec.obj)
    np.testing.assert_array_equal(back.support, rec.support)
    assert (back.llk, back.llk_free, back.method) == (1.07, 1.09, "dl")
    assert back.history == rec.history
    assert back.meta["seed"] == 3
    assert loaded.meta["voxel_size_nm"] == pytest.approx((5.0, 6.0, 7.0))
    assert loaded.geometry == GEOMETRY


def test_npz_reconstruction_keys_and_round_trip(tmp_path):
    rec = _rec()
    p = io.write_reconstruction(tmp_path / "rec.npz", rec, GEOMETRY)
    with np.load(p, allow_pickle=False) as f:
        assert {"obj", "support", "llk", "llk_free", "method"} <= set(f.files)
        assert str(f["method"]) == "dl"
    loaded = io.read(p)
    assert loaded.kind == "object"
    back = io.reconstruction_from(loaded)
    np.testing.assert_array_equal(back.obj, rec.obj)
    assert back.llk == pytest.approx(1.07) and back.history == rec.history
    assert loaded.geometry == GEOMETRY


def test_npz_intensity_round_trip_keeps_geometry(tmp_path):
    counts = pattern()
    io.write_intensity(tmp_path / "i.npz", counts, counts == 0, GEOMETRY)
    loaded = io.read(tmp_path / "i.npz")
    np.testing.assert_array_equal(loaded.data, counts.astype(np.float32))
    assert loaded.geometry == GEOMETRY


def test_write_npz_is_atomic_and_replaces(tmp_path):
    out = tmp_path / "out.npz"
    io.write_npz(out, data=np.zeros(3))
    io.write_npz(out, data=np.ones(3))
    with np.load(out) as f:
        assert f["data"].sum() == 3
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "rec.cxi"
    io.write_cxi_result(out, _rec())
    before = out.read_bytes()
    bad = _rec()
    bad.obj = bad.obj.copy()
    bad.obj[0, 0, 0] = np.nan
    with pytest.raises(BCDIError, match="NaN"):
        io.write_cxi_result(out, bad)
    with pytest.raises(BCDIError, match="negative"):
        io.write_cxi_data(tmp_path / "neg.cxi", -np.ones((4, 4, 4)))
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.cxi"]


def test_input_file_is_never_overwritten(tmp_path):
    counts = pattern()
    src = io.write_cxi_data(tmp_path / "in.cxi", counts)
    npz = io.write_npz(tmp_path / "in.npz", data=counts)
    before = src.read_bytes(), npz.read_bytes()
    with pytest.raises(BCDIError, match="is the input file"):
        io.write_cxi_data(src, counts, protect=[src])
    with pytest.raises(BCDIError, match="is the input file"):
        io.write_npz(npz, data=counts, protect=[npz])
    with pytest.raises(BCDIError, match="is the input file"):
        io.write_reconstruction(npz, _rec(), protect=[npz])
    assert (src.read_bytes(), npz.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.cxi", "in.npz"]


def test_mask_of_other_shape_is_refused_on_write(tmp_path):
    with pytest.raises(BCDIError, match="shape"):
        io.write_cxi_data(tmp_path / "d.cxi", pattern(), np.zeros((2, 2, 2)))
    assert not (tmp_path / "d.cxi").exists()


def test_wrong_suffix(tmp_path):
    with pytest.raises(BCDIError, match=".npz or .cxi"):
        io.write_reconstruction(tmp_path / "r.h5", _rec())
