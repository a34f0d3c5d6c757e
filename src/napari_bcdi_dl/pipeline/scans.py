"""The scans of a configuration: files, folders of frames, globs and BLISS scans, as :class:`ScanItem`.

Each item has a ``name``, the name of its result folder: the path relative to the config file's folder
with the suffix dropped and ``/`` turned into ``_`` (``more/scan_3.npz`` -> ``more_scan_3``), or the file
stem for a file elsewhere; a BLISS scan adds its number (``sample_0001_12.1``). Two items with the same
name are refused before any work.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import BCDIError
from .config import PipelineConfig, ScanSpec, is_glob

HDF5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".hdf")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class ScanItem:
    """One scan to process.

    Attributes
    ----------
    path : the data file or folder (absolute).
    name : result folder name.
    scan : BLISS scan ("12.1") or None.
    detector : BLISS detector or None.
    mask : an extra mask file for this scan, or None.
    """

    path: Path
    name: str
    scan: str | None = None
    detector: str | None = None
    mask: Path | None = None

    def spec(self) -> dict:
        """This scan as one ``scans`` entry of a configuration (absolute paths)."""
        d: dict = {"file": str(self.path)}
        if self.scan is not None:
            d["scans"] = [self.scan]
        if self.detector is not None:
            d["detector"] = self.detector
        if self.mask is not None:
            d["mask"] = str(self.mask)
        d["name"] = self.name
        return d

    def label(self) -> str:
        """How messages name it: the path, and the scan number for BLISS."""
        return f"{self.path} scan {self.scan}" if self.scan else str(self.path)


def safe_name(text: str) -> str:
    """A folder name from any text (letters, digits, ``._+-``; other runs become ``_``)."""
    name = _UNSAFE.sub("_", str(text)).strip("._") or "scan"
    return name[:120]


def _stem(p: Path) -> str:
    name = p.name
    for suffix in (".edf.gz",):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return p.stem if p.is_file() or p.suffix else name


def default_name(path: Path, base: Path) -> str:
    """Result folder name of a file: relative path without suffix, ``/`` -> ``_`` (else the stem)."""
    try:
        rel = path.relative_to(base)
        parts = [*rel.parts[:-1], _stem(path)]
    except ValueError:
        parts = [_stem(path)]
    return safe_name("_".join(parts))


def signature(path: Path) -> tuple | None:
    """What must stay unchanged between two polls: (size, mtime) of a file; (count, size, newest mtime)
    of a folder; None when it vanished."""
    try:
        if path.is_dir():
            stats = [p.stat() for p in path.iterdir() if p.is_file()]
            return (len(stats), sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0))
        st = path.stat()
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def _is_hdf5(p: Path) -> bool:
    return p.suffix.lower() in HDF5_SUFFIXES


def items_for(cfg: PipelineConfig, spec: ScanSpec, path: Path, *, bliss_scans: list[str] | None = None
              ) -> list[ScanItem]:
    """The items of one file matched by ``spec`` (a BLISS file gives one per scan: ``bliss_scans``, else the
    entry's ``scans``, else every scan of the file; ``[]`` means the file is one scan)."""
    mask = cfg.path(spec.mask) if spec.mask else None
    detector = spec.detector or cfg.read.detector
    base = spec.name if spec.name and not is_glob(spec.file) else default_name(path, cfg.base_dir)
    scans = bliss_scans if bliss_scans is not None else spec.scans
    if scans is None and _is_hdf5(path):
        scans = _list_scans(path)
    if not scans:
        return [ScanItem(path, safe_name(base), None, detector, mask)]
    if spec.scans is not None and spec.name and len(scans) == 1 and not is_glob(spec.file):
        return [ScanItem(path, safe_name(spec.name), str(scans[0]), detector, mask)]
    return [ScanItem(path, safe_name(f"{base}_{s}"), str(s), detector, mask) for s in scans]


def _list_scans(path: Path) -> list[str]:
    from ..core.io import list_scans

    try:
        return list_scans(path)
    except BCDIError:
        return []  # not BLISS (or unreadable): read() will say what is wrong


def matches(cfg: PipelineConfig, spec: ScanSpec, exclude: Iterable[Path] = ()) -> list[Path]:
    """Files (or folders) a ``scans`` entry names: itself, or the sorted matches of its glob."""
    p = cfg.path(spec.file)
    if not is_glob(spec.file):
        return [p]
    skip = [Path(e).resolve() for e in exclude]
    found = []
    for m in sorted(glob.glob(str(p), recursive=True)):
        q = Path(m)
        if q.name.startswith(".") or any(_inside(q.resolve(), s) for s in skip):
            continue  # hidden (temporary files of writers) or our own outputs
        found.append(q)
    return found


def _canonical(scan: str | None) -> str | None:
    """A BLISS scan number as its group name ends (``"12"`` -> ``"12.1"``): one scan, one key."""
    return scan if scan is None or "." in scan else f"{scan}.1"


def _inside(p: Path, folder: Path) -> bool:
    return p == folder or folder in p.parents


def expand_scans(cfg: PipelineConfig, exclude: Iterable[Path] = (), *, skip_mask_files: bool = True
                 ) -> list[ScanItem]:
    """Every scan of the configuration, in order, duplicates (same file and scan) dropped.

    Raises
    ------
    BCDIError
        Two different scans would share a result folder name.
    """
    from ..core.io import is_mask_file

    items: list[ScanItem] = []
    seen: set[tuple] = set()
    for spec in cfg.scans:
        for path in matches(cfg, spec, exclude):
            if is_glob(spec.file) and skip_mask_files and path.is_file() and is_mask_file(path):
                continue  # a mask-only file matched by a glob is not a scan
            for item in items_for(cfg, spec, path):
                key = (os.path.realpath(item.path), _canonical(item.scan))
                if key not in seen:
                    seen.add(key)
                    items.append(item)
    check_unique(items, cfg.source)
    return items


def check_unique(items: list[ScanItem], source: str = "config") -> None:
    """Raise a one-line BCDIError when two items share a result folder name."""
    names: dict[str, ScanItem] = {}
    for item in items:
        other = names.get(item.name)
        if other is not None:
            raise BCDIError(f"{source}: {other.label()} and {item.label()} would both write the result "
                            f"folder '{item.name}'; give one of them a 'name:' in its scans entry")
        names[item.name] = item
