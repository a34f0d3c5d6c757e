"""Progress for people: a tqdm bar on a terminal, plain lines at a modest rate in a log.

When standard error is not a terminal (a batch log, a SLURM job's output) a bar would write nothing
readable; there :class:`LineProgress` writes one line at most every ``interval`` seconds, and
:class:`BatchReporter` one line per finished scan plus a heartbeat line.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from ..core.progress import ProgressFn


class LineProgress:
    """A ``progress(done, total)`` callback printing ``desc: 42% (420/1000), 12 s`` every ``interval`` s
    (the first after ``interval`` s) and once at the end."""

    def __init__(self, desc: str, stream: TextIO | None = None, interval: float = 15.0) -> None:
        self.desc, self.stream, self.interval = desc, stream or sys.stderr, float(interval)
        self.t0 = time.monotonic()
        self.last = self.t0  # the first line after `interval` s: a short job prints only its end
        self.finished = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        end = total > 0 and done >= total
        if (end and not self.finished) or (not end and now - self.last >= self.interval and done > 0):
            self.last = now
            self.finished = end
            pct = 100.0 * done / max(total, 1)
            print(f"{self.desc}: {pct:.0f}% ({done}/{total}), {now - self.t0:.0f} s", file=self.stream,
                  flush=True)


@contextlib.contextmanager
def step_progress(desc: str, *, quiet: bool = False, stream: TextIO | None = None,
                  interval: float = 15.0) -> Iterator[ProgressFn | None]:
    """Yield a progress callback: a tqdm bar on a terminal, :class:`LineProgress` otherwise, None if quiet."""
    stream = stream or sys.stderr
    if quiet:
        yield None
        return
    if not _isatty(stream):
        yield LineProgress(desc, stream, interval)
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, file=stream, dynamic_ncols=True, unit="step")

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class BatchReporter:
    """Turns :func:`~.batch.run_batch` events into a tqdm bar (terminal) or plain lines (a log)."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = _isatty(self.stream) if tty is None else tty
        self.bar = None
        self.t0 = time.monotonic()

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, kind: str, info: dict) -> None:
        if self.quiet and kind not in ("finished",):
            return
        if kind == "start":
            where = info.get("scheduler", "")
            what = "watching for scans" if info.get("watch") else f"{info.get('total', 0)} scans"
            self._line(f"batch: {what} on {info.get('workers', '?')} workers ({where})")
            if self.tty:
                from tqdm import tqdm

                self.bar = tqdm(total=0, desc="scans", unit="scan", file=self.stream, dynamic_ncols=True)
        elif kind == "skipped":
            self._bump(1, 1)
            if not self.tty:
                self._line(f"batch: {info.get('scan')}: already done, skipped")
        elif kind == "submitted":
            self._bump(1, 0)
        elif kind == "finished":
            self._bump(0, 1)
            if info.get("status") == "done":
                text = f"{info.get('scan')}: done, free LLK {_g(info.get('llk_free'))}, {_g(info.get('total_s'))} s"
            else:
                text = f"{info.get('scan')}: FAILED: {info.get('error')}"
            if self.quiet:
                if info.get("status") != "done":
                    print(f"batch: {text}", file=self.stream, flush=True)
                return
            if self.bar is not None:
                self.bar.set_postfix(failed=info.get("n_failed", 0))
                if info.get("status") != "done":
                    self._line(f"batch: {text}")
            else:
                n = info.get("n_done", 0) + info.get("n_failed", 0)
                self._line(f"batch: [{n}/{info.get('n_total', '?')}] {text}")
        elif kind == "heartbeat" and self.bar is None:
            self._line(f"batch: {info.get('done', 0)} done, {info.get('failed', 0)} failed, "
                       f"{info.get('running', 0)} running, {time.monotonic() - self.t0:.0f} s")
        elif kind == "end":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            self._line(f"batch: {info.get('done', 0)} done ({info.get('skipped', 0)} skipped), "
                       f"{info.get('failed', 0)} failed, {time.monotonic() - self.t0:.0f} s")

    def _bump(self, total: int, done: int) -> None:
        if self.bar is not None:
            self.bar.total = (self.bar.total or 0) + total
            self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _g(v) -> str:
    return "n/a" if v is None or v == "" else (f"{v:.4g}" if isinstance(v, float) else str(v))
