"""The Inpainting dock widget end to end in a real napari viewer (Xvfb), on the measured 64³ pattern."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

TIMEOUT_MS = 300_000


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [(str(n.severity).lower(), n.message) for n in notification_manager.records[start:]]


@pytest.fixture
def setup(make_napari_viewer, real_pattern):
    from napari_bcdi_dl.widgets.inpainting import InpaintingWidget

    viewer = make_napari_viewer()
    m = np.zeros(real_pattern.shape, np.uint8)
    m[:, 29:35, :] = 1
    m[:, :, 30:34] = 1
    data = real_pattern.copy()
    data[m == 1] = 0
    data_layer = viewer.add_image(data, name="scan", gamma=0.2, scale=(2.0, 1.0, 1.0))
    mask_layer = viewer.add_labels(m, name="scan gap mask", scale=(2.0, 1.0, 1.0))
    truth_layer = viewer.add_image(real_pattern.copy(), name="truth", visible=False)
    widget = InpaintingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inpainting")
    return viewer, widget, data_layer, mask_layer, truth_layer


def _wait(qtbot, job):
    assert job is not None, "the action did not start a job"
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert job.error is None, job.error
    return job


def test_run_dl_end_to_end_with_progress_and_pcc(setup, qtbot, notes):
    viewer, widget, data_layer, mask_layer, truth = setup
    assert widget.data_combo.currentText() == "scan"
    assert widget.mask_combo.currentText() == "scan gap mask", "the Data & mask widget's layer is preferred"
    data_before = np.array(data_layer.data, copy=True)
    widget.set_layers(data_layer, mask_layer, truth)
    widget.method_combo.setCurrentText("dl")
    widget.step_spin.setValue(8)
    seen = []
    job = widget.run()
    job.progressed.connect(lambda d, t: seen.append((d, t)))
    assert not widget.run_button.isEnabled() and widget.cancel_button.isEnabled()
    _wait(qtbot, job)
    out = viewer.layers["scan inpainted"]
    m = np.asarray(mask_layer.data) == 1
    np.testing.assert_array_equal(out.data[~m], data_before[~m])
    assert (out.data[m] > 0).any()
    np.testing.assert_array_equal(data_layer.data, data_before)  # input layer untouched
    assert tuple(out.scale) == (2.0, 1.0, 1.0)
    assert seen and seen[-1][0] == seen[-1][1] == widget.progress_bar.maximum()
    assert widget.last_pcc is not None and 0.5 < widget.last_pcc <= 1
    assert "PCC" in widget.status.text()
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()
    assert not [msg for s, msg in notes() if s == "error"]

    # a baseline run replaces the layer (its own PCC; quality is measured in benchmarks/inpaint_quality.py)
    dl_pcc = widget.last_pcc
    widget.method_combo.setCurrentText("linear")
    assert not widget.step_spin.isEnabled() and not widget.finetune_button.isEnabled()
    _wait(qtbot, widget.run())
    assert [lay.name for lay in viewer.layers].count("scan inpainted") == 1
    assert 0.5 < widget.last_pcc <= 1 and widget.last_pcc != dl_pcc
    assert "(linear)" in widget.status.text()


def test_cancel(setup, qtbot, notes):
    viewer, widget, data_layer, mask_layer, _ = setup
    widget.set_layers(data_layer, mask_layer)
    widget.step_spin.setValue(1)
    job = widget.run()
    qtbot.waitUntil(lambda: widget.progress_bar.value() > 0, timeout=TIMEOUT_MS)
    widget.cancel()
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert job.cancelled and "scan inpainted" not in [lay.name for lay in viewer.layers]
    assert widget.run_button.isEnabled()


def test_finetune_button_then_run(setup, qtbot):
    _viewer, widget, data_layer, mask_layer, _ = setup
    widget.set_layers(data_layer, mask_layer)
    widget.ft_steps.setValue(2)
    _wait(qtbot, widget.finetune())
    assert widget.model is not None and "fine-tuned" in widget.status.text()
    from napari_bcdi_dl.widgets._model_jobs import ChildModel
    from napari_bcdi_dl.widgets._worker_process import model_process

    # the tuned Keras model stays in the model process (a fresh copy, never the cached shipped model:
    # finetune(model=None) loads with fresh=True); the widget holds a handle on it
    assert isinstance(widget.model, ChildModel) and widget.model.pid == model_process().pid
    widget.step_spin.setValue(16)
    _wait(qtbot, widget.run())
    assert "fine-tuned model" in widget.status.text()
    widget.reset_model()
    assert widget.model is None


def test_a_lost_finetuned_model_is_a_clear_error(setup, qtbot, notes):
    """After the model process was replaced, the handle no longer resolves: one line, then Reset works."""
    from napari_bcdi_dl.widgets._model_jobs import ChildModel

    viewer, widget, data_layer, mask_layer, _ = setup
    widget.set_layers(data_layer, mask_layer)
    widget.model = ChildModel("inpaint-finetuned-gone", pid=-1)
    job = widget.run()
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert job.error is not None and "fine-tuned model was lost" in str(job.error)
    assert any("fine-tune again or press Reset model" in msg for s, msg in notes() if s == "error")
    assert "scan inpainted" not in [lay.name for lay in viewer.layers]
    assert widget.run_button.isEnabled()


def test_bad_masks_are_notified_not_raised(setup, qtbot, notes):
    viewer, widget, data_layer, mask_layer, _ = setup
    for bad, words in ((np.zeros_like(mask_layer.data), "empty"), (np.ones_like(mask_layer.data), "every voxel")):
        mask_layer.data = bad
        widget.set_layers(data_layer, mask_layer)
        job = widget.run()
        qtbot.waitUntil(lambda j=job: j.done, timeout=TIMEOUT_MS)
        assert job.error is not None and words in str(job.error)
    small = viewer.add_labels(np.zeros((10, 10, 10), np.uint8), name="small")
    widget.set_layers(data_layer, small)
    assert widget.run() is None
    assert any("shape" in msg for s, msg in notes() if s == "error")
    assert "scan inpainted" not in [lay.name for lay in viewer.layers]


def test_inpainted_layer_keeps_the_data_physics(make_napari_viewer, qtbot, real_pattern):
    """The result carries the data's scale/translate/units and a copy of its metadata["bcdi"] (voxel size,
    geometry...), so objects phased from it keep their nm scale; the data layer's metadata is untouched."""
    from napari_bcdi_dl.core.types import Geometry
    from napari_bcdi_dl.widgets.inpainting import InpaintingWidget

    viewer = make_napari_viewer()
    m = np.zeros(real_pattern.shape, np.uint8)
    m[:, 29:35, :] = 1
    geometry = Geometry(energy_kev=9.0, hkl=(1, 1, 1))
    info = {"kind": "intensity", "voxel_size_nm": [10.0, 8.0, 8.0], "geometry": geometry, "source": "scan.h5"}
    data = viewer.add_image(np.where(m == 1, 0, real_pattern), name="scan", scale=(2.0, 1.0, 1.0),
                            translate=(1.0, 2.0, 3.0), units="1/nm", metadata={"bcdi": info})
    mask = viewer.add_labels(m, name="scan gap mask", scale=(2.0, 1.0, 1.0), translate=(1.0, 2.0, 3.0))
    widget = InpaintingWidget(viewer)
    widget.set_layers(data, mask)
    widget.method_combo.setCurrentText("linear")
    for _ in range(2):  # created, then replaced
        _wait(qtbot, widget.run())
        out = viewer.layers["scan inpainted"]
        meta = out.metadata["bcdi"]
        assert tuple(meta["voxel_size_nm"]) == (10.0, 8.0, 8.0) and meta["geometry"] == geometry
        assert meta["kind"] == "intensity" and meta["source"] == "scan.h5" and meta["data_layer"] == "scan"
        assert meta["inpainted"] == "linear" and meta["inpaint_mask"] == "scan gap mask"
        assert tuple(out.scale) == (2.0, 1.0, 1.0) and tuple(out.translate) == (1.0, 2.0, 3.0)
        assert [str(u) for u in out.units] == [str(u) for u in data.units]
    assert [lay.name for lay in viewer.layers].count("scan inpainted") == 1
    assert data.metadata["bcdi"] is info and set(info) == {"kind", "voxel_size_nm", "geometry", "source"}
    assert meta is not info and meta["voxel_size_nm"] is not info["voxel_size_nm"]
