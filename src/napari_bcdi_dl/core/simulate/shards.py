"""The shard store of every simulated dataset: ``OUTDIR/manifest.json`` + ``OUTDIR/shard_NNNNN.h5``.

What ``datasets.py`` (inpainting and phase sets) and ``defects_dataset.py`` (dislocation sets) share: the
manifest (read, written atomically), the shards a manifest still lacks written in this process or in a
pool of processes (:func:`fill_shards`: resumable, per-sample progress, cancel, a dead parent stops its
workers), and reading the completed shards back (:func:`iter_shards`, :func:`load_dataset`). What a sample
holds is the caller's business: :func:`fill_shards` takes the function that writes one shard.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from ..errors import BCDIError
from ..io.atomic import atomic_path
from ..progress import CancelToken, ProgressFn, report

FORMAT = "napari-bcdi-dl/simulated-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_SHARD_RE = re.compile(r"^shard_(\d{5})\.h5$")
_PART_RE = re.compile(r"^\.shard_\d{5}\.h5\..*\.part\.h5$")


def shard_name(i: int) -> str:
    return f"shard_{i:05d}.h5"


# --------------------------------------------------------------------------------------------- workers
_STOP = None
_PROGRESS_Q = None
_PARENT = None


def _worker_init(stop_event, progress_queue, parent_pid) -> None:
    global _STOP, _PROGRESS_Q, _PARENT
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us via _STOP
    _STOP, _PROGRESS_Q, _PARENT = stop_event, progress_queue, parent_pid


def _should_stop() -> bool:
    if _STOP is not None and _STOP.is_set():
        return True
    return _PARENT is not None and os.getppid() != _PARENT  # the parent died (killed): stop


def shard_stop(stop=None) -> bool:
    """Should a shard writer stop? Its caller's ``stop()`` (serial loop), or the pool's stop / a dead parent."""
    return bool(stop is not None and stop()) or _should_stop()


def shard_tick(tick=None) -> None:
    """One sample written: the serial loop's ``tick()``, or one tick to the parent from a pool worker."""
    if tick is not None:
        tick()
    elif _PROGRESS_Q is not None:
        _PROGRESS_Q.put(1)


# --------------------------------------------------------------------------------------------- manifest
def read_manifest(outdir: os.PathLike | str) -> dict:
    """The manifest of a dataset folder (BCDIError if there is none or it is unreadable)."""
    path = Path(outdir) / MANIFEST
    if not path.is_file():
        raise BCDIError(f"{outdir} holds no {MANIFEST}: it is not a dataset made by 'bcdi-dl dataset'")
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BCDIError(f"{path} is unreadable ({err}): regenerate the dataset into a new folder") from None
    if m.get("format") != FORMAT:
        raise BCDIError(f"{path} is not a napari-bcdi-dl dataset manifest")
    return m


def completed_prefix(manifest: dict) -> int:
    """Samples 0..k-1 of a (possibly unfinished) set that lie in completed shards: a limit of at most k
    reads exactly the samples that the finished set would give."""
    starts = {v["start"]: v["count"] for v in manifest["shards"].values()}
    k = 0
    while k in starts:
        k += starts[k]
    return k


def _write_manifest(outdir: Path, manifest: dict) -> None:
    with atomic_path(outdir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))


