"""NumPy files: ``.npy`` (one array) and ``.npz`` archives (several named arrays), read and written.

``.npz`` conventions (docs/formats.md):

- intensity: key ``data`` (else the only 3D array that is not ``mask``/``support``), optional ``mask``;
- reconstruction: keys ``obj`` (complex) and ``support``, optional ``llk``, ``llk_free``, ``method``,
  ``history_json``, ``meta_json``, ``geometry_json``;
- mask only: key ``mask`` (read with :func:`read_mask`).

Arrays are read without pickle and converted to float32/complex64 block by block: a uint32 scan never
exists in memory twice.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from zlib import error as zlib_error

import numpy as np

from ..errors import BCDIError
from ..types import Geometry, LoadedData
from ._common import (
    INTENSITY_DTYPE,
    OBJECT_DTYPE,
    as_mask,
    as_support,
    check_ndim,
    check_numeric_dtype,
    existing_path,
    finish_intensity,
    finish_object,
    is_complex_dtype,
    roi_selection,
)
from .atomic import atomic_path

_BLOCK_BYTES = 512 * 1024
MASK_KEYS = ("mask",)
SUPPORT_KEYS = ("support",)


# --------------------------------------------------------------------------------------------------- .npy
def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header (no data read)."""
    with open(path, "rb") as fh:
        shape, _fortran, dtype = _read_header(fh, path)
    return shape, dtype


def _read_header(fh, path) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    except (ValueError, OSError, SyntaxError) as err:
        raise BCDIError(
            f"{path}: not a NumPy .npy array ({' '.join(str(err).split())[:100]}); save it with numpy.save"
        ) from None
    if dtype.hasobject:
        raise BCDIError(
            f"{path}: holds Python objects (pickled), which are never loaded; save numbers with numpy.save"
        )
    return tuple(int(s) for s in shape), bool(fortran), dtype


def read_npy(path, *, roi: Sequence[int] | None = None) -> LoadedData:
    """Read a 3D ``.npy``: real -> float32 intensity, complex -> complex64 object."""
    p = existing_path(path)
    if p.stat().st_size == 0:
        raise BCDIError(f"{p} is an empty file (0 bytes); save the array again with numpy.save")
    shape, dtype = npy_header(p)
    check_numeric_dtype(dtype, p)
    shape3 = check_ndim(shape, p)
    try:
        mm = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise BCDIError(
            f"{p}: the array cannot be read ({' '.join(str(err).split())[:100]}); the file is truncated"
        ) from None
    mm = mm.reshape(shape3)
    sel = roi_selection(shape3, roi, p)
    src = mm[sel] if roi is not None else mm
    if is_complex_dtype(dtype):
        obj = np.empty(src.shape, dtype=OBJECT_DTYPE)
        np.copyto(obj, src, casting="unsafe")
        del mm, src
        return LoadedData(data=finish_object(obj, p), kind="object", source=p, meta={"format": "npy"})
    out = np.empty(src.shape, dtype=INTENSITY_DTYPE)
    np.copyto(out, src, casting="unsafe")
    del mm, src
    out, mask, meta = finish_intensity(out, p, dtype)
    meta.update(format="npy", stored_dtype=str(dtype))
    return LoadedData(data=out, mask=mask, source=p, meta=meta, geometry=Geometry(roi=_roi(roi)))


def _roi(roi):
    return None if roi is None else tuple(int(v) for v in roi)


# --------------------------------------------------------------------------------------------------- .npz
@contextlib.contextmanager
def _open_zip(p: Path):
    if p.stat().st_size == 0:
        raise BCDIError(f"{p} is an empty file (0 bytes); save the arrays again with numpy.savez")
    if not zipfile.is_zipfile(p):
        raise BCDIError(f"{p} is not a NumPy .npz archive (not a zip file); save the arrays with numpy.savez")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as err:
        raise BCDIError(f"{p}: the .npz archive is corrupt ({err}); save it again") from None
    try:
        yield zf
    finally:
        zf.close()


