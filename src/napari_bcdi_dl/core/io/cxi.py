"""PyNX CXI files: diffraction data files and reconstruction (result) files, read and written.

Data file (as ``pynx.cdi.save_cdi_data_cxi`` writes it)::

    /cxi_version = 140
    /entry_1/instrument_1/detector_1/data   observed intensity (z, y, x), centred
    /entry_1/instrument_1/detector_1/mask   optional, > 0 = invalid; (z, y, x) or one (y, x) frame
    /entry_1/data_1/data -> soft link to the detector data

Result file (as ``CDI.save_obj_cxi`` writes it)::

    /cxi_version = 150
    /entry_1/image_1/data     complex object, centred (a leading modes axis is allowed: mode 0 is read)
    /entry_1/image_1/mask     support (1 = inside the crystal); image_1/support links to it
    /entry_1/image_1/process_1/results/{llk_poisson, free_llk_poisson, nb_point_support, cycle_history}
    /entry_1/data_1/data -> soft link to image_1/data

See docs/formats.md for every optional field and the geometry fields.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ... import __version__
from ..errors import BCDIError
from ..types import Geometry, LoadedData, Reconstruction
from . import _hdf5 as h
from ._common import (
    as_mask,
    as_support,
    check_ndim,
    check_numeric_dtype,
    finish_intensity,
    finish_object,
    is_complex_dtype,
    read_h5_into,
    roi_selection,
)
from .atomic import atomic_path
from .npy import geometry_from_json, geometry_to_json, to_json

PROGRAM = "napari-bcdi-dl"


# --------------------------------------------------------------------------------------------------- layout
def entry_of(f):
    """The CXI entry group: the file's ``default`` entry if set, else ``entry_1``, else None."""
    try:
        default = h.to_text(f.attrs["default"]) if "default" in f.attrs else None  # type: ignore[attr-defined]
    except (OSError, RuntimeError):
        default = None
    for name in (default, "entry_1", "entry_last"):
        if name:
            g = h.get(f, name.strip("/"))
            if h.is_group(g):
                return g
    return None


def classify(f) -> str | None:
    """``"result"``, ``"data"``, ``"mask"`` (a mask and nothing else) or None for an open HDF5 file."""
    entry = entry_of(f)
    if entry is None:
        return None
    if h.is_dataset(h.get(entry, "image_1/data")):
        return "result"
    if h.is_dataset(h.get(entry, "instrument_1/detector_1/data")) or h.is_dataset(
        h.get(entry, "data_1/data")
    ):
        return "data"
    if h.is_dataset(h.get(entry, "instrument_1/detector_1/mask")) or h.is_dataset(
        h.get(entry, "image_1/mask")
    ):
        return "mask"
    return None


# --------------------------------------------------------------------------------------------------- read
def read_cxi(f, p: Path, *, roi: Sequence[int] | None = None) -> LoadedData:
    """Read an open CXI file (data or result)."""
    kind = classify(f)
    if kind == "result":
        return _read_result(f, p, roi)
    if kind == "data":
        return _read_data(f, p, roi)
    if kind == "mask":
        raise BCDIError(f"{p} holds only a mask; import it as a mask next to the data it belongs to")
    raise BCDIError(
        f"{p}: no CXI data found (expected /entry_1/instrument_1/detector_1/data, /entry_1/data_1/data or "
        "/entry_1/image_1/data); is it a PyNX CXI file?"
    )


def _geometry(entry, instrument_path: str) -> Geometry:
    """Geometry from the standard CXI fields, overridden by our ``geometry_json`` when present."""
    g = Geometry()
    inst = h.get(entry, instrument_path)
    if h.is_group(inst):
        g.energy_kev = h.energy_kev(inst, "source_1/energy") or h.energy_kev(inst, "beam_1/incident_energy")
        if g.energy_kev is None:
            g.energy_kev = h.wavelength_to_kev(inst, "beam_1/incident_wavelength")
        g.distance_m = h.length_m(inst, "detector_1/distance", typical_m=1.0)
        px = h.length_m(inst, "detector_1/x_pixel_size", typical_m=5e-5)
        py = h.length_m(inst, "detector_1/y_pixel_size", typical_m=5e-5)
        if px is not None or py is not None:
            g.pixel_size_m = (py if py is not None else px, px if px is not None else py)
        bx, by = h.scalar(inst, "detector_1/beam_center_x"), h.scalar(inst, "detector_1/beam_center_y")
        if bx is not None and by is not None:
            g.beam_center = (by, bx)
        name = h.text(inst, "detector_1/description") or h.text(inst, "detector_1/name")
        if name:
            g.detector = name
    for path in (
        "data_1/process_1/configuration/geometry_json",
        "image_1/process_1/configuration/geometry_json",
    ):
        txt = h.text(entry, path)
        if txt:
            try:
                return geometry_from_json(txt)
            except (ValueError, TypeError):
                pass
    return g


