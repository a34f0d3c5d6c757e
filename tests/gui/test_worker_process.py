"""``widgets._worker_process``: model work in a persistent child process (no viewer needed)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.widgets._worker_process import ModelProcess

from . import _worker_process_probe as probe


@pytest.fixture(scope="module")
def proc():
    p = ModelProcess()
    yield p
    p.close()


def test_result_and_progress_come_back(proc):
    seen = []
    out, pid = proc.call(probe.scaled, np.arange(4.0), factor=2.0, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(out, [0.0, 2.0, 4.0, 6.0])
    assert seen[-1] == (2, 2)
    assert pid == proc.pid != __import__("os").getpid()
    _out, pid2 = proc.call(probe.scaled, [1.0], factor=1.0)
    assert pid2 == pid, "the process is kept between calls"


def test_child_imports_no_gui(proc):
    assert proc.call(probe.gui_modules) == []


def test_errors_come_back_as_themselves(proc):
    with pytest.raises(BCDIError, match="no 3D dataset"):
        proc.call(probe.bad_input)


def test_cancel_stops_the_call(proc):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        proc.call(probe.loop_until_cancelled, progress=progress, cancel=cancel)
    assert seen and seen[-1] < 99_999
    assert proc.call(probe.scaled, [1.0], factor=3.0)[0][0] == 3.0, "usable after a cancel"


def test_a_dead_child_is_an_error_then_replaced(proc):
    with pytest.raises(BCDIError, match="model process stopped"):
        proc.call(probe.crash)
    assert proc.call(probe.scaled, [1.0], factor=1.0)[0][0] == 1.0


def test_a_child_that_cannot_start_is_a_one_line_error(monkeypatch):
    import napari_bcdi_dl.widgets._worker_process as wp

    p = ModelProcess()
    monkeypatch.setattr(wp.sys, "executable", "/nonexistent/python")
    with pytest.raises(BCDIError, match="could not start the model process"):
        p.call(probe.scaled, [1.0], factor=1.0)
    monkeypatch.undo()
    monkeypatch.setattr(wp, "CHILD_MODULE", "napari_bcdi_dl.no_such_module")
    with pytest.raises(BCDIError, match="model process stopped"):  # starts, then dies at once
        p.call(probe.scaled, [1.0], factor=1.0)
    monkeypatch.undo()
    try:
        assert p.call(probe.scaled, [1.0], factor=2.0)[0][0] == 2.0, "the next call starts a new child"
    finally:
        p.close()
    assert not p.alive


def test_close_does_not_hang_on_a_running_call():
    p = ModelProcess()
    cancel = threading.Event()
    errors = []

    def call():
        try:
            p.call(probe.loop_until_cancelled, cancel=cancel)
        except BaseException as err:  # noqa: BLE001 - inspected below
            errors.append(err)

    t = threading.Thread(target=call)
    t.start()
    deadline = time.monotonic() + 30
    while p.pid is None and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    p.close(timeout=0.5)  # the call holds the lock: the child is killed instead
    t.join(10)
    assert not t.is_alive() and errors and isinstance(errors[0], BCDIError)
    assert not p.alive


def test_in_model_process_failure_is_a_notification_and_napari_survives(make_napari_viewer, qtbot):
    """Through ``run_job`` (as the widgets call it): a dying child is one error notification, the next
    job starts a new child."""
    from napari.utils.notifications import notification_manager

    from napari_bcdi_dl.widgets._worker import run_job
    from napari_bcdi_dl.widgets._worker_process import in_model_process

    make_napari_viewer()
    start = len(notification_manager.records)
    job = run_job(in_model_process, probe.crash, desc="probe")
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    errs = [n.message for n in notification_manager.records[start:] if "error" in str(n.severity).lower()]
    assert len(errs) == 1 and errs[0].startswith("probe: the model process stopped") and "\n" not in errs[0]
    job = run_job(in_model_process, probe.scaled, [1.0], factor=5.0, desc="probe")
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    assert job.error is None and job.result[0][0] == 5.0
