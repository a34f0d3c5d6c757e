"""The widgets' shared plumbing (``widgets/_layers.py``) in a real napari viewer (Xvfb)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.widgets import _layers

pytestmark = pytest.mark.gui


def test_put_layer_adds_then_replaces_keeping_user_tuned_display(make_napari_viewer):
    viewer = make_napari_viewer()
    a = np.ones((4, 5, 6), np.float32)
    layer = _layers.put_layer(viewer, "r", a, metadata={"bcdi": {"kind": "x"}}, scale=(2, 1, 1), opacity=0.5,
                              colormap="gray", contrast_limits=(0, 1))
    assert tuple(layer.scale) == (2, 1, 1) and layer.opacity == 0.5
    layer.opacity = 0.9  # the user's choice
    b = np.full((4, 5, 6), 3, np.float32)
    again = _layers.put_layer(viewer, "r", b, metadata={"bcdi": {"kind": "y"}}, scale=(3, 1, 1), opacity=0.5,
                              colormap="magma", contrast_limits=(0, 3))
    assert again is layer and len(viewer.layers) == 1
    assert layer.data is b and layer.metadata["bcdi"]["kind"] == "y" and tuple(layer.scale) == (3, 1, 1)
    assert layer.colormap.name == "magma" and tuple(layer.contrast_limits) == (0, 3)
    assert layer.opacity == 0.9, "opacity, gamma, rendering... are set on creation only"
    with pytest.raises(BCDIError, match="another type"):
        _layers.put_layer(viewer, "r", b.astype(np.uint8), labels=True)


def test_derived_bcdi_is_a_copy():
    from types import SimpleNamespace

    layer = SimpleNamespace(metadata={"bcdi": {"kind": "intensity", "voxel_size_nm": [1.0, 2.0, 3.0]}})
    meta = _layers.derived_bcdi(layer, kind="reciprocal_phase", source="x")
    assert meta == {"kind": "reciprocal_phase", "voxel_size_nm": [1.0, 2.0, 3.0], "source": "x"}
    meta["voxel_size_nm"].append(4.0)
    assert layer.metadata["bcdi"] == {"kind": "intensity", "voxel_size_nm": [1.0, 2.0, 3.0]}


def test_follower_sees_insert_remove_move_rename_and_stops_with_its_widget(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((4, 4, 4)), name="a")
    owner = QWidget()
    calls = []
    follower = _layers.LayerFollower(viewer, owner, lambda: calls.append([ly.name for ly in viewer.layers]))
    b = viewer.add_image(np.zeros((4, 4, 4)), name="b")
    viewer.layers["a"].name = "a2"  # a layer that was there before
    b.name = "b2"  # a layer inserted later
    viewer.layers.move(0, 2)
    viewer.layers.remove("a2")
    assert calls[-1] == ["b2"] and len(calls) >= 5
    assert ["a2", "b"] in calls and ["a2", "b2"] in calls
    owner.deleteLater()
    qtbot.waitUntil(lambda: not _layers._alive(owner), timeout=5000)
    n = len(calls)
    viewer.add_image(np.zeros((4, 4, 4)), name="c")  # disconnects the follower, calls nothing
    b.name = "b3"
    assert len(calls) == n and follower._named == []


def test_job_slot_refuses_a_second_job_and_restores_the_buttons(qtbot):
    from napari.utils.notifications import notification_manager
    from qtpy.QtWidgets import QProgressBar, QPushButton

    run, cancel, bar = QPushButton("Run"), QPushButton("Cancel"), QProgressBar()
    finished = []
    slot = _layers.JobSlot("Test", [run], cancel, progress_bar=bar, on_finished=lambda: finished.append(1))
    gate = threading.Event()

    def slow(*, progress=None, cancel=None):
        progress(1, 2)
        gate.wait(10)
        return 7

    start = len(notification_manager.records)
    job = slot.start(slow, desc="slow", on_done=lambda v: None)
    assert job is not None and slot.busy and not run.isEnabled() and cancel.isEnabled()
    assert slot.start(slow, desc="again", on_done=lambda v: None) is None
    assert any("Test: busy with 'slow'" in n.message for n in notification_manager.records[start:])
    gate.set()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert job.result == 7 and not slot.busy and run.isEnabled() and not cancel.isEnabled()
    assert finished == [1] and bar.maximum() >= 1


def test_job_slot_touches_the_bar_only_when_its_percentage_changes(qtbot):
    """``QProgressBar.setValue`` repaints synchronously (17-35 ms in a window with a GL canvas): a report
    that does not change the integer percentage leaves the bar alone; the last one always shows."""
    from qtpy.QtWidgets import QProgressBar, QPushButton

    class CountingBar(QProgressBar):
        def __init__(self):
            super().__init__()
            self.calls = []

        def setValue(self, value):
            self.calls.append(value)
            super().setValue(value)

    bar = CountingBar()
    slot = _layers.JobSlot("Test", [QPushButton("Run")], QPushButton("Cancel"), progress_bar=bar)
    for done in range(1001):  # 1001 reports, 101 distinct percentages
        slot._progressed(done, 1000)
    assert len(bar.calls) == 101 and bar.calls[-1] == 1000
    assert bar.maximum() == bar.value() == 1000
    slot._progressed(5, 7)  # a new total shows at once
    assert bar.maximum() == 7 and bar.value() == 5
