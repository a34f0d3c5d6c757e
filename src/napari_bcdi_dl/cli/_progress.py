"""A tqdm progress bar that speaks the core ``progress(done, total)`` protocol."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from ..core.progress import ProgressFn


@contextlib.contextmanager
def progress_bar(desc: str, unit: str = "it", disable: bool | None = None) -> Iterator[ProgressFn]:
    """Yield a ``progress(done, total)`` callback drawing a tqdm bar on stderr (hidden when not a TTY)."""
    from tqdm import tqdm

    if disable is None:
        disable = not sys.stderr.isatty()
    bar = tqdm(desc=desc, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
