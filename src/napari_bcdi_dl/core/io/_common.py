"""Helpers shared by the readers: path checks, HDF5 opening, one-pass float32 conversion, validation.

Memory rule: a scan is read straight into its final ``float32`` (or ``complex64``) array with one
conversion. Sources are never loaded whole in their stored dtype and then converted (that would hold two
copies): HDF5 converts while reading (``read_direct``), ``.npy`` is memory-mapped, ``.npz`` members and
frame files are converted block by block or frame by frame.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import BCDIError

INTENSITY_DTYPE = np.float32
OBJECT_DTYPE = np.complex64

#: Unsigned integer values that detectors write for invalid pixels (Dectris: 2**bits - 1 in masked pixels).
_INVALID_UINT = {np.dtype(np.uint16): 65535, np.dtype(np.uint32): 4294967295}


def existing_path(path, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path`, raising a one-line :class:`BCDIError` when it does not exist."""
    p = Path(path).expanduser()
    if not p.exists():
        raise BCDIError(f"{p}: no such {what}; check the path")
    return p


def short(path) -> str:
    """The path as written in error messages."""
    return str(path)


@contextlib.contextmanager
def open_h5(path: Path) -> Iterator[object]:
    """Open an HDF5 file read-only with the ESRF compression filters registered.

    ``hdf5plugin`` is imported first: ESRF detector data are bitshuffle/LZ4 compressed and h5py cannot
    decompress them without it. Any failure to open becomes a one-line :class:`BCDIError`.
    """
    import h5py
    import hdf5plugin  # noqa: F401  (registers bitshuffle/LZ4/... before h5py opens the file)

    p = existing_path(path)
    if p.is_dir():
        raise BCDIError(f"{p} is a folder, an HDF5 file was expected")
    if p.stat().st_size == 0:
        raise BCDIError(f"{p} is an empty file (0 bytes): the copy or the acquisition did not finish")
    if not h5py.is_hdf5(str(p)):
        raise BCDIError(f"{p} is not an HDF5 file (no HDF5 signature): check that it is a .cxi/.h5 file")
    try:
        f = h5py.File(str(p), "r")
    except OSError as err:
        raise BCDIError(
            f"{p} cannot be opened as HDF5 ({_first_line(err)}): the file is truncated or corrupt; "
            "copy it again"
        ) from None
    try:
        yield f
    finally:
        f.close()


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:160] if text else type(err).__name__


def read_h5_into(
    ds, path: Path, roi: Sequence[int] | None = None, *, complex_out: bool = False
) -> np.ndarray:
    """Read an h5py dataset straight into a new float32 (or complex64) array, one conversion, no copy.

    A virtual dataset whose source files are missing reads as zeros in HDF5; that is refused here.
    """
    check_virtual_sources(ds, path)
    shape = tuple(ds.shape)
    sel = roi_selection(shape, roi, path)
    out_shape = tuple(len(range(*s.indices(n))) for s, n in zip(sel, shape))
    dtype = OBJECT_DTYPE if complex_out else INTENSITY_DTYPE
    out = np.empty(out_shape, dtype=dtype)
    try:
        if out.size:
            ds.read_direct(out, source_sel=sel if roi is not None else None)
    except (OSError, RuntimeError, ValueError, TypeError) as err:
        raise BCDIError(
            f"{path}: dataset {ds.name} cannot be read ({_first_line(err)}): the file is truncated, "
            "corrupt, or "
            "compressed with a filter that is not installed (pip install hdf5plugin)"
        ) from None
    return out


def check_virtual_sources(ds, path: Path) -> None:
    """Refuse a virtual (VDS) dataset whose source files are missing: HDF5 would return zeros silently."""
    try:
        if not ds.is_virtual:
            return
        sources = ds.virtual_sources()
    except Exception:  # noqa: BLE001 - an old HDF5 without VDS introspection: nothing to check
        return
    base = Path(ds.file.filename).parent
    for src in sources:
        name = src.file_name
        if name in (".", ""):
            continue
        candidate = Path(name)
        if not candidate.is_absolute():
            candidate = base / candidate
        if not candidate.exists():
            raise BCDIError(
                f"{path}: the detector frames of {ds.name} are in {name}, which is missing next to the "
                "master "
                "file; copy the scan folder together with the master file"
            )


def roi_selection(shape: Sequence[int], roi: Sequence[int] | None, path) -> tuple:
    """Slices ``(all frames, rows r0:r1, cols c0:c1)`` for a detector ROI ``(r0, r1, c0, c1)``, checked."""
    if roi is None:
        return tuple(slice(None) for _ in shape)
    if len(roi) != 4:
        raise BCDIError(f"ROI {tuple(roi)} must be (row0, row1, col0, col1)")
    r0, r1, c0, c1 = (int(v) for v in roi)
    ny, nx = shape[-2], shape[-1]
    if not (0 <= r0 < r1 <= ny and 0 <= c0 < c1 <= nx):
        raise BCDIError(
            f"{path}: ROI rows {r0}:{r1}, cols {c0}:{c1} is outside the {ny}x{nx} detector frames; "
            "give a ROI "
            "inside the frame"
        )
    return (slice(None),) * (len(shape) - 2) + (slice(r0, r1), slice(c0, c1))