def _read_data(f, p: Path, roi) -> LoadedData:
    entry = entry_of(f)
    ds = h.get(entry, "instrument_1/detector_1/data")
    if not h.is_dataset(ds):
        ds = h.get(entry, "data_1/data")
    check_numeric_dtype(ds.dtype, p, ds.name)
    shape3 = check_ndim(ds.shape, p, ds.name)
    if is_complex_dtype(ds.dtype):
        obj = _read_object_dataset(ds, p, roi)
        return LoadedData(
            data=finish_object(obj, p),
            kind="object",
            source=p,
            geometry=_geometry(entry, "instrument_1"),
            meta={"format": "cxi", "dataset": ds.name},
        )
    data = read_h5_into(ds, p, roi).reshape(_out_shape(shape3, roi, p))
    mask = None
    mds = h.get(entry, "instrument_1/detector_1/mask")
    if h.is_dataset(mds):
        try:
            raw = mds[()]
        except (OSError, RuntimeError) as err:
            raise BCDIError(f"{p}: the mask {mds.name} cannot be read ({err}); the file is corrupt") from None
        if roi is not None and raw.ndim >= 2:
            raw = raw[roi_selection(raw.shape, roi, p)]
        mask = as_mask(raw, data.shape, p, mds.name)
    data, mask, meta = finish_intensity(data, p, ds.dtype, mask)
    geometry = _geometry(entry, "instrument_1")
    if roi is not None:
        geometry.roi = tuple(int(v) for v in roi)
    meta.update(
        format="cxi", dataset=ds.name, stored_dtype=str(ds.dtype), program=h.text(entry, "program_name")
    )
    return LoadedData(data=data, kind="intensity", mask=mask, geometry=geometry, source=p, meta=meta)


def _out_shape(shape3, roi, p):
    if roi is None:
        return shape3
    sel = roi_selection(shape3, roi, p)
    return tuple(len(range(*s.indices(n))) for s, n in zip(sel, shape3))


def _read_object_dataset(ds, p: Path, roi) -> np.ndarray:
    shape = tuple(ds.shape)
    if len(shape) == 4 and shape[0] > 1:
        # a modes file: read mode 0 (the main mode) only
        out = np.empty(shape[1:], dtype=np.complex64)
        try:
            ds.read_direct(out, source_sel=np.s_[0])
        except (OSError, RuntimeError, ValueError, TypeError) as err:
            raise BCDIError(
                f"{p}: {ds.name} cannot be read ({err}); the file is truncated or corrupt"
            ) from None
    else:
        check_ndim(shape, p, ds.name)
        out = read_h5_into(ds, p, None, complex_out=True).reshape(check_ndim(shape, p, ds.name))
    if roi is not None:
        out = np.ascontiguousarray(out[roi_selection(out.shape, roi, p)])
    return out


