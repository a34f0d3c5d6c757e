"""npe2 single-layer writers: an Image layer to ``.cxi``/``.npz``, a Labels layer (mask) to ``.cxi``/``.npz``.

- complex image data -> a reconstruction (PyNX result layout in ``.cxi``; ``obj``/``support`` in ``.npz``);
  its support comes from the layer metadata when the reader put one there, else ``|obj| > 0.2·max``.
- real image data -> a diffraction intensity (PyNX CXI data file; ``data`` in ``.npz``), with the geometry
  the reader stored in ``metadata["bcdi"]``.
- a modulus or phase layer of a reconstruction that carries its
  :class:`~napari_bcdi_dl.core.types.ReconstructionResult` (the Phasing and DL phase docks, the reader) ->
  that whole reconstruction (object, support, LLK, geometry); without one it is refused: alone, neither is a
  reconstruction.
- labels -> a mask (1 = invalid) alone: ``/entry_1/instrument_1/detector_1/mask`` or ``.npz`` key ``mask``
  (``support`` for a support layer).

Writes are atomic and never replace the file the layer was read from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _bcdi(attributes: dict) -> dict:
    meta = (attributes or {}).get("metadata") or {}
    d = meta.get("bcdi") if isinstance(meta, dict) else None
    return d if isinstance(d, dict) else {}


def _protect(info: dict) -> list:
    src = info.get("source")
    return [src] if src else []


def write_image(path: str, data: Any, attributes: dict) -> list[str]:
    """Write one Image layer to ``.cxi`` or ``.npz``; return ``[path]``."""
    from .core.errors import BCDIError
    from .core.io import write_intensity, write_reconstruction
    from .core.types import Geometry, Reconstruction, ReconstructionResult

    info = _bcdi(attributes)
    geometry = info.get("geometry") if isinstance(info.get("geometry"), Geometry) else None
    kind = info.get("kind")
    name = (attributes or {}).get("name", "layer")
    result = info.get("result")
    if kind in ("modulus", "phase") and isinstance(result, ReconstructionResult):
        protect = [p for p in (result.source, info.get("source")) if p]
        write_reconstruction(Path(path), result.reconstruction, result.geometry, protect=protect)
        return [str(path)]
    if kind in ("modulus", "phase"):
        raise BCDIError(
            f"layer '{name}' is the {kind} of a reconstruction; alone it is not a reconstruction: save the "
            "result from the Results widget, or save the original file's layers together"
        )
    arr = np.asarray(data)
    out = Path(path)
    if np.iscomplexobj(arr):
        obj = arr.astype(np.complex64, copy=False)
        modulus = np.abs(obj)
        support = (modulus > 0.2 * float(modulus.max())).astype(np.uint8) if modulus.size else None
        meta = {"support_from": "modulus > 0.2 max (the layer had no support)", "layer": name}
        rec = Reconstruction(
            obj=obj, support=support, method=str((info.get("meta") or {}).get("method", "unknown")), meta=meta
        )
        write_reconstruction(out, rec, geometry, protect=_protect(info))
    else:
        write_intensity(out, arr, None, geometry, protect=_protect(info))
    return [str(out)]


def write_labels(path: str, data: Any, attributes: dict) -> list[str]:
    """Write one Labels layer as a mask (or a support) to ``.cxi`` or ``.npz``; return ``[path]``."""
    from .core.errors import BCDIError
    from .core.io import write_cxi_mask, write_npz

    info = _bcdi(attributes)
    arr = np.asarray(data)
    if arr.ndim not in (2, 3):
        raise BCDIError(f"{path}: a mask is 2D or 3D (the layer has shape {arr.shape}); nothing written")
    mask = (arr != 0).astype(np.uint8)
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".npz":
        key = "support" if info.get("kind") == "support" else "mask"
        write_npz(out, protect=_protect(info), **{key: mask})
    elif suffix == ".cxi":
        write_cxi_mask(out, mask, protect=_protect(info))
    else:
        raise BCDIError(f"{out}: masks are written as .npz or .cxi (got '{suffix}')")
    return [str(out)]
