"""``widgets._worker.run_job`` in a real napari viewer (Xvfb): the helper every widget runs its work with.

Each test runs a small real function in the worker thread. Gates (``threading.Event``) make the timing
deterministic: the function waits at a known point while the test looks at the progress bar.
"""

from __future__ import annotations

import threading

import pytest

from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.core.progress import report

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def notes():
    """The napari notifications dispatched during the test."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    yield lambda: notification_manager.records[start:]


def _open_bars() -> set:
    from napari.utils import progress

    return set(progress._all_instances)


def test_result_is_delivered_on_the_main_thread(viewer, qtbot):
    from napari_bcdi_dl.widgets._worker import run_job

    main = threading.current_thread()
    seen: dict = {}

    def work(a, *, b, progress=None, cancel=None):
        seen["work_thread"] = threading.current_thread()
        report(progress, cancel, 1, 1)
        return a + b

    def on_done(value):
        seen["value"] = value
        seen["done_thread"] = threading.current_thread()

    job = run_job(work, 2, b=3, desc="add", on_done=on_done)
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert seen["value"] == 5 and job.result == 5
    assert seen["work_thread"] is not main, "the function must run in a worker thread"
    assert seen["done_thread"] is main, "on_done must run on the main thread"
    assert job.done and not job.running and job.error is None and not job.cancelled
    assert job._bar not in _open_bars()


def test_progress_updates_the_bar_then_closes_it(viewer, qtbot):
    from napari_bcdi_dl.widgets._worker import run_job

    gate = threading.Event()

    def work(*, progress=None, cancel=None):
        report(progress, cancel, 3, 10)
        assert gate.wait(TIMEOUT_MS / 1000), "test never opened the gate"
        report(progress, cancel, 10, 10)
        return "ok"

    received = []
    job = run_job(work, desc="steps")
    job.progressed.connect(lambda d, t: received.append((d, t)))
    try:
        assert job._bar in _open_bars(), "a running job shows a bar in the activity dock"
        qtbot.waitUntil(lambda: job._bar.n == 3, timeout=TIMEOUT_MS)
        assert job._bar.total == 10
        assert job.running
    finally:
        gate.set()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert received == [(3, 10), (10, 10)]
    assert job.result == "ok"
    assert job._bar not in _open_bars()


def test_cancel_stops_the_job_and_closes_the_bar(viewer, qtbot, notes):
    from napari_bcdi_dl.widgets._worker import run_job

    started = threading.Event()
    seen: dict = {"raised": None, "steps": 0, "on_done": False, "on_error": None}

    def work(*, progress=None, cancel=None):
        try:
            for i in range(100_000):
                report(progress, cancel, i, 100_000)
                seen["steps"] = i
                started.set()
                threading.Event().wait(0.002)
        except Cancelled as err:
            seen["raised"] = err
            raise
        return "finished"  # pragma: no cover - must not get here

    job = run_job(work, desc="long work", on_done=lambda v: seen.update(on_done=True),
                  on_error=lambda e: seen.update(on_error=e))
    assert started.wait(TIMEOUT_MS / 1000)
    assert job._bar in _open_bars()
    job.cancel()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert isinstance(seen["raised"], Cancelled), "the function sees Cancelled at its next step"
    assert seen["steps"] < 99_999
    assert job.cancelled and job.done and job.error is None and job.result is None
    assert not seen["on_done"] and seen["on_error"] is None, "a cancel is not an error, nor a result"
    assert job._bar not in _open_bars()
    from napari.utils.notifications import NotificationSeverity

    msgs = [(n.severity, n.message) for n in notes()]
    assert (NotificationSeverity.INFO, "long work: cancelled") in msgs
    assert not any(s == NotificationSeverity.ERROR for s, _ in msgs)


def test_bcdierror_becomes_an_error_notification(viewer, qtbot, notes):
    from napari.utils.notifications import NotificationSeverity

    from napari_bcdi_dl.widgets._worker import run_job

    errors = []

    def work(path, *, progress=None, cancel=None):
        report(progress, cancel, 0, 4)
        raise BCDIError(f"{path} has no 3D dataset: choose another file")

    job = run_job(work, "scan.h5", desc="load", on_done=lambda v: pytest.fail("no result expected"),
                  on_error=errors.append)
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert isinstance(job.error, BCDIError) and errors == [job.error]
    assert not job.cancelled
    msgs = [(n.severity, n.message) for n in notes()]
    assert (NotificationSeverity.ERROR, "load: scan.h5 has no 3D dataset: choose another file") in msgs
    assert job._bar not in _open_bars(), "the bar is closed on error too"


def test_unexpected_exception_is_named_in_the_notification(viewer, qtbot, notes):
    from napari.utils.notifications import NotificationSeverity

    from napari_bcdi_dl.widgets._worker import run_job

    def work(*, progress=None, cancel=None):
        raise IndexError("list index out of range")  # an unexpected (non-BCDIError) failure

    job = run_job(work, desc="broken")
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert isinstance(job.error, IndexError)
    errs = [n.message for n in notes() if n.severity == NotificationSeverity.ERROR]
    assert any(m.startswith("broken failed: IndexError") for m in errs), errs
    assert job._bar not in _open_bars()


def test_error_in_on_done_is_a_notification_not_a_crash(viewer, qtbot, notes):
    from napari.utils.notifications import NotificationSeverity

    from napari_bcdi_dl.widgets._worker import run_job

    def work(*, progress=None, cancel=None):
        return 1

    def on_done(value):
        raise BCDIError("result has the wrong shape: reload the data")

    job = run_job(work, desc="show", on_done=on_done)
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    errs = [n.message for n in notes() if n.severity == NotificationSeverity.ERROR]
    assert "show: result has the wrong shape: reload the data" in errs
    assert job._bar not in _open_bars()


def test_progress_after_finish_is_ignored(viewer, qtbot):
    """A progress signal still queued when the job ends must not reopen or touch the closed bar."""
    from napari_bcdi_dl.widgets._worker import run_job

    job = run_job(lambda *, progress=None, cancel=None: None, desc="quick")
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    job._update_progress(5, 10)
    assert job._bar not in _open_bars()


def test_worker_quit_is_a_cancel(viewer, qtbot, notes):
    """napari's own cancel path (status-bar task, closing the window) calls ``worker.quit()``."""
    from napari_bcdi_dl.widgets._worker import run_job

    started = threading.Event()
    seen = {}

    def work(*, progress=None, cancel=None):
        try:
            for i in range(100_000):
                report(progress, cancel, i, 100_000)
                started.set()
                threading.Event().wait(0.002)
        except Cancelled:
            seen["cancelled"] = True
            raise

    job = run_job(work, desc="quit me")
    assert started.wait(TIMEOUT_MS / 1000)
    job.worker.quit()
    with qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS):
        pass
    assert seen == {"cancelled": True} and job.cancelled
    assert job._bar not in _open_bars()


def test_warm_activity_dock_leaves_no_bar(viewer):
    """The first progress bar of a window is costly (napari lays out its activity indicator): JobSlot pays
    it when a dock widget is built. The warm-up bar is closed at once."""
    from napari_bcdi_dl.widgets._worker import warm_activity_dock

    before = _open_bars()
    assert warm_activity_dock() > 0
    assert _open_bars() == before