def dataset_folder(outdir: os.PathLike | str) -> Path:
    """The output folder of a dataset, created if needed (its parent must exist); one-line errors."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise BCDIError(f"output {outdir} is a file: give a folder for the dataset")
    if not outdir.parent.exists():
        raise BCDIError(f"folder {outdir.parent} does not exist: create it or choose another output folder")
    outdir.mkdir(exist_ok=True)
    return outdir


def fill_shards(outdir: Path, manifest: dict, write, *, workers: int | None = None,
                progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> dict:
    """Write the shards a manifest still lacks, in this process or in a pool, recording each as it lands.

    ``write(index, start, count, tick=None, stop=None)`` writes one shard atomically (a picklable callable,
    e.g. a ``functools.partial`` of a module-level function); it calls :func:`shard_tick` per sample and
    stops when :func:`shard_stop` says so. Every kind of dataset (inpaint, phase, defects) is made this way,
    so they all resume an interrupted run, report progress per sample and stop on ``cancel`` alike.
    Returns the manifest (``complete`` True unless cancelled).
    """
    n = int(manifest["n"])
    # Leftovers of an interrupted run: temporary shard files and shards missing from the manifest.
    for p in outdir.iterdir():
        if _PART_RE.match(p.name):
            with contextlib.suppress(OSError):
                p.unlink()
    ss = manifest["shard_size"]
    todo = []
    for i in range(manifest["n_shards"]):
        name = shard_name(i)
        start = i * ss
        count = min(ss, n - start)
        if name in manifest["shards"] and (outdir / name).is_file():
            continue
        manifest["shards"].pop(name, None)
        todo.append((i, start, count))
    done = sum(v["count"] for v in manifest["shards"].values())
    report(progress, cancel, done, n)

    def completed(i: int, start: int, count: int) -> None:
        manifest["shards"][shard_name(i)] = {"start": start, "count": count}
        manifest["complete"] = len(manifest["shards"]) == manifest["n_shards"]
        _write_manifest(outdir, manifest)

    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(int(workers), len(todo)))
    if todo and workers == 1:
        for i, start, count in todo:
            state = {"done": done}

            def tick(state=state) -> None:
                state["done"] += 1
                report(progress, cancel, state["done"], n)

            write(i, start, count, tick=tick, stop=lambda: cancel is not None and cancel.is_set())
            completed(i, start, count)
            done += count
            report(progress, cancel, done, n)
    elif todo:
        done = _run_pool(write, todo, workers, done, n, completed, progress, cancel)
    manifest["complete"] = len(manifest["shards"]) == manifest["n_shards"]
    _write_manifest(outdir, manifest)
    report(progress, cancel, n, n)
    return manifest


def _run_pool(write, todo, workers, done, n, completed, progress, cancel) -> int:
    import multiprocessing as mp
    import queue as _queue

    ctx = mp.get_context("spawn")  # no fork of a process that may hold Qt or BLAS threads
    stop = ctx.Event()
    ticks = ctx.Queue()
    in_flight = 0
    ex = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(stop, ticks, os.getpid())
    )
    futures = {}
    recorded: set = set()
    try:
        for i, start, count in todo:
            fut = ex.submit(write, i, start, count)
            futures[fut] = (i, start, count)
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            with contextlib.suppress(_queue.Empty):
                while True:
                    in_flight += ticks.get_nowait()
            for fut in finished:
                i, start, count = futures[fut]
                recorded.add(shard_name(i))
                try:
                    fut.result()  # re-raises a worker's error here
                except BrokenProcessPool:
                    raise BCDIError(
                        f"a worker process died while writing shard {i} (out of memory?): "
                        "run the same command again to resume, with fewer workers if it happens again"
                    ) from None
                completed(i, start, count)
                done += count
                in_flight -= count
            report(progress, cancel, done + max(in_flight, 0), n)
    except BaseException:
        stop.set()
        for fut in futures:
            fut.cancel()
        ex.shutdown(wait=True, cancel_futures=True)
        # Shards that were finished when we stopped are kept: record them before giving up.
        for fut, (i, start, count) in futures.items():
            if (
                shard_name(i) not in recorded
                and fut.done()
                and not fut.cancelled()
                and fut.exception() is None
            ):
                completed(i, start, count)
        raise
    finally:
        ex.shutdown(wait=True)
        ticks.close()
    return done


# --------------------------------------------------------------------------------------------- reading
def iter_shards(
    outdir: os.PathLike | str, keys: Sequence[str] | None = None, allow_incomplete: bool = False,
    need: int | None = None,
) -> Iterator[dict]:
    """Yield each completed shard, in sample order, as a dict of arrays.

    Keys: the dataset's array names (see the module docstring), ``params`` (list of dicts) and ``index``
    (int64 global sample numbers). ``keys`` restricts what is read. An unfinished dataset raises BCDIError
    unless ``allow_incomplete`` (then only its completed shards are read, e.g. while it is being made) or
    its completed shards hold the first ``need`` samples (a limit that reads what the finished set would).
    """
    import h5py

    outdir = Path(outdir)
    m = read_manifest(outdir)
    if not m.get("complete") and not allow_incomplete:
        prefix = completed_prefix(m)
        if need is None or prefix < need:
            raise BCDIError(
                f"dataset {outdir} is incomplete "
                f"({sum(v['count'] for v in m['shards'].values())} of {m['n']} samples): "
                "run the same 'bcdi-dl dataset' command again to finish it"
                + (f", or read at most its first {prefix} samples" if prefix else "")
            )
    names = list(m["keys"]) if keys is None else list(keys)
    unknown = set(names) - set(m["keys"])
    if unknown:
        raise BCDIError(f"dataset {outdir} has no {sorted(unknown)}: its keys are {m['keys']}")
    for name, info in sorted(m["shards"].items(), key=lambda kv: kv[1]["start"]):
        path = outdir / name
        try:
            with h5py.File(path, "r") as f:
                out = {}
                for k in names:
                    if k == "params":
                        out[k] = [json.loads(s) for s in f["params"].asstr()[()]]
                    else:
                        out[k] = f[k][()]
        except (OSError, KeyError) as err:
            raise BCDIError(
                f"shard {path} is unreadable or incomplete ({err}): delete it and resume the run"
            ) from None
        yield out


def load_dataset(
    outdir: os.PathLike | str, keys: Sequence[str] | None = None, allow_incomplete: bool = False
) -> dict:
    """All shards of a dataset concatenated (arrays (n, ...); ``params`` a list). Mind the memory."""
    parts: dict = {}
    for shard in iter_shards(outdir, keys, allow_incomplete):
        for k, v in shard.items():
            parts.setdefault(k, []).append(v)
    out = {}
    for k, v in parts.items():
        out[k] = [p for chunk in v for p in chunk] if k == "params" else np.concatenate(v)
    return out