def check_ndim(shape: Sequence[int], path, what: str = "data") -> tuple[int, ...]:
    """Return the 3D shape (a leading axis of length 1 is dropped) or raise for 2D/4D/empty arrays."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 3:
        hint = (
            "a single frame: open the whole rocking scan (a 3D stack or a folder of frames)"
            if len(shape) == 2
            else "a 3D stack (frames, rows, cols) is expected"
        )
        raise BCDIError(f"{path}: {what} has {len(shape)} dimensions {shape}; {hint}")
    if min(shape) < 2:
        raise BCDIError(f"{path}: {what} has shape {shape}; each axis needs at least 2 voxels")
    return shape


def is_complex_dtype(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.complexfloating)


def check_numeric_dtype(dtype, path, what: str = "data") -> None:
    dt = np.dtype(dtype)
    if not (np.issubdtype(dt, np.number) or dt == np.bool_):
        raise BCDIError(f"{path}: {what} has dtype {dt}, numbers were expected; save the counts as numbers")


def finish_intensity(
    data: np.ndarray, path, source_dtype, mask: np.ndarray | None = None, where: str = "intensity"
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Validate float32 counts in place of a fresh array: finite, non-negative; flag detector invalid values.

    Pixels holding the detector's "invalid" value (``2**bits - 1`` of unsigned 16/32-bit data, as Dectris
    detectors write in masked pixels) are set to 0 and added to the mask. Returns ``(data, mask, meta)``.
    """
    meta: dict = {}
    if data.size == 0:
        raise BCDIError(f"{path}: {where} is empty (shape {data.shape}); the file holds no frames")
    mn = float(data.min())
    mx = float(data.max())
    if np.isnan(mn) or np.isnan(mx):
        n = int(np.count_nonzero(np.isnan(data)))
        raise BCDIError(
            f"{path}: {where} holds {n} NaN voxels; counts must be finite: set them to 0 and mask them, "
            "then load again"
        )
    if np.isinf(mn) or np.isinf(mx):
        n = int(np.count_nonzero(np.isinf(data)))
        raise BCDIError(
            f"{path}: {where} holds {n} infinite voxels; counts must be finite: set them to 0 and mask them"
        )
    if mn < 0:
        n = int(np.count_nonzero(data < 0))
        raise BCDIError(
            f"{path}: {where} holds {n} negative counts (min {mn:g}); photon counts are >= 0: "
            "set them to 0 and "
            "mask them (detectors write -1/-2 in gaps)"
        )
    invalid = _INVALID_UINT.get(np.dtype(source_dtype)) if source_dtype is not None else None
    if invalid is not None and mx == float(np.float32(invalid)):
        bad = data == np.float32(invalid)
        n = int(np.count_nonzero(bad))
        data[bad] = 0
        bad_u8 = bad.view(np.uint8)
        mask = bad_u8 if mask is None else np.maximum(mask, bad_u8)
        meta["invalid_pixels"] = n
        meta["invalid_value"] = invalid
    return data, mask, meta


def finish_object(obj: np.ndarray, path, where: str = "object") -> np.ndarray:
    """Check a complex64 object is finite (no temporary array the size of the object)."""
    if obj.size == 0:
        raise BCDIError(f"{path}: {where} is empty (shape {obj.shape})")
    s = obj.sum(dtype=np.complex128)
    if not np.isfinite(s):
        raise BCDIError(
            f"{path}: {where} holds NaN or infinite values; the reconstruction is broken, run it again"
        )
    return obj


def as_mask(values: np.ndarray, shape: Sequence[int], path, what: str = "mask") -> np.ndarray:
    """Turn stored mask values into a uint8 (z, y, x) mask with 1 = invalid, shape-checked.

    A 2D mask of the detector frame shape applies to every frame (PyNX convention). Any non-zero value is
    invalid (PyNX: ``mask > 0`` is bad).
    """
    shape = tuple(int(s) for s in shape)
    values = np.asarray(values)
    check_numeric_dtype(values.dtype, path, what)
    if values.ndim == 4 and values.shape[0] == 1:
        values = values[0]
    if values.shape == shape:
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            raise BCDIError(
                f"{path}: {what} holds NaN or infinite values; a mask holds 0 (valid) and 1 (invalid)"
            )
        return (values != 0).astype(np.uint8)
    if values.ndim == 2 and values.shape == shape[1:]:
        frame = (values != 0).astype(np.uint8)
        return np.ascontiguousarray(np.broadcast_to(frame, shape))
    raise BCDIError(
        f"{path}: {what} has shape {values.shape} but the data have shape {shape}; "
        "use the mask made for these "
        "data (same ROI and number of frames)"
    )


def as_support(values: np.ndarray, shape: Sequence[int], path, what: str = "support") -> np.ndarray:
    """A uint8 support (1 = inside the crystal) of exactly ``shape``."""
    values = np.asarray(values)
    if values.ndim == 4 and values.shape[0] == 1:
        values = values[0]
    if tuple(values.shape) != tuple(shape):
        raise BCDIError(
            f"{path}: {what} has shape {values.shape} but the object has shape {tuple(shape)}; the file is "
            "inconsistent"
        )
    return (values != 0).astype(np.uint8)


_NUM = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders ``frame_2`` before ``frame_10``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in _NUM.split(name))


def to_text(value) -> str:
    """A string from an HDF5 scalar (bytes, numpy bytes, 0-d arrays)."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else (value[0] if value.size else "")
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    return str(value)
