"""A beamtime's scans on Dask ``distributed``: one task per scan, a summary rewritten as scans finish.

:func:`run_batch` starts an embedded ``LocalCluster`` (one process per worker, one thread each: the
phasing uses the cores of its process through threaded FFTs) or joins a running scheduler
(``tcp://host:port``, e.g. one started by ``dask-jobqueue`` on a SLURM cluster, docs/batch.md). Each scan
is one task, :func:`~.folder.process_scan`, which writes the scan's result folder atomically. Models stay
loaded in each worker process between scans (``models.registry`` caches them), so TensorFlow is loaded once
per worker.

Resumable: a scan whose folder holds ``done.json`` for the same configuration is skipped; a half-written
one (a hidden temporary folder) is removed and redone. A scan that fails is recorded with its one-line
error and the others go on. A task whose worker dies is rerun on another worker by the scheduler; one that
raises an unexpected error is retried ``retries`` times. With ``watch=True`` the configuration's entries
are polled for new scans (:class:`~.watch.Watcher`) until ``watch_timeout`` seconds pass without one, or
``max_scans`` were seen. A ``cancel`` token (the napari Batch dock's *Cancel*) stops the loop at its next
turn: the tasks are cancelled and the embedded cluster is shut down, as on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import BCDIError
from ..core.progress import CancelToken, check_cancel
from .config import PipelineConfig
from .folder import _TMP, clean_stale, finished_row, process_scan, scan_digest
from .scans import ScanItem, expand_scans
from .summary import write_csv, write_html

EventFn = Callable[[str, dict], None]


@dataclass
class BatchResult:
    """What :func:`run_batch` returns: the rows of ``summary.csv`` in scan order and where it is."""

    rows: list = field(default_factory=list)
    out_dir: Path = Path(".")

    @property
    def failed(self) -> list:
        return [r for r in self.rows if r.get("status") != "done"]

    @property
    def done(self) -> list:
        return [r for r in self.rows if r.get("status") == "done"]


def default_workers() -> int:
    """Workers of the embedded cluster: one per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def connect(workers: int | None = None, scheduler: str | None = None):
    """``(client, cluster)``: a client of ``scheduler``, or of a new LocalCluster (cluster None otherwise)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="30s"), None
        except (OSError, TimeoutError) as err:
            raise BCDIError(f"cannot reach the Dask scheduler {scheduler} ({type(err).__name__}): start it, "
                            "or leave --scheduler out to run on this machine") from None
    n = int(workers or default_workers())
    if n < 1:
        raise BCDIError(f"--workers must be at least 1, got {n}")
    from ..core.phasing._fused import THREADS_ENV, n_threads

    # each worker's engine gets its share of the cores (else N workers each thread over all of them)
    threads = max(1, n_threads() // n)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR, env={THREADS_ENV: str(threads)})
    return Client(cluster), cluster


def _error_of(err: BaseException) -> str:
    name = type(err).__name__
    if name == "KilledWorker":
        return "the workers running it died repeatedly (out of memory? killed?): see the worker logs"
    return f"{name}: {' '.join(str(err).split())}"[:500]


class _Batch:
    """The state of one batch: rows, running tasks, summary files."""

    def __init__(self, cfg: PipelineConfig, out: Path, client, retries: int, on_event: EventFn | None):
        self.cfg, self.out, self.client, self.retries = cfg, out, client, retries
        self.emit = on_event or (lambda kind, info: None)
        self.rows: dict[str, dict] = {}  # scan name -> row, in the order the scans were added
        self.running: dict = {}  # future -> (item, digest)
        self.names: dict[str, tuple] = {}
        self.started: set[str] = set()  # scans whose ``running`` event was emitted
        self.wake = threading.Event()  # set by each task's done-callback (our own client's, not the default)

    def finished_rows(self) -> list[dict]:
        """Rows of the finished scans (done or failed), in scan order."""
        return [r for r in self.rows.values() if r.get("status") in ("done", "failed")]

    def counts(self) -> dict:
        rows = self.finished_rows()
        return {"done": sum(r.get("status") == "done" for r in rows),
                "failed": sum(r.get("status") == "failed" for r in rows),
                "skipped": sum(bool(r.get("skipped")) for r in rows), "running": len(self.running),
                "total": len(self.rows)}

    def add(self, item: ScanItem) -> None:
        key = (os.path.realpath(item.path), item.scan)
        other = self.names.get(item.name)
        if other is not None and other != key:
            self.rows[item.name + "?"] = {"scan": item.name, "status": "failed", "input": item.label(),
                                          "error": "another scan has the same result folder name: give it "
                                                   "a 'name:' in the config"}
            return
        self.names[item.name] = key
        digest = scan_digest(self.cfg, item)
        row = finished_row(self.out / item.name, digest)
        if row is not None:
            self.rows[item.name] = {**row, "skipped": True}
            self.emit("skipped", self.rows[item.name])
            return
        self.rows[item.name] = {"scan": item.name, "status": "pending", "input": item.label()}
        fut = self.client.submit(process_scan, self.cfg, item, str(self.out / item.name), digest,
                                 key=f"bcdi-dl-{item.name}-{uuid.uuid4().hex[:8]}", retries=self.retries,
                                 pure=False)
        self.running[fut] = (item, digest)
        fut.add_done_callback(lambda _f: self.wake.set())
        self.emit("submitted", {"scan": item.name, "input": item.label()})

    def mark_started(self) -> None:
        """Emit ``running`` for each submitted scan that a worker has begun: its hidden temporary folder
        (``.NAME.tmp-…``, the first thing :func:`~.folder.process_scan` makes) is in the batch folder."""
        waiting = {item.name for item, _ in self.running.values()} - self.started
        if not waiting:
            return
        try:
            hidden = [e.name for e in os.scandir(self.out) if e.name.startswith(".") and _TMP in e.name]
        except OSError:
            return
        for entry in hidden:
            name = entry[1:entry.rindex(_TMP)]
            if name in waiting:
                waiting.discard(name)
                self.started.add(name)
                self.emit("running", {"scan": name})

    def collect(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for a task; record every finished one. Returns how many finished."""
        if not self.running:
            return 0
        if not any(f.done() for f in self.running):
            self.wake.wait(timeout)
        self.wake.clear()
        finished = [f for f in self.running if f.done()]
        for fut in finished:
            item, digest = self.running.pop(fut)
            try:
                row = fut.result()
            except Exception as err:  # noqa: BLE001 - a failed task is a failed scan, the batch goes on
                row = {"scan": item.name, "status": "failed", "error": _error_of(err), "input": item.label(),
                       "folder": item.name if (self.out / item.name).is_dir() else "", "digest": digest}
            self.rows[item.name] = row
            self.write(running=True)
            self.emit("finished", {**row, **{f"n_{k}": v for k, v in self.counts().items()}})
        return len(finished)

    def write(self, running: bool) -> None:
        rows = self.finished_rows()
        write_csv(self.out, rows)
        write_html(self.out, rows, pending=len(self.running), running=running,
                   title=f"bcdi-dl batch: {self.cfg.source}")


