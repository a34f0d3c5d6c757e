"""One entry point for every supported input: :func:`read`, :func:`can_read`, :func:`list_scans`,
:func:`read_mask`, and :func:`write_reconstruction` (by suffix).

Formats are recognised by what the file is (magic bytes, HDF5 layout), the suffix only picks the candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BCDIError
from ..types import Geometry, LoadedData, Reconstruction
from . import bliss, cxi, spec
from ._common import as_mask, existing_path, open_h5
from .frames import EDF_SUFFIXES, FRAME_SUFFIXES, frame_files, read_edf_stack, read_frames
from .npy import npy_header, npz_headers, read_npy, read_npz, read_npz_mask, to_json, write_npz
from .tiff import read_tiff, read_tiff_mask, tiff_shape

HDF5_SUFFIXES = (".cxi", ".h5", ".hdf5", ".nxs", ".hdf")
SUFFIXES = (".npy", ".npz", ".tif", ".tiff") + EDF_SUFFIXES + HDF5_SUFFIXES


def _suffix(p: Path) -> str:
    name = p.name.lower()
    if name.endswith(".edf.gz"):
        return ".edf.gz"
    return p.suffix.lower()


def format_of(path) -> str:
    """``"frames"``, ``"npy"``, ``"npz"``, ``"tiff"``, ``"edf"``, ``"hdf5"`` or ``"spec"`` (suffix, folder, SPEC header)."""
    p = Path(path)
    if p.is_dir():
        return "frames"
    s = _suffix(p)
    if s == ".npy":
        return "npy"
    if s == ".npz":
        return "npz"
    if s in (".tif", ".tiff"):
        return "tiff"
    if s in EDF_SUFFIXES:
        return "edf"
    if s in HDF5_SUFFIXES:
        return "hdf5"
    if s in spec.SPEC_SUFFIXES or spec.is_spec_file(p):
        return "spec"
    raise BCDIError(
        f"{p}: unknown file type '{s or p.name}'; supported: .npy .npz .tif .tiff .edf .cxi .h5 .hdf5 .nxs "
        "or a folder of frames"
    )


def read(
    path,
    *,
    scan: str | None = None,
    detector: str | None = None,
    roi: Sequence[int] | None = None,
) -> LoadedData:
    """Read a 3D intensity (or a reconstruction) from any supported format.

    Parameters
    ----------
    path : file or folder (a folder holds one scan's TIFF or EDF frames).
    scan : BLISS scan (``"12"``, ``"12.1"`` or the group name); needed when the file holds several.
    detector : BLISS detector under ``measurement/`` (found automatically when there is one).
    roi : optional detector region ``(row0, row1, col0, col1)``: only these rows and columns are read.

    Returns
    -------
    LoadedData
        ``kind="intensity"``: float32 counts (z, y, x), uint8 mask or None, geometry.
        ``kind="object"``: complex64 object, uint8 support or None, ``meta`` with llk/method/history.

    Raises
    ------
    BCDIError
        Missing, empty, truncated or unrecognised files; 2D/4D arrays; NaN/Inf/negative counts; a mask of
        another shape; ``scan``/``detector`` that do not apply or do not exist.
    """
    p = existing_path(path, "file or folder")
    fmt = format_of(p)
    if fmt == "spec":  # a SPEC scan (APS 34-ID-C) with its TIFF frames next to it
        return spec.read_spec_scan(p, scan, roi=roi, detector=detector)
    if fmt != "hdf5" and (scan is not None or detector is not None):
        raise BCDIError(
            f"{p}: --scan/--detector apply to BLISS master files only; leave them out for a {fmt} file"
        )
    if fmt == "frames":
        return read_frames(p, roi=roi)
    if p.is_dir():
        raise BCDIError(f"{p} is a folder, a file was expected")
    if fmt == "npy":
        return read_npy(p, roi=roi)
    if fmt == "npz":
        return read_npz(p, roi=roi)
    if fmt == "tiff":
        return read_tiff(p, roi=roi)
    if fmt == "edf":
        return read_edf_stack(p, roi=roi)
    with open_h5(p) as f:
        kind = cxi.classify(f)
        if kind is not None:
            if scan is not None or detector is not None:
                raise BCDIError(f"{p} is a CXI file: --scan/--detector apply to BLISS master files only")
            return cxi.read_cxi(f, p, roi=roi)
        if bliss.is_bliss(f):
            return bliss.read_bliss(f, p, scan=scan, detector=detector, roi=roi)
        raise BCDIError(
            f"{p}: HDF5 file without BCDI data (no /entry_1/.../data of a CXI file, no '<scan>.1/measurement/"
            "<detector>' of a BLISS file); open the CXI or BLISS master file"
        )


def list_scans(path) -> list[str]:
    """Scan names of a BLISS master file in scan order (``["1.1", "2.1"]``); ``[]`` for other formats."""
    p = existing_path(path, "file or folder")
    if p.is_dir():
        return []
    try:
        fmt = format_of(p)
    except BCDIError:
        return []
    if fmt == "spec":
        return spec.spec_scans(p)
    if fmt != "hdf5":
        return []
    with open_h5(p) as f:
        if cxi.classify(f) is not None:
            return []
        return bliss.scan_names(f)


def list_detectors(path, scan: str | None = None) -> list[str]:
    """3D detector datasets of a BLISS scan (known ID01 detectors first)."""
    p = existing_path(path)
    with open_h5(p) as f:
        name = bliss.resolve_scan(f, scan, p)
        return bliss.detectors(bliss._scan_group(f, name, p))


def can_read(path) -> bool:
    """Cheap check that ``path`` looks like data this package reads (never raises; reads headers only).

    True for: a folder of ≥ 2 TIFF/EDF frames of one series; ``.npy`` whose header says 3D (or 4D with a
    leading 1); ``.npz`` zip archives holding a 3D array or a mask; TIFF stacks with ≥ 2 frames; multi-frame
    EDF; ``.cxi`` files with an HDF5 signature; HDF5 files with a CXI or BLISS layout. 2D images and foreign
    HDF5 files are left to other readers.
    """
    try:
        return _can_read(Path(path))
    except Exception:  # noqa: BLE001 - contract: never raises
        return False


def _can_read(p: Path) -> bool:
    if not p.exists():
        return False
    if p.is_dir():
        try:
            return len(frame_files(p)) >= 2
        except BCDIError:
            # a folder of frames we would refuse with a reason (mixed series...): still ours to explain
            return any(f.is_file() and f.name.lower().endswith(FRAME_SUFFIXES) for f in p.iterdir())
    suffix = _suffix(p)
    if suffix not in SUFFIXES or p.stat().st_size == 0:
        return False
    if suffix == ".npy":
        shape, _dtype = npy_header(p)
        return _is_stack_shape(shape)
    if suffix == ".npz":
        headers = npz_headers(p)
        return any(_is_stack_shape(s) for s, _d in headers.values())
    if suffix in (".tif", ".tiff"):
        shape, _dtype = tiff_shape(p)
        return _is_stack_shape(shape)
    if suffix in EDF_SUFFIXES:
        import fabio

        with fabio.open(str(p)) as img:
            return int(getattr(img, "nframes", 1) or 1) >= 2
    import h5py

    if not h5py.is_hdf5(str(p)):
        return False
    if suffix == ".cxi":
        return True  # ours by name: a broken CXI gets a clear message rather than "no reader"
    with open_h5(p) as f:
        return cxi.classify(f) is not None or bliss.is_bliss(f)


def _is_stack_shape(shape) -> bool:
    shape = tuple(shape)
    return len(shape) == 3 or (len(shape) == 4 and shape[0] == 1)


def read_mask(path, shape=None) -> np.ndarray:
    """Import a mask (1 = invalid) from any supported format, as uint8 of exactly ``shape``.

    ``.npy``/``.tif``: the array; ``.npz``: key ``mask`` (else the only array); CXI:
    ``/entry_1/instrument_1/detector_1/mask``. A 2D mask of the detector frame applies to every frame.
    With ``shape=None`` the stored 3D shape is kept (a mask file opened on its own).
    """
    p = existing_path(path)
    fmt = format_of(p)
    if fmt == "frames":
        raise BCDIError(f"{p} is a folder; a mask is one file (.npy, .npz, .tif or .cxi)")
    if p.stat().st_size == 0:
        raise BCDIError(f"{p} is an empty file (0 bytes); export the mask again")
    if shape is None:
        shape = _stored_mask_shape(p, fmt)
    shape = tuple(int(s) for s in shape)
    if fmt == "npy":
        npy_header(p)
        return as_mask(np.load(p, allow_pickle=False), shape, p)
    if fmt == "npz":
        return read_npz_mask(p, shape)
    if fmt == "tiff":
        return read_tiff_mask(p, shape)
    if fmt == "edf":
        raise BCDIError(f"{p}: EDF masks are not supported; save the mask as .npy, .npz, .tif or .cxi")
    with open_h5(p) as f:
        return cxi.read_cxi_mask(f, p, shape)


def _stored_mask_shape(p: Path, fmt: str) -> tuple[int, ...]:
    if fmt == "npy":
        shape = npy_header(p)[0]
    elif fmt == "npz":
        headers = npz_headers(p)
        key = "mask" if "mask" in headers else (next(iter(headers)) if len(headers) == 1 else None)
        if key is None:
            raise BCDIError(
                f"{p}: no array named 'mask' among {', '.join(headers)}; save the mask under 'mask'"
            )
        shape = headers[key][0]
    elif fmt == "tiff":
        shape = tiff_shape(p)[0]
    else:
        with open_h5(p) as f:
            shape = cxi.mask_shape(f, p)
    if len(shape) != 3:
        raise BCDIError(
            f"{p}: the mask has shape {tuple(shape)}; open it next to its data (a 3D mask is needed alone)"
        )
    return tuple(shape)


def is_mask_file(path) -> bool:
    """True for a file that holds a mask and no data (``.npz`` with only ``mask``, CXI with only a mask)."""
    try:
        p = Path(path)
        fmt = format_of(p)
        if fmt == "npz":
            return set(npz_headers(p)) in ({"mask"}, {"support"})
        if fmt == "hdf5":
            with open_h5(p) as f:
                return cxi.classify(f) == "mask"
    except BCDIError:
        return False
    return False


def write_reconstruction(path, rec: Reconstruction, geometry: Geometry | None = None, *, protect=()) -> Path:
    """Write a reconstruction by suffix: ``.npz`` (obj, support, llk, llk_free, method...) or ``.cxi``."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".cxi":
        return cxi.write_cxi_result(out, rec, geometry, protect=protect)
    if suffix != ".npz":
        raise BCDIError(f"{out}: reconstructions are written as .npz or .cxi (got '{suffix}')")
    obj = np.asarray(rec.obj)
    if not np.issubdtype(obj.dtype, np.complexfloating):
        obj = obj.astype(np.complex64)
    if obj.ndim != 3:
        raise BCDIError(f"{out}: the object must be 3D (got shape {obj.shape}); nothing written")
    if not np.isfinite(obj.sum(dtype=np.complex128)):
        raise BCDIError(f"{out}: the object holds NaN or infinite values; nothing written")
    support = np.ones(obj.shape, np.uint8) if rec.support is None else np.asarray(rec.support)
    if support.shape != obj.shape:
        raise BCDIError(f"{out}: support shape {support.shape} differs from object shape {obj.shape}")
    from .npy import geometry_to_json

    return write_npz(
        out,
        protect=protect,
        obj=obj.astype(np.complex64, copy=False),
        support=(support != 0).astype(np.uint8),
        llk=np.float64(np.nan if rec.llk is None else rec.llk),
        llk_free=np.float64(np.nan if rec.llk_free is None else rec.llk_free),
        method=np.str_(rec.method),
        history_json=np.str_(to_json(list(rec.history or []))),
        meta_json=np.str_(to_json(rec.meta or {})),
        geometry_json=np.str_(geometry_to_json(geometry)),
    )


def write_intensity(path, intensity, mask=None, geometry: Geometry | None = None, *, protect=()) -> Path:
    """Write an intensity (and mask) by suffix: ``.cxi`` (PyNX data file) or ``.npz`` (data, mask...)."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".cxi":
        return cxi.write_cxi_data(out, intensity, mask, geometry, protect=protect)
    if suffix != ".npz":
        raise BCDIError(f"{out}: intensities are written as .npz or .cxi (got '{suffix}')")
    from .npy import geometry_to_json

    a = cxi._check_intensity_for_write(intensity, out)
    arrays = {"data": a.astype(np.float32, copy=False)}
    if mask is not None:
        arrays["mask"] = as_mask(mask, a.shape, out, "mask")
    arrays["geometry_json"] = np.str_(geometry_to_json(geometry))
    return write_npz(out, protect=protect, **arrays)


def reconstruction_from(loaded: LoadedData) -> Reconstruction:
    """A :class:`Reconstruction` from a loaded result file (``kind == "object"``)."""
    if loaded.kind != "object":
        raise BCDIError(f"{loaded.source}: holds an intensity, not a reconstruction")
    support = loaded.support if loaded.support is not None else np.ones(loaded.data.shape, np.uint8)
    meta = dict(loaded.meta.get("meta") or {})
    for k in ("voxel_size_nm", "program", "n_modes"):
        if k in loaded.meta:
            meta.setdefault(k, loaded.meta[k])
    meta.setdefault("source", str(loaded.source))
    return Reconstruction(
        obj=loaded.data,
        support=support,
        llk=loaded.meta.get("llk"),
        llk_free=loaded.meta.get("llk_free"),
        method=loaded.meta.get("method") or "unknown",
        history=list(loaded.meta.get("history") or []),
        meta=meta,
    )