def npz_headers(path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array of a ``.npz`` from the headers only."""
    p = existing_path(path)
    with _open_zip(p) as zf:
        return _headers(zf, p)


def _headers(zf: zipfile.ZipFile, p: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    out = {}
    for name in zf.namelist():
        if not name.endswith(".npy"):
            continue
        try:
            with zf.open(name) as fh:
                shape, _f, dtype = _read_header(fh, f"{p} [{name[:-4]}]")
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise BCDIError(f"{p}: member {name} is corrupt ({err}); save the archive again") from None
        out[name[:-4]] = (shape, dtype)
    if not out:
        raise BCDIError(
            f"{p}: the .npz archive holds no arrays; save the data with numpy.savez(path, data=...)"
        )
    return out


def _read_member(zf, p: Path, key: str, dtype_out, roi=None) -> np.ndarray:
    """Stream one 3D member into a new array of ``dtype_out``, converting block by block; then the ROI."""
    name = key + ".npy"
    try:
        with zf.open(name) as fh:
            shape, fortran, dtype = _read_header(fh, f"{p} [{key}]")
            out = np.empty(shape, dtype=dtype_out, order="F" if fortran else "C")
            flat = out.reshape(-1, order="F" if fortran else "C")
            n = flat.size
            per_block = max(1, _BLOCK_BYTES // max(dtype.itemsize, 1))
            done = 0
            while done < n:
                count = min(per_block, n - done)
                raw = fh.read(count * dtype.itemsize)
                if len(raw) != count * dtype.itemsize:
                    raise BCDIError(
                        f"{p}: array '{key}' is truncated "
                        f"({done + len(raw) // dtype.itemsize} of {n} values); "
                        "save it again"
                    )
                np.copyto(flat[done : done + count], np.frombuffer(raw, dtype=dtype), casting="unsafe")
                done += count
    except (zipfile.BadZipFile, OSError, EOFError, zlib_error) as err:
        raise BCDIError(
            f"{p}: array '{key}' is corrupt ({' '.join(str(err).split())[:100]}); save the archive again"
        ) from None
    if out.ndim == 4:
        out = out[0]
    if roi is not None:
        out = np.ascontiguousarray(out[roi_selection(out.shape, roi, p)])
    return out


def _read_small(zf, p: Path, key: str) -> np.ndarray:
    with zf.open(key + ".npy") as fh:
        try:
            return np.lib.format.read_array(fh, allow_pickle=False)
        except ValueError as err:
            raise BCDIError(f"{p}: array '{key}' cannot be read ({err})") from None


def choose_npz_key(headers: dict, p: Path) -> tuple[str, str]:
    """``(key, kind)`` of an npz's main array: ``obj`` -> object, ``data`` -> intensity, else the only 3D."""
    if "obj" in headers:
        return "obj", "object"
    if "data" in headers:
        return "data", "object" if is_complex_dtype(headers["data"][1]) else "intensity"
    candidates = [
        k for k, (shape, _dt) in headers.items() if k not in MASK_KEYS + SUPPORT_KEYS and len(shape) in (3, 4)
    ]
    if len(candidates) == 1:
        k = candidates[0]
        return k, "object" if is_complex_dtype(headers[k][1]) else "intensity"
    keys = ", ".join(f"{k}{list(s)}" for k, (s, _d) in headers.items())
    if not candidates:
        if set(headers) <= set(MASK_KEYS + SUPPORT_KEYS):
            raise BCDIError(
                f"{p} holds only a mask ({keys}); import it as a mask, next to the data it belongs to"
            )
        raise BCDIError(f"{p}: no 3D array in the archive ({keys}); save the stack under the key 'data'")
    raise BCDIError(
        f"{p}: several 3D arrays ({keys}) and none named 'data'; save the intensity under the key 'data'"
    )


def read_npz(path, *, roi: Sequence[int] | None = None) -> LoadedData:
    """Read a ``.npz``: intensity (``data`` + optional ``mask``) or reconstruction (``obj`` + ``support``)."""
    p = existing_path(path)
    with _open_zip(p) as zf:
        headers = _headers(zf, p)
        key, kind = choose_npz_key(headers, p)
        shape, dtype = headers[key]
        check_numeric_dtype(dtype, p, f"array '{key}'")
        check_ndim(shape, p, f"array '{key}'")
        meta: dict = {"format": "npz", "key": key, "stored_dtype": str(dtype)}
        geometry = _geometry_from(zf, p, headers)
        if kind == "object":
            obj = finish_object(_read_member(zf, p, key, OBJECT_DTYPE, roi), p)
            support = None
            if "support" in headers:
                raw = _read_small(zf, p, "support")
                if roi is not None and raw.ndim >= 2:
                    raw = raw[roi_selection(raw.shape, roi, p)]
                support = as_support(raw, obj.shape, p)
            for k in ("llk", "llk_free"):
                if k in headers:
                    v = float(np.asarray(_read_small(zf, p, k), dtype=float).reshape(-1)[0])
                    meta[k] = None if np.isnan(v) else v
            if "method" in headers:
                meta["method"] = str(_read_small(zf, p, "method"))
            for k in ("history_json", "meta_json"):
                if k in headers:
                    try:
                        meta[k[: -len("_json")]] = json.loads(str(_read_small(zf, p, k)))
                    except ValueError:
                        pass
            return LoadedData(
                data=obj, kind="object", support=support, geometry=geometry, source=p, meta=meta
            )
        data = _read_member(zf, p, key, INTENSITY_DTYPE, roi)
        mask = None
        if "mask" in headers:
            raw = _read_small(zf, p, "mask")
            if roi is not None and raw.ndim >= 2:
                raw = raw[roi_selection(raw.shape, roi, p)]
            mask = as_mask(raw, data.shape, p, "array 'mask'")
        data, mask, extra = finish_intensity(data, p, dtype, mask)
        meta.update(extra)
        if "inpainted" in headers:  # written by bcdi-dl inpaint: the method that filled the masked gap
            meta["inpainted"] = str(_read_small(zf, p, "inpainted"))
        if roi is not None:
            geometry.roi = _roi(roi)
        return LoadedData(data=data, kind="intensity", mask=mask, geometry=geometry, source=p, meta=meta)


def _geometry_from(zf, p, headers) -> Geometry:
    if "geometry_json" not in headers:
        return Geometry()
    try:
        return geometry_from_json(str(_read_small(zf, p, "geometry_json")))
    except (ValueError, TypeError):
        return Geometry()


def read_npz_mask(path, shape) -> np.ndarray:
    """The mask of a ``.npz``: key ``mask``, else the only array."""
    p = existing_path(path)
    with _open_zip(p) as zf:
        headers = _headers(zf, p)
        if "mask" in headers:
            key = "mask"
        elif len(headers) == 1:
            key = next(iter(headers))
        else:
            raise BCDIError(
                f"{p}: no array named 'mask' among {', '.join(headers)}; save the mask under the key 'mask'"
            )
        return as_mask(_read_small(zf, p, key), shape, p, f"array '{key}'")


# --------------------------------------------------------------------------------------------------- write
def write_npz(path, *, protect=(), **arrays) -> Path:
    """Write arrays to an uncompressed ``.npz`` atomically (temp file, then rename); never over an input."""
    out = Path(path)
    if out.suffix.lower() != ".npz":
        raise BCDIError(f"{out}: an .npz file name is needed (got '{out.suffix}')")
    if not arrays:
        raise BCDIError(f"{out}: nothing to write")
    with atomic_path(out, protect) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
    return out


# --------------------------------------------------------------------------------------------------- json
def geometry_to_json(geometry: Geometry | None) -> str:
    """Serialise a :class:`Geometry` (tuples become lists)."""
    from dataclasses import asdict

    return json.dumps(asdict(geometry or Geometry()), default=_json_default)


def geometry_from_json(text: str) -> Geometry:
    """Inverse of :func:`geometry_to_json`; unknown keys are ignored."""
    d = json.loads(text)
    fields = Geometry.__dataclass_fields__
    kw = {k: v for k, v in d.items() if k in fields}
    for k in ("pixel_size_m", "beam_center", "roi", "hkl"):
        if kw.get(k) is not None:
            kw[k] = tuple(kw[k])
    kw["angles_deg"] = dict(kw.get("angles_deg") or {})
    return Geometry(**kw)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def to_json(obj) -> str:
    """JSON with numpy scalars/arrays handled (anything else as its string)."""
    return json.dumps(obj, default=_json_default)