def run_batch(config: PipelineConfig, out_dir: str | Path, *, workers: int | None = None,
              scheduler: str | None = None, watch: bool = False, poll_s: float = 2.0,
              watch_timeout: float | None = None, max_scans: int | None = None, retries: int = 2,
              heartbeat_s: float = 60.0, on_event: EventFn | None = None,
              cancel: CancelToken | None = None) -> BatchResult:
    """Run every scan of ``config`` into ``out_dir/<scan name>/`` on Dask; see the module docstring.

    Parameters
    ----------
    config : a validated configuration.
    out_dir : the batch folder (created): one folder per scan, ``summary.csv``, ``summary.html``.
    workers : processes of the embedded LocalCluster (default: one per core); ignored with ``scheduler``.
    scheduler : address of a running Dask scheduler to join instead.
    watch : keep polling for new scans every ``poll_s`` s.
    watch_timeout : stop watching after that many seconds without a new scan (None: until interrupted).
    max_scans : stop watching once that many scans were seen.
    retries : automatic retries of a task that raised an unexpected error.
    heartbeat_s : emit a ``heartbeat`` event at least that often while scans run (and look for started
        scans and ``cancel`` at least that often).
    on_event : ``on_event(kind, info)`` with kind ``start``, ``skipped``, ``submitted``, ``running`` (a worker
        began the scan), ``finished``, ``heartbeat``, ``end``.
    cancel : a token (``is_set()``); once set, the batch stops within ``heartbeat_s`` (``poll_s`` while
        watching): running tasks are cancelled, an embedded cluster shut down, ``Cancelled`` raised.

    Returns
    -------
    BatchResult

    Raises
    ------
    BCDIError
        No scan to run (without ``watch``), clashing result folder names, unreachable scheduler.
    Cancelled
        ``cancel`` was set; the finished scans stay finished (a rerun skips them).
    """
    cfg = config
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    items = [] if watch else expand_scans(cfg, exclude=[out])
    if not watch and not items:
        raise BCDIError(f"{cfg.source}: the 'scans' entries match no file; check the paths and globs "
                        "(relative to the config file), or use --watch to wait for scans")
    clean_stale(out)
    client, cluster = connect(workers, scheduler)
    batch = _Batch(cfg, out, client, retries, on_event)
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        batch.emit("start", {"total": len(items), "workers": n_workers, "scheduler": client.scheduler.address,
                             "watch": watch})
        for item in items:
            batch.add(item)
        batch.write(running=True)
        _loop(batch, cfg, out, watch, poll_s, watch_timeout, max_scans, heartbeat_s, cancel)
    finally:
        for fut in list(batch.running):
            fut.cancel()
        client.close()
        if cluster is not None:
            cluster.close()  # its worker processes are gone: nothing writes in `out` any more
        if not batch.running or cluster is not None:
            clean_stale(out)
        batch.write(running=False)
    batch.emit("end", batch.counts())
    return BatchResult(rows=batch.finished_rows(), out_dir=out)


def _loop(batch: _Batch, cfg, out: Path, watch: bool, poll_s: float, watch_timeout: float | None,
          max_scans: int | None, heartbeat_s: float, cancel: CancelToken | None = None) -> None:
    from .watch import Watcher

    watcher = Watcher(cfg, exclude=[out]) if watch else None
    seen = 0
    last_new = last_beat = time.monotonic()
    while True:
        check_cancel(cancel)
        if watcher is not None:
            for item in watcher.poll():
                batch.add(item)
                seen += 1
                last_new = time.monotonic()
                if max_scans is not None and seen >= max_scans:
                    watcher = None
                    break
            if watcher is not None and watch_timeout is not None and time.monotonic() - last_new > watch_timeout:
                watcher = None
        if watcher is None and not batch.running:
            return
        if batch.running:
            batch.collect(poll_s if watcher is not None else min(heartbeat_s, 5.0))
            batch.mark_started()
        else:
            time.sleep(poll_s)
        if time.monotonic() - last_beat >= heartbeat_s:
            last_beat = time.monotonic()
            batch.emit("heartbeat", batch.counts())
