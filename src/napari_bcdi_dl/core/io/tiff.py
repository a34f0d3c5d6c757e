"""TIFF: a multi-page TIFF holds a rocking scan, one detector frame per page.

Pages are converted to float32 one at a time into the output array (never the whole stack twice).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BCDIError
from ..types import Geometry, LoadedData
from ._common import (
    INTENSITY_DTYPE,
    OBJECT_DTYPE,
    as_mask,
    check_ndim,
    check_numeric_dtype,
    existing_path,
    finish_intensity,
    finish_object,
    is_complex_dtype,
    roi_selection,
)


def _open(p: Path):
    import tifffile

    if p.stat().st_size == 0:
        raise BCDIError(f"{p} is an empty file (0 bytes); export the stack again")
    try:
        return tifffile.TiffFile(str(p))
    except (tifffile.TiffFileError, ValueError, OSError, struct.error) as err:
        raise BCDIError(
            f"{p} is not a readable TIFF ({' '.join(str(err).split())[:100]}); export it again"
        ) from None


def tiff_shape(path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the first image series (headers only)."""
    p = existing_path(path)
    with _open(p) as tif:
        if not tif.series:
            raise BCDIError(f"{p}: the TIFF holds no image; export the stack again")
        s = tif.series[0]
        return tuple(int(n) for n in s.shape), np.dtype(s.dtype)


def read_tiff(path, *, roi: Sequence[int] | None = None) -> LoadedData:
    """Read a multi-page TIFF stack (frames, rows, cols) as float32 intensity (complex -> object)."""
    p = existing_path(path)
    with _open(p) as tif:
        if not tif.series:
            raise BCDIError(f"{p}: the TIFF holds no image; export the stack again")
        series = tif.series[0]
        dtype = np.dtype(series.dtype)
        check_numeric_dtype(dtype, p)
        shape3 = check_ndim(series.shape, p, "the TIFF stack")
        sel = roi_selection(shape3, roi, p)
        frame_sel = sel[1:]
        complex_data = is_complex_dtype(dtype)
        out_dtype = OBJECT_DTYPE if complex_data else INTENSITY_DTYPE
        ny = len(range(*frame_sel[0].indices(shape3[1])))
        nx = len(range(*frame_sel[1].indices(shape3[2])))
        out = np.empty((shape3[0], ny, nx), dtype=out_dtype)
        pages = list(series.pages)
        try:
            if len(pages) == shape3[0] and all(pg is not None for pg in pages):
                for i, page in enumerate(pages):
                    frame = page.asarray()
                    frame = frame.reshape(shape3[1:])
                    out[i] = frame[frame_sel]
            else:  # one page holding the whole volume, or an unusual layout: one extra copy is accepted
                whole = series.asarray().reshape(shape3)
                np.copyto(out, whole[sel], casting="unsafe")
                del whole
        except (ValueError, OSError, RuntimeError, IndexError) as err:
            raise BCDIError(
                f"{p}: the TIFF frames cannot be decoded ({' '.join(str(err).split())[:100]}); the file is "
                "truncated or uses an unsupported compression"
            ) from None
    geometry = Geometry(roi=None if roi is None else tuple(int(v) for v in roi))
    if complex_data:
        return LoadedData(
            data=finish_object(out, p), kind="object", source=p, geometry=geometry, meta={"format": "tiff"}
        )
    out, mask, meta = finish_intensity(out, p, dtype)
    meta.update(format="tiff", stored_dtype=str(dtype))
    return LoadedData(data=out, mask=mask, source=p, geometry=geometry, meta=meta)


def read_tiff_mask(path, shape) -> np.ndarray:
    """A mask stored as a TIFF (2D detector mask or 3D), as uint8 of ``shape``."""
    p = existing_path(path)
    with _open(p) as tif:
        if not tif.series:
            raise BCDIError(f"{p}: the TIFF holds no image")
        try:
            values = tif.series[0].asarray()
        except (ValueError, OSError, RuntimeError) as err:
            raise BCDIError(f"{p}: the TIFF cannot be decoded ({err})") from None
    return as_mask(values, shape, p)


def read_tiff_frame(path: Path) -> np.ndarray:
    """One 2D frame of a single-frame TIFF (for frame folders)."""
    with _open(path) as tif:
        if not tif.series:
            raise BCDIError(f"{path}: the TIFF holds no image; remove it from the folder")
        try:
            frame = tif.series[0].asarray()
        except (ValueError, OSError, RuntimeError) as err:
            raise BCDIError(
                f"{path}: the TIFF frame cannot be decoded ({err}); remove or replace it"
            ) from None
    if frame.ndim == 3 and frame.shape[0] == 1:
        frame = frame[0]
    if frame.ndim != 2:
        raise BCDIError(f"{path}: expected one 2D detector frame, found shape {frame.shape}")
    return frame
