"""Detector corrections: hot and dead pixels, flat field, background, photon threshold, module gaps.

All work frame by frame or on 2D detector images (never a second full copy of the stack in float64), and
mask a detector pixel in every frame (a defect of the detector is in every frame).

- **Hot pixels**: a pixel far above the median of its 8 neighbours (``I > ratio · max(median, 1)``) in more
  than ``fraction`` of the frames. Candidates are found first with the neighbours' *minimum* (a superset,
  since min ≤ median, and ~10× cheaper than a median filter), the median test then runs on them only.
  Bragg peaks and fringes are smooth at the pixel scale of an oversampled pattern: a pixel is never ten
  times its neighbours' median in most frames.
- **Dead pixels**: zero in every frame while the neighbours' median over the summed frames predicts at
  least ``min_expected`` counts (a real pixel that should receive E counts stays dark with probability
  e^-E), or saturated (at the saturation value, or at the stack's maximum) in every frame.
- **Flat field**: ``I / flat`` (flat = relative pixel efficiency, ~1); pixels with a flat ≤ 0 or not finite
  are masked. **Background**: dark or background frames (one 2D frame, or a stack averaged over its frames)
  are subtracted, negative counts clipped to 0. Both are given for the full detector (sliced by the ROI) or
  for the data's frame.
- **Photon threshold**: counts below it become 0 (not masked: a measured zero).
- **Module gaps** of a named detector through ``core.masks.detector_gap_mask`` (pyFAI's detector library
  where it covers the detector, the project's presets otherwise), placed through the ROI offset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import BCDIError
from ..progress import CancelToken, ProgressFn, check_cancel, report
from ..types import LoadedData
from ._base import check_pattern, detector_roi, updated

_RING = np.ones((3, 3), bool)
_RING[1, 1] = False
CHUNK = 16


def _frames_mask(shape, plane: np.ndarray, mask: np.ndarray | None, copy: bool = True) -> np.ndarray:
    """``mask`` (or zeros) with the 2D ``plane`` set in every frame: a new uint8 array, or ``mask`` itself
    when ``copy=False`` and it is already uint8 (a pipeline's own array)."""
    if mask is None:
        out = np.zeros(shape, np.uint8)
    elif not copy and isinstance(mask, np.ndarray) and mask.dtype == np.uint8:
        out = mask
    else:
        out = (np.asarray(mask) != 0).astype(np.uint8)
    out[:, plane] = 1
    return out


def _work(data: np.ndarray, copy: bool) -> np.ndarray:
    """A float32 copy of ``data`` (``copy=False``: ``data`` itself when it is float32 already)."""
    if not copy and isinstance(data, np.ndarray) and data.dtype == np.float32 and data.flags.writeable:
        return data
    return np.array(data, dtype=np.float32)


def _masked_everywhere(mask: np.ndarray) -> np.ndarray:
    """2D map of the detector pixels masked in every frame (frame block by frame block)."""
    out = np.ones(mask.shape[1:], bool)
    for z0 in range(0, mask.shape[0], CHUNK):
        out &= np.all(np.asarray(mask[z0:z0 + CHUNK]) != 0, axis=0)
    return out


# ------------------------------------------------------------------------------------------- hot pixels
def hot_pixel_map(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    ratio: float = 10.0,
    fraction: float = 0.5,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """2D bool map (rows, cols) of the hot pixels of a stack (see the module docstring).

    Parameters
    ----------
    intensity : (frames, rows, cols) counts.
    mask : voxels already invalid (ignored as neighbours... and never reported again).
    ratio : how far above the neighbours' median (floored at 1 count) a hot pixel is, in a frame.
    fraction : share of the frames in which it must be so.
    """
    a = np.asarray(intensity)
    if not ratio > 1 or not 0 < fraction < 1:
        raise BCDIError(f"hot pixels: ratio {ratio} must be > 1 and fraction {fraction} between 0 and 1")
    nz = a.shape[0]
    need = fraction * nz
    count = np.zeros(a.shape[1:], np.int32)
    chunks = range(0, nz, CHUNK)
    for i, z0 in enumerate(chunks):
        block = np.asarray(a[z0:z0 + CHUNK], dtype=np.float32)
        low = ndimage.minimum_filter(block, footprint=_RING[None], mode="nearest")
        np.maximum(low, 1.0, out=low)
        count += np.sum(block > ratio * low, axis=0, dtype=np.int32)
        report(progress, cancel, i + 1, len(chunks) + 1)
    candidates = np.argwhere(count > need)
    hot = np.zeros(a.shape[1:], bool)
    if len(candidates):
        ny, nx = a.shape[1:]
        offs = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
        for y, x in candidates:
            check_cancel(cancel)
            nb = np.stack([a[:, min(max(y + dy, 0), ny - 1), min(max(x + dx, 0), nx - 1)] for dy, dx in offs],
                          axis=1).astype(np.float32)
            med = np.maximum(np.median(nb, axis=1), 1.0)
            hot[y, x] = np.count_nonzero(a[:, y, x] > ratio * med) > need
    if mask is not None:
        hot &= ~_masked_everywhere(mask)
    report(progress, cancel, len(chunks) + 1, len(chunks) + 1)
    return hot


def remove_hot_pixels(loaded: LoadedData, *, ratio: float = 10.0, fraction: float = 0.5, copy: bool = True,
                      progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> LoadedData:
    """Mask the hot pixels in every frame and set their counts to 0 (new arrays; ``copy=False``: in place,
    for a pipeline that owns ``loaded``'s arrays)."""
    data, mask = check_pattern(loaded, "hot pixels")
    hot = hot_pixel_map(data, mask, ratio=ratio, fraction=fraction, progress=progress, cancel=cancel)
    new = _work(data, copy)
    new[:, hot] = 0
    pixels = [[int(y), int(x)] for y, x in np.argwhere(hot)[:1000]]
    return updated(loaded, "hot_pixels", data=new, mask=_frames_mask(data.shape, hot, mask, copy),
                   params={"ratio": ratio, "fraction": fraction},
                   result={"n_pixels": int(hot.sum()), "pixels": pixels})


# ------------------------------------------------------------------------------------------ dead pixels
def dead_pixel_maps(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    min_expected: float = 20.0,
    saturation: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """2D bool maps ``(dead, saturated)`` of the detector pixels (see the module docstring); pixels already
    masked in every frame are not reported."""
    a = np.asarray(intensity)
    top = np.zeros(a.shape[1:], np.float32)
    low = np.full(a.shape[1:], np.inf, np.float32)
    total = np.zeros(a.shape[1:], np.float64)
    for z0 in range(0, a.shape[0], CHUNK):
        block = np.asarray(a[z0:z0 + CHUNK], dtype=np.float32)
        np.maximum(top, block.max(axis=0), out=top)
        np.minimum(low, block.min(axis=0), out=low)
        total += block.sum(axis=0, dtype=np.float64)
    known = np.zeros(a.shape[1:], bool) if mask is None else _masked_everywhere(mask)
    expected = ndimage.median_filter(total, footprint=_RING, mode="nearest")
    dead = (top <= 0) & (expected >= float(min_expected)) & ~known
    level = float(top.max()) if saturation is None else float(saturation)
    saturated = (low >= level) & (level > 0) & ~known
    if saturation is None and saturated.sum() > 0.01 * saturated.size:
        saturated[:] = False  # a flat maximum over many pixels is not saturation but the data's scale
    return dead, saturated


def mask_dead_pixels(loaded: LoadedData, *, min_expected: float = 20.0, saturation: float | None = None,
                     copy: bool = True, progress: ProgressFn | None = None,
                     cancel: CancelToken | None = None) -> LoadedData:
    """Mask dead and saturated pixels in every frame (their counts set to 0) and report how many
    (``copy=False``: in place)."""
    data, mask = check_pattern(loaded, "dead pixels")
    report(progress, cancel, 0, 1)
    dead, sat = dead_pixel_maps(data, mask, min_expected=min_expected, saturation=saturation)
    bad = dead | sat
    new = _work(data, copy)
    new[:, bad] = 0
    report(progress, cancel, 1, 1)
    return updated(loaded, "dead_pixels", data=new, mask=_frames_mask(data.shape, bad, mask, copy),
                   params={"min_expected": min_expected, "saturation": saturation},
                   result={"n_dead": int(dead.sum()), "n_saturated": int(sat.sum())},
                   meta={"dead_pixels": int(dead.sum()), "saturated_pixels": int(sat.sum())})


# ---------------------------------------------------------------------------------- flat / background
def read_frame_file(path) -> np.ndarray:
    """A 2D (or 3D stack of) detector frame(s) from ``.npy``, ``.npz`` (key ``data``, ``flat``,
    ``background`` or the only array), ``.tif``/``.tiff`` or ``.edf``, as float32."""
    p = Path(path)
    if not p.is_file():
        raise BCDIError(f"{p}: no such file; give the flat-field or background frame file")
    s = p.suffix.lower()
    try:
        if s == ".npy":
            a = np.load(p, allow_pickle=False)
        elif s == ".npz":
            with np.load(p, allow_pickle=False) as f:
                keys = [k for k in ("data", "flat", "flatfield", "background") if k in f.files]
                if not keys and len(f.files) != 1:
                    raise BCDIError(f"{p}: several arrays ({', '.join(f.files)}); save the frame as 'data'")
                a = f[keys[0] if keys else f.files[0]]
        elif s in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(str(p))
        elif s in (".edf",):
            import fabio

            a = fabio.open(str(p)).data
        else:
            raise BCDIError(f"{p}: unknown frame file type '{s}'; use .npy, .npz, .tif or .edf")
    except BCDIError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
        raise BCDIError(f"{p}: cannot be read ({' '.join(str(err).split())[:100]}); save it again") from None
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a) or a.ndim not in (2, 3):
        raise BCDIError(f"{p}: holds {a.dtype} of shape {a.shape}; a 2D detector frame of numbers is needed")
    return a.astype(np.float32)


def _as_frame(values, loaded: LoadedData, what: str) -> np.ndarray:
    """A 2D frame of the data's (rows, cols): a stack is averaged; a full-detector frame is cut by the ROI."""
    a = read_frame_file(values) if isinstance(values, (str, Path)) else np.asarray(values, dtype=np.float32)
    if a.ndim == 3:
        a = a.mean(axis=0, dtype=np.float64).astype(np.float32)
    if a.ndim != 2:
        raise BCDIError(f"{what}: shape {a.shape} is not a 2D detector frame")
    ny, nx = np.shape(loaded.data)[1:]
    if a.shape == (ny, nx):
        return a
    r0, r1, c0, c1 = detector_roi(loaded.geometry, np.shape(loaded.data))
    if loaded.geometry.roi is not None and a.shape[0] >= r1 and a.shape[1] >= c1:
        return a[r0:r1, c0:c1]
    raise BCDIError(f"{what}: frame shape {a.shape} fits neither the data's frames ({ny}, {nx}) nor the "
                    f"detector region of the data (ROI {loaded.geometry.roi}); give the frame of this detector")


def apply_flat_field(loaded: LoadedData, flat, *, copy: bool = True) -> LoadedData:
    """Divide every frame by the flat field (a 2D array or a file); pixels with flat ≤ 0 are masked
    (``copy=False``: in place)."""
    data, mask = check_pattern(loaded, "flat field")
    f = _as_frame(flat, loaded, "flat field")
    bad = ~np.isfinite(f) | (f <= 0)
    scale = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, f)).astype(np.float32)
    new = _work(data, copy)
    new *= scale
    good = f[~bad]
    return updated(loaded, "flat_field", data=new, mask=_frames_mask(data.shape, bad, mask, copy),
                   params={"source": str(flat) if isinstance(flat, (str, Path)) else "array"},
                   result={"masked_pixels": int(bad.sum()),
                           "flat_range": [float(good.min()), float(good.max())] if good.size else None})


def subtract_background(loaded: LoadedData, background, *, copy: bool = True) -> LoadedData:
    """Subtract background frames (2D, or a stack averaged over its frames); negative counts become 0
    (``copy=False``: in place)."""
    data, _mask = check_pattern(loaded, "background")
    b = _as_frame(background, loaded, "background")
    if not np.all(np.isfinite(b)):
        raise BCDIError("background: the frame holds NaN or infinite values; give a clean background frame")
    new = _work(data, copy)
    new -= b
    np.maximum(new, 0, out=new)
    return updated(loaded, "background", data=new,
                   params={"source": str(background) if isinstance(background, (str, Path)) else "array"},
                   result={"mean_background": float(b.mean())})


def photon_threshold(loaded: LoadedData, threshold: float, *, copy: bool = True) -> LoadedData:
    """Counts below ``threshold`` become 0 (not masked; ``copy=False``: in place)."""
    data, _mask = check_pattern(loaded, "photon threshold")
    if not np.isfinite(threshold) or threshold < 0:
        raise BCDIError(f"photon threshold {threshold} must be a number of photons >= 0")
    new = _work(data, copy)
    low = new < threshold
    n = int(np.count_nonzero(low & (new > 0)))
    new[low] = 0
    return updated(loaded, "photon_threshold", data=new, params={"threshold": float(threshold)},
                   result={"voxels_zeroed": n})


# ------------------------------------------------------------------------------------------ module gaps
def mask_detector_gaps(loaded: LoadedData, detector: str | None = None, *, source: str = "auto",
                       copy: bool = True) -> LoadedData:
    """Add the module gaps of ``detector`` (default ``geometry.detector``) through the ROI offset
    (``copy=False``: in place)."""
    from ..masks import detector_gap_mask

    data, mask = check_pattern(loaded, "detector gaps")
    name = detector or (loaded.geometry.detector if loaded.geometry is not None else None)
    if not name:
        raise BCDIError("detector gaps: no detector name; give one (e.g. --detector maxipix)")
    r0, _r1, c0, _c1 = detector_roi(loaded.geometry, data.shape)
    plane, origin = detector_gap_mask(name, data.shape[1:], (r0, c0), source=source)
    gaps = plane != 0
    new = _work(data, copy)
    new[:, gaps] = 0
    return updated(loaded, "detector_gaps", data=new, mask=_frames_mask(data.shape, gaps, mask, copy),
                   params={"detector": name, "roi_offset": [r0, c0], "source": source},
                   result={"library": origin, "gap_pixels": int(gaps.sum())})
