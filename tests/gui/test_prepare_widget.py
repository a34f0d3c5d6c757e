"""The Prepare widget in a real napari viewer (Xvfb): crop/bin preview and apply, the alien accept/reject flow.

A simulated 64³ pattern with three injected aliens (``core.simulate.aliens``) and a planted hot pixel.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def case():
    from napari_bcdi_dl.core.simulate import simulate_pattern
    from napari_bcdi_dl.core.simulate.aliens import inject_aliens

    sp = simulate_pattern(64, seed=4, field="gaussian_bumps", phase_range=1.0, oversampling=3.0, max_counts=1e6,
                          compute_phase=False)
    ap = inject_aliens(sp.intensity, sp.expected, n=3, seed=11, intensity_range=(0.01, 0.2))
    return ap


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [(str(n.severity).lower(), n.message) for n in notification_manager.records[start:]]


@pytest.fixture
def setup(make_napari_viewer, case):
    from napari_bcdi_dl.widgets.prepare import PrepareWidget

    viewer = make_napari_viewer()
    data = viewer.add_image(case.intensity.copy(), name="scan", gamma=0.2,
                            metadata={"bcdi": {"kind": "intensity"}})
    mask0 = np.zeros(case.intensity.shape, np.uint8)
    mask0[:, 5, :] = 1  # a gap line, far from the aliens' concern
    mask = viewer.add_labels(mask0, name="scan gap mask")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-bcdi-dl", "Prepare")
    assert isinstance(widget, PrepareWidget)
    return viewer, widget, data, mask


def _layer(viewer, name):
    return next((ly for ly in viewer.layers if ly.name == name), None)


def _wait(qtbot, job):
    assert job is not None, "the action did not start a job (see the notifications)"
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert job.error is None, job.error
    return job


def test_alien_accept_reject_flow(setup, qtbot, notes, case):
    from napari.layers import Labels

    from napari_bcdi_dl.core.aliens import clusters_mask

    viewer, w, data, mask = setup
    assert w.data_combo.currentText() == "scan" and w.mask_combo.currentText() == "scan gap mask"
    data_arr, mask_arr = data.data, mask.data
    data_before, mask_before = data_arr.copy(), mask_arr.copy()

    _wait(qtbot, w.find_aliens())
    assert not [m for s, m in notes() if s == "error"], notes()
    res = w.result
    clusters = _layer(viewer, "scan alien clusters")
    assert isinstance(clusters, Labels)
    np.testing.assert_array_equal(clusters.data, res.labels)
    assert set(np.unique(clusters.data)) - {0} == {c.label for c in res.clusters}  # one label per cluster
    assert w.table.rowCount() == len(res.clusters)
    assert sorted(w.ticked()) == sorted(res.proposed) and len(res.proposed) == 3  # the proposal comes ticked
    # the contrast column shows each cluster's Friedel contrast; the proposed ones reach the threshold
    col = [w.table.horizontalHeaderItem(i).text() for i in range(w.table.columnCount())].index("contrast")
    by_label = {c.label: c for c in res.clusters}
    for r in range(w.table.rowCount()):
        c = by_label[int(w.table.item(r, 1).text())]
        assert w.table.item(r, col).text() == f"{c.contrast:.2f}"
    assert w.contrast_spin.value() == pytest.approx(res.params["contrast_threshold"])
    assert all(by_label[k].contrast >= w.contrast_spin.value() for k in res.proposed)
    truth = case.mask.astype(bool)
    assert (res.mask.astype(bool) & truth).sum() >= 0.9 * truth.sum()

    # the user rejects one proposed cluster and accepts one that was not proposed
    rejected = res.proposed[0]
    extra = next(c.label for c in res.clusters if not c.proposed)
    chosen = [k for k in res.proposed if k != rejected] + [extra]
    w.set_ticked(chosen)
    assert sorted(w.ticked()) == sorted(chosen)
    w.table.selectRow(1)
    assert clusters.selected_label == int(w.table.item(1, 1).text())
    w.accept()
    out = _layer(viewer, "scan alien mask")
    assert isinstance(out, Labels)
    expected = clusters_mask(res, chosen, intensity=data_before, mask=mask_before).astype(bool) | (mask_before != 0)
    np.testing.assert_array_equal(out.data.astype(bool), expected)
    assert not (out.data.astype(bool) & (res.labels == rejected)).any(), "a rejected cluster stays unmasked"
    assert sorted(out.metadata["bcdi"]["aliens"]) == sorted(chosen)
    assert "3 clusters accepted" in w.status.text()

    # accepting again replaces the same layer's data; the inputs are untouched
    w.set_ticked(res.proposed)
    w.accept()
    assert [ly.name for ly in viewer.layers].count("scan alien mask") == 1
    assert data.data is data_arr and mask.data is mask_arr
    np.testing.assert_array_equal(data.data, data_before)
    np.testing.assert_array_equal(mask.data, mask_before)

    # a contrast threshold between the proposed clusters' contrasts: the lower one is no longer proposed
    contrasts = sorted((by_label[k].contrast, k) for k in res.proposed)
    w.contrast_spin.setValue((contrasts[0][0] + contrasts[1][0]) / 2)
    _wait(qtbot, w.find_aliens())
    assert w.result.params["contrast_threshold"] == pytest.approx(w.contrast_spin.value())
    assert sorted(w.ticked()) == sorted(k for _c, k in contrasts[1:]) == sorted(w.result.proposed)


def test_preview_then_apply_crop_and_bin(setup, qtbot, notes):
    viewer, w, data, _mask = setup
    data_before = data.data.copy()
    for spin, v in zip(w.crop_spins, (48, 40, 40)):
        spin.setValue(v)
    for spin, v in zip(w.bin_spins, (2, 2, 2)):
        spin.setValue(v)
    _wait(qtbot, w.preview())
    box = _layer(viewer, "scan crop preview")
    assert box is not None and box.data.shape == data.data.shape
    zs, ys, xs = np.nonzero(box.data)
    assert (zs.max() - zs.min() + 1, ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (48, 40, 40)
    assert "after binning (24, 20, 20)" in w.status.text()
    assert _layer(viewer, "scan prepared") is None, "a preview computes nothing on the data"

    _wait(qtbot, w.apply())
    assert not [m for s, m in notes() if s == "error"], notes()
    prepared = _layer(viewer, "scan prepared")
    pmask = _layer(viewer, "scan prepared gap mask")
    assert prepared.data.shape == (24, 20, 20) and pmask.data.shape == (24, 20, 20)
    steps = [r["step"] for r in prepared.metadata["bcdi"]["provenance"]]
    assert steps[-2:] == ["crop", "bin"]
    # the binned peak holds the 8 voxels around the cropped peak
    assert np.unravel_index(np.argmax(prepared.data), prepared.data.shape) == (12, 10, 10)
    np.testing.assert_array_equal(data.data, data_before)

    # a bin factor that does not divide the crop is a one-line error, nothing added
    w.bin_spins[1].setValue(3)
    n = len(viewer.layers)
    job = w.preview()
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    errors = [m for s, m in notes() if s == "error"]
    assert len(errors) == 1 and "does not divide" in errors[0] and "\n" not in errors[0], errors
    assert len(viewer.layers) == n
