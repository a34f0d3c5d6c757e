"""From a raw beamline scan to a phasing-ready pattern: detector corrections, crop, bin, alien masking.

Pure functions on a :class:`~napari_bcdi_dl.core.types.LoadedData` (intensity, mask, geometry, meta), each
returning a new one (inputs are never modified) with one record appended to ``meta["provenance"]``
(``{"step", "params", "result"}``):

- ``detector.py``: :func:`remove_hot_pixels`, :func:`mask_dead_pixels`, :func:`apply_flat_field`,
  :func:`subtract_background`, :func:`photon_threshold`, :func:`mask_detector_gaps`;
- ``crop.py``: :func:`find_peak`, :func:`crop` (around the peak, to a size or the largest FFT-friendly one),
  :func:`bin_pattern` (integer factors, geometry updated);
- :func:`mask_aliens` (``core.aliens``, DBSCAN clustering of parasitic scattering);
- :func:`prepare` chains them in the order a beamline scan needs; :func:`write_prepared` writes the result
  (``.npz`` or PyNX ``.cxi``) with its mask, geometry and provenance, readable by ``bcdi-dl phase`` and
  ``inpaint`` as it is.

Order in :func:`prepare`: background, flat field, detector gaps, dead pixels, hot pixels (all in detector
pixels, through the ROI offset), photon threshold, crop, bin, aliens (on the final grid).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BCDIError
from ..progress import CancelToken, ProgressFn, check_cancel, report
from ..types import LoadedData
from ._base import check_not_empty, check_pattern, jsonable, updated
from .crop import bin_pattern, crop, crop_window, fft_size_at_most, find_peak, is_fft_friendly
from .detector import (
    apply_flat_field,
    dead_pixel_maps,
    hot_pixel_map,
    mask_dead_pixels,
    mask_detector_gaps,
    photon_threshold,
    read_frame_file,
    remove_hot_pixels,
    subtract_background,
)

ALIEN_MODES = ("off", "auto")

__all__ = [
    "ALIEN_MODES",
    "apply_flat_field",
    "bin_pattern",
    "crop",
    "crop_window",
    "dead_pixel_maps",
    "fft_size_at_most",
    "find_peak",
    "hot_pixel_map",
    "is_fft_friendly",
    "mask_aliens",
    "mask_dead_pixels",
    "mask_detector_gaps",
    "photon_threshold",
    "prepare",
    "read_frame_file",
    "remove_hot_pixels",
    "subtract_background",
    "write_prepared",
]


def mask_aliens(loaded: LoadedData, *, accept: Sequence[int] | None = None, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None, **params) -> LoadedData:
    """Add the parasitic-signal clusters found by ``core.aliens.find_aliens`` (``params``) to the mask.

    ``accept``: labels of the clusters to mask (default: the proposed ones). The clusters are recorded in
    the provenance (size, asymmetry, prominence, max counts, proposed, accepted).
    """
    from ..aliens import clusters_mask, find_aliens

    data, mask = check_pattern(loaded, "aliens")
    res = find_aliens(data, mask, progress=progress, cancel=cancel, **params)
    chosen = res.proposed if accept is None else [int(k) for k in accept]
    alien = res.mask if accept is None else clusters_mask(res, chosen, intensity=data, mask=mask)
    new_mask = (alien != 0) if mask is None else ((mask != 0) | (alien != 0))
    table = [{"label": c.label, "size": c.size, "asymmetry": c.asymmetry, "prominence": c.prominence,
              "max": c.max_intensity, "centre": list(c.centre), "proposed": c.proposed,
              "accepted": c.label in chosen} for c in res.clusters]
    return updated(loaded, "aliens", mask=new_mask.astype(np.uint8), params=res.params,
                   result={"peak": list(res.peak), "clusters": table[:200], "n_clusters": len(table),
                           "accepted": chosen, "masked_voxels": int(np.count_nonzero(alien))})


def prepare(
    loaded: LoadedData,
    *,
    crop_size: Sequence[int] | None = None,
    auto_crop: bool = True,
    centre: str = "max",
    bin_factors: Sequence[int] | None = None,
    hot_pixels: bool = False,
    dead_pixels: bool = True,
    flat=None,
    background=None,
    threshold: float | None = None,
    detector: str | None = None,
    aliens: str = "off",
    alien_params: dict | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> LoadedData:
    """Run the preparation chain on a loaded scan (see the module docstring for the order).

    Parameters
    ----------
    loaded : a diffraction pattern (``core.io.read``).
    crop_size : (Z, Y, X) crop around the peak; None with ``auto_crop``: the largest FFT-friendly size.
    auto_crop : crop to the largest FFT-friendly size when no ``crop_size`` is given (False: no crop).
    centre : ``"max"`` or ``"com"``: how the peak is found for the crop.
    bin_factors : (BZ, BY, BX) integer binning after the crop (None: none).
    hot_pixels : run the hot-pixel filter.
    dead_pixels : mask pixels dead or saturated in every frame.
    flat, background : a 2D frame (array or file) or None.
    threshold : photon threshold (counts below become 0), or None.
    detector : detector name for the module gaps (None: ``geometry.detector`` if it is known, else none).
    aliens : ``"auto"`` (mask the proposed parasitic clusters) or ``"off"``.
    alien_params : keyword arguments of ``core.aliens.find_aliens``.

    Returns
    -------
    LoadedData
        The prepared pattern: float32 intensity, uint8 mask, updated geometry, ``meta["provenance"]``.

    Raises
    ------
    BCDIError
        Bad input (see each step): a mask of the wrong shape, an empty pattern, a bin factor that does not
        divide the size, a crop that does not fit...
    """
    if aliens not in ALIEN_MODES:
        raise BCDIError(f"prepare: aliens {aliens!r} must be one of {', '.join(ALIEN_MODES)}")
    data, mask = check_pattern(loaded, "prepare")
    check_not_empty(data, mask, "prepare")
    # the detector steps work in place on one private copy (the input is never written to): the peak
    # memory stays at the input, that copy and the cropped result
    steps: list = []
    if background is not None:
        steps.append(("background", lambda d, **k: subtract_background(d, background, copy=False)))
    if flat is not None:
        steps.append(("flat field", lambda d, **k: apply_flat_field(d, flat, copy=False)))
    name = detector or (loaded.geometry.detector if loaded.geometry is not None else None)
    if name:
        steps.append(("detector gaps", lambda d, **k: _gaps(d, name, explicit=detector is not None)))
    if dead_pixels:
        steps.append(("dead pixels", lambda d, **k: mask_dead_pixels(d, copy=False, **k)))
    if hot_pixels:
        steps.append(("hot pixels", lambda d, **k: remove_hot_pixels(d, copy=False, **k)))
    if threshold is not None:
        steps.append(("threshold", lambda d, **k: photon_threshold(d, threshold, copy=False)))
    private = bool(steps)
    if crop_size is not None or auto_crop:
        steps.append(("crop", lambda d, **k: crop(d, crop_size, centre=centre, **k)))
    if bin_factors is not None and tuple(int(b) for b in bin_factors) != (1, 1, 1):
        steps.append(("bin", lambda d, **k: bin_pattern(d, bin_factors, **k)))
    if aliens == "auto":
        steps.append(("aliens", lambda d, **k: mask_aliens(d, **(alien_params or {}), **k)))
    out = loaded
    if private:
        out = LoadedData(data=np.array(data, dtype=np.float32), kind="intensity",
                         mask=np.zeros(data.shape, np.uint8) if mask is None else (mask != 0).astype(np.uint8),
                         geometry=loaded.geometry, source=loaded.source, meta=loaded.meta)
    n = len(steps)
    report(progress, cancel, 0, n)
    for i, (_what, step) in enumerate(steps):
        check_cancel(cancel)
        out = step(out, cancel=cancel)
        report(progress, cancel, i + 1, n)
    if not out.meta.get("provenance"):
        out = updated(out, "none", params={}, result={"note": "nothing to do"})
    check_not_empty(np.asarray(out.data), out.mask, "prepare (result)")
    return out


def _gaps(loaded: LoadedData, name: str, explicit: bool) -> LoadedData:
    """Detector gaps; a detector name that only comes from the file and is unknown is skipped, not fatal."""
    try:
        return mask_detector_gaps(loaded, name, copy=False)
    except BCDIError as err:
        if explicit:
            raise
        return updated(loaded, "detector_gaps", params={"detector": name}, result={"skipped": str(err)})


def write_prepared(path, prepared: LoadedData, *, protect=()) -> Path:
    """Write a prepared pattern by suffix: ``.npz`` (``data``, ``mask``, ``geometry_json``,
    ``provenance_json``) or PyNX ``.cxi`` (the provenance under
    ``/entry_1/data_1/process_1/configuration/provenance_json``), atomically, never over an input."""
    from ..io import write_intensity, write_npz
    from ..io.atomic import atomic_path
    from ..io.npy import geometry_to_json

    out = Path(path)
    suffix = out.suffix.lower()
    data = np.asarray(prepared.data, dtype=np.float32)
    mask = None if prepared.mask is None else (np.asarray(prepared.mask) != 0).astype(np.uint8)
    prov = json.dumps(jsonable((prepared.meta or {}).get("provenance") or []))
    if suffix == ".npz":
        arrays = {"data": data, "geometry_json": np.str_(geometry_to_json(prepared.geometry)),
                  "provenance_json": np.str_(prov)}
        if mask is not None:
            arrays["mask"] = mask
        return write_npz(out, protect=protect, **arrays)
    if suffix != ".cxi":
        raise BCDIError(f"{out}: a prepared pattern is written as .npz or .cxi (got '{suffix or out.name}')")
    import h5py

    with atomic_path(out, protect) as tmp:
        write_intensity(tmp, data, mask, prepared.geometry)
        with h5py.File(tmp, "a") as f:
            f["entry_1/data_1/process_1/configuration"].create_dataset("provenance_json", data=prov)
    return out


def read_provenance(path) -> list:
    """The provenance list stored by :func:`write_prepared` (``[]`` when the file has none)."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as f:
                return json.loads(str(f["provenance_json"])) if "provenance_json" in f.files else []
        import h5py

        with h5py.File(p, "r") as f:
            ds = f.get("entry_1/data_1/process_1/configuration/provenance_json")
            if ds is None:
                return []
            v = ds[()]
            return json.loads(v.decode() if isinstance(v, bytes) else str(v))
    except (OSError, ValueError, KeyError):
        return []
