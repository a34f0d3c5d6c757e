"""Reading every supported format, from files laid out as the real programs write them."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from bcdi_test_files import (
    bliss_dataset,
    complex_object,
    edf_frames,
    pattern,
    pynx_data_cxi,
    pynx_result_cxi,
    tiff_frames,
    with_gap,
)

from napari_bcdi_dl.core import io
from napari_bcdi_dl.core.errors import BCDIError


@pytest.fixture(scope="module")
def counts():
    return with_gap(pattern())


def _same(loaded, counts):
    assert loaded.kind == "intensity"
    assert loaded.data.dtype == np.float32
    assert loaded.data.shape == counts.shape
    np.testing.assert_array_equal(loaded.data, counts.astype(np.float32))


def test_npy(tmp_path, counts):
    np.save(tmp_path / "scan.npy", counts)
    loaded = io.read(tmp_path / "scan.npy")
    _same(loaded, counts)
    assert loaded.mask is None and loaded.meta["stored_dtype"] == "uint32"


def test_npy_fortran_order_and_leading_singleton_axis(tmp_path, counts):
    np.save(tmp_path / "f.npy", np.asfortranarray(counts))
    _same(io.read(tmp_path / "f.npy"), counts)
    np.save(tmp_path / "one.npy", counts[None])
    _same(io.read(tmp_path / "one.npy"), counts)


def test_npz_data_key_with_mask(tmp_path, counts):
    mask = (counts == 0).astype(np.uint8)
    np.savez_compressed(tmp_path / "scan.npz", data=counts, mask=mask, angles=np.arange(3.0))
    loaded = io.read(tmp_path / "scan.npz")
    _same(loaded, counts)
    np.testing.assert_array_equal(loaded.mask, mask)
    assert loaded.mask.dtype == np.uint8


def test_npz_only_3d_array_and_fortran(tmp_path, counts):
    np.savez(tmp_path / "x.npz", intensity=np.asfortranarray(counts), energy=np.float64(9.0))
    loaded = io.read(tmp_path / "x.npz")
    _same(loaded, counts)
    assert loaded.meta["key"] == "intensity"


def test_npz_result_reads_as_object(tmp_path):
    obj, sup = complex_object()
    np.savez(tmp_path / "rec.npz", obj=obj, support=sup)
    loaded = io.read(tmp_path / "rec.npz")
    assert loaded.kind == "object" and loaded.data.dtype == np.complex64
    np.testing.assert_array_equal(loaded.data, obj)
    np.testing.assert_array_equal(loaded.support, sup)


def test_multipage_tiff(tmp_path, counts):
    tifffile.imwrite(tmp_path / "stack.tif", counts)
    _same(io.read(tmp_path / "stack.tif"), counts)
    tifffile.imwrite(tmp_path / "stack_imagej.tif", counts.astype(np.uint16), imagej=True)
    _same(io.read(tmp_path / "stack_imagej.tif"), counts)


def test_tiff_frames_natural_order(tmp_path):
    data = pattern((12, 10, 8))  # img_0 ... img_11: lexical order would put img_10 after img_1
    tiff_frames(tmp_path / "scan", data)
    loaded = io.read(tmp_path / "scan")
    _same(loaded, data)
    assert loaded.meta["frames"][:3] == ["img_0.tif", "img_1.tif", "img_2.tif"]
    assert loaded.meta["frames"][-1] == "img_11.tif"


def test_edf_frames_written_by_fabio(tmp_path):
    data = pattern((11, 10, 8), dtype=np.int32)  # numbered 1..11
    edf_frames(tmp_path / "edf", data)
    loaded = io.read(tmp_path / "edf")
    _same(loaded, data)
    assert loaded.meta["frames"][9] == "data_mpx4_10.edf"


def test_frame_folder_with_two_series_is_refused(tmp_path):
    data = pattern((4, 6, 6))
    tiff_frames(tmp_path / "mix", data, prefix="scan12_")
    tiff_frames(tmp_path / "mix", data, prefix="scan13_")
    with pytest.raises(BCDIError, match="several series"):
        io.read(tmp_path / "mix")


def test_pynx_cxi_data_file(tmp_path, counts):
    mask = np.zeros(counts.shape, np.uint8)
    mask[:, 10:12, :] = 1
    p = pynx_data_cxi(tmp_path / "data.cxi", counts, mask, wavelength_m=1.3776e-10, distance_m=0.83)
    loaded = io.read(p)
    _same(loaded, counts)
    np.testing.assert_array_equal(loaded.mask, mask)
    g = loaded.geometry
    assert g.energy_kev == pytest.approx(12.3984 / 1.3776, rel=1e-4)
    assert g.distance_m == pytest.approx(0.83)
    assert g.pixel_size_m == pytest.approx((55e-6, 55e-6))
    assert io.list_scans(p) == []


def test_pynx_cxi_2d_mask_applies_to_every_frame(tmp_path, counts):
    frame_mask = np.zeros(counts.shape[1:], np.uint8)
    frame_mask[3, 4] = 1
    loaded = io.read(pynx_data_cxi(tmp_path / "d.cxi", counts, frame_mask))
    assert loaded.mask.shape == counts.shape
    assert loaded.mask[:, 3, 4].all() and loaded.mask.sum() == counts.shape[0]


def test_cxi_data_1_only(tmp_path, counts):
    import h5py

    with h5py.File(tmp_path / "d1.cxi", "w") as f:
        f.create_dataset("entry_1/data_1/data", data=counts)
    _same(io.read(tmp_path / "d1.cxi"), counts)


def test_pynx_result_file(tmp_path):
    obj, sup = complex_object()
    p = pynx_result_cxi(tmp_path / "result.cxi", obj, sup, llk=1.0523, free_llk=1.061)
    loaded = io.read(p)
    assert loaded.kind == "object"
    np.testing.assert_array_equal(loaded.data, obj)
    np.testing.assert_array_equal(loaded.support, sup)
    assert loaded.meta["llk"] == pytest.approx(1.0523)
    assert loaded.meta["llk_free"] == pytest.approx(1.061)
    assert loaded.meta["method"] == "pynx"
    assert len(loaded.meta["history"]) == 5 and loaded.meta["history"][-1]["iteration"] == 80
    assert loaded.meta["voxel_size_nm"] == pytest.approx((6.1, 6.1, 6.1))
    rec = io.reconstruction_from(loaded)
    assert rec.llk == pytest.approx(1.0523) and rec.method == "pynx"


def test_pynx_modes_file_reads_main_mode(tmp_path):
    obj, sup = complex_object()
    modes = np.stack([obj, 0.1 * obj])
    loaded = io.read(pynx_result_cxi(tmp_path / "modes.cxi", modes, sup))
    np.testing.assert_array_equal(loaded.data, obj)
    assert loaded.meta["n_modes"] == 2


@pytest.mark.parametrize("layout", ["vds", "external", "direct"])
def test_bliss_master_bitshuffle_lz4(tmp_path, counts, layout):
    master = bliss_dataset(tmp_path, {1: counts, 2: counts[:, ::-1].copy()}, layout=layout)
    assert io.list_scans(master) == ["1.1", "2.1"]
    loaded = io.read(master, scan="2")
    _same(loaded, counts[:, ::-1])
    assert loaded.meta["scan"] == "2.1" and loaded.meta["detector"] == "mpx1x4"
    g = loaded.geometry
    assert g.detector == "mpx1x4"
    assert g.energy_kev == pytest.approx(9.0)
    assert g.distance_m == pytest.approx(0.835)
    assert g.pixel_size_m == pytest.approx((55e-6, 55e-6))
    assert g.beam_center == pytest.approx((301.0, 255.5))
    assert g.rocking_motor == "eta" and g.rocking_step_deg == pytest.approx(0.005)
    assert g.angles_deg["delta"] == pytest.approx(34.61) and g.angles_deg["nu"] == pytest.approx(1.25)
    assert g.angles_deg["eta"] == pytest.approx(17.2 + 0.005 * (counts.shape[0] - 1) / 2)
    assert g.is_complete_for_voxel_size()


def test_bliss_dataset_is_really_bitshuffle_compressed(tmp_path, counts):
    import h5py
    import hdf5plugin

    master = bliss_dataset(tmp_path, {1: counts})
    with h5py.File(master.parent / "scan0001" / "mpx1x4_0000.h5", "r") as f:
        plist = f["entry_0000/measurement/data"].id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    assert hdf5plugin.BSHUF_ID in filters


def test_bliss_scan_names_and_detector_choice(tmp_path, counts):
    master = bliss_dataset(tmp_path, {3: counts}, detector="eiger2M")
    _same(io.read(master), counts)  # one scan, one detector: nothing to choose
    assert io.read(master, scan="3.1", detector="eiger2M").meta["detector"] == "eiger2M"
    with pytest.raises(BCDIError, match="no detector 'mpx1x4'"):
        io.read(master, detector="mpx1x4")
    with pytest.raises(BCDIError, match="apply to BLISS"):
        np.save(tmp_path / "x.npy", counts)
        io.read(tmp_path / "x.npy", scan="1")


def test_roi_reads_only_a_detector_region(tmp_path, counts):
    master = bliss_dataset(tmp_path, {1: counts})
    loaded = io.read(master, roi=(2, 14, 3, 13))
    _same(loaded, counts[:, 2:14, 3:13])
    assert loaded.geometry.roi == (2, 14, 3, 13)
    np.save(tmp_path / "s.npy", counts)
    _same(io.read(tmp_path / "s.npy", roi=(2, 14, 3, 13)), counts[:, 2:14, 3:13])
    with pytest.raises(BCDIError, match="outside"):
        io.read(tmp_path / "s.npy", roi=(0, 99, 0, 5))


def test_dectris_invalid_value_becomes_masked_zero(tmp_path, counts):
    bad = counts.copy()
    bad[:, 0, 0] = np.iinfo(np.uint32).max
    np.save(tmp_path / "eiger.npy", bad)
    loaded = io.read(tmp_path / "eiger.npy")
    assert loaded.data[:, 0, 0].max() == 0
    assert loaded.mask[:, 0, 0].all() and loaded.mask.sum() == counts.shape[0]
    assert loaded.meta["invalid_pixels"] == counts.shape[0]


def test_read_mask_from_every_format(tmp_path, counts):
    shape = counts.shape
    mask = np.zeros(shape, np.uint8)
    mask[:, 10:12, :] = 1
    np.save(tmp_path / "m.npy", mask)
    np.savez(tmp_path / "m.npz", mask=mask.astype(bool))
    tifffile.imwrite(tmp_path / "m.tif", mask)
    io.write_cxi_mask(tmp_path / "m.cxi", mask)
    pynx_data_cxi(tmp_path / "d.cxi", counts, mask)
    for name in ("m.npy", "m.npz", "m.tif", "m.cxi", "d.cxi"):
        got = io.read_mask(tmp_path / name, shape)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, mask, err_msg=name)
    np.testing.assert_array_equal(io.read_mask(tmp_path / "m.npz"), mask)  # its own shape
    assert io.is_mask_file(tmp_path / "m.npz") and io.is_mask_file(tmp_path / "m.cxi")
    assert not io.is_mask_file(tmp_path / "d.cxi")
    with pytest.raises(BCDIError, match="shape"):
        io.read_mask(tmp_path / "m.npy", (8, 24, 20))


def test_can_read_accepts_ours_and_declines_the_rest(tmp_path, counts):
    np.save(tmp_path / "a.npy", counts)
    np.save(tmp_path / "frame.npy", counts[0])
    (tmp_path / "notes.npz").write_text("hello")
    (tmp_path / "a.txt").write_text("hello")
    master = bliss_dataset(tmp_path / "b", {1: counts})
    assert io.can_read(tmp_path / "a.npy")
    assert io.can_read(master)
    assert not io.can_read(tmp_path / "frame.npy")  # 2D: napari's own reader
    assert not io.can_read(tmp_path / "notes.npz")
    assert not io.can_read(tmp_path / "a.txt")
    assert not io.can_read(tmp_path / "missing.npy")
    assert not io.can_read(tmp_path)  # a folder without frames


def test_real_pattern_round_trips_through_every_writer(tmp_path, real_pattern):
    g = io.read  # noqa: F841 - keep the name short below
    io.write_intensity(tmp_path / "real.cxi", real_pattern)
    io.write_intensity(tmp_path / "real.npz", real_pattern)
    for name in ("real.cxi", "real.npz"):
        loaded = io.read(tmp_path / name)
        np.testing.assert_array_equal(loaded.data, real_pattern)
