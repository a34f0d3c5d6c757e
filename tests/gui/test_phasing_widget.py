"""The Phasing widget end to end in a real napari viewer (Xvfb), on a small simulated low-strain pattern."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.widgets._layers import result_of

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000
RECIPE = "HIO**60, ER**40"
VOXEL = [12.0, 9.0, 9.0]


@pytest.fixture(scope="module")
def pattern():
    from napari_bcdi_dl.core.simulate import simulate_pattern

    return simulate_pattern(size=32, seed=3, phase_range=0.5, gap="line:2", orientation=None)


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [(str(n.severity).lower(), n.message) for n in notification_manager.records[start:]]


@pytest.fixture
def setup(make_napari_viewer, pattern):
    from napari_bcdi_dl.widgets.phasing import PhasingWidget

    viewer = make_napari_viewer()
    data = viewer.add_image(pattern.intensity.copy(), name="sim", scale=(0.01, 0.02, 0.02), gamma=0.2,
                            metadata={"bcdi": {"kind": "intensity", "voxel_size_nm": VOXEL}})
    mask = viewer.add_labels(pattern.mask.copy(), name="sim gap mask")
    widget = PhasingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Phasing")
    return viewer, widget, data, mask


def _names(viewer):
    return [layer.name for layer in viewer.layers]


def _layer(viewer, name):
    return next(layer for layer in viewer.layers if layer.name == name)


def _wait(qtbot, job):
    assert job is not None, "Start did not start a job"
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)


def test_phase_end_to_end_then_replace(setup, qtbot, notes, pattern):
    viewer, w, data, mask = setup
    assert w.data_combo.currentText() == "sim"
    assert w.mask_combo.currentText() == "sim gap mask"  # the data's own mask is the default
    assert w.recipe_edit.text() == "HIO**400, RAAR**1000, ER**300" and w.start_button.isEnabled()
    data_arr, mask_arr = data.data, mask.data
    data_before, mask_before = np.array(data_arr, copy=True), np.array(mask_arr, copy=True)

    w.recipe_edit.setText(RECIPE)
    w.runs_spin.setValue(2)
    w.seed_spin.setValue(1)
    seen = []
    job = w.start()
    assert job is not None
    job.progressed.connect(lambda d, t: seen.append((d, t)))
    assert not w.start_button.isEnabled() and w.cancel_button.isEnabled()
    _wait(qtbot, job)
    assert not [m for s, m in notes() if s == "error"], notes()

    mod = _layer(viewer, "sim conventional modulus")
    ph = _layer(viewer, "sim conventional phase")
    sup = _layer(viewer, "sim conventional support")
    from napari.layers import Image, Labels

    assert isinstance(mod, Image) and isinstance(ph, Image) and isinstance(sup, Labels)
    assert mod.data.dtype == np.float32 and ph.data.dtype == np.float32 and sup.data.dtype == np.uint8
    assert mod.data.shape == ph.data.shape == sup.data.shape == pattern.intensity.shape
    assert mod.colormap.name == "gray" and ph.colormap.name == "twilight"
    assert tuple(ph.contrast_limits) == pytest.approx((-np.pi, np.pi))
    assert np.abs(ph.data).max() <= np.pi + 1e-5 and sup.data.sum() > 0
    for layer in (mod, ph, sup):
        assert tuple(layer.scale) == tuple(VOXEL) and str(layer.units[0]) == "nanometer"
        meta = layer.metadata["bcdi"]
        res = result_of(layer)
        assert meta["kind"] in ("modulus", "phase", "support") and res is mod.metadata["bcdi"]["result"]
        assert res.method == "conventional" and res.data_name == "sim" and res.config["phase"]["runs"] == 2
        assert res.obj.dtype == np.complex64 and res.obj.shape == pattern.intensity.shape
        assert np.isfinite(res.llk) and np.isfinite(res.llk_free) and "HIO" in res.recipe
    assert mod.metadata["bcdi"]["kind"] == "modulus" and sup.metadata["bcdi"]["kind"] == "support"
    assert np.allclose(mod.data, np.abs(result_of(mod).obj))
    assert len(w.result.runs) == 2 and "LLK" in w.status.text() and "first mode" in w.status.text()
    assert "recipe run: " in w.status.text() and w.result.best.meta["recipe"] in w.status.text()
    assert f"{w.result.best.llk:.4g}" in w.status.text()
    assert seen and seen[-1][0] == seen[-1][1] == w.progress_bar.maximum() == w.progress_bar.value()
    assert w.start_button.isEnabled() and not w.cancel_button.isEnabled()
    # the result layers are neither intensity nor mask candidates
    assert [w.data_combo.itemText(i) for i in range(w.data_combo.count())] == ["sim"]
    assert "sim conventional support" not in [w.mask_combo.itemText(i) for i in range(w.mask_combo.count())]

    # inputs untouched: the same array objects, the same content
    assert data.data is data_arr and mask.data is mask_arr
    np.testing.assert_array_equal(data.data, data_before)
    np.testing.assert_array_equal(mask.data, mask_before)

    # a second run (other seed, no mask) replaces the layers' data instead of stacking new layers
    n_layers, old_obj = len(viewer.layers), result_of(mod).obj
    w.select_layers(data, None)
    w.runs_spin.setValue(1)
    w.seed_spin.setValue(7)
    _wait(qtbot, w.start())
    assert len(viewer.layers) == n_layers
    assert _layer(viewer, "sim conventional modulus") is mod
    assert result_of(mod).obj is not old_obj and np.allclose(mod.data, np.abs(result_of(mod).obj))
    assert _names(viewer).count("sim conventional phase") == 1
    assert "best of 1 run" in w.status.text()
    np.testing.assert_array_equal(data.data, data_before)


def test_cancel_mid_run_adds_nothing(setup, qtbot, notes):
    viewer, w, _data, _ = setup
    names_before = _names(viewer)
    w.recipe_edit.setText("HIO**5000")
    w.runs_spin.setValue(2)
    job = w.start()
    assert job is not None
    qtbot.waitUntil(lambda: w.progress_bar.value() > 0, timeout=TIMEOUT_MS)
    w.cancel()
    _wait(qtbot, job)
    assert job.cancelled and w.result is None
    assert _names(viewer) == names_before
    assert w.start_button.isEnabled() and not w.cancel_button.isEnabled()
    assert "cancelled" in w.status.text()
    assert not [m for s, m in notes() if s == "error"], notes()
    # ready again: a short run goes through
    w.recipe_edit.setText("ER**20")
    w.runs_spin.setValue(1)
    _wait(qtbot, w.start())
    assert "sim conventional modulus" in _names(viewer)


def test_bad_inputs_are_reported_not_raised(setup, qtbot, notes):
    viewer, w, data, _mask = setup
    names_before = _names(viewer)

    w.recipe_edit.setText("HIO**400, FOO**3")
    assert "FOO" in w.recipe_error.text() and not w.start_button.isEnabled()
    assert w.start() is None
    assert any(s == "error" and "recipe" in m for s, m in notes()), notes()
    w.recipe_edit.setText(RECIPE)
    assert w.recipe_error.text() == "" and w.start_button.isEnabled()

    viewer.add_labels(np.zeros((8, 8, 8), np.uint8), name="small mask")
    w.select_layers(data, "small mask")
    assert w.start() is None
    assert "shape" in w.status.text()
    assert any(s == "error" and "small mask" in m for s, m in notes())

    viewer.layers.remove(data)
    assert w.data_combo.currentText() == ""
    assert w.start() is None
    assert "no intensity layer" in w.status.text()
    assert _names(viewer) == [n for n in names_before if n != "sim"] + ["small mask"]
    assert w.job is None