def _read_result(f, p: Path, roi) -> LoadedData:
    entry = entry_of(f)
    ds = h.get(entry, "image_1/data")
    check_numeric_dtype(ds.dtype, p, ds.name)
    shape = tuple(ds.shape)
    if not (len(shape) == 4 and shape[0] > 1):
        check_ndim(shape, p, ds.name)
    obj = finish_object(_read_object_dataset(ds, p, roi), p, ds.name)
    meta: dict = {"format": "cxi-result", "dataset": ds.name}
    if len(shape) == 4 and shape[0] > 1:
        meta["n_modes"] = int(shape[0])
    support = None
    sds = h.get(entry, "image_1/mask")
    if not h.is_dataset(sds):
        sds = h.get(entry, "image_1/support")
    if h.is_dataset(sds):
        raw = sds[()]
        if raw.ndim == 4:
            raw = raw[0]
        if roi is not None:
            raw = raw[roi_selection(raw.shape, roi, p)]
        support = as_support(raw, obj.shape, p, sds.name)
    proc = h.get(entry, "image_1/process_1")
    meta["program"] = h.text(proc, "program") or h.text(entry, "program_name")
    meta["llk"] = h.scalar(proc, "results/llk_poisson")
    meta["llk_free"] = h.scalar(proc, "results/free_llk_poisson")
    method = h.text(proc, "configuration/method") or h.text(proc, "method")
    if method is None:
        program = (meta["program"] or "").lower()
        method = "pynx" if "pynx" in program else "unknown"
    meta["method"] = method
    meta["history"] = _history(proc)
    txt = h.text(proc, "configuration/meta_json")
    if txt:
        try:
            meta["meta"] = json.loads(txt)
        except ValueError:
            pass
    size = h.values(entry, "image_1/image_size")
    if size is not None and size.size == 3 and np.all(size > 0):
        meta["voxel_size_nm"] = tuple(float(s) * 1e9 / n for s, n in zip(size, shape[-3:]))
    return LoadedData(
        data=obj,
        kind="object",
        support=support,
        geometry=_geometry(entry, "image_1/instrument_1"),
        source=p,
        meta=meta,
    )


def _history(proc) -> list:
    txt = h.text(proc, "configuration/history_json")
    if txt:
        try:
            return list(json.loads(txt))
        except ValueError:
            pass
    ds = h.get(proc, "results/cycle_history")
    if not h.is_dataset(ds) or ds.dtype.names is None:
        return []
    try:
        rec = ds[()]
    except (OSError, RuntimeError):
        return []
    names = rec.dtype.names
    out = []
    for row in np.atleast_1d(rec):
        item = {}
        for ours, theirs in (
            ("iteration", "cycle"),
            ("llk", "llk_poisson"),
            ("llk_free", "free_llk_poisson"),
            ("support_size", "nb_point_support"),
        ):
            if theirs in names:
                v = row[theirs].item()
                item[ours] = v.decode() if isinstance(v, bytes) else v
        out.append(item)
    return out


def read_cxi_mask(f, p: Path, shape) -> np.ndarray:
    """The mask of a CXI file: detector_1/mask (data files, mask files) or image_1/mask (a support)."""
    entry = entry_of(f)
    for path in ("instrument_1/detector_1/mask", "image_1/mask"):
        ds = h.get(entry, path) if entry is not None else None
        if h.is_dataset(ds):
            try:
                raw = ds[()]
            except (OSError, RuntimeError) as err:
                raise BCDIError(f"{p}: {ds.name} cannot be read ({err}); the file is corrupt") from None
            return as_mask(raw, shape, p, ds.name)
    raise BCDIError(f"{p}: no mask in this CXI file (expected /entry_1/instrument_1/detector_1/mask)")


def mask_shape(f, p: Path) -> tuple[int, ...]:
    """Shape of the stored mask of a CXI file."""
    entry = entry_of(f)
    for path in ("instrument_1/detector_1/mask", "image_1/mask"):
        ds = h.get(entry, path) if entry is not None else None
        if h.is_dataset(ds):
            return tuple(ds.shape)
    raise BCDIError(f"{p}: no mask in this CXI file (expected /entry_1/instrument_1/detector_1/mask)")


# --------------------------------------------------------------------------------------------------- write
def _check_intensity_for_write(a: np.ndarray, where) -> np.ndarray:
    a = np.asarray(a)
    if is_complex_dtype(a.dtype):
        raise BCDIError(f"{where}: the intensity is complex; write objects with write_cxi_result")
    check_numeric_dtype(a.dtype, where, "intensity")
    check_ndim(a.shape, where, "intensity")
    if a.ndim == 4:
        a = a[0]
    if a.size:
        mn, mx = float(a.min()), float(a.max())
        if not (np.isfinite(mn) and np.isfinite(mx)):
            raise BCDIError(
                f"{where}: the intensity holds NaN or infinite values; set them to 0 and mask them first"
            )
        if mn < 0:
            raise BCDIError(f"{where}: the intensity holds negative counts (min {mn:g}); counts are >= 0")
    return a


