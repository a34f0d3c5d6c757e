"""Export a post-processed reconstruction (:class:`~.postprocess.StrainResult`) for other tools.

* :func:`export_npz_cdiutils` — an ``.npz`` with cdiutils-like keys: ``amplitude``, ``phase``,
  ``displacement``, ``het_strain``, ``support``, ``voxel_size`` (nm, (z, y, x)), plus ``g_direction``,
  ``g_norm`` (1/nm, NaN when unknown), ``frame``, ``twin``, ``ramp``, ``offset``. Arrays are float32 (support
  uint8), in the (z, y, x) order of the project; phase, displacement and strain are 0 outside the support
  (mask them with ``support``).
* :func:`export_vti` — a VTK XML ImageData file (``.vti``) for ParaView, written with the standard library
  only (no vtk/pyvista needed): point data ``amplitude``, ``phase``, ``displacement``, ``het_strain``
  (Float32) and ``support`` (UInt8), ``Spacing`` = voxel size in nm. VTK's x axis is the array's last axis,
  so the C-ordered (z, y, x) array is written as is; ``Spacing`` is (x, y, z). Data are inline base64
  ("binary": one base64 stream of a UInt64 byte count followed by the little-endian values, as VTK writes
  it) or ASCII.

Both write atomically (:func:`.io.atomic.atomic_path`) and never over an input file (``protect=``).
"""

from __future__ import annotations

import base64
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

_VTK_TYPES = {np.dtype("float32"): "Float32", np.dtype("uint8"): "UInt8"}


def _checked(result: StrainResult, out: Path) -> dict:
    """The result's arrays as ``{cdiutils name: array}`` (float32 / uint8 copies), shape-checked."""
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
    vs = np.asarray(result.voxel_size, dtype=np.float64)
    if vs.shape != (3,) or not np.all(np.isfinite(vs)) or np.any(vs <= 0):
        raise BCDIError(f"{out}: voxel size {result.voxel_size!r} must be three positive lengths (nm)")
    return arrays


def export_npz_cdiutils(path: os.PathLike | str, result: StrainResult, *,
                        protect: Iterable[os.PathLike | str] = ()) -> Path:
    """Write ``result`` as an ``.npz`` with cdiutils-like keys (see the module docstring); returns the path."""
    out = Path(path)
    if out.suffix.lower() != ".npz":
        raise BCDIError(f"{out}: an .npz file name is needed (got '{out.suffix}')")
    arrays = _checked(result, out)
    arrays.update(
        voxel_size=np.asarray(result.voxel_size, dtype=np.float64),
        g_direction=np.asarray(result.g_direction, dtype=np.float64),
        g_norm=np.float64(np.nan if result.g_norm is None else result.g_norm),
        frame=np.str_(result.frame),
        twin=np.bool_(result.twin),
        ramp=np.asarray(result.ramp, dtype=np.float64),
        offset=np.float64(result.offset),
    )
    with atomic_path(out, protect) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return out


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
