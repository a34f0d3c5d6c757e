"""Progress reporting and cancellation for long work in core/ and models/.

Long functions take ``progress: ProgressFn | None`` and ``cancel: CancelToken | None``. They call
``report(progress, cancel, done, total)`` at each step: it forwards the count and raises
:class:`~napari_bcdi_dl.core.errors.Cancelled` as soon as the token is set. The widgets' worker and the
CLI's progress bar are the two callers that provide them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from .errors import Cancelled

ProgressFn = Callable[[int, int], None]


class CancelToken(Protocol):
    """Anything with ``is_set()``; a :class:`threading.Event` is one."""

    def is_set(self) -> bool: ...


def new_cancel_token() -> threading.Event:
    """Return a fresh, unset cancel token."""
    return threading.Event()


def report(progress: ProgressFn | None, cancel: CancelToken | None, done: int, total: int) -> None:
    """Report ``done`` of ``total`` steps and raise :class:`Cancelled` if cancellation was requested."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"cancelled after {done} of {total} steps")
    if progress is not None:
        progress(int(done), int(total))


def check_cancel(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if cancellation was requested."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