def _root_attrs(f) -> None:
    import h5py

    f.attrs["creator"] = PROGRAM
    f.attrs["file_time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime())
    f.attrs["HDF5_Version"] = h5py.version.hdf5_version
    f.attrs["h5py_version"] = h5py.version.version
    f.attrs["default"] = "entry_1"


def _write_instrument(inst, geometry: Geometry | None) -> None:
    inst.attrs["NX_class"] = "NXinstrument"
    det = inst.create_group("detector_1")
    det.attrs["NX_class"] = "NXdetector"
    if geometry is None:
        return det
    if geometry.energy_kev:
        e_j = float(geometry.energy_kev) * h.J_PER_KEV
        src = inst.create_group("source_1")
        src.attrs["NX_class"] = "NXsource"
        src.attrs["note"] = "Incident photon energy (instead of source energy), for CXI compatibility"
        src.create_dataset("energy", data=e_j).attrs["units"] = "J"
        beam = inst.create_group("beam_1")
        beam.attrs["NX_class"] = "NXbeam"
        beam.create_dataset("incident_energy", data=e_j).attrs["units"] = "J"
        beam.create_dataset("incident_wavelength", data=geometry.wavelength_nm * 1e-9).attrs["units"] = "m"
    if geometry.distance_m:
        det.create_dataset("distance", data=float(geometry.distance_m)).attrs["units"] = "m"
    if geometry.pixel_size_m:
        py, px = (float(v) for v in geometry.pixel_size_m)
        det.create_dataset("x_pixel_size", data=px).attrs["units"] = "m"
        det.create_dataset("y_pixel_size", data=py).attrs["units"] = "m"
    if geometry.beam_center:
        by, bx = (float(v) for v in geometry.beam_center)
        det.create_dataset("beam_center_x", data=bx).attrs["units"] = "pixel"
        det.create_dataset("beam_center_y", data=by).attrs["units"] = "pixel"
    if geometry.detector:
        det.create_dataset("description", data=str(geometry.detector))
    return det


def _process(group, geometry: Geometry | None):
    proc = group.create_group("process_1")
    proc.attrs["NX_class"] = "NXprocess"
    proc.create_dataset("program", data=PROGRAM)
    proc.create_dataset("version", data=str(__version__))
    proc.create_dataset("command", data=" ".join(sys.argv))
    conf = proc.create_group("configuration")
    conf.attrs["NX_class"] = "NXcollection"
    conf.create_dataset("geometry_json", data=geometry_to_json(geometry))
    return proc, conf


_CHUNKED = {"chunks": True, "shuffle": True, "compression": "gzip", "compression_opts": 1}


def write_cxi_data(path, intensity, mask=None, geometry: Geometry | None = None, *, protect=()) -> Path:
    """Write a PyNX CXI data file (intensity float32 + optional uint8 mask + geometry), atomically."""
    import h5py

    out = Path(path)
    a = _check_intensity_for_write(intensity, out)
    m = None if mask is None else as_mask(mask, a.shape, out, "mask")
    with atomic_path(out, protect) as tmp, h5py.File(tmp, "w") as f:
        _root_attrs(f)
        f.create_dataset("cxi_version", data=140)
        entry = f.create_group("entry_1")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data_1"
        entry.create_dataset("program_name", data=f"{PROGRAM} {__version__}")
        entry.create_dataset("start_time", data=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime()))
        det = _write_instrument(entry.create_group("instrument_1"), geometry)
        ds = det.create_dataset("data", shape=a.shape, dtype=np.float32, **_CHUNKED)
        ds.write_direct(np.ascontiguousarray(a))
        ds.attrs["units"] = "photons"
        if m is not None:
            det.create_dataset("mask", data=m, **_CHUNKED)
            det["mask"].attrs["note"] = "1 = invalid / gap voxel, 0 = valid"
        data_1 = entry.create_group("data_1")
        data_1.attrs["NX_class"] = "NXdata"
        data_1.attrs["signal"] = "data"
        data_1.attrs["interpretation"] = "scaler"
        data_1["data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
        _process(data_1, geometry)
    return out


def write_cxi_result(path, rec: Reconstruction, geometry: Geometry | None = None, *, protect=()) -> Path:
    """Write a reconstruction in the PyNX result layout (object, support, LLK, history), atomically."""
    import h5py

    out = Path(path)
    obj = np.asarray(rec.obj)
    check_numeric_dtype(obj.dtype, out, "object")
    shape = check_ndim(obj.shape, out, "object")
    obj = obj.reshape(shape)
    if not np.isfinite(obj.sum(dtype=np.complex128)):
        raise BCDIError(f"{out}: the object holds NaN or infinite values; nothing written")
    support = (
        as_support(rec.support, shape, out, "support")
        if rec.support is not None
        else np.ones(shape, np.uint8)
    )
    with atomic_path(out, protect) as tmp, h5py.File(tmp, "w") as f:
        _root_attrs(f)
        f.create_dataset("cxi_version", data=150)
        entry = f.create_group("entry_1")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data_1"
        f["entry_last"] = h5py.SoftLink("/entry_1")
        entry.create_dataset("program_name", data=f"{PROGRAM} {__version__}")
        entry.create_dataset("start_time", data=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime()))
        image = entry.create_group("image_1")
        image.attrs["NX_class"] = "NXdata"
        image.attrs["signal"] = "data"
        image.attrs["interpretation"] = "scaler"
        ds = image.create_dataset("data", shape=shape, dtype=np.complex64, **_CHUNKED)
        ds.write_direct(np.ascontiguousarray(obj))
        image.create_dataset("mask", data=support, **_CHUNKED)
        image["support"] = h5py.SoftLink("/entry_1/image_1/mask")
        image.create_dataset("data_type", data="electron density")
        image.create_dataset("data_space", data="real")
        vs = (rec.meta or {}).get("voxel_size_nm")
        if vs is not None and np.size(vs) == 3:
            image.create_dataset("image_size", data=np.asarray(vs, float) * 1e-9 * np.asarray(shape))
        _write_instrument(image.create_group("instrument_1"), geometry)
        data_1 = entry.create_group("data_1")
        data_1.attrs["NX_class"] = "NXdata"
        data_1.attrs["signal"] = "data"
        data_1.attrs["interpretation"] = "scaler"
        data_1["data"] = h5py.SoftLink("/entry_1/image_1/data")
        proc, conf = _process(image, geometry)
        proc.create_dataset("method", data=str(rec.method))
        conf.create_dataset("method", data=str(rec.method))
        conf.create_dataset("iobs_shape", data=np.asarray(shape))
        conf.create_dataset("meta_json", data=to_json(rec.meta or {}))
        conf.create_dataset("history_json", data=to_json(list(rec.history or [])))
        results = proc.create_group("results")
        results.attrs["NX_class"] = "NXcollection"
        results.create_dataset("llk_poisson", data=np.nan if rec.llk is None else float(rec.llk))
        results.create_dataset(
            "free_llk_poisson", data=np.nan if rec.llk_free is None else float(rec.llk_free)
        )
        results.create_dataset("nb_point_support", data=int(np.count_nonzero(support)))
        results.create_dataset("cycle_history", data=_cycle_history(rec.history or []))
    return out


