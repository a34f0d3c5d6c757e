"""ESRF BLISS master files (ID01): one group per scan, the detector stack under ``measurement/``.

Layout read (docs/formats.md)::

    /<scan>                          "12.1" in a dataset file, "<sample>_<dataset>_12.1" in a sample file
      title                          "ascan eta 10.1 11.1 100 1"
      measurement/<detector>         (frames, rows, cols) counts: mpx1x4, mpxgaas, eiger2M...; a link to
                                     instrument/<detector>/data, often a virtual dataset over the LIMA files
      instrument/<detector>/{distance, x_pixel_size, y_pixel_size, beam_center_x, beam_center_y}
      instrument/positioners/{eta, phi, delta, nu, mononrj...}  scalars, or arrays for scanned motors
      instrument/monochromator/WaveLength                        optional, m

The rocking motor is the one of ``eta``/``phi`` whose positions vary during the scan; its mean goes to
``angles_deg`` and its mean step to ``rocking_step_deg``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BCDIError
from ..types import Geometry, LoadedData
from . import _hdf5 as h
from ._common import check_ndim, check_numeric_dtype, finish_intensity, read_h5_into

_SCAN = re.compile(r"^(?:(?P<prefix>.*)_)?(?P<num>\d+)\.(?P<sub>\d+)$")
#: Detector names seen at ID01, tried first when a scan has several 3D datasets.
KNOWN_DETECTORS = (
    "mpx1x4",
    "mpxgaas",
    "eiger2M",
    "eiger2m",
    "eiger500k",
    "maxipix",
    "mpx4",
    "eiger",
    "andor_zyla",
)
ANGLES = ("eta", "phi", "delta", "nu", "mu", "chi")
ROCKING_MOTORS = ("eta", "phi")


def _scan_key(name: str) -> tuple:
    m = _SCAN.match(name)
    if not m:
        return (name, 0, 0)
    return (m.group("prefix") or "", int(m.group("num")), int(m.group("sub")))


def scan_names(f) -> list[str]:
    """Names of the scan groups of an open BLISS file (groups named ``N.M`` holding ``measurement``)."""
    names = []
    for name in f:
        if not _SCAN.match(name):
            continue
        g = h.get(f, name)
        if h.is_group(g) and "measurement" in g or g is None:
            names.append(name)
    return sorted(names, key=_scan_key)


def is_bliss(f) -> bool:
    """True when the file has at least one scan group (stops at the first: master files hold hundreds)."""
    for name in f:
        if _SCAN.match(name):
            g = h.get(f, name)
            if g is None or (h.is_group(g) and "measurement" in g):
                return True
    return False


def resolve_scan(f, scan: str | None, p: Path) -> str:
    """The scan group name for a user's choice: ``"12"``, ``"12.1"`` or the full group name."""
    names = scan_names(f)
    if not names:
        raise BCDIError(
            f"{p}: no BLISS scan found (no '<n>.1/measurement' group); is it a BLISS master file?"
        )
    shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
    if scan is None or str(scan).strip() == "":
        if len(names) == 1:
            return names[0]
        raise BCDIError(
            f"{p} holds {len(names)} scans ({shown}); choose one with --scan (e.g. --scan {names[0]})"
        )
    s = str(scan).strip()
    if s in names:
        return s
    if re.fullmatch(r"\d+", s):
        s = s + ".1"
    matches = [n for n in names if n == s or n.endswith("_" + s)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise BCDIError(f"{p}: scan '{scan}' is ambiguous ({', '.join(matches)}); give the full scan name")
    raise BCDIError(f"{p}: no scan '{scan}' in this file; available scans: {shown}")


def _scan_group(f, name: str, p: Path):
    g = h.get(f, name)
    if not h.is_group(g):
        link = f.get(name, getlink=True)
        target = getattr(link, "filename", None)
        where = f" ({target})" if target else ""
        raise BCDIError(
            f"{p}: scan {name} points to a file that is missing{where}; copy it next to the master file"
        )
    return g


def detectors(scan_group) -> list[str]:
    """Names under ``measurement/`` that are 3D (frames, rows, cols) datasets."""
    meas = h.get(scan_group, "measurement")
    if not h.is_group(meas):
        return []
    found = []
    for name in meas:
        ds = h.get(meas, name)
        if h.is_dataset(ds) and len(ds.shape) == 3:
            found.append(name)
    known = [d for d in KNOWN_DETECTORS if d in found]
    return known + sorted(d for d in found if d not in known)


def _choose_detector(scan_group, detector: str | None, p: Path, scan: str) -> str:
    dets = detectors(scan_group)
    meas = h.get(scan_group, "measurement")
    if detector is not None:
        if detector in dets:
            return detector
        if h.is_group(meas) and detector in meas:
            link = meas.get(detector, getlink=True)
            if h.get(meas, detector) is None:
                raise BCDIError(
                    f"{p}: the frames of {scan}/measurement/{detector} are in a file that is missing "
                    f"({getattr(link, 'filename', '?')}); copy the scan folder next to the master file"
                )
            raise BCDIError(
                f"{p}: {scan}/measurement/{detector} is not a 3D stack of frames; choose a detector"
            )
        raise BCDIError(
            f"{p}: no detector '{detector}' in scan {scan}; available: {', '.join(dets) or 'none'}"
        )
    if not dets:
        broken = []
        if h.is_group(meas):
            broken = [n for n in meas if h.get(meas, n) is None]
        if broken:
            raise BCDIError(
                f"{p}: the detector frames of scan {scan} ({', '.join(broken)}) are in files that are "
                "missing; "
                "copy the scan folder next to the master file"
            )
        raise BCDIError(
            f"{p}: scan {scan} has no detector images in measurement/ (only counters); choose another scan"
        )
    known = [d for d in dets if d in KNOWN_DETECTORS]
    if len(dets) == 1 or len(known) == 1:
        return known[0] if known else dets[0]
    raise BCDIError(f"{p}: scan {scan} has several detectors ({', '.join(dets)}); choose one with --detector")


def _positions(scan_group, motor: str) -> np.ndarray | None:
    for path in (
        f"instrument/positioners/{motor}",
        f"measurement/{motor}",
        f"instrument/positioners_start/{motor}",
    ):
        v = h.values(scan_group, path)
        if v is not None and v.size:
            return v.reshape(-1)
    return None


def geometry_of(scan_group, detector: str, n_frames: int) -> tuple[Geometry, dict]:
    """Energy, distance, pixel size, beam centre and angles of a scan (what the file has)."""
    g = Geometry(detector=detector)
    meta: dict = {}
    det = h.get(scan_group, f"instrument/{detector}")
    if h.is_group(det):
        g.distance_m = h.length_m(det, "distance", typical_m=1.0)
        px = h.length_m(det, "x_pixel_size", typical_m=5e-5)
        py = h.length_m(det, "y_pixel_size", typical_m=5e-5)
        if px is not None or py is not None:
            g.pixel_size_m = (py if py is not None else px, px if px is not None else py)
        bx, by = h.scalar(det, "beam_center_x"), h.scalar(det, "beam_center_y")
        if bx is not None and by is not None:
            g.beam_center = (by, bx)
    g.energy_kev = (
        h.energy_kev(scan_group, "instrument/positioners/mononrj")
        or h.energy_kev(scan_group, "instrument/positioners_start/mononrj")
        or h.wavelength_to_kev(scan_group, "instrument/monochromator/WaveLength")
        or h.energy_kev(scan_group, "instrument/monochromator/energy")
    )
    for motor in ANGLES:
        v = _positions(scan_group, motor)
        if v is None:
            continue
        finite = v[np.isfinite(v)]
        if finite.size == 0:
            continue
        g.angles_deg[motor] = float(np.mean(finite))
        if motor in ROCKING_MOTORS and finite.size >= 2 and np.ptp(finite) > 0 and g.rocking_motor is None:
            g.rocking_motor = motor
            g.rocking_step_deg = float(np.mean(np.diff(finite)))
            if finite.size != n_frames:
                meta["rocking_positions_mismatch"] = f"{finite.size} {motor} positions for {n_frames} frames"
    title = h.text(scan_group, "title")
    if title:
        meta["title"] = title
        if g.rocking_motor is None:
            parts = title.split()
            if len(parts) >= 5 and parts[0] in ("ascan", "dscan") and parts[1] in ROCKING_MOTORS:
                try:
                    start, stop, intervals = float(parts[2]), float(parts[3]), int(float(parts[4]))
                except ValueError:
                    intervals = 0
                if intervals > 0:  # BLISS/SPEC step scans take intervals: N intervals, N + 1 points
                    g.rocking_motor = parts[1]
                    g.rocking_step_deg = (stop - start) / intervals
                    meta["rocking_step_from"] = "scan title"
    sample = h.text(scan_group, "sample/name")
    if sample:
        meta["sample"] = sample
    return g, meta


def read_bliss(
    f,
    p: Path,
    *,
    scan: str | None = None,
    detector: str | None = None,
    roi: Sequence[int] | None = None,
) -> LoadedData:
    """Read one scan's detector stack (float32) and geometry from an open BLISS master file."""
    name = resolve_scan(f, scan, p)
    group = _scan_group(f, name, p)
    det = _choose_detector(group, detector, p, name)
    ds = h.get(group, f"measurement/{det}")
    check_numeric_dtype(ds.dtype, p, f"{name}/measurement/{det}")
    check_ndim(ds.shape, p, f"{name}/measurement/{det}")
    data = read_h5_into(ds, p, roi)
    data, mask, meta = finish_intensity(data, p, ds.dtype, None, f"scan {name} {det}")
    geometry, gmeta = geometry_of(group, det, data.shape[0])
    if roi is not None:
        geometry.roi = tuple(int(v) for v in roi)
    meta.update(gmeta)
    meta.update(
        format="bliss",
        scan=name,
        detector=det,
        dataset=ds.name,
        stored_dtype=str(ds.dtype),
        virtual=bool(getattr(ds, "is_virtual", False)),
    )
    return LoadedData(data=data, kind="intensity", mask=mask, geometry=geometry, source=p, meta=meta)
