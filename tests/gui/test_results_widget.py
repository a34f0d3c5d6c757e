"""The Results widget in a real napari viewer: post-processing, comparison, export."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core import io
from napari_bcdi_dl.core.postprocess import invert, twin
from napari_bcdi_dl.core.types import Geometry, Reconstruction
from napari_bcdi_dl.widgets._layers import viewer_grid

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000
VOXEL = (6.0, 5.0, 4.0)


@pytest.fixture(scope="module")
def sim():
    from napari_bcdi_dl.core.simulate import simulate_pattern

    return simulate_pattern(size=32, seed=7, phase_range=2.0, max_counts=1e5)


@pytest.fixture
def viewer_widget(make_napari_viewer):
    from napari_bcdi_dl.widgets.results import ResultsWidget

    viewer = make_napari_viewer()
    widget = ResultsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Results")
    return viewer, widget


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [(str(n.severity), n.message) for n in notification_manager.records[start:]]


def _errors(notes) -> list:
    return [m for s, m in notes() if s.lower() == "error"]


def wait(qtbot, job):
    assert job is not None, "the widget refused to start the job"
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    return job


def _add_reconstruction(viewer, name, obj, support, *, geometry=None, data_layer=None, method="sim"):
    """A modulus layer as the phasing widgets make it: its ReconstructionResult in metadata["bcdi"]."""
    from napari_bcdi_dl.core.types import Reconstruction, ReconstructionResult
    from napari_bcdi_dl.widgets._layers import result_metadata

    res = ReconstructionResult(Reconstruction(obj, support, llk=0.5, llk_free=0.6, method=method),
                               geometry=geometry, voxel_size_nm=VOXEL, data_name=data_layer)
    return viewer.add_image(np.abs(obj), name=f"{name} modulus", metadata=result_metadata(res, "modulus"),
                            scale=VOXEL)


def test_postprocess_adds_scaled_masked_layers(viewer_widget, qtbot, sim, notes):
    viewer, w = viewer_widget
    obj0, sup0 = sim.obj.copy(), sim.support.copy()
    geometry = Geometry(hkl=(1, 1, 1), lattice_nm=0.3912)
    layer = _add_reconstruction(viewer, "sim", sim.obj, sim.support, geometry=geometry)
    assert w.source_names() == ["sim"]
    w.select_source("sim modulus")  # any layer of a reconstruction is accepted
    assert w.source_combo.currentText() == "sim"
    assert w.hkl_edit.text() == "1 1 1" and w.lattice_edit.text() == "0.3912"
    assert w.voxel_edit.text() == "6 5 4"
    assert w.name_edit.text() == "sim results"  # "sim modulus" is the input: never overwritten
    wait(qtbot, w.process())
    assert not _errors(notes)
    names = [lay.name for lay in viewer.layers]
    assert names == ["sim modulus", "sim results modulus", "sim results phase", "sim results strain",
                     "sim results surface"]
    mod, phase, strain = (viewer.layers[f"sim results {k}"] for k in ("modulus", "phase", "strain"))
    for lay in (mod, phase, strain):
        assert tuple(lay.scale) == pytest.approx(VOXEL)
        assert all(str(u) == "nanometer" for u in lay.units)
    assert mod.rendering == "iso" and mod.colormap.name == "gray"
    assert phase.colormap.name == "twilight"
    assert tuple(phase.contrast_limits) == pytest.approx((-np.pi, np.pi))
    assert strain.colormap.name == "coolwarm"
    lo, hi = strain.contrast_limits
    assert lo == pytest.approx(-hi) and hi > 0
    s = w.result.support != 0
    assert np.isnan(strain.data[~s]).all() and np.isfinite(strain.data[s]).all()
    assert np.isnan(phase.data[~s]).all()
    assert w.result.g_norm is not None and w.result.voxel_size == pytest.approx(VOXEL)
    assert "strain in" in w.stats.text() and w.histogram.counts.sum() == s.sum()
    w.iso_slider.setValue(50)
    assert mod.iso_threshold == pytest.approx(0.5 * float(mod.data.max()))
    # input unchanged
    np.testing.assert_array_equal(layer.metadata["bcdi"]["result"].obj, obj0)
    np.testing.assert_array_equal(layer.metadata["bcdi"]["result"].support, sup0)
    np.testing.assert_array_equal(layer.data, np.abs(obj0))
    # a second run replaces the layers, it does not add new ones
    wait(qtbot, w.process())
    assert len(viewer.layers) == 5


def test_compare_truth_with_its_shifted_phase_offset_twin(viewer_widget, qtbot, sim, notes):
    viewer, w = viewer_widget
    data = viewer.add_image(sim.intensity, name="sim data", metadata={"bcdi": {"kind": "intensity"}})
    shift = (3, -2, 1)
    other = np.roll(twin(sim.obj), shift, axis=(0, 1, 2)) * np.exp(0.7j)
    other_sup = np.roll(invert(sim.support), shift, axis=(0, 1, 2))
    a = _add_reconstruction(viewer, "truth", sim.obj, sim.support, data_layer="sim data")
    b = _add_reconstruction(viewer, "twin copy", other.astype(np.complex64), other_sup, data_layer="sim data",
                            method="copy")
    before = [np.array(x) for x in (a.data, b.data, a.metadata["bcdi"]["result"].obj, b.metadata["bcdi"]["result"].obj,
                                    data.data)]
    wait(qtbot, w.compare(["truth modulus", "twin copy modulus"]))
    assert not _errors(notes)
    rows = w.comparison["rows"]
    assert [r["name"] for r in rows] == ["truth", "twin copy"]
    assert rows[1]["twin"] and rows[1]["error"] < 1e-3 and rows[1]["phase_rmse"] < 1e-3
    assert rows[0]["chi2"] is not None and rows[1]["chi2"] == pytest.approx(rows[0]["chi2"], rel=1e-3)
    assert rows[0]["prtf_nm"] is not None
    assert w.table.rowCount() == 2
    header = [w.table.horizontalHeaderItem(c).text() for c in range(w.table.columnCount())]
    err = float(w.table.item(1, header.index("error vs 1st")).text())
    assert err == pytest.approx(0, abs=1e-3)
    assert w.table.item(1, header.index("twin")).text() == "yes"
    assert viewer_grid(viewer).enabled
    pa, pb = viewer.layers["compare truth phase"], viewer.layers["compare twin copy phase"]
    assert tuple(pa.contrast_limits) == tuple(pb.contrast_limits) == pytest.approx((-np.pi, np.pi))
    common = np.isfinite(pa.data) & np.isfinite(pb.data)
    assert common.sum() > 0.9 * sim.support.sum()
    d = viewer.layers["compare truth − twin copy phase diff"].data
    assert np.nanmax(np.abs(d)) < 1e-2
    assert not a.visible and pa.visible
    after = [np.array(x) for x in (a.data, b.data, a.metadata["bcdi"]["result"].obj, b.metadata["bcdi"]["result"].obj,
                                   data.data)]
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)


def test_file_source_and_exports(viewer_widget, qtbot, sim, tmp_path, notes):
    viewer, w = viewer_widget
    src = io.write_cxi_result(tmp_path / "pynx_result.cxi",
                              Reconstruction(obj=sim.obj, support=sim.support, llk=0.4, method="pynx",
                                             meta={"voxel_size_nm": VOXEL}))
    raw = src.read_bytes()
    wait(qtbot, w.open_file(src))
    assert "file: pynx_result" in w.source_names()
    assert w.source_combo.currentText() == "file: pynx_result"
    assert w.voxel_edit.text() == "6 5 4"
    w.hkl_edit.setText("0 0 2")
    w.lattice_edit.setText("0.3912")
    wait(qtbot, w.process())
    assert not _errors(notes)
    assert tuple(viewer.layers["pynx_result strain"].scale) == pytest.approx(VOXEL)
    for fmt in ("cxi", "npz", "vti"):
        wait(qtbot, getattr(w, f"export_{fmt}")(tmp_path / f"out.{fmt}"))
    assert not _errors(notes)
    with np.load(tmp_path / "out.npz") as f:
        inside = w.result.support != 0
        np.testing.assert_array_equal(f["het_strain"], np.where(inside, w.result.strain, np.nan))
        assert np.isnan(f["phase"][~inside]).all() and f["het_strain"].dtype == np.float32
        np.testing.assert_allclose(f["voxel_size"], VOXEL)
        assert '"method": "pynx"' in str(f["meta_json"])
    back = io.read(tmp_path / "out.cxi")
    np.testing.assert_allclose(back.data, sim.obj, rtol=1e-6)
    assert (tmp_path / "out.vti").read_text().startswith("<?xml")
    # exporting over the source file is refused, the source is unchanged
    job = w.export_npz(src.with_suffix(".npz"))  # another name: fine
    wait(qtbot, job)
    assert src.read_bytes() == raw


def test_errors_are_notifications(viewer_widget, qtbot, notes):
    _viewer, w = viewer_widget
    assert w.process() is None
    assert w.compare() is None
    assert w.export_vti("/tmp/never.vti") is None
    errs = _errors(notes)
    assert len(errs) == 3 and all(e.startswith("Results: ") for e in errs)


def test_each_reconstruction_is_listed_once(viewer_widget, qtbot, sim, notes):
    """The phasing widgets put the object on the modulus and the phase layers: one entry, by base name."""
    from napari_bcdi_dl.core.types import Reconstruction, ReconstructionResult
    from napari_bcdi_dl.widgets._layers import result_metadata

    viewer, w = viewer_widget
    res = ReconstructionResult(Reconstruction(sim.obj, sim.support, method="conventional"), voxel_size_nm=VOXEL)
    for kind in ("modulus", "phase"):
        data = np.abs(sim.obj) if kind == "modulus" else np.angle(sim.obj).astype(np.float32)
        viewer.add_image(data, name=f"sim conventional {kind}", scale=VOXEL, metadata=result_metadata(res, kind))
    viewer.add_labels(sim.support.astype(np.uint8), name="sim conventional support", scale=VOXEL,
                      metadata=result_metadata(res, "support"))
    other = (sim.obj * np.exp(0.3j)).astype(np.complex64)
    _add_reconstruction(viewer, "sim DL", other, sim.support, method="dl")
    assert w.source_names() == ["sim conventional", "sim DL"]
    assert [w.source_combo.itemText(i) for i in range(w.source_combo.count())] == w.source_names()
    assert [w.compare_list.item(i).text() for i in range(w.compare_list.count())] == w.source_names()
    for name in ("sim conventional", "sim conventional modulus", "sim conventional phase"):
        w.select_source(name)
        assert w.source_combo.currentText() == "sim conventional"
        src = w.source(name)
        assert src.name == "sim conventional" and src.origin == "sim conventional modulus"
        np.testing.assert_array_equal(src.obj, sim.obj)
    assert w.name_edit.text() == "sim conventional results"  # its modulus layer is not the widget's own
    # without its modulus layer the reconstruction is still listed once, carried by its phase layer
    viewer.layers.remove("sim conventional modulus")
    assert w.source_names() == ["sim conventional", "sim DL"]
    assert w.source("sim conventional").origin == "sim conventional phase"
    wait(qtbot, w.compare(["sim conventional phase", "sim DL modulus"]))
    assert not _errors(notes)
    assert w.checked_names() == ["sim conventional", "sim DL"]
    assert [r["name"] for r in w.comparison["rows"]] == ["sim conventional", "sim DL"]
    assert "compare sim conventional phase" in [lay.name for lay in viewer.layers]
    # a name that is no reconstruction is a notification, not an exception
    assert w.compare(["sim conventional", "sim DL support"]) is None
    assert any("no reconstruction named" in m for m in _errors(notes))
