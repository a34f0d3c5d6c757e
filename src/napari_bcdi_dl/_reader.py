"""npe2 reader: every format of :mod:`napari_bcdi_dl.core.io` as napari layers.

``get_reader(path)`` never raises: it returns None for what it cannot read (wrong type, 2D images, HDF5
files without CXI/BLISS layout), so other readers get their turn. Once a file is accepted, a problem found
while reading it (NaN counts, truncated file, mask of another shape...) is shown as a napari error
notification and no layer is added: the reader then returns napari's "read, nothing to add" value
``[(None,)]`` so that napari does not add a second, vaguer error.

Layers:

- intensity: an Image layer of the **raw counts** (nothing is lost, values under the cursor are counts),
  displayed on a log-like scale: ``gamma=0.2`` on contrast ``(0, max)`` with the ``magma`` colormap. A
  second "log" layer would double the memory of a 512×512×300 scan; gamma keeps one copy and fringes
  3-4 decades below the peak stay visible. The Data & mask widget offers a true log view.
- its mask, if the file has one: a Labels layer ``"<name> gap mask"`` (1 = gap), painted in 3D.
- an object: ``"<name> modulus"`` (gray), ``"<name> phase"`` (twilight, contrast ±π) and, if present,
  ``"<name> support"`` Labels.
- a file holding only a mask: a Labels layer ``"<name> gap mask"``.

Scale: objects get their voxel size in nm when the file gives it; diffraction data get their reciprocal step
(1/nm) when the geometry is complete (energy, distance, pixel, rocking step), else scale 1 (one
voxel per detector pixel and frame). Every layer carries ``metadata["bcdi"]`` (kind, source, geometry, the
reader's meta) for the widgets and the writer; an object's layers also carry ``result``, one
:class:`~napari_bcdi_dl.core.types.ReconstructionResult` (``widgets._layers.result_of`` reads it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

NULL_LAYER: list = [(None,)]


def get_reader(path: Any) -> Callable | None:
    """Return a reader function if ``path`` is BCDI data this plugin reads, else None (never raises)."""
    try:
        if isinstance(path, (list, tuple)):
            if len(path) != 1:
                return None
            path = path[0]
        from .core.io import can_read

        if not can_read(path):
            return None
    except Exception:  # noqa: BLE001 - contract: never raises
        return None
    return read_layers


def read_layers(path: Any, **_kwargs) -> list:
    """Read ``path`` into layer data tuples; on error show a notification and add nothing."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        return _layers(Path(path))
    except Exception as err:  # noqa: BLE001 - never crash napari: tell the user instead
        from .core.errors import BCDIError

        if isinstance(err, BCDIError):
            message = str(err)
        elif isinstance(err, MemoryError):
            message = f"{path}: not enough memory to load it; crop a ROI with 'bcdi-dl convert' first"
        else:
            message = f"napari-bcdi-dl could not read {path}: {type(err).__name__}: {err}"
        _notify_error(message)
        return NULL_LAYER


def _notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(message)


def _notify_info(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)


def _layers(p: Path) -> list:
    from .core import io

    name = p.name if p.is_dir() else p.stem.removesuffix(".edf")
    if io.is_mask_file(p):
        mask = io.read_mask(p)
        return [(mask, {"name": f"{name} gap mask", "metadata": _meta("mask", p), "opacity": 0.6}, "labels")]
    scan = None
    scans = io.list_scans(p)
    if len(scans) > 1:
        scan = _first_scan_with_frames(p, scans)
        _notify_info(
            f"{p.name} holds {len(scans)} scans; opened scan {scan}. Choose another one in the Data & mask "
            "widget "
            f"(or: bcdi-dl convert {p.name} out.cxi --scan N)"
        )
    loaded = io.read(p, scan=scan)
    if scans:
        name = f"{name} scan {loaded.meta.get('scan', scan)}"
    if loaded.kind == "object":
        return _object_layers(loaded, name, p)
    return _intensity_layers(loaded, name, p)


