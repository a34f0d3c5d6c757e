"""A folder of single-frame detector images (TIFF or EDF), one file per rocking step.

Frames are sorted naturally by frame number (``img_9.edf`` before ``img_10.edf``) and converted to
float32 one at a time into the output stack. A folder holding two series (``scan12_*`` and ``scan13_*``) or
two formats is refused rather than guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BCDIError
from ..types import Geometry, LoadedData
from ._common import INTENSITY_DTYPE, existing_path, finish_intensity, natural_key, roi_selection
from .tiff import read_tiff_frame

TIFF_SUFFIXES = (".tif", ".tiff")
EDF_SUFFIXES = (".edf", ".edf.gz")
FRAME_SUFFIXES = TIFF_SUFFIXES + EDF_SUFFIXES


def _suffix(p: Path) -> str | None:
    name = p.name.lower()
    for s in sorted(FRAME_SUFFIXES, key=len, reverse=True):
        if name.endswith(s):
            return s
    return None


def frame_files(folder) -> list[Path]:
    """The frame files of ``folder`` in acquisition order (natural sort), checked to form one series."""
    d = existing_path(folder, "folder")
    if not d.is_dir():
        raise BCDIError(f"{d} is not a folder")
    files = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".") and _suffix(p)]
    if not files:
        raise BCDIError(
            f"{d}: no .tif/.tiff/.edf frames in this folder; choose the folder of the scan frames"
        )
    kinds = {"edf" if _suffix(p) in EDF_SUFFIXES else "tiff" for p in files}
    if len(kinds) > 1:
        raise BCDIError(f"{d} mixes TIFF and EDF frames; keep one scan's frames per folder")
    series = Counter(_series_name(p) for p in files)
    if len(series) > 1:
        names = ", ".join(sorted(series)[:4])
        raise BCDIError(f"{d} holds frames of several series ({names}); keep one scan's frames per folder")
    if len(files) < 2:
        raise BCDIError(f"{d} holds a single frame ({files[0].name}); a rocking scan needs several frames")
    return sorted(files, key=lambda p: natural_key(p.name))


def _series_name(p: Path) -> str:
    """The file name with its frame number (the last group of digits) and suffix removed."""
    stem = p.name[: -len(_suffix(p) or "")]
    return re.sub(r"\d+(?!.*\d)", "#", stem)


def _read_edf(path: Path) -> np.ndarray:
    import fabio

    try:
        img = fabio.open(str(path))
        frame = img.data
    except Exception as err:  # noqa: BLE001 - fabio raises many types for broken files
        raise BCDIError(
            f"{path}: not a readable EDF frame ({' '.join(str(err).split())[:100]}); remove or replace it"
        ) from None
    if frame is None or frame.ndim != 2:
        raise BCDIError(
            f"{path}: expected one 2D detector frame, found {None if frame is None else frame.shape}"
        )
    return frame


def read_frame(path: Path) -> np.ndarray:
    """One 2D frame from a TIFF or EDF file."""
    if _suffix(path) in EDF_SUFFIXES:
        return _read_edf(path)
    return read_tiff_frame(path)


def read_frames(folder, *, roi: Sequence[int] | None = None) -> LoadedData:
    """Stack the frames of a folder into a float32 (frames, rows, cols) intensity."""
    files = frame_files(folder)
    d = Path(folder)
    first = read_frame(files[0])
    shape = (len(files),) + first.shape
    sel = roi_selection(shape, roi, d)[1:]
    ny = len(range(*sel[0].indices(shape[1])))
    nx = len(range(*sel[1].indices(shape[2])))
    out = np.empty((len(files), ny, nx), dtype=INTENSITY_DTYPE)
    dtypes = set()
    for i, f in enumerate(files):
        frame = first if i == 0 else read_frame(f)
        if frame.shape != first.shape:
            raise BCDIError(
                f"{f}: frame shape {frame.shape} differs from {files[0].name} {first.shape}; "
                "all frames of a scan "
                "have the detector's shape"
            )
        if not (np.issubdtype(frame.dtype, np.number) and not np.issubdtype(frame.dtype, np.complexfloating)):
            raise BCDIError(f"{f}: frame dtype {frame.dtype} is not real counts")
        dtypes.add(frame.dtype)
        out[i] = frame[sel]
    src_dtype = dtypes.pop() if len(dtypes) == 1 else None
    out, mask, meta = finish_intensity(out, d, src_dtype)
    meta.update(
        format="frames",
        frames=[f.name for f in files],
        stored_dtype=str(src_dtype) if src_dtype is not None else "mixed",
    )
    geometry = Geometry(roi=None if roi is None else tuple(int(v) for v in roi))
    return LoadedData(data=out, mask=mask, source=d, geometry=geometry, meta=meta)


def read_edf_stack(path, *, roi: Sequence[int] | None = None) -> LoadedData:
    """A single multi-frame EDF file as a stack (a single-frame EDF is refused: open its folder)."""
    import fabio

    p = existing_path(path)
    if p.stat().st_size == 0:
        raise BCDIError(f"{p} is an empty file (0 bytes)")
    try:
        img = fabio.open(str(p))
        n = int(getattr(img, "nframes", 1) or 1)
        first = img.data
    except Exception as err:  # noqa: BLE001
        raise BCDIError(f"{p}: not a readable EDF file ({' '.join(str(err).split())[:100]})") from None
    if n < 2:
        raise BCDIError(f"{p} holds a single frame; open the folder of the scan's frames instead")
    shape = (n,) + first.shape
    sel = roi_selection(shape, roi, p)[1:]
    ny = len(range(*sel[0].indices(shape[1])))
    nx = len(range(*sel[1].indices(shape[2])))
    out = np.empty((n, ny, nx), dtype=INTENSITY_DTYPE)
    try:
        for i in range(n):
            frame = first if i == 0 else img.getframe(i).data
            out[i] = frame[sel]
    except Exception as err:  # noqa: BLE001
        raise BCDIError(f"{p}: frame {i} cannot be read ({' '.join(str(err).split())[:100]})") from None
    out, mask, meta = finish_intensity(out, p, first.dtype)
    meta.update(format="edf", stored_dtype=str(first.dtype))
    geometry = Geometry(roi=None if roi is None else tuple(int(v) for v in roi))
    return LoadedData(data=out, mask=mask, source=p, geometry=geometry, meta=meta)
