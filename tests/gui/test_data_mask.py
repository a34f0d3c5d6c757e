"""The Data & mask widget in a real napari viewer, on the measured pattern ``cdinn_exp_crop64.npz``.

The measured 64³ crop has no detector gap, so one file is made from it the way a Maxipix sees it: the
crop sits at detector ROI offset (225, 225), where the 6-pixel gap cross (rows/cols 255-260) crosses the
Bragg peak, i.e. rows and columns 30-35 of the crop read zero in every frame.
"""

from __future__ import annotations

import threading

import h5py
import numpy as np
import pytest

from napari_bcdi_dl.core.types import Geometry

pytestmark = pytest.mark.gui

TIMEOUT_MS = 30_000
ROI = (225, 225)
GAP = slice(30, 36)  # rows/cols 255-260 of the Maxipix seen from ROI offset 225
GEOMETRY = Geometry(energy_kev=9.0, distance_m=1.2, pixel_size_m=(55e-6, 55e-6), rocking_step_deg=0.01,
                    rocking_motor="eta", angles_deg={"eta": 17.0, "delta": 34.0, "nu": 0.0, "phi": 0.0},
                    roi=(225, 289, 225, 289), detector="mpx1x4")


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def widget(make_napari_viewer):
    """The widget as a user gets it: docked from the plugin menu (napari hands it a PublicOnlyProxy)."""
    from napari_bcdi_dl.widgets.data_mask import DataMaskWidget

    viewer = make_napari_viewer()
    _dock, w = viewer.window.add_plugin_dock_widget("napari-bcdi-dl", "Data & mask")
    assert isinstance(w, DataMaskWidget)
    return w


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [(str(n.severity), n.message) for n in notification_manager.records[start:]]


def _errors(notes) -> list[str]:
    return [m for s, m in notes() if s.lower() == "error"]


@pytest.fixture
def gapped(real_pattern):
    a = real_pattern.copy()
    a[:, GAP, :] = 0
    a[:, :, GAP] = 0
    return a


@pytest.fixture
def expected_gap(real_pattern) -> np.ndarray:
    m = np.zeros(real_pattern.shape, np.uint8)
    m[:, GAP, :] = 1
    m[:, :, GAP] = 1
    return m


@pytest.fixture
def real_file(tmp_path, real_pattern):
    p = tmp_path / "cdinn.npz"
    np.savez(p, data=real_pattern)
    return p


@pytest.fixture
def gapped_file(tmp_path, gapped):
    p = tmp_path / "maxipix_scan.npz"
    np.savez(p, data=gapped)
    return p


def wait(qtbot, job):
    assert job is not None, "the action did not start a job (see the notifications)"
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    return job


def load(widget, qtbot, path, **kw):
    job = wait(qtbot, widget.load(path, **kw))
    assert job.error is None, job.error
    return widget.data_layer


# ------------------------------------------------------------------------------------------- tests
def test_load_keeps_raw_counts_on_a_log_like_scale(widget, qtbot, real_file, real_pattern):
    layer = load(widget, qtbot, real_file)
    assert layer.name == "cdinn"
    assert layer.data.dtype == np.float32
    np.testing.assert_array_equal(layer.data, real_pattern)  # raw counts, not a log
    assert layer.gamma == pytest.approx(0.2) and layer.contrast_limits[1] == pytest.approx(real_pattern.max())
    assert tuple(layer.scale) == (1.0, 1.0, 1.0), "no geometry in a bare npz: one voxel per pixel/frame"
    assert [lay.name for lay in widget.viewer.layers] == ["cdinn"], "no mask layer until asked"
    assert widget.load_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_log10_view_is_a_separate_layer(widget, qtbot, real_file, real_pattern):
    raw = load(widget, qtbot, real_file, log_view=True)
    logl = widget.viewer.layers["cdinn log10"]
    np.testing.assert_allclose(logl.data, np.log10(1 + real_pattern), rtol=1e-6)
    np.testing.assert_array_equal(raw.data, real_pattern)
    assert widget.data_layer is raw, "the data layer is the raw counts, never the log view"
    assert widget.layer_combo.findText("cdinn log10") == -1
    assert logl.visible and not raw.visible


