"""The one way widgets run work: :func:`run_job`.

A job calls a core/models function in a napari thread worker with ``progress=`` and ``cancel=`` keyword
arguments (the protocol of :mod:`napari_bcdi_dl.core.progress`). Progress goes to a bar in napari's
activity dock, updated on the main thread; ``job.cancel()`` sets the token the function checks at each
step; napari's own cancel (``worker.quit()``: the status-bar task, closing the window) sets it too.
Results come back on the main thread through ``on_done``: the worker thread never touches layers.
A :class:`BCDIError` becomes an error notification with its one-line message, a cancellation an info
notification, anything else an error notification naming the exception; the bar is closed in every case.
Errors are *not* re-raised on the main thread (napari's default for thread workers): the notification is
the report, and an uncaught re-raise would show a second, traceback-laden error.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, Signal

from ..core.errors import BCDIError, Cancelled

log = logging.getLogger(__name__)

#: at most 4 progress updates a second reach the main thread. Each one repaints the widgets' progress bars:
#: QProgressBar.setValue repaints synchronously, and in a napari window holding a GL canvas a repaint
#: costs 20-35 ms of main thread with Mesa's llvmpipe (50-90 ms while a worker competes for the GIL);
#: at 10 updates/s that kept the main thread 60-90 % busy during a phasing run.
PROGRESS_INTERVAL_S = 0.25


def warm_activity_dock() -> float:
    """Create and close one napari progress bar now; returns the seconds it took (0 without a viewer).

    The first progress bar of a napari window costs 0.1-0.25 s of main thread (Xvfb + llvmpipe, 2 cores):
    napari's activity dialog lays out and shows its status-bar indicator for the first time and runs
    ``processEvents`` (a canvas repaint); later bars cost 3-60 ms. :class:`~._layers.JobSlot` calls this when
    a dock widget is built, so that one-time cost lands when the dock opens, not inside the first run.
    Without a napari viewer it does nothing (a bar would only print a tqdm line).
    """
    import napari
    from napari.utils import progress

    if napari.current_viewer() is None:
        return 0.0
    t0 = time.perf_counter()
    progress(total=0, desc="warm-up").close()
    return time.perf_counter() - t0


@functools.cache
def _cancellable_worker_class() -> type:
    """napari's FunctionWorker whose ``quit()`` (napari's status-bar cancel, closing the window) also sets
    the job's cancel token, so the function really stops at its next step."""
    from napari.qt.threading import FunctionWorker

    class CancellableWorker(FunctionWorker):
        cancel_token: threading.Event | None = None

        def quit(self) -> None:
            if self.cancel_token is not None:
                self.cancel_token.set()
            super().quit()

    return CancellableWorker


class Job(QObject):
    """A running piece of work. Keep a reference while it runs (widgets store it as ``self.job``).

    Signals
    -------
    progressed(done, total) : emitted on the main thread.
    finished() : emitted on the main thread after ``on_done`` or the error handling, in every case.
    """

    progressed = Signal(int, int)
    _progress_from_thread = Signal(int, int)
    finished = Signal()

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple = (),
        kwargs: dict | None = None,
        *,
        desc: str = "",
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__()
        from napari.qt.threading import create_worker
        from napari.utils import progress

        self.desc = desc or getattr(func, "__name__", "job")
        self.cancel_token = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.done = False
        self._on_done = on_done
        self._on_error = on_error
        self._func, self._args, self._kwargs = func, args, dict(kwargs or {})
        self._bar = progress(total=0, desc=self.desc)
        self._last_emit = 0.0
        self._progress_from_thread.connect(self._update_progress)  # queued: we live on the main thread
        # _ignore_errors: without it napari/superqt connect a `reraise` slot to `errored`, so every error
        # (a BCDIError, even a Cancelled) was raised again on the main thread as an uncaught exception.
        self.worker = create_worker(self._call, _start_thread=False, _ignore_errors=True,
                                    _worker_class=_cancellable_worker_class())
        self.worker.cancel_token = self.cancel_token
        self.worker.returned.connect(self._returned)
        self.worker.errored.connect(self._errored)
        self.worker.finished.connect(self._finish)

    # --- worker thread -------------------------------------------------------------------------
    def _throttled_progress(self, done: int, total: int) -> None:
        """Forward progress to the main thread at most every ``PROGRESS_INTERVAL_S`` (and always the first
        and the last).

        Functions report every iteration (thousands of times a second for small phasing runs); one queued
        signal each would flood the event loop and freeze the GUI.
        """
        now = time.monotonic()
        if done < total and now - self._last_emit < PROGRESS_INTERVAL_S:
            return
        self._last_emit = now
        self._progress_from_thread.emit(done, total)

    def _call(self) -> Any:
        return self._func(*self._args, progress=self._throttled_progress, cancel=self.cancel_token,
                          **self._kwargs)

    # --- main thread ---------------------------------------------------------------------------
    def _update_progress(self, done: int, total: int) -> None:
        # The activity-dock bar: ``refresh()`` only re-emits its text ("3/10 [00:01<00:02]", a label set with
        # a deferred update: ~0 ms measured). ``progress.update()`` would also move its QProgressBar, whose
        # ``setValue`` napari follows with ``QApplication.processEvents()`` (a re-entrant, synchronous
        # repaint): not used.
        if self.done:
            return
        if self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        self._bar.refresh()
        self.progressed.emit(done, total)

    def _returned(self, value: Any) -> None:
        self.result = value
        if self._on_done is not None:
            try:
                self._on_done(value)
            except BCDIError as err:
                self._report(err)
            except Exception as err:  # a bug in the widget's callback: tell the user, keep napari alive
                log.exception("error while showing the result of %s", self.desc)
                self._report(err)

    def _errored(self, err: BaseException) -> None:
        self._report(err)

    def _report(self, err: BaseException) -> None:
        from napari.utils.notifications import show_error, show_info

        if isinstance(err, Cancelled):
            self.cancelled = True
            show_info(f"{self.desc}: cancelled")
            return
        self.error = err
        if isinstance(err, BCDIError):
            show_error(f"{self.desc}: {err}")
        else:
            log.error("%s failed", self.desc, exc_info=(type(err), err, err.__traceback__))
            show_error(f"{self.desc} failed: {type(err).__name__}: {err}")
        if self._on_error is not None:
            try:
                self._on_error(err)
            except Exception:  # a bug in the widget's error callback must not take napari down
                log.exception("error in the error callback of %s", self.desc)

    def _finish(self) -> None:
        self.done = True
        self._bar.close()
        self.finished.emit()

    # --- public --------------------------------------------------------------------------------
    def start(self) -> Job:
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop at its next step (it raises ``Cancelled``)."""
        self.cancel_token.set()

    @property
    def running(self) -> bool:
        return not self.done


def run_job(
    func: Callable[..., Any],
    *args: Any,
    desc: str = "",
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    **kwargs: Any,
) -> Job:
    """Start ``func(*args, progress=..., cancel=..., **kwargs)`` in a worker thread and return its Job."""
    return Job(func, args, kwargs, desc=desc, on_done=on_done, on_error=on_error).start()
