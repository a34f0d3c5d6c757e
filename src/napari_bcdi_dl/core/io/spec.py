"""SPEC scans with TIFF frames (APS 34-ID-C): motors, energy and detector distance from the SPEC file.

A SPEC file is read with silx's maintained reader (``silx.io.specfile.SpecFile``); its frames are the
single-image TIFF files of the scan, in a folder next to it whose name carries the scan number
(``<sample>_S0012/``, ``S12/``, ``scan_12/``...; up to three levels down from the SPEC file's folder).

What is taken from the scan (34-ID-C names, case-insensitive; bcdi's ``Loader34ID`` uses the same):

- the rocking motor: the motor of the scan command (``#S 12 ascan Theta 10.2 11.2 100 1``), normally
  ``theta``; its positions are the data column of that motor, the step is ``(last - first) / (n - 1)`` and
  its angle in the geometry is the mean over the frames;
- the circles ``Theta``, ``Chi``, ``Phi``, ``Delta``, ``Gamma`` (positioners ``#P``, or data columns);
- ``Energy`` in keV (a value above 100 is taken as eV) and the detector distance ``camdist`` in mm;
- the pixel size from the detector: given (``detector=``) or, for 516 × 516 frames, the 34-ID-C Timepix
  quad (55 µm, said so in ``meta["notes"]``).

The geometry then names the 34-ID-C circles, so ``core.geometry`` computes its voxel sizes with the 34-ID-C
diffractometer (:data:`~napari_bcdi_dl.core.geometry.APS_34IDC`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BCDIError
from ..types import Geometry, LoadedData
from ._common import existing_path

#: geometry names -> SPEC motor names tried (lower case)
MOTORS = {
    "theta": ("theta", "th"),
    "chi": ("chi",),
    "phi": ("phi",),
    "delta": ("delta", "del"),
    "gamma": ("gamma", "gam"),
}
ENERGY_NAMES = ("energy", "mono_energy", "energy_kev")
DISTANCE_NAMES = ("camdist", "detdist", "det_dist", "distance")
SCAN_COMMANDS = ("ascan", "dscan", "lup", "rscan", "a2scan", "d2scan", "timescan", "rocking", "thscan")
SPEC_SUFFIXES = (".spec", ".spc")
_FRAME_SUFFIXES = (".tif", ".tiff")


def is_spec_file(path) -> bool:
    """True for a text file whose first lines are SPEC headers (``#F``, ``#E``, ``#D``, ``#S``)."""
    p = Path(path)
    try:
        if not p.is_file() or p.stat().st_size == 0:
            return False
        with open(p, "rb") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    if b"\0" in head:
        return False
    lines = [ln.strip() for ln in head.decode("latin-1").splitlines() if ln.strip()]
    return bool(lines) and any(ln.startswith(("#F ", "#S ")) for ln in lines[:10]) and lines[0].startswith("#")


def _open(p: Path):
    from silx.io.specfile import SfErrFileOpen, SpecFile

    try:
        return SpecFile(str(p))
    except (SfErrFileOpen, OSError, Exception) as err:  # noqa: BLE001 - silx raises its own error types
        raise BCDIError(f"{p}: not a readable SPEC file ({' '.join(str(err).split())[:100]})") from None


def spec_scans(path) -> list[str]:
    """Scan numbers of a SPEC file in file order (``"12"``; ``"12.2"`` for a repeated number)."""
    p = existing_path(path)
    sf = _open(p)
    try:
        return [k.removesuffix(".1") for k in sf.keys()]  # noqa: SIM118 - iterating a SpecFile yields scans
    finally:
        sf.close()


def _scan_key(sf, scan: str | None, p: Path) -> str:
    keys = list(sf.keys())
    if not keys:
        raise BCDIError(f"{p}: the SPEC file holds no scan")
    if scan is None:
        if len(keys) == 1:
            return keys[0]
        shown = ", ".join(k.removesuffix(".1") for k in keys[:10])
        raise BCDIError(f"{p} holds {len(keys)} scans ({shown}{' ...' if len(keys) > 10 else ''}); choose one "
                        "with --scan N")
    s = str(scan).strip()
    key = s if "." in s else f"{s}.1"
    if key not in keys:
        raise BCDIError(f"{p}: no scan {s} in the SPEC file; its scans are "
                        + ", ".join(k.removesuffix(".1") for k in keys[:20]))
    return key


def _lookup(names_values: dict, candidates: Sequence[str]):
    for c in candidates:
        if c in names_values:
            return names_values[c]
    return None


def _rocking(header: str, labels: list[str]) -> str | None:
    """The scanned motor of a SPEC scan command (``#S 12 ascan Theta 1 2 10 1``), as written."""
    tokens = header.split()
    if len(tokens) >= 3 and tokens[1].lower() in SCAN_COMMANDS and tokens[2] in labels:
        return tokens[2]
    for t in tokens[2:3]:
        for lab in labels:
            if lab.lower() == t.lower():
                return lab
    return labels[0] if labels and labels[0].lower() in {n for c in MOTORS.values() for n in c} else None


def find_frames_folder(spec_path, scan_number: str) -> Path:
    """The folder of the scan's TIFF frames next to the SPEC file (see the module docstring).

    Raises
    ------
    BCDIError
        No folder, or several candidates.
    """
    p = Path(spec_path)
    n = int(str(scan_number).split(".")[0])
    pattern = re.compile(rf"(?:^|[^0-9])(?:[Ss]|scan_?)?0*{n}(?:$|[^0-9])")
    base = p.parent
    found = []
    for d in sorted(_dirs(base, 3)):
        if not pattern.search(d.name):
            continue
        n_frames = sum(1 for f in d.iterdir() if f.is_file() and f.suffix.lower() in _FRAME_SUFFIXES)
        if n_frames >= 2:
            found.append(d)
    if not found:
        raise BCDIError(f"{p}: no folder of TIFF frames for scan {n} next to the SPEC file (expected e.g. "
                        f"{p.stem}_S{n:04d}/ holding the scan's .tif frames); give the frames folder")
    if len(found) > 1:
        # prefer the explicit S<number> spelling of 34-ID-C (``sample_S0012``)
        strict = [d for d in found if re.search(rf"[Ss]0*{n}(?:$|[^0-9])", d.name)]
        if len(strict) == 1:
            return strict[0]
        shown = ", ".join(str(d.relative_to(base)) for d in found[:5])
        raise BCDIError(f"{p}: several frame folders match scan {n} ({shown}); give the frames folder")
    return found[0]


def _dirs(base: Path, depth: int):
    if depth <= 0:
        return
    try:
        children = [c for c in base.iterdir() if c.is_dir() and not c.name.startswith(".")]
    except OSError:
        return
    for c in children:
        yield c
        yield from _dirs(c, depth - 1)


def _pixel_size(detector: str | None, frame_shape, notes: list) -> tuple[tuple[float, float] | None, str | None]:
    if detector:
        from ..masks import get_preset, pyfai_detector

        det = pyfai_detector(detector)
        if det is not None:
            return (float(det.pixel1), float(det.pixel2)), detector
        try:
            px = get_preset(detector).pixel_size_m
            return (px, px), detector
        except BCDIError:
            notes.append(f"detector {detector!r} unknown: pixel size not set")
            return None, detector
    if tuple(frame_shape) == (516, 516):
        notes.append("516x516 frames: the 34-ID-C Timepix quad assumed (55 um pixels); give the detector if "
                     "not")
        return (55e-6, 55e-6), "timepix"
    notes.append(f"pixel size unknown for {frame_shape[0]}x{frame_shape[1]} frames: give the detector")
    return None, None


def read_spec_scan(
    path,
    scan: str | None = None,
    *,
    frames=None,
    roi: Sequence[int] | None = None,
    detector: str | None = None,
) -> LoadedData:
    """Read one scan of a SPEC file and its TIFF frames as a float32 intensity with its 34-ID-C geometry.

    Parameters
    ----------
    path : the SPEC file.
    scan : scan number (``"12"`` or ``"12.1"``); needed when the file holds several.
    frames : folder of the scan's TIFF frames (default: found next to the SPEC file).
    roi : detector region ``(row0, row1, col0, col1)`` to keep.
    detector : detector name (pixel size, module gaps); default: guessed from the frame size.

    Returns
    -------
    LoadedData
        ``meta``: ``format="spec"``, ``scan``, ``command``, ``frames_folder``, ``motors`` (every positioner),
        ``rocking_positions``, ``notes``.

    Raises
    ------
    BCDIError
        Unreadable SPEC file, unknown scan, no frames, a number of frames that differs from the scan's
        points, a scan without a moving motor.
    """
    from .frames import read_frames

    p = existing_path(path)
    sf = _open(p)
    try:
        key = _scan_key(sf, scan, p)
        sc = sf[key]
        header = str(sc.scan_header_dict.get("S", ""))
        labels = list(sc.labels)
        data = np.atleast_2d(np.asarray(sc.data, dtype=float))
        motors = {str(n).lower(): float(v) for n, v in zip(sc.motor_names, sc.motor_positions)}
    except BCDIError:
        raise
    except Exception as err:  # noqa: BLE001 - silx raises several types for a broken scan
        raise BCDIError(f"{p}: scan {scan} cannot be read ({' '.join(str(err).split())[:100]})") from None
    finally:
        sf.close()
    number = key.removesuffix(".1")
    columns = {lab.lower(): data[i] for i, lab in enumerate(labels) if i < data.shape[0]}
    n_points = int(data.shape[1]) if data.size else 0
    motor = _rocking(header, labels)
    if motor is None or motor.lower() not in columns:
        raise BCDIError(f"{p}: scan {number} ('{header}') moves no motor of its data columns; a rocking scan "
                        "(e.g. 'ascan Theta ...') is needed")
    positions = columns[motor.lower()]
    if n_points < 2:
        raise BCDIError(f"{p}: scan {number} has {n_points} point(s); a rocking scan needs several")
    step = float(positions[-1] - positions[0]) / (n_points - 1)
    if step == 0 or not np.isfinite(step):
        raise BCDIError(f"{p}: the rocking motor {motor} of scan {number} does not move (step {step})")

    folder = Path(frames) if frames is not None else find_frames_folder(p, number)
    loaded = read_frames(existing_path(folder, "folder"), roi=roi)
    if loaded.data.shape[0] != n_points:
        raise BCDIError(f"{folder}: {loaded.data.shape[0]} frames but scan {number} of {p.name} has {n_points} "
                        "points; give the frames folder of this scan")

    angles = {}
    for name, spec_names in MOTORS.items():
        v = _lookup(columns, spec_names)
        if v is not None:
            angles[name] = float(np.mean(v))
        elif (w := _lookup(motors, spec_names)) is not None:
            angles[name] = float(w)
    rock = next((n for n, c in MOTORS.items() if motor.lower() in c), motor.lower())
    energy = _lookup(motors, ENERGY_NAMES)
    if energy is None and (col := _lookup(columns, ENERGY_NAMES)) is not None:
        energy = float(np.mean(col))
    if energy is not None:
        energy = float(energy) / 1000.0 if energy > 100 else float(energy)
    dist = _lookup(motors, DISTANCE_NAMES)
    notes: list = []
    if energy is None:
        notes.append("no Energy motor in the SPEC scan: give the energy")
    if dist is None:
        notes.append("no camdist (detector distance) in the SPEC scan: give the distance")
    full = loaded.data.shape[1:]
    if roi is not None:
        from .frames import frame_files
        from .tiff import tiff_shape

        full = tiff_shape(frame_files(folder)[0])[0][-2:]
    pixel, det_name = _pixel_size(detector, full, notes)
    geometry = Geometry(
        energy_kev=None if energy is None or energy <= 0 else energy,
        distance_m=None if dist is None or dist <= 0 else float(dist) / 1000.0,
        pixel_size_m=pixel,
        rocking_step_deg=step,
        rocking_motor=rock,
        angles_deg=angles,
        roi=None if roi is None else tuple(int(v) for v in roi),
        detector=det_name,
    )
    meta = dict(loaded.meta)
    meta.update(format="spec", scan=number, command=header, frames_folder=str(folder), motors=motors,
                rocking_positions=[float(v) for v in positions], notes=notes, spec_file=str(p))
    return LoadedData(data=loaded.data, mask=loaded.mask, geometry=geometry, source=p, meta=meta)