def test_preset_detect_dilate_export_import_on_the_real_pattern(widget, qtbot, gapped_file, gapped,
                                                                expected_gap, tmp_path, notes):
    data = load(widget, qtbot, gapped_file)
    data_before = data.data
    assert data.name == "maxipix_scan"

    # detector preset through the ROI offset
    wait(qtbot, widget.apply_preset("maxipix", ROI))
    mask = widget.mask_layer
    assert mask is not None and mask.name == "maxipix_scan gap mask"
    assert mask.n_edit_dimensions == 3
    assert tuple(mask.scale) == tuple(data.scale) and tuple(mask.translate) == tuple(data.translate)
    np.testing.assert_array_equal(mask.data, expected_gap)
    assert "rows 30-35" in widget.status.text() and "cols 30-35" in widget.status.text()

    # auto-detection finds the same cross in the measured counts
    widget.clear_mask()
    assert not np.asarray(widget.mask_layer.data).any()
    assert widget.mask_layer is mask, "clear replaces the data of the same layer"
    wait(qtbot, widget.detect_gaps())
    np.testing.assert_array_equal(mask.data, expected_gap)

    # dilation by 1 in the detector plane: rows/cols 29-36
    wait(qtbot, widget.dilate(1, plane_only=True))
    dilated = np.zeros_like(expected_gap)
    dilated[:, 29:37, :] = 1
    dilated[:, :, 29:37] = 1
    np.testing.assert_array_equal(mask.data, dilated)

    # export (atomic, both formats) then import back into an empty mask
    out_npz, out_cxi = tmp_path / "mask.npz", tmp_path / "mask.cxi"
    for out in (out_npz, out_cxi):
        wait(qtbot, widget.export_mask(out))
        assert out.exists()
    with np.load(out_npz) as f:
        np.testing.assert_array_equal(f["mask"], dilated)
    with h5py.File(out_cxi, "r") as f:
        np.testing.assert_array_equal(f["/entry_1/instrument_1/detector_1/mask"][()], dilated)
    assert not [p.name for p in tmp_path.iterdir() if ".part" in p.name], "temporary files left behind"

    widget.clear_mask()
    wait(qtbot, widget.import_mask(out_cxi))
    np.testing.assert_array_equal(mask.data, dilated)
    widget.clear_mask()
    wait(qtbot, widget.import_mask(out_npz))
    np.testing.assert_array_equal(mask.data, dilated)

    # the data layer was never touched
    assert data.data is data_before
    np.testing.assert_array_equal(data.data, gapped)
    assert not _errors(notes), _errors(notes)


def test_no_gap_is_found_in_the_measured_crop(widget, qtbot, real_file, notes):
    load(widget, qtbot, real_file)
    wait(qtbot, widget.detect_gaps())
    assert not np.asarray(widget.mask_layer.data).any()
    assert any("no detector gap found" in m for _, m in notes())


def test_mask_is_painted_in_3d(widget, qtbot, gapped_file, expected_gap, tmp_path):
    load(widget, qtbot, gapped_file)
    wait(qtbot, widget.apply_preset("maxipix", ROI))
    mask = widget.mask_layer
    widget.viewer.layers.selection.active = mask
    mask.mode = "paint"
    mask.brush_size = 5
    mask.selected_label = 1
    assert mask.n_edit_dimensions == 3
    mask.paint((32, 10, 10), 1)
    painted = np.asarray(mask.data)
    assert painted[32, 10, 10] == 1
    assert painted[30, 10, 10] == 1 and painted[34, 10, 10] == 1, "the brush is a ball across frames"
    assert painted[20, 10, 10] == 0
    assert (painted != expected_gap).sum() > 20
    out = tmp_path / "painted.npz"
    wait(qtbot, widget.export_mask(out))
    with np.load(out) as f:
        np.testing.assert_array_equal(f["mask"], (painted != 0).astype(np.uint8))


def test_geometry_gives_the_reciprocal_step_as_scale(widget, qtbot, tmp_path, gapped, expected_gap):
    from napari_bcdi_dl.core.geometry import detector_voxel_size, reciprocal_voxel_size
    from napari_bcdi_dl.core.io import write_cxi_data

    path = write_cxi_data(tmp_path / "scan.cxi", gapped, None, GEOMETRY)
    data = load(widget, qtbot, path)
    voxel = reciprocal_voxel_size(GEOMETRY, gapped.shape)
    np.testing.assert_allclose(data.scale, voxel)
    assert str(data.units[0]) == "1 / nanometer"
    # the real-space voxel of objects phased from it travels in the metadata for the phasing widgets
    np.testing.assert_allclose(data.metadata["bcdi"]["voxel_size_nm"], detector_voxel_size(GEOMETRY, gapped.shape))
    # preset and ROI offset come from the file's geometry (detector mpx1x4, roi row0/col0 = 225)
    assert widget.preset_combo.currentText() == "maxipix"
    assert (widget.roi_row.value(), widget.roi_col.value()) == ROI
    wait(qtbot, widget.apply_preset())
    mask = widget.mask_layer
    np.testing.assert_allclose(mask.scale, voxel)
    np.testing.assert_array_equal(mask.data, expected_gap)


