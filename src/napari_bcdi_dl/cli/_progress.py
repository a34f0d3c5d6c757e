"""Progress of the CLI commands, in the core ``progress(done, total)`` protocol.

A tqdm bar on a terminal; plain lines at a modest rate when standard error is not a terminal (a log, a
SLURM job), so that long runs stay readable there (``pipeline.reporting.step_progress``, shared with
``bcdi-dl run`` and ``batch``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..core.progress import ProgressFn


def _silent(done: int, total: int) -> None:
    """A progress callback that shows nothing."""


@contextlib.contextmanager
def progress_bar(desc: str, disable: bool | None = None) -> Iterator[ProgressFn]:
    """Yield a ``progress(done, total)`` callback: a bar on a terminal, plain lines in a log.

    ``disable=True`` shows nothing (``--quiet``).
    """
    if disable:
        yield _silent
        return
    from ..pipeline.reporting import step_progress

    with step_progress(desc) as progress:
        yield progress if progress is not None else _silent
