"""The child side of :mod:`napari_bcdi_dl.widgets._worker_process` (``python -m`` this module FD).

Imports no Qt and no napari. A reader thread receives calls and cancel requests; the main thread runs the
calls one at a time and sends back progress (at most 20 a second, always the last), then the result or
the exception. Exits when the parent closes its end of the socket.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

PROGRESS_INTERVAL_S = 0.05
#: the child computes at a lower CPU priority than napari, so that on a busy machine (2 cores, TF's
#: threads on both) the Qt main thread is still scheduled at once when its timers and events fire
NICE = 5


def serve(conn: Connection) -> None:
    inbox: queue.Queue = queue.Queue()
    cancel = threading.Event()
    send_lock = threading.Lock()

    def send(msg) -> None:
        with send_lock:
            conn.send(msg)

    def reader() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the napari process closed its end (exit, crash): stop the call too
                cancel.set()
                inbox.put(None)
                return
            except Exception as err:  # noqa: BLE001 - the call could not be unpickled (e.g. a function the child cannot import)
                inbox.put(("bad", err, traceback.format_exc()))
                continue
            if msg[0] == "cancel":
                cancel.set()
            else:
                # a new call (the parent sends one at a time, after the last reply): a cancel from now on is
                # this call's, even one that arrives before the main thread starts it
                cancel.clear()
                inbox.put(msg)

    threading.Thread(target=reader, name="model-process-reader", daemon=True).start()
    while True:
        msg = inbox.get()
        if msg is None:
            return
        if msg[0] == "bad":
            send(("error", RuntimeError(f"the model process could not read the call: {msg[1]}"), msg[2]))
            continue
        _, func, args, kwargs = msg
        last = [0.0]

        def progress(done: int, total: int, last: list = last) -> None:
            now = time.monotonic()
            if done < total and now - last[0] < PROGRESS_INTERVAL_S:
                return
            last[0] = now
            send(("progress", int(done), int(total)))

        try:
            reply = ("ok", func(*args, progress=progress, cancel=cancel, **kwargs))
        except BaseException as err:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("error", err, traceback.format_exc())
        try:
            send(reply)
        except Exception as err:  # noqa: BLE001 - an unpicklable result or exception
            send(("error", RuntimeError(f"the model process could not send back {reply[0]}: "
                                        f"{type(err).__name__}: {err}"), traceback.format_exc()))


def main(argv: list[str]) -> int:
    conn = Connection(int(argv[1]))
    try:
        os.nice(NICE)
    except (AttributeError, OSError):  # pragma: no cover - not POSIX
        pass
    try:
        serve(conn)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
