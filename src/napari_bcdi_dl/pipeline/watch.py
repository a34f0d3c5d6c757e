"""Live processing: find the scans of a configuration as they are written, each once it is complete.

:class:`Watcher` is polled (every few seconds by ``bcdi-dl batch --watch``). A file or a folder of frames is
complete when its size and modification time (for a folder: its file count, total size and newest
modification time) stayed unchanged over two polls (three polls in a row saw the same); an HDF5 file must
moreover open. The poll interval must therefore exceed the pauses of the program writing the files. In a BLISS master
file, which grows scan by scan during a beamtime, each scan is complete once its ``end_time`` is written,
whatever the file does meanwhile (or once the whole file stayed unchanged over two polls). A scan is given once; a plain file that changes again later (rewritten)
is given again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .config import PipelineConfig, is_glob
from .scans import HDF5_SUFFIXES, ScanItem, _canonical, items_for, matches, signature

#: polls over which a plain file must stay unchanged to count as complete
STABLE_POLLS = 2


def hdf5_scans(path: Path) -> tuple[bool, list[str], list[str]] | None:
    """``(is_bliss, every scan, the scans whose end_time is written)`` of an HDF5 file; None while it cannot
    be opened (being written)."""
    import h5py

    from ..core.io import bliss

    try:
        f = h5py.File(path, "r", locking=False)
    except (OSError, ValueError, TypeError):
        return None
    try:
        with f:
            if not bliss.is_bliss(f):
                return False, [], []
            names = bliss.scan_names(f)
            return True, names, [n for n in names if n in f and "end_time" in f[n]]
    except (OSError, KeyError, RuntimeError):
        return None


def _wanted(group: str, asked: list[str]) -> bool:
    tail = group.rsplit("_", 1)[-1]
    return any(s in (group, tail, tail.split(".")[0]) for s in asked)


class Watcher:
    """Gives the scans of ``cfg`` that became complete since the last :meth:`poll`.

    Parameters
    ----------
    cfg : the configuration (its ``scans`` entries: files, folders, globs, BLISS files).
    exclude : folders never looked into (the batch's output folder).
    """

    def __init__(self, cfg: PipelineConfig, exclude: Iterable[Path] = ()) -> None:
        self.cfg = cfg
        self.exclude = list(exclude)
        self._last: dict[Path, tuple] = {}
        self._same: dict[Path, int] = {}
        self._given: dict[tuple, tuple | None] = {}

    def _take(self, key: tuple, sig: tuple | None) -> bool:
        if key in self._given and self._given[key] == sig:
            return False
        self._given[key] = sig
        return True

    def poll(self) -> list[ScanItem]:
        """The scans complete since the last poll (none on the first poll of a plain file)."""
        from ..core.io import is_mask_file

        new: list[ScanItem] = []
        for spec in self.cfg.scans:
            for path in matches(self.cfg, spec, self.exclude):
                sig = signature(path)
                if sig is None:
                    continue
                prev, self._last[path] = self._last.get(path), sig
                self._same[path] = self._same.get(path, 0) + 1 if prev == sig else 0
                real = os.path.realpath(path)
                if path.suffix.lower() in HDF5_SUFFIXES:
                    state = hdf5_scans(path)
                    if state is None:
                        continue
                    is_bliss, names, ended = state
                    if is_bliss:  # scan by scan: its end_time written, or the whole file at rest
                        ready = names if self._same[path] >= STABLE_POLLS else ended
                        if spec.scans is not None:
                            ready = [s for s in spec.scans if any(_wanted(g, [s]) for g in ready)]
                        if not ready:
                            continue
                        for item in items_for(self.cfg, spec, path, bliss_scans=ready):
                            if self._take((real, _canonical(item.scan)), None):
                                new.append(item)
                        continue
                if self._same[path] < STABLE_POLLS:
                    continue  # first seen, or still changing
                if is_glob(spec.file) and path.is_file() and is_mask_file(path):
                    continue
                for item in items_for(self.cfg, spec, path, bliss_scans=[]):
                    if self._take((real, item.scan), sig):
                        new.append(item)
        return new