def _cycle_history(history: list) -> np.ndarray:
    dt = np.dtype(
        [("cycle", "<i8"), ("llk_poisson", "<f8"), ("free_llk_poisson", "<f8"), ("nb_point_support", "<i8")]
    )
    arr = np.zeros(len(history), dtype=dt)
    for i, item in enumerate(history):
        item = item if isinstance(item, dict) else {}
        arr[i] = (
            int(item.get("iteration", i) or 0),
            _f(item.get("llk")),
            _f(item.get("llk_free")),
            int(item.get("support_size") or -1),
        )
    return arr


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def write_cxi_mask(path, mask, *, protect=()) -> Path:
    """Write a mask alone (uint8, 1 = invalid) at ``/entry_1/instrument_1/detector_1/mask``, atomically."""
    import h5py

    out = Path(path)
    m = np.asarray(mask)
    if m.ndim not in (2, 3):
        raise BCDIError(
            f"{out}: a mask is 2D (one detector frame) or 3D (got shape {m.shape}); nothing written"
        )
    m = (m != 0).astype(np.uint8)
    with atomic_path(out, protect) as tmp, h5py.File(tmp, "w") as f:
        _root_attrs(f)
        f.create_dataset("cxi_version", data=140)
        entry = f.create_group("entry_1")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("program_name", data=f"{PROGRAM} {__version__}")
        det = _write_instrument(entry.create_group("instrument_1"), None)
        det.create_dataset("mask", data=m, **_CHUNKED)
        det["mask"].attrs["note"] = "1 = invalid / gap voxel, 0 = valid"
    return out
