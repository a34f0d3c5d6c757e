"""Find the Bragg peak, crop around it, bin by integer factors (updating the geometry).

Crop: the peak voxel goes to the centre ``n // 2`` of every axis (the project's FFT convention), to a size
the user gives or, by default, to the largest size the FFT likes — a product of 2, 3 and 5 — that fits
around the peak inside the data. The detector ROI and the mean angle of the rocking motor follow the crop.

Bin: photon counts of ``b_z × b_y × b_x`` voxels are summed (counts stay counts); a binned voxel is masked
when any of its voxels is (its sum would be short). The rocking step and the pixel size grow by the factors;
the ROI and the direct-beam pixel are expressed in binned pixels so that the geometry (``core.geometry``)
still places every voxel right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import BCDIError
from ..progress import CancelToken, ProgressFn, report
from ..types import LoadedData
from ._base import check_not_empty, check_pattern, copy_geometry, detector_roi, masked_argmax, updated

CENTRES = ("max", "com")


def is_fft_friendly(n: int) -> bool:
    """True when ``n`` is a product of 2, 3 and 5 only (1 counts)."""
    n = int(n)
    if n < 1:
        return False
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def fft_size_at_most(n: int, even: bool = True) -> int:
    """Largest FFT-friendly size ≤ ``n`` (even by default, as PyNX likes); 0 when none."""
    for m in range(int(n), 0, -1):
        if is_fft_friendly(m) and (not even or m % 2 == 0):
            return m
    return 0


def find_peak(intensity: np.ndarray, mask: np.ndarray | None = None, method: str = "max") -> tuple[int, ...]:
    """The Bragg peak voxel (z, y, x): the brightest valid voxel (``"max"``) or the rounded intensity-weighted
    centre of mass of the valid voxels (``"com"``).

    Raises
    ------
    BCDIError
        An unknown method or an empty pattern.
    """
    if method not in CENTRES:
        raise BCDIError(f"peak: method {method!r} is unknown; use 'max' or 'com'")
    a = np.asarray(intensity)
    check_not_empty(a, mask, "peak")
    if method == "max":
        return masked_argmax(a, mask)[0]
    from ..reciprocal import centre_of_mass

    com = centre_of_mass(a, None if mask is None else np.asarray(mask) != 0)
    return tuple(int(np.clip(np.floor(c + 0.5), 0, n - 1)) for c, n in zip(com, a.shape))


def crop_window(shape: Sequence[int], peak: Sequence[int], size: Sequence[int] | None = None
                ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(offset, size)`` of the crop with ``peak`` at ``size // 2``: the given size, or per axis the largest
    even FFT-friendly size that fits around the peak.

    Raises
    ------
    BCDIError
        A size that does not fit around the peak (the message gives the largest that does).
    """
    shape = tuple(int(s) for s in shape)
    peak = tuple(int(p) for p in peak)
    fits = [_largest_fit(n, p) for n, p in zip(shape, peak)]
    if size is None:
        out = []
        for ax, (n, p, fit) in enumerate(zip(shape, peak, fits)):
            m = fft_size_at_most(fit)
            if m < 2:
                raise BCDIError(f"crop: the peak at index {p} of axis {ax} (size {n}) sits on the edge: no "
                                "crop can centre it; check the data or give the peak")
            out.append(m)
        size = tuple(out)
    size = tuple(int(s) for s in size)
    if len(size) != 3 or min(size) < 2:
        raise BCDIError(f"crop: size {size} must be three sizes of at least 2 voxels (Z Y X)")
    for ax, (n, p, s, fit) in enumerate(zip(shape, peak, size, fits)):
        if s > fit:
            raise BCDIError(
                f"crop: {s} voxels along axis {ax} do not fit around the peak at index {p} of {n}; the largest "
                f"centred crop is {fit} (FFT-friendly: {fft_size_at_most(fit)}): give a smaller --crop")
    offset = tuple(p - s // 2 for p, s in zip(peak, size))
    return offset, size  # type: ignore[return-value]


def _largest_fit(n: int, p: int) -> int:
    """Largest ``s`` with ``p - s // 2 >= 0`` and ``p - s // 2 + s <= n``."""
    best = 0
    for s in range(1, n + 1):
        if p - s // 2 >= 0 and p - s // 2 + s <= n:
            best = s
    return best


def crop(
    loaded: LoadedData,
    size: Sequence[int] | None = None,
    *,
    centre: str | Sequence[int] = "max",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> LoadedData:
    """Crop the pattern around its Bragg peak (see the module docstring).

    Parameters
    ----------
    loaded : the pattern (intensity, mask, geometry).
    size : (Z, Y, X) output size; None: the largest even FFT-friendly size per axis around the peak.
    centre : ``"max"``, ``"com"`` or an explicit peak voxel (z, y, x).

    Returns
    -------
    LoadedData
        New arrays; ``geometry.roi`` moved to the crop, the rocking motor's mean angle moved to the kept
        frames; a ``crop`` provenance record (peak, offset, size).
    """
    data, mask = check_pattern(loaded, "crop")
    report(progress, cancel, 0, 2)
    if isinstance(centre, str):
        peak = find_peak(data, mask, centre)
        how = centre
    else:
        peak = tuple(int(v) for v in centre)
        if len(peak) != 3 or any(not 0 <= v < n for v, n in zip(peak, data.shape)):
            raise BCDIError(f"crop: peak {peak} is outside the data {data.shape}")
        how = "given"
    offset, out_size = crop_window(data.shape, peak, size)
    sl = tuple(slice(o, o + s) for o, s in zip(offset, out_size))
    new_data = np.array(data[sl], dtype=np.float32)
    new_mask = None if mask is None else np.array(mask[sl], dtype=np.uint8)
    g = loaded.geometry
    r0, _r1, c0, _c1 = detector_roi(g, data.shape)
    geom = copy_geometry(g, roi=(r0 + offset[1], r0 + offset[1] + out_size[1],
                                 c0 + offset[2], c0 + offset[2] + out_size[2]))
    motor = (g.rocking_motor or "").lower() if g is not None else ""
    moved = None
    if g is not None and g.rocking_step_deg is not None and motor and motor in (geom.angles_deg or {}):
        # the stored angle is the mean over the frames: move it to the mean over the kept frames
        moved = float(g.rocking_step_deg) * (offset[0] + (out_size[0] - 1) / 2 - (data.shape[0] - 1) / 2)
        geom.angles_deg = dict(geom.angles_deg)
        geom.angles_deg[motor] = float(geom.angles_deg[motor]) + moved
    report(progress, cancel, 2, 2)
    return updated(loaded, "crop", data=new_data, mask=new_mask, geometry=geom,
                   params={"size": None if size is None else list(out_size), "centre": how},
                   result={"peak": list(peak), "offset": list(offset), "shape": list(out_size),
                           "peak_after": [s // 2 for s in out_size], "rocking_angle_shift_deg": moved})


def bin_pattern(
    loaded: LoadedData,
    factors: Sequence[int],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> LoadedData:
    """Sum counts over ``factors`` = (b_z, b_y, b_x) voxels (see the module docstring).

    Raises
    ------
    BCDIError
        Factors that are not three positive integers, or that do not divide the shape.
    """
    data, mask = check_pattern(loaded, "bin")
    try:
        f = tuple(int(v) for v in factors)
        ok = len(f) == 3 and all(v >= 1 for v in f) and all(float(v) == int(v) for v in factors)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise BCDIError(f"bin: factors {tuple(factors) if np.iterable(factors) else factors} must be three "
                        "positive integers (BZ BY BX)")
    for ax, (n, b) in enumerate(zip(data.shape, f)):
        if n % b:
            raise BCDIError(f"bin: factor {b} does not divide the size {n} of axis {ax}; crop to a multiple "
                            f"of {b} first (e.g. --crop with {n - n % b} along that axis)")
    report(progress, cancel, 0, 2)
    shape = tuple(n // b for n, b in zip(data.shape, f))
    split = (shape[0], f[0], shape[1], f[1], shape[2], f[2])
    if mask is not None and np.any(mask):
        valid = np.where(mask != 0, np.float32(0), data.astype(np.float32, copy=False))
        new = valid.reshape(split).sum(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)
        del valid
        new_mask = (mask != 0).reshape(split).any(axis=(1, 3, 5)).astype(np.uint8)
    else:
        new = data.reshape(split).sum(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)
        new_mask = None if mask is None else np.zeros(shape, np.uint8)
    g = loaded.geometry
    geom = copy_geometry(g)
    if g is not None:
        if g.rocking_step_deg is not None:
            geom.rocking_step_deg = float(g.rocking_step_deg) * f[0]
        if g.pixel_size_m is not None:
            p = np.broadcast_to(np.asarray(g.pixel_size_m, dtype=float).ravel(), (2,))
            geom.pixel_size_m = (float(p[0]) * f[1], float(p[1]) * f[2])
        r0, _r1, c0, _c1 = detector_roi(g, data.shape)
        # pixel j of the binned axis covers detector pixels r0 + b j ... r0 + b j + b - 1: in binned units its
        # centre sits at (r0 + (b - 1) / 2) / b + j. The ROI start is floor(r0 / b); the remainder goes into
        # the direct-beam position, so that roi[0] + j - beam_center is unchanged in detector length.
        nr0, nc0 = r0 // f[1], c0 // f[2]
        geom.roi = (nr0, nr0 + shape[1], nc0, nc0 + shape[2])
        if g.beam_center is not None:
            by, bx = (float(v) for v in g.beam_center)
            geom.beam_center = (nr0 - (r0 + (f[1] - 1) / 2 - by) / f[1],
                                nc0 - (c0 + (f[2] - 1) / 2 - bx) / f[2])
    report(progress, cancel, 2, 2)
    prev = tuple((loaded.meta or {}).get("binning") or (1, 1, 1))
    total = tuple(int(a) * int(b) for a, b in zip(prev, f))
    return updated(loaded, "bin", data=new, mask=new_mask, geometry=geom, params={"factors": list(f)},
                   result={"shape": list(shape), "binning_total": list(total)},
                   meta={"binning": list(total)})
