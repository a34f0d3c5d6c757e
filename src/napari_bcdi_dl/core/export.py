"""Export a post-processed reconstruction (:class:`~.postprocess.StrainResult`) for other tools.

* :func:`export_npz_cdiutils` — a compressed ``.npz`` with cdiutils-like keys: ``amplitude``, ``phase``,
  ``displacement``, ``het_strain``, ``support``, ``voxel_size`` (nm, (z, y, x)), plus ``g_direction``,
  ``g_norm`` (1/nm, NaN when unknown), ``frame``, ``twin``, ``ramp``, ``offset`` and ``meta_json`` (the
  provenance: input, method, recipe, LLK, geometry, phasing history). Arrays are float32 (support uint8),
  in the (z, y, x) order of the project; phase, displacement and strain are **NaN outside the support**, as
  cdiutils writes them. The ``bcdi-dl strain`` command and the Results dock both write this file;
  :func:`read_npz_cdiutils` reads it back (``bcdi-dl report``).
* :func:`export_vti` — a VTK XML ImageData file (``.vti``) for ParaView, written with the standard library
  only (no vtk/pyvista needed): point data ``amplitude``, ``phase``, ``displacement``, ``het_strain``
  (Float32, NaN outside the support) and ``support`` (UInt8), ``Spacing`` = voxel size in nm. VTK's x axis is
  the array's last axis,
  so the C-ordered (z, y, x) array is written as is; ``Spacing`` is (x, y, z). Data are inline base64
  ("binary": one base64 stream of a UInt64 byte count followed by the little-endian values, as VTK writes
  it) or ASCII.

Both write atomically (:func:`.io.atomic.atomic_path`) and never over an input file (``protect=``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from .errors import BCDIError
from .io.atomic import atomic_path
from .postprocess import StrainResult

#: cdiutils-like names of the StrainResult arrays, in file order
CDIUTILS_KEYS = {"amplitude": "modulus", "phase": "phase", "displacement": "displacement",
                 "het_strain": "strain"}

#: the keys that are NaN outside the support
MASKED_KEYS = ("phase", "displacement", "het_strain")

_VTK_TYPES = {np.dtype("float32"): "Float32", np.dtype("uint8"): "UInt8"}


def _checked(result: StrainResult, out: Path, outside: float = np.nan) -> dict:
    """The result's arrays as ``{cdiutils name: array}`` (float32 / uint8 copies), shape-checked; phase,
    displacement and strain set to ``outside`` (NaN) outside the support."""
    if not isinstance(result, StrainResult):
        raise BCDIError(f"{out}: a post-processed result (StrainResult) is needed, got {type(result).__name__}; "
                        "run the post-processing first")
    arrays = {k: np.asarray(getattr(result, attr), dtype=np.float32) for k, attr in CDIUTILS_KEYS.items()}
    arrays["support"] = (np.asarray(result.support) != 0).astype(np.uint8)
    shape = arrays["amplitude"].shape
    if len(shape) != 3:
        raise BCDIError(f"{out}: the result must be 3D, its modulus has shape {shape}; nothing written")
    for k, a in arrays.items():
        if a.shape != shape:
            raise BCDIError(f"{out}: '{k}' has shape {a.shape}, the modulus {shape}; nothing written")
    inside = arrays["support"] != 0
    for k in MASKED_KEYS:
        arrays[k] = np.where(inside, arrays[k], np.float32(outside)).astype(np.float32)
    vs = np.asarray(result.voxel_size, dtype=np.float64)
    if vs.shape != (3,) or not np.all(np.isfinite(vs)) or np.any(vs <= 0):
        raise BCDIError(f"{out}: voxel size {result.voxel_size!r} must be three positive lengths (nm)")
    return arrays


def export_npz_cdiutils(path: os.PathLike | str, result: StrainResult, *,
                        protect: Iterable[os.PathLike | str] = (), provenance: dict | None = None,
                        outside: float = np.nan) -> Path:
    """Write ``result`` as a compressed ``.npz`` with cdiutils-like keys (see the module docstring).

    Parameters
    ----------
    path : the ``.npz`` file.
    result : the post-processed reconstruction.
    protect : input paths never written over.
    provenance : saved as ``meta_json`` (JSON): input, method, recipe, LLK, geometry, ``history``...
    outside : the value of phase, displacement and strain outside the support (NaN, as cdiutils).

    Returns
    -------
    The path written.
    """
    out = Path(path)
    if out.suffix.lower() != ".npz":
        raise BCDIError(f"{out}: an .npz file name is needed (got '{out.suffix}')")
    arrays = _checked(result, out, outside)
    arrays.update(
        voxel_size=np.asarray(result.voxel_size, dtype=np.float64),
        g_direction=np.asarray(result.g_direction, dtype=np.float64),
        g_norm=np.float64(np.nan if result.g_norm is None else result.g_norm),
        frame=np.str_(result.frame),
        twin=np.bool_(result.twin),
        ramp=np.asarray(result.ramp, dtype=np.float64),
        offset=np.float64(result.offset),
        meta_json=np.str_(_to_json({**(provenance or {}), "notes": list(result.notes or [])})),
    )
    with atomic_path(out, protect) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return out


def _to_json(obj) -> str:
    from .io.npy import to_json

    return to_json(obj)


def read_npz_cdiutils(path: os.PathLike | str) -> tuple[StrainResult, dict]:
    """Read a file of :func:`export_npz_cdiutils` (or cdiutils' own npz with the same keys) back.

    Returns ``(StrainResult, provenance dict)``; the arrays are 0 outside the support again (the
    StrainResult convention), the provenance is ``meta_json`` (empty when absent).
    """
    p = Path(path)
    if not p.is_file():
        raise BCDIError(f"{p} does not exist: give a strain file written by 'bcdi-dl strain' or the Results dock")
    try:
        f = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise BCDIError(f"{p}: not a readable .npz file ({err})") from None
    with f:
        missing = [k for k in ("amplitude", "phase", "het_strain") if k not in f.files]
        if missing:
            raise BCDIError(f"{p}: not a strain file (no {', '.join(missing)}): give the output of 'bcdi-dl strain' "
                            "or a reconstruction")
        amp = np.asarray(f["amplitude"], np.float32)
        support = (np.asarray(f["support"]) != 0) if "support" in f.files else np.isfinite(f["het_strain"])
        if amp.ndim != 3:
            raise BCDIError(f"{p}: 'amplitude' has shape {amp.shape}, a 3D array is needed")

        def inside(key: str) -> np.ndarray:
            a = np.asarray(f[key], np.float32) if key in f.files else np.zeros(amp.shape, np.float32)
            return np.where(support & np.isfinite(a), a, 0).astype(np.float32)

        def scalar(key: str, default):
            return f[key][()] if key in f.files else default

        vs = tuple(float(v) for v in np.broadcast_to(np.asarray(scalar("voxel_size", 1.0), float), (3,)))
        g_norm = float(scalar("g_norm", np.nan))
        meta = json.loads(str(f["meta_json"])) if "meta_json" in f.files else {}
        result = StrainResult(
            modulus=amp, phase=inside("phase"), displacement=inside("displacement"), strain=inside("het_strain"),
            support=support.astype(np.uint8), voxel_size=vs,
            g_direction=tuple(float(v) for v in np.asarray(scalar("g_direction", (1.0, 0.0, 0.0)), float)),
            g_norm=g_norm if np.isfinite(g_norm) else None, frame=str(scalar("frame", "array")),
            twin=bool(scalar("twin", False)), ramp=tuple(float(v) for v in np.asarray(scalar("ramp", (0, 0, 0)))),
            offset=float(scalar("offset", 0.0)), notes=list(meta.pop("notes", []) or []))
    return result, meta


def _data_array(name: str, a: np.ndarray, binary: bool) -> str:
    vtk_type = _VTK_TYPES[a.dtype]
    flat = np.ascontiguousarray(a).ravel(order="C")
    if binary:
        raw = flat.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        text = base64.b64encode(np.uint64(len(raw)).astype("<u8").tobytes() + raw).decode("ascii")
        fmt = "binary"
    else:
        spec = "%d" if a.dtype.kind == "u" else "%.9g"
        text = " ".join(spec % v for v in flat.tolist())
        fmt = "ascii"
    return (f'        <DataArray type="{vtk_type}" Name={quoteattr(name)} NumberOfComponents="1" '
            f'format="{fmt}">\n{text}\n        </DataArray>\n')


def export_vti(path: os.PathLike | str, result: StrainResult, *, binary: bool = True,
               protect: Iterable[os.PathLike | str] = ()) -> Path:
    """Write ``result`` as a VTK XML ImageData file (``.vti``) for ParaView; returns the path.

    Needs no extra package. ``binary``: inline base64 (compact); False: ASCII (readable, ~3× larger).
    Phase, displacement and strain are NaN outside the support (ParaView leaves NaN uncoloured).
    """
    out = Path(path)
    if out.suffix.lower() != ".vti":
        raise BCDIError(f"{out}: a .vti file name is needed (got '{out.suffix}')")
    arrays = _checked(result, out)
    nz, ny, nx = arrays["amplitude"].shape
    vz, vy, vx = (float(v) for v in result.voxel_size)
    extent = f"0 {nx - 1} 0 {ny - 1} 0 {nz - 1}"
    parts = [
        '<?xml version="1.0"?>\n',
        '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n',
        (f'  <ImageData WholeExtent="{extent}" Origin="0 0 0" Spacing="{vx!r} {vy!r} {vz!r}" '
         'Direction="1 0 0 0 1 0 0 0 1">\n'),
        f'    <Piece Extent="{extent}">\n',
        '      <PointData Scalars="amplitude">\n',
    ]
    parts += [_data_array(name, a, binary) for name, a in arrays.items()]
    parts += ["      </PointData>\n", "      <CellData>\n      </CellData>\n", "    </Piece>\n",
              "  </ImageData>\n", "</VTKFile>\n"]
    with atomic_path(out, protect) as tmp, open(tmp, "w", encoding="ascii") as fh:
        fh.writelines(parts)
    return out
