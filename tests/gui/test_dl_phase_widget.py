"""The DL phase widget end to end in a real napari viewer (Xvfb), with the shipped model, on the measured
pattern ``cdinn_exp_crop64.npz``: predict (phase over the intensity, unrefined object), refine, both."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.widgets._layers import result_of

pytestmark = pytest.mark.gui

TIMEOUT_MS = 240_000


@pytest.fixture
def viewer_widget(make_napari_viewer, real_pattern):
    from napari_bcdi_dl.widgets.dl_phase import DLPhaseWidget

    viewer = make_napari_viewer()
    data = viewer.add_image(real_pattern, name="cdinn", scale=(2.0, 1.0, 1.0),
                            metadata={"bcdi": {"kind": "intensity", "voxel_size_nm": [10.0, 8.0, 8.0]}})
    w = DLPhaseWidget(viewer)
    viewer.window.add_dock_widget(w, name="DL phase")
    return viewer, w, data


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [(str(n.severity).lower(), n.message) for n in notification_manager.records[start:]]


def _layer(viewer, name):
    return next(layer for layer in viewer.layers if layer.name == name)


def test_predict_then_refine_then_both(viewer_widget, qtbot, notes, real_pattern):
    viewer, w, data = viewer_widget
    assert w.data_combo.currentText() == "cdinn"
    before = np.array(data.data, copy=True)

    job = w.predict()
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert not [m for s, m in notes() if s == "error"], notes()
    ph = _layer(viewer, "cdinn predicted phase")
    assert ph.data.shape == real_pattern.shape and tuple(ph.scale) == (2.0, 1.0, 1.0)
    assert ph.colormap.name == "twilight" and np.isfinite(ph.data).all() and np.abs(ph.data).max() <= np.pi + 1e-5
    for suffix in ("modulus", "phase", "support"):
        layer = _layer(viewer, f"cdinn DL unrefined {suffix}")
        assert layer.data.shape == real_pattern.shape and tuple(layer.scale) == (10.0, 8.0, 8.0)
    assert _layer(viewer, "cdinn DL unrefined support").data.sum() > 0
    assert "predicted on 32³" in w.status.text()

    w.set_recipe("HIO**10, ER**10")
    job = w.refine()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert not [m for s, m in notes() if s == "error"], notes()
    mod = _layer(viewer, "cdinn DL modulus")
    info = mod.metadata["bcdi"]
    res = result_of(mod)
    assert res is info["result"] and res.method == "dl" and np.isfinite(res.llk) and res.obj.dtype == np.complex64
    assert info["kind"] == "modulus" and res.data_name == "cdinn" and "HIO**10, ER**10" in res.recipe
    phase = _layer(viewer, "cdinn DL phase")
    assert phase.colormap.name == "twilight" and tuple(phase.contrast_limits) == pytest.approx((-np.pi, np.pi))
    assert "free LLK" in w.status.text()
    # Refine took the network's and the corrector's candidates of the prediction (the dock's default)
    assert {c["source"] for c in res.reconstruction.meta["candidates"]} == {"network", "corrector"}
    assert w.config().phase.corrector is True
    w.corrector_check.setChecked(False)
    assert w.config().phase.corrector is False  # what Predict + refine runs below: the network's alone

    n_layers = len(viewer.layers)
    job = w.predict_and_refine()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert len(viewer.layers) == n_layers  # the layers were updated, not duplicated
    assert {c["source"] for c in w.reconstruction.meta["candidates"]} == {"network"}
    assert np.array_equal(data.data, before)  # the input layer is untouched


def test_errors_are_notifications(viewer_widget, qtbot, notes):
    viewer, w, data = viewer_widget
    assert w.refine() is None  # nothing predicted yet
    assert any("press Predict first" in m for s, m in notes() if s == "error")
    viewer.layers.remove(data)
    assert w.predict() is None
    assert any("no intensity layer" in m for s, m in notes() if s == "error")


def test_cancel(viewer_widget, qtbot):
    _viewer, w, _data = viewer_widget
    w.set_recipe("HIO**2500, ER**2500")
    job = w.predict_and_refine()
    qtbot.waitUntil(lambda: job.worker is not None, timeout=5000)
    w.cancel()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert job.cancelled
    assert w.predict_button.isEnabled() and not w.cancel_button.isEnabled()


NO_TF_TEST = "test_the_napari_process_never_imports_tensorflow"


def test_the_napari_process_never_imports_tensorflow(make_napari_viewer, qtbot, real_pattern):
    """A DL phase prediction and an Inpainting ``dl`` run from the widgets leave TensorFlow out of the napari
    process (it runs in the model process). Another test of the session may have imported TensorFlow in
    this process already: then the check runs alone in a fresh pytest process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if "tensorflow" in sys.modules or "keras" in sys.modules:
        if os.environ.get("BCDI_NO_TF_CHILD_RUN"):
            pytest.fail("TensorFlow was imported before the test started")
        env = {**os.environ, "BCDI_NO_TF_CHILD_RUN": "1"}
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              f"{__file__}::{NO_TF_TEST}"], env=env, capture_output=True, text=True,
                             timeout=TIMEOUT_MS / 1000 * 2, check=False, cwd=Path(__file__).parents[2])
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        return

    from napari_bcdi_dl.widgets.dl_phase import DLPhaseWidget
    from napari_bcdi_dl.widgets.inpainting import InpaintingWidget

    viewer = make_napari_viewer()
    data = viewer.add_image(real_pattern, name="cdinn")
    mask = np.zeros(real_pattern.shape, np.uint8)
    mask[:, 30:33, :] = 1
    mask_layer = viewer.add_labels(mask, name="cdinn gap mask")
    dl = DLPhaseWidget(viewer)
    job = dl.predict()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert job.error is None and "cdinn predicted phase" in [layer.name for layer in viewer.layers]
    inp = InpaintingWidget(viewer)
    inp.set_layers(data, mask_layer)
    inp.method_combo.setCurrentText("dl")
    inp.step_spin.setValue(16)
    job = inp.run()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert job.error is None and "cdinn inpainted" in [layer.name for layer in viewer.layers]
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules


def test_an_inpainted_layer_is_handed_to_the_network_filled(make_napari_viewer, qtbot, real_pattern):
    """The Inpainting dock's result (and a ``bcdi-dl inpaint`` file opened in napari) is marked inpainted: the
    DL phase dock then gives its fill to the network and leaves the gap free only in the refinement."""
    from napari_bcdi_dl.widgets.dl_phase import _inpainted
    from napari_bcdi_dl.widgets.inpainting import InpaintingWidget

    viewer = make_napari_viewer()
    data = real_pattern.copy()
    mask = np.zeros(data.shape, np.uint8)
    mask[:, 30:33, :] = 1
    data[mask != 0] = 0
    raw = viewer.add_image(data, name="gappy", metadata={"bcdi": {"kind": "intensity"}})
    labels = viewer.add_labels(mask, name="gappy gap mask")
    w = InpaintingWidget(viewer)
    w.set_layers(raw, labels)
    w.method_combo.setCurrentText("linear")
    job = w.run()
    assert job is not None
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert job.error is None, job.error
    filled = _layer(viewer, "gappy inpainted")
    assert _inpainted(filled) and not _inpainted(raw)
    opened = viewer.add_image(data, name="opened", metadata={"bcdi": {"kind": "intensity",
                                                                      "meta": {"inpainted": "dl"}}})
    assert _inpainted(opened)