def test_bliss_scan_is_chosen(widget, qtbot, tmp_path, real_pattern):
    path = tmp_path / "sample_0001.h5"
    with h5py.File(path, "w") as f:
        for scan, factor in (("1.1", 1.0), ("2.1", 2.0)):
            g = f.create_group(scan)
            g["title"] = "ascan eta 10.0 10.63 63 1"
            g.create_dataset("measurement/mpx1x4", data=(real_pattern * factor).astype(np.uint32))
    widget.set_path(path)
    assert [widget.scan_combo.itemText(i) for i in range(widget.scan_combo.count())] == ["1.1", "2.1"]
    assert widget.scan_combo.isEnabled()
    widget.scan_combo.setCurrentText("2.1")
    data = load(widget, qtbot, path)
    assert data.name == "sample_0001 scan 2.1"
    np.testing.assert_array_equal(data.data, (real_pattern * 2.0).astype(np.uint32).astype(np.float32))


def test_data_layer_list_follows_the_viewer(widget, qtbot, gapped_file, expected_gap):
    v = widget.viewer
    assert widget.data_layer is None
    v.add_image(np.zeros((8, 8), np.float32), name="a 2D image")
    assert widget.layer_combo.count() == 0, "2D images are not scans"
    # a scan opened through napari's own File > Open (our reader), not through the widget
    (layer,) = v.open(str(gapped_file), plugin="napari-bcdi-dl")
    assert widget.data_layer is layer
    layer.name = "renamed scan"
    assert widget.layer_combo.currentText() == "renamed scan"
    wait(qtbot, widget.detect_gaps())
    assert widget.mask_layer.name == "renamed scan gap mask"
    np.testing.assert_array_equal(widget.mask_layer.data, expected_gap)
    v.layers.remove(layer)
    assert widget.data_layer is None and widget.layer_combo.count() == 0


def test_bad_input_becomes_notifications(widget, qtbot, tmp_path, gapped_file, notes):
    v = widget.viewer
    text = tmp_path / "notes.npz"
    text.write_text("not a zip file\n")
    job = wait(qtbot, widget.load(text))
    assert job.error is not None and len(v.layers) == 0
    assert _errors(notes)
    assert widget.load_button.isEnabled(), "buttons come back after an error"

    assert widget.detect_gaps() is None  # no data layer: a notification, no job
    assert any("no data layer" in m for m in _errors(notes))

    data = load(widget, qtbot, gapped_file)
    n_err = len(_errors(notes))
    assert widget.dilate(2) is None, "nothing to dilate"
    wait(qtbot, widget.apply_preset("maxipix", (500, 500)))  # ROI outside the 516x516 detector
    assert "do not fit" in _errors(notes)[-1]
    wrong = tmp_path / "wrong_shape.npy"
    np.save(wrong, np.zeros((32, 32, 32), np.uint8))
    wait(qtbot, widget.import_mask(wrong))
    assert widget.mask_layer is None, "a failed import adds no layer"
    wait(qtbot, widget.apply_preset("maxipix", ROI))
    before = np.array(widget.mask_layer.data)
    assert widget.export_mask(tmp_path / "mask.tif") is not None
    qtbot.waitUntil(lambda: widget.job.done, timeout=TIMEOUT_MS)
    assert not (tmp_path / "mask.tif").exists()
    data_bytes = gapped_file.read_bytes()
    wait(qtbot, widget.export_mask(gapped_file))  # the data file itself: refused
    assert gapped_file.read_bytes() == data_bytes
    assert len(_errors(notes)) - n_err == 5, _errors(notes)[n_err:]
    np.testing.assert_array_equal(widget.mask_layer.data, before)
    assert data in v.layers


def test_second_action_while_busy_is_refused(widget, qtbot, gapped_file, notes):
    load(widget, qtbot, gapped_file)
    gate = threading.Event()
    from napari_bcdi_dl.widgets._worker import run_job

    def slow(*, progress=None, cancel=None):
        gate.wait(10)

    widget.job = run_job(slow, desc="slow job")
    try:
        assert widget.detect_gaps() is None
        assert any("busy" in m for _, m in notes())
    finally:
        gate.set()
    qtbot.waitUntil(lambda: widget.job.done, timeout=TIMEOUT_MS)
    wait(qtbot, widget.detect_gaps())