def _first_scan_with_frames(p: Path, scans: list[str]) -> str:
    from .core import io
    from .core.errors import BCDIError

    for s in scans:
        try:
            if io.list_detectors(p, s):
                return s
        except BCDIError:
            continue
    return scans[0]


def _meta(kind: str, p: Path, loaded=None) -> dict:
    d: dict = {"kind": kind, "source": str(p)}
    if loaded is not None:
        d["geometry"] = loaded.geometry
        d["meta"] = loaded.meta
    return {"bcdi": d}


def _intensity_layers(loaded, name: str, p: Path) -> list:
    data = loaded.data
    top = float(data.max()) if data.size else 1.0
    image_kw = {
        "name": name,
        "colormap": "magma",
        "gamma": 0.2,
        "contrast_limits": (0.0, top if top > 0 else 1.0),
        "metadata": _meta("intensity", p, loaded),
        "rendering": "mip",
    }
    extra = _reciprocal_scale(loaded, image_kw["metadata"])
    image_kw.update(extra)
    layers = [(data, image_kw, "image")]
    if loaded.mask is not None:
        layers.append(
            (
                loaded.mask,
                {"name": f"{name} gap mask", "opacity": 0.6, "metadata": _meta("mask", p, loaded), **extra},
                "labels",
            )
        )
    return layers


def _reciprocal_scale(loaded, metadata: dict) -> dict:
    """Layer ``scale``/``units`` of a diffraction pattern when its geometry is complete, else ``{}``.

    The pattern lives in reciprocal space: its scale is the reciprocal step (1/nm) along (rocking, rows,
    cols). The real-space voxel size (nm) of objects phased from it goes into ``metadata["bcdi"]
    ["voxel_size_nm"]``, which the phasing and results widgets give their layers as ``scale``.
    """
    from .core.errors import BCDIError
    from .core.geometry import detector_voxel_size, reciprocal_voxel_size

    if not loaded.geometry.is_complete_for_voxel_size():
        return {}
    try:
        q_step = reciprocal_voxel_size(loaded.geometry, loaded.data.shape)
        metadata["bcdi"]["voxel_size_nm"] = tuple(
            float(v) for v in detector_voxel_size(loaded.geometry, loaded.data.shape))
    except BCDIError:
        return {}
    return {"scale": tuple(float(v) for v in q_step), "units": "1/nm"}


def _object_layers(loaded, name: str, p: Path) -> list:
    from .core import io
    from .core.types import ReconstructionResult

    obj = loaded.data
    scale = loaded.meta.get("voxel_size_nm")
    extra = {"scale": tuple(float(s) for s in scale), "units": "nm"} if scale else {}
    result = ReconstructionResult(io.reconstruction_from(loaded), geometry=loaded.geometry,
                                  voxel_size_nm=tuple(float(s) for s in scale) if scale else None, source=str(p))

    def meta(kind):  # every layer carries the one result (widgets._layers.result_of reads it back)
        m = _meta(kind, p, loaded)
        m["bcdi"]["result"] = result
        return m
    modulus = np.abs(obj)
    phase = np.angle(obj).astype(np.float32)
    top = float(modulus.max()) if modulus.size else 1.0
    layers = [
        (
            modulus,
            {
                "name": f"{name} modulus",
                "colormap": "gray",
                "contrast_limits": (0.0, top if top > 0 else 1.0),
                "metadata": meta("modulus"),
                **extra,
            },
            "image",
        ),
        (
            phase,
            {
                "name": f"{name} phase",
                "colormap": "twilight",
                "contrast_limits": (-np.pi, np.pi),
                "metadata": meta("phase"),
                **extra,
            },
            "image",
        ),
    ]
    if loaded.support is not None:
        layers.append(
            (
                loaded.support,
                {"name": f"{name} support", "opacity": 0.4, "metadata": meta("support"), **extra},
                "labels",
            )
        )
    return layers
