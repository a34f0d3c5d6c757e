"""Model work in one persistent child process, so that TensorFlow never runs in the napari process.

Why (measured on 2 cores, Xvfb + Mesa llvmpipe, TF 2.21, Python 3.11): the first prediction run in a
worker *thread* imports TensorFlow (8-9 s) and holds the GIL, so the Qt event loop stops, for

* 0.6-0.85 s in one ``dlopen`` (the first TF extension module pulls in the 750 MB ``libtensorflow_cc``:
  relocations and static initialisers; ``ctypes.CDLL`` does not release the GIL either),
* 0.1-0.5 s for each full garbage collection, growing with the heap as TF's modules load (five or six of
  them during the import), and 0.3-0.4 s for one ``marshal.loads`` of a big module,

none of which a thread can avoid. A child process has its own GIL and heap; it also keeps TensorFlow's
LLVM away from napari's Mesa (``models/_keras.py`` guard) and a crash of TF from taking napari down.

Use: ``run_job(in_model_process, predict_object, intensity, mask, desc="DL phase: predict")``: the job
thread of :func:`~napari_bcdi_dl.widgets._worker.run_job` waits on a socket (GIL released), forwards
progress, and turns ``cancel`` into a message that sets the child's cancel token. ``func`` and its
arguments are pickled: a module-level function of ``core``/``models`` (the child imports no Qt), numpy
arrays, small dataclasses. The child starts on first use (``python -m ...``, not ``multiprocessing``'s
spawn, which would re-run the user's ``__main__``), serves calls one at a time, and exits when the
napari process closes its end of the socket (exit or crash; the child then also cancels the running
call). If the child cannot start or dies, the call raises a one-line :class:`BCDIError` (the job's error
notification) and the next call starts a new one. The session's process is stopped at exit (``atexit``;
killed if a call still holds it).

Users: the DL phase widget (*Predict*, *Predict + refine*) and the Inpainting widget (``dl``, *Fine-tune*),
through the job functions of :mod:`._model_jobs` (no Qt there: the child imports them by name). Calls from
two widgets are served one after the other; a cancel also stops the waiting for the other's call.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ..core.errors import BCDIError, Cancelled

log = logging.getLogger(__name__)

CHILD_MODULE = "napari_bcdi_dl.widgets._worker_process_child"
POLL_S = 0.05  # how often the waiting thread looks at the cancel token and the child's health


class ModelProcess:
    """A persistent single-worker child process (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one call at a time
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.alive else None

    def _start(self) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        # the child sees the modules the parent sees (editable installs, test folders)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", CHILD_MODULE, str(child.fileno())],
                                          pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env)
        finally:
            child.close()
        self._conn = Connection(parent.detach())

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child (closing the socket makes it exit; killed if it does not within ``timeout``).

        If a call is running (the lock is held for ``timeout``), the child is killed: the waiting call then
        raises :class:`BCDIError` and cleans up, so that closing never hangs (e.g. at exit)."""
        if self._lock.acquire(timeout=timeout):
            try:
                self._stop(timeout)
            finally:
                self._lock.release()
        else:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.kill()

    def _stop(self, timeout: float = 5.0) -> None:
        conn, proc, self._conn, self._proc = self._conn, self._proc, None, None
        if conn is not None:
            conn.close()
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def call(self, func: Callable[..., Any], *args: Any, progress: Callable[[int, int], None] | None = None,
             cancel: threading.Event | None = None, **kwargs: Any) -> Any:
        """``func(*args, progress=..., cancel=..., **kwargs)`` in the child; its result or its exception."""
        name = getattr(func, "__qualname__", repr(func))
        # another widget's call may hold the child: wait for it, but a cancel stops the waiting
        while not self._lock.acquire(timeout=POLL_S):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled while waiting for the model process")
        try:
            return self._call(name, func, args, kwargs, progress, cancel)
        finally:
            self._lock.release()

    def _call(self, name: str, func: Callable[..., Any], args: tuple, kwargs: dict,
              progress: Callable[[int, int], None] | None, cancel: threading.Event | None) -> Any:
        if not self.alive:
            self._stop(0.0)
            try:
                self._start()
            except OSError as err:
                self._stop(0.0)
                raise BCDIError(f"could not start the model process ({type(err).__name__}: {err}); "
                                "see the terminal's log") from err
        conn, proc = self._conn, self._proc
        try:
            conn.send(("call", func, args, kwargs))
            cancel_sent = False
            while True:
                if cancel is not None and cancel.is_set() and not cancel_sent:
                    conn.send(("cancel",))
                    cancel_sent = True
                if not conn.poll(POLL_S):
                    if proc.poll() is not None:
                        raise EOFError
                    continue
                msg = conn.recv()
                if msg[0] == "progress":
                    if progress is not None:
                        progress(msg[1], msg[2])
                elif msg[0] == "ok":
                    return msg[1]
                else:  # ("error", exception, formatted traceback)
                    log.debug("%s failed in the model process:\n%s", name, msg[2])
                    failure = msg[1]
                    break
        except (EOFError, ConnectionError, OSError) as err:
            code = proc.poll()
            self._stop(0.5)
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            raise BCDIError(f"the model process stopped ({how}, {type(err).__name__}) while running {name}: "
                            "try again; if it happens again, see the terminal's log") from err
        raise failure  # the function's own exception (outside the try: an OSError of its own is not a crash)


_PROCESS: ModelProcess | None = None
_PROCESS_LOCK = threading.Lock()


def model_process() -> ModelProcess:
    """The session's :class:`ModelProcess` (created on first use, stopped at exit)."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = ModelProcess()
            atexit.register(_PROCESS.close)
        return _PROCESS


def in_model_process(func: Callable[..., Any], *args: Any, progress=None, cancel=None, **kwargs: Any) -> Any:
    """A job function for ``run_job``: run ``func`` in the session's model process."""
    return model_process().call(func, *args, progress=progress, cancel=cancel, **kwargs)
