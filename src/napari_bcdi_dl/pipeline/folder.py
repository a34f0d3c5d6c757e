"""One scan into one result folder, all or nothing: what a batch worker and ``bcdi-dl run`` call.

The scan is run into a fresh hidden folder beside the target (``.NAME.tmp-XXXXXXXX``); ``done.json`` (the
scan's summary row and the digest of its configuration) is written last, then the folder is renamed to
``NAME``. A reader, a rerun or a second worker therefore sees either no folder, a complete one, or a
failed one (``failed.json`` and ``log.txt``, no ``done.json``), never a half-written one: a worker killed
mid-scan leaves only its hidden temporary folder, which the next batch removes (:func:`clean_stale`).

A finished scan is one whose folder holds ``done.json`` with the same configuration digest
(:func:`finished_row`); a batch rerun skips it.
:func:`read_result` reads a finished folder back (the napari Batch dock opens it as layers).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import BCDIError, Cancelled
from .config import PipelineConfig
from .scans import ScanItem

DONE = "done.json"
FAILED = "failed.json"
#: files a result folder may hold (an existing folder with anything else is not replaced)
RESULT_FILES = {DONE, FAILED, "log.txt", "provenance.yaml", "thumbnail.png", "reconstruction.npz",
                "reconstruction.cxi", "strain.npz", "strain.vti"}
_TMP = ".tmp-"
_OLD = ".old-"


def worker_id() -> str:
    """``host:pid`` of this process (the summary says which worker ran a scan)."""
    return f"{platform.node()}:{os.getpid()}"


def scan_digest(cfg: PipelineConfig, item: ScanItem) -> str:
    """Digest of what a scan's result depends on: the steps' configuration, the scan, and the size and
    modification time of its file (a rewritten file is redone; a BLISS master file, which grows with every
    scan, counts by its scan number only)."""
    import hashlib

    from .scans import signature

    sig = signature(item.path) if item.scan is None else None
    text = f"{cfg.digest()}|{item.path}|{item.scan}|{item.detector}|{item.mask}|{sig}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def finished_row(final: Path, digest: str | None = None) -> dict | None:
    """The row of a finished scan folder (its ``done.json``), or None (absent, failed, other config)."""
    try:
        row = json.loads((Path(final) / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or row.get("status") != "done":
        return None
    if digest is not None and row.get("digest") != digest:
        return None
    return row


def clean_stale(out_dir: Path) -> list[Path]:
    """Remove the temporary folders that killed or interrupted runs left in ``out_dir``."""
    removed = []
    for p in Path(out_dir).glob(".*"):
        if p.is_dir() and (_TMP in p.name or _OLD in p.name):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def check_replaceable(final: Path, inputs: list[Path]) -> None:
    """Refuse to replace a folder that is not a result folder, or one that holds an input."""
    final = Path(final)
    for p in inputs:
        rp, rf = Path(p).resolve(), final.resolve()
        if rp == rf or rf in rp.parents:
            raise BCDIError(f"output folder {final} holds the input {p}: choose another --out")
    if final.is_file():
        raise BCDIError(f"output {final} is a file: give a folder for the results")
    if final.is_dir():
        extra = sorted(p.name for p in final.iterdir() if p.name not in RESULT_FILES)
        if extra:
            raise BCDIError(f"output folder {final} exists and holds other files ({', '.join(extra[:3])}"
                            f"{'...' if len(extra) > 3 else ''}): choose a new or empty folder")


def _publish(tmp: Path, final: Path, *, replace: bool, digest: str | None) -> bool:
    """Rename ``tmp`` to ``final``. Unless ``replace``, a ``final`` finished with the same ``digest`` is kept
    (another attempt of the same scan got there first) and ``tmp`` dropped: returns False."""
    for _ in range(5):
        if final.exists():
            if not replace and finished_row(final, digest) is not None:
                shutil.rmtree(tmp, ignore_errors=True)  # another attempt finished it first
                return False
            old = final.parent / f".{final.name}{_OLD}{uuid.uuid4().hex[:8]}"
            try:
                os.rename(final, old)
            except FileNotFoundError:
                continue
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, final)
            return True
        except OSError:  # someone published in between: look again
            continue
    raise BCDIError(f"could not publish {final}: another process keeps writing it")


def _write_json(path: Path, data: dict) -> None:
    from .provenance import write_text

    write_text(path, json.dumps(data, indent=1, default=str) + "\n")


def process_scan(config: PipelineConfig, item: ScanItem, final: str | Path, digest: str | None = None, *,
                 replace: bool = False, thumbnail: bool | None = None, progress=None, cancel=None) -> dict:
    """Run one scan into the result folder ``final``, atomically; return its summary row.

    Parameters
    ----------
    config, item : the configuration and the scan.
    final : the result folder (its parent must exist).
    digest : :func:`scan_digest` (computed when None), stored in ``done.json``.
    replace : replace a finished folder (``bcdi-dl run``); a batch keeps the first one finished.
    thumbnail : write ``thumbnail.png`` (default: ``export.thumbnail``).
    progress, cancel : passed to :func:`~.runner.run_scan`.

    Returns
    -------
    dict
        ``status`` ``"done"`` or ``"failed"`` (with the one-line ``error``), LLK, timings, worker.

    Raises
    ------
    Exception
        An unexpected error (a bug, a lost file system) after its ``failed.json`` is written: a Dask
        task is then retried. ``Cancelled`` and ``KeyboardInterrupt`` leave no folder.
    """
    from .runner import run_scan

    final = Path(final)
    digest = digest or scan_digest(config, item)
    tmp = final.parent / f".{final.name}{_TMP}{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    lines: list[str] = []
    t0 = time.perf_counter()
    base = {"scan": item.name, "input": item.label(), "folder": final.name, "worker": worker_id(),
            "digest": digest}
    try:
        result = run_scan(config, item, tmp, progress, cancel, log=lines)
        if config.export.thumbnail if thumbnail is None else thumbnail:
            from .summary import write_thumbnail

            write_thumbnail(tmp / "thumbnail.png", result)
        row = {**base, **result.summary_row(), "status": "done", "error": "",
               "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        _write_json(tmp / DONE, row)  # last: it marks the folder complete
    except (Cancelled, KeyboardInterrupt):
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except BCDIError as err:
        row = _failed(tmp, base, lines, str(err), t0)
    except Exception as err:
        msg = f"{type(err).__name__}: {' '.join(str(err).split())}"
        _failed(tmp, base, lines, msg, t0, traceback.format_exc())
        _publish(tmp, final, replace=replace, digest=digest)
        raise
    published = _publish(tmp, final, replace=replace, digest=digest)
    if not published:
        return finished_row(final) or row
    return row


def _failed(tmp: Path, base: dict, lines: list, error: str, t0: float, tb: str = "") -> dict:
    from .provenance import write_text

    row = {**base, "status": "failed", "error": error, "total_s": round(time.perf_counter() - t0, 3),
           "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_text(tmp / "log.txt", "\n".join([*lines, f"FAILED: {error}", tb]).rstrip() + "\n")
    _write_json(tmp / FAILED, row)
    return row



@dataclass
class FolderResult:
    """A finished scan folder read back (:func:`read_result`).

    Attributes
    ----------
    folder : the result folder.
    row : its ``done.json`` (the summary row: LLK, free LLK, method, recipe, timings...).
    result : a ``core.types.ReconstructionResult``: ``reconstruction.npz`` (else ``.cxi``), its geometry and
        voxel size, ``strain.npz`` as its ``strain`` (None when the config switched it off), the sidecar's
        resolved configuration and provenance.
    """

    folder: Path
    row: dict
    result: object


def read_result(final: str | Path, *, progress=None, cancel=None) -> FolderResult:
    """Read the outputs of a finished scan folder (one that holds ``done.json``).

    Raises
    ------
    BCDIError
        The folder is not a finished scan (absent, failed, still running) or its files are unreadable.
    """
    import yaml

    from ..core.export import read_npz_cdiutils
    from ..core.io import read, reconstruction_from
    from ..core.progress import report
    from ..core.types import ReconstructionResult
    from .provenance import SIDECAR

    final = Path(final)
    report(progress, cancel, 0, 2)
    row = finished_row(final)
    if row is None:
        state = "failed" if (final / FAILED).is_file() else "not finished" if final.is_dir() else "absent"
        raise BCDIError(f"{final}: no finished scan there ({state}, no {DONE}): open a scan whose status is done")
    rec_file = next((final / f"reconstruction.{ext}" for ext in ("npz", "cxi")
                     if (final / f"reconstruction.{ext}").is_file()), None)
    if rec_file is None:
        raise BCDIError(f"{final}: no reconstruction.npz or .cxi: rerun the batch with export.reconstruction set")
    loaded = read(rec_file)
    rec = reconstruction_from(loaded)
    report(progress, cancel, 1, 2)
    strain = read_npz_cdiutils(final / "strain.npz")[0] if (final / "strain.npz").is_file() else None
    try:
        sidecar = yaml.safe_load((final / SIDECAR).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        sidecar = {}
    sidecar = sidecar if isinstance(sidecar, dict) else {}
    config = {k: v for k, v in sidecar.items() if k != "provenance"}
    vs = rec.meta.get("voxel_size_nm")
    result = ReconstructionResult(rec, geometry=loaded.geometry,
                                  voxel_size_nm=tuple(float(v) for v in vs) if vs is not None and len(vs) == 3
                                  else None, data_name=str(row.get("input") or ""), source=str(rec_file),
                                  strain=strain, config=config or None,
                                  provenance=rec.meta.get("provenance") or sidecar.get("provenance"))
    report(progress, cancel, 2, 2)
    return FolderResult(folder=final, row=row, result=result)
