"""The Defects dock in a real napari viewer (Xvfb): classify an intensity with the shipped model (in the
model process), mark the vortex lines of a reconstruction as Points on its phase, refuse a NaN pattern."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.simulate.dislocations import simulate_defect_pattern
from napari_bcdi_dl.core.types import Reconstruction, ReconstructionResult

pytestmark = pytest.mark.gui

TIMEOUT_MS = 240_000


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [(str(n.severity).lower(), n.message) for n in notification_manager.records[start:]]


def _layer(viewer, name):
    return next(layer for layer in viewer.layers if layer.name == name)


def test_defects_dock_classifies_and_marks_lines(make_napari_viewer, qtbot, notes):
    from napari_bcdi_dl.widgets.defects import DefectsWidget
    from napari_bcdi_dl.widgets.dl_phase import put_object_layers

    p = simulate_defect_pattern(64, seed=21, label="screw", max_counts=1e7)
    viewer = make_napari_viewer()
    data = viewer.add_image(p.intensity, name="screwy", metadata={"bcdi": {"kind": "intensity"}})
    before = np.array(data.data, copy=True)
    w = DefectsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Defects")
    assert w.data_combo.currentText() == "screwy"
    assert not w.lines_button.isEnabled()  # no reconstruction yet

    job = w.classify()
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert not [m for s, m in notes() if s == "error"], notes()
    probs = w.result["probabilities"]
    assert set(probs) == {"none", "edge", "screw", "mixed"}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert w.result["model_grid"] == 64
    assert w.result["model"] == "defects" and w.result["g_axis"] is None  # G unknown: the G-random model
    for k, v in probs.items():
        assert w.bars[k].value() == round(1000 * v)
        assert w.bars[k].text() == f"{v:.3f}"
    assert f"most likely {w.result['label']}" in w.status.text()
    assert np.array_equal(data.data, before)

    # a reconstruction (here the true object) shown as the docks show one, on a real-space grid
    rec = Reconstruction(p.obj, p.support, method="truth")
    res = ReconstructionResult(rec, voxel_size_nm=(5.0, 4.0, 4.0), data_name="screwy")
    put_object_layers(viewer, "truth", res, {"scale": (5.0, 4.0, 4.0), "units": "nm"})
    assert w.recon_combo.currentText() == "truth" and w.lines_button.isEnabled()
    job = w.mark_lines()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert not [m for s, m in notes() if s == "error"], notes()
    pts = _layer(viewer, "truth dislocation lines")
    assert tuple(pts.scale) == (5.0, 4.0, 4.0)
    assert len(w.lines) == 1 and len(pts.data) >= 10
    line = p.params["lines"][0]
    c, t = np.array(line["point"]) + 32, np.array(line["direction"])
    r = pts.data - c
    dist = np.linalg.norm(r - (r @ t)[:, None] * t, axis=1)
    assert dist.max() <= 2.0  # every marked vortex lies on the true line
    assert "1 dislocation line" in w.status.text()
    n_layers = len(viewer.layers)
    job = w.mark_lines()  # again: the Points layer is replaced, not duplicated
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert len(viewer.layers) == n_layers


def test_defects_dock_refuses_a_nan_pattern(make_napari_viewer, notes):
    from napari_bcdi_dl.widgets.defects import DefectsWidget

    viewer = make_napari_viewer()
    bad = np.ones((32, 32, 32), np.float32)
    bad[3, 4, 5] = np.nan
    viewer.add_image(bad, name="bad")
    w = DefectsWidget(viewer)
    assert w.classify() is None
    errors = [m for s, m in notes() if s == "error"]
    assert len(errors) == 1 and "NaN" in errors[0] and "\n" not in errors[0]
    assert w.result is None


def test_defects_dock_g_axis_reaches_the_job(make_napari_viewer, qtbot, notes):
    """'G along' (default unknown) goes to the job: with z the G-aware model classifies a screw crystal
    whose G lies along z (seed 21, 10^7 photons) as screw, and the status says which model was used."""
    from napari_bcdi_dl.widgets.defects import DefectsWidget

    p = simulate_defect_pattern(64, seed=21, label="screw", max_counts=1e7, ranges={"g_direction": "z"})
    viewer = make_napari_viewer()
    viewer.add_image(p.intensity, name="gz screw", metadata={"bcdi": {"kind": "intensity"}})
    w = DefectsWidget(viewer)
    assert w.g_combo.currentText() == "unknown" and w.g_axis() is None
    assert [w.g_combo.itemText(i) for i in range(w.g_combo.count())] == ["unknown", "z", "y", "x"]
    w.g_combo.setCurrentText("z")
    job = w.classify()
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert not [m for s, m in notes() if s == "error"], notes()
    assert w.result["g_axis"] == "z" and w.result["model"] == "defects_gz"
    assert w.result["label"] == "screw"
    assert "G along z, model defects_gz" in w.status.text()
