"""Shared plumbing of the prepare steps: input checks and the provenance record.

Every step takes a :class:`~napari_bcdi_dl.core.types.LoadedData` (intensity, mask, geometry, meta) and
returns a new one: new arrays (the input's are never written to), a new geometry, and ``meta["provenance"]``
extended by one record ``{"step": name, "params": {...}, "result": {...}}``.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from ..errors import BCDIError
from ..types import Geometry, LoadedData


def check_pattern(loaded: LoadedData, step: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The intensity and mask of ``loaded``, checked: a 3D real intensity, a mask of its shape.

    Raises
    ------
    BCDIError
        A reconstruction instead of a pattern, not 3D, a mask of another shape.
    """
    if not isinstance(loaded, LoadedData):
        raise BCDIError(f"{step}: expected loaded data (core.io.read), got {type(loaded).__name__}")
    if loaded.kind != "intensity":
        raise BCDIError(f"{step}: {loaded.source or 'the input'} holds a reconstruction; give a diffraction "
                        "pattern")
    data = np.asarray(loaded.data)
    if data.ndim != 3 or data.size == 0:
        raise BCDIError(f"{step}: the intensity has shape {data.shape}; a 3D (frames, rows, cols) stack is "
                        "needed")
    if np.iscomplexobj(data) or not np.issubdtype(data.dtype, np.number):
        raise BCDIError(f"{step}: the intensity has dtype {data.dtype}; real photon counts are needed")
    mask = None if loaded.mask is None else np.asarray(loaded.mask)
    if mask is not None and mask.shape != data.shape:
        raise BCDIError(f"{step}: the mask has shape {mask.shape} but the intensity {data.shape}; give the "
                        "mask made for these data (same ROI and number of frames)")
    return data, mask


CHUNK = 16


def masked_argmax(data: np.ndarray, mask: np.ndarray | None) -> tuple[tuple[int, ...], float]:
    """``(index, value)`` of the brightest valid voxel, frame block by frame block (no full-size temporary)."""
    a = np.asarray(data)
    best, where = -np.inf, (0, 0, 0)
    for z0 in range(0, a.shape[0], CHUNK):
        block = np.array(a[z0:z0 + CHUNK], dtype=np.float32)
        if mask is not None:
            block[np.asarray(mask[z0:z0 + CHUNK]) != 0] = -np.inf
        i = int(np.argmax(block))
        if block.flat[i] > best:
            best = float(block.flat[i])
            k = np.unravel_index(i, block.shape)
            where = (int(k[0]) + z0, int(k[1]), int(k[2]))
    return where, best


def check_not_empty(data: np.ndarray, mask: np.ndarray | None, step: str) -> None:
    """Raise when no valid voxel holds a positive count."""
    if mask is None:
        top = float(np.max(data))
    else:
        top = masked_argmax(data, mask)[1]
    if not top > 0:
        raise BCDIError(f"{step}: the pattern is empty (no positive count in the valid voxels); check the "
                        "data, the ROI and the mask")


def provenance(loaded: LoadedData) -> list:
    """The provenance list of ``loaded`` (a copy; empty when there is none)."""
    return list(copy.deepcopy((loaded.meta or {}).get("provenance") or []))


def jsonable(v):
    """Plain Python values for the provenance (tuples -> lists, numpy scalars -> Python)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def updated(
    loaded: LoadedData,
    step: str,
    *,
    data: np.ndarray | None = None,
    mask: np.ndarray | None | bool = False,
    geometry: Geometry | None = None,
    params: dict | None = None,
    result: dict | None = None,
    meta: dict | None = None,
) -> LoadedData:
    """A new :class:`LoadedData` after ``step``: arrays replaced where given (``mask=False``: keep the old
    one), the geometry copied or replaced, and one provenance record added."""
    new_meta = copy.deepcopy({k: v for k, v in (loaded.meta or {}).items() if k != "provenance"})
    new_meta.update(meta or {})
    record = {"step": step, "params": jsonable(params or {}), "result": jsonable(result or {})}
    new_meta["provenance"] = provenance(loaded) + [record]
    return LoadedData(
        data=loaded.data if data is None else data,
        kind="intensity",
        mask=loaded.mask if mask is False else mask,
        support=None,
        geometry=copy.deepcopy(loaded.geometry) if geometry is None else geometry,
        source=loaded.source,
        meta=new_meta,
    )


def copy_geometry(g: Geometry | None, **changes) -> Geometry:
    """A deep copy of ``g`` (a fresh Geometry when None) with ``changes``."""
    base = copy.deepcopy(g) if g is not None else Geometry()
    return dataclasses.replace(base, **changes)


def detector_roi(geometry: Geometry, shape) -> tuple[int, int, int, int]:
    """The detector ROI of the data: ``geometry.roi`` or, when unknown, the whole frame."""
    if geometry is not None and geometry.roi is not None:
        return tuple(int(v) for v in geometry.roi)  # type: ignore[return-value]
    return (0, int(shape[1]), 0, int(shape[2]))
