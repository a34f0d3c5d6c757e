"""Reciprocal-space preprocessing for the DL phase pipeline: centring, crop/pad, model-grid resampling.

The phase network works on a fixed grid (e.g. 64³) and on the oversampling range it was trained on; a
measured pattern has any shape, its peak anywhere and its own oversampling. :func:`to_model_grid` takes the
pattern to the model grid and records what it did in a :class:`GridTransform`; :func:`from_model_grid`
takes a reciprocal-space array (intensity, mask, complex field) or a real-space object predicted on the
model grid back to the original grid, so that it seeds refinement on the full data.

Physics of the two operations (``N`` voxels and step ``dq`` per axis in the data, real-space voxel
``p = 1/(N dq)`` and field of view ``FOV = N p = 1/dq``; the object spans ``L`` and the oversampling is
``sigma = FOV / L``):

- **Cropping** reciprocal space to ``c < N`` voxels keeps ``dq``: the field of view and the oversampling
  are unchanged, the real-space voxel grows to ``p N / c`` — the resolution is lower (high-q fringes are
  cut away). Padding does the reverse and adds no information.
- **Resampling** (zoom) the same q range onto ``S`` voxels changes ``dq`` to ``dq c / S``: the real-space
  voxel is unchanged (``p N / c``) and the field of view, hence the oversampling, is multiplied by
  ``S / c``. Zooming in (``S > c``) needs ``sigma >= 2`` to be exact; zooming out below ``sigma = 2``
  aliases the autocorrelation.

The default ``"fourier"`` resampling is exact for such band-limited data: it crops or zero-pads the
pattern's autocorrelation (its inverse FFT) in real space, which is the same as resampling the continuous
intensity. Going back, an object on the model grid (voxel ``p N / c``, field ``FOV S / c``) is cropped or
padded to ``c`` voxels in real space (field ``FOV``: exact when the object fits, which it does since
``sigma > 1``), Fourier transformed, placed back at the crop position in an ``N``-voxel reciprocal array and
transformed back: its diffraction is the model's, on the original q grid, with the original peak position
(so the phase ramp of an off-centre peak is restored), and nothing outside the crop.

FFT convention of the project: ``I = |fftshift(fftn(ifftshift(obj)))|²``; the centre of an axis of ``n``
voxels is index ``n // 2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import BCDIError

Shape3 = tuple[int, int, int]
RESAMPLING = ("fourier", "linear", "cubic")


def _shape3(size: int | Sequence[int], what: str = "size") -> Shape3:
    if np.isscalar(size):
        s = (int(size),) * 3
    else:
        s = tuple(int(v) for v in size)  # type: ignore[union-attr]
    if len(s) != 3 or min(s) < 1:
        raise BCDIError(f"{what} {size!r} is not a positive int or 3 positive ints")
    return s  # type: ignore[return-value]


def _check3d(a: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 3:
        raise BCDIError(f"{what}: {arr.ndim} dimensions; give a 3D (z, y, x) array")
    if arr.size == 0:
        raise BCDIError(f"{what}: empty array")
    return arr


def centre_of_mass(intensity: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float, float]:
    """Intensity-weighted centre ``(z, y, x)`` in voxels, over the valid voxels (negative values count 0).

    Raises
    ------
    BCDIError
        No positive intensity among the valid voxels.
    """
    a = _check3d(intensity, "centre of mass")
    w = np.where(np.isfinite(a), a, 0).astype(np.float64)
    w = np.maximum(w, 0.0)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != a.shape:
            raise BCDIError(f"centre of mass: mask shape {m.shape} does not match {a.shape}")
        w[m != 0] = 0.0
    total = w.sum()
    if not total > 0:
        raise BCDIError("centre of mass: no positive intensity in the valid voxels; check data and mask")
    out = []
    for ax in range(3):
        prof = w.sum(axis=tuple(i for i in range(3) if i != ax))
        out.append(float((prof * np.arange(a.shape[ax])).sum() / total))
    return tuple(out)  # type: ignore[return-value]


def shift_crop(
    a: np.ndarray, shape: Sequence[int], offset: Sequence[int], fill: float = 0
) -> np.ndarray:
    """New array ``out`` of ``shape`` with ``out[j] = a[j + offset]`` where defined, ``fill`` elsewhere."""
    arr = np.asarray(a)
    shape = tuple(int(s) for s in shape)
    out = np.full(shape, fill, dtype=arr.dtype)
    src, dst = [], []
    for n_in, n_out, off in zip(arr.shape, shape, offset):
        off = int(off)
        lo = max(0, -off)
        hi = min(n_out, n_in - off)
        if hi <= lo:
            return out
        dst.append(slice(lo, hi))
        src.append(slice(lo + off, hi + off))
    out[tuple(dst)] = arr[tuple(src)]
    return out


def centred_offset(
    in_shape: Sequence[int], shape: Sequence[int], centre: Sequence[float] | None = None
) -> Shape3:
    """Offset (``out[j] = a[j + offset]``) that puts voxel ``centre`` (rounded; default the array centre
    ``n // 2``) at the centre ``m // 2`` of the output."""
    if centre is None:
        centre = [n // 2 for n in in_shape]
    return tuple(int(np.floor(float(c) + 0.5)) - int(m) // 2 for c, m in zip(centre, shape))  # type: ignore


def crop_or_pad(
    a: np.ndarray,
    shape: int | Sequence[int],
    centre: Sequence[float] | None = None,
    *,
    fill: float = 0,
) -> np.ndarray:
    """Crop and/or pad ``a`` to ``shape`` with voxel ``centre`` at the output centre (index ``m // 2``).

    Parameters
    ----------
    a : 3D array.
    shape : output shape (int for a cube).
    centre : voxel of ``a`` to centre (e.g. :func:`centre_of_mass`, rounded); default the array centre, so
        that cropping then padding back with ``centre=None`` is exact on the kept region.
    fill : value of the padded voxels.

    Returns
    -------
    np.ndarray
        New array of ``a``'s dtype.
    """
    arr = _check3d(a, "crop/pad")
    shp = _shape3(shape, "crop/pad shape")
    return shift_crop(arr, shp, centred_offset(arr.shape, shp, centre), fill)


def log_normalise(intensity: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``log(1 + I)`` divided by its maximum over the valid voxels: float32 in [0, 1], masked voxels 0.

    The input scaling of the phase network (and of the WCA loss weights). Negative or non-finite values
    count as 0.

    Raises
    ------
    BCDIError
        No positive intensity among the valid voxels.
    """
    a = np.asarray(intensity)
    if a.size == 0:
        raise BCDIError("log-normalise: empty array")
    v = np.log1p(np.maximum(np.where(np.isfinite(a), a, 0).astype(np.float64), 0.0))
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != a.shape:
            raise BCDIError(f"log-normalise: mask shape {m.shape} does not match {a.shape}")
        v[m != 0] = 0.0
    vmax = v.max()
    if not vmax > 0:
        raise BCDIError("log-normalise: no positive intensity in the valid voxels")
    return np.clip(v / vmax, 0.0, 1.0).astype(np.float32)


def autocorrelation(intensity: np.ndarray) -> np.ndarray:
    """Centred modulus of the autocorrelation of the object, ``|fftshift(ifftn(ifftshift(I)))|``."""
    a = _check3d(intensity, "autocorrelation").astype(np.float64)
    return np.abs(np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(a))))


def estimate_oversampling(
    intensity: np.ndarray, mask: np.ndarray | None = None, threshold: float = 0.003
) -> tuple[float, float, float]:
    """Estimate the oversampling ratio per axis from the extent of the autocorrelation.

    The autocorrelation (inverse FFT of the intensity) spans twice the object, so
    ``sigma = 2 n / extent``, where the extent is the bounding box, along each axis, of the connected
    region around the centre where the autocorrelation exceeds ``threshold`` times its maximum. The
    threshold is raised to 5 Poisson standard deviations (``5 / sqrt(sum I)``, intensities in counts)
    when the data are weak. Masked voxels count as 0. BCDI objects in the detector frame are sheared: the
    autocorrelation has low tails in the corners of its box, hence the low default threshold.

    Returns
    -------
    tuple of 3 floats
        Estimated ``(sigma_z, sigma_y, sigma_x)``: a rough (about ±20 %) guide for the model-grid zoom.
        On the measured pattern of ``../shared/data`` it gives 2.9 / 3.8 / 3.1 (its README: about
        2.6 / 3.7 / 2.3).
    """
    a = _check3d(intensity, "oversampling").astype(np.float64)
    a = np.maximum(np.where(np.isfinite(a), a, 0.0), 0.0)
    if mask is not None:
        a = np.where(np.asarray(mask) != 0, 0.0, a)
    total = a.sum()
    if not total > 0:
        raise BCDIError("oversampling: no positive intensity")
    ac = autocorrelation(a)
    centre = tuple(n // 2 for n in ac.shape)
    t = max(float(threshold), 5.0 / np.sqrt(total)) if total > 1 else float(threshold)
    region = ac >= t * ac[centre]
    labels, _ = ndimage.label(region)
    blob = labels == labels[centre]
    out = []
    for ax in range(3):
        idx = np.flatnonzero(blob.any(axis=tuple(i for i in range(3) if i != ax)))
        extent = idx[-1] - idx[0] + 1
        out.append(2.0 * ac.shape[ax] / (extent + 1))  # a run of L voxels autocorrelates over 2L - 1
    return tuple(out)  # type: ignore[return-value]


@dataclass(frozen=True)
class GridTransform:
    """What :func:`to_model_grid` did, to undo it with :func:`from_model_grid`.

    The original array (``in_shape``) was cropped/padded to ``crop_shape`` with voxel ``centre`` at the
    crop's centre (``crop[j] = original[j + offset]``), then resampled onto ``size`` over the same q range.

    Attributes
    ----------
    in_shape : shape of the original pattern.
    size : shape of the model grid.
    centre : voxel of the original placed at the model-grid centre.
    crop_shape : shape of the region taken from the original before resampling.
    method : resampling (``"fourier"``, ``"linear"``, ``"cubic"``; irrelevant when ``crop_shape == size``).
    log : spline resampling of intensities done on ``log(1 + I)``.
    """

    in_shape: Shape3
    size: Shape3
    centre: Shape3
    crop_shape: Shape3
    method: str = "fourier"
    log: bool = True

    @property
    def offset(self) -> Shape3:
        """``crop[j] = original[j + offset]``."""
        return tuple(c - s // 2 for c, s in zip(self.centre, self.crop_shape))  # type: ignore[return-value]

    @property
    def zoom(self) -> tuple[float, float, float]:
        """Reciprocal-space sampling factor ``size / crop_shape`` (> 1: finer q step)."""
        return tuple(s / c for s, c in zip(self.size, self.crop_shape))  # type: ignore[return-value]

    @property
    def resampled(self) -> bool:
        """True when the q step changed (``crop_shape != size``)."""
        return tuple(self.crop_shape) != tuple(self.size)

    @property
    def voxel_factor(self) -> tuple[float, float, float]:
        """Real-space voxel of the model grid over the original voxel (``in_shape / crop_shape``)."""
        return tuple(n / c for n, c in zip(self.in_shape, self.crop_shape))  # type: ignore[return-value]

    @property
    def fov_factor(self) -> tuple[float, float, float]:
        """Real-space field of view (and oversampling) of the model grid over the original's (= zoom)."""
        return self.zoom


def _fourier_resize(x: np.ndarray, shape: Shape3) -> np.ndarray:
    """Centred crop/zero-pad of a centred spectrum-like array, keeping Hermitian symmetry.

    Along an even axis the first sample (offset ``-n/2``) stands for both ``-n/2`` and ``+n/2``: it is
    split in half between the two ends when padding, and the two ends are summed when cropping, so that
    padding then cropping back is the identity and real data stay real.
    """
    out = x
    for ax, n_new in enumerate(shape):
        n = out.shape[ax]
        if n_new == n:
            continue
        moved = np.moveaxis(out, ax, 0)
        if n_new > n:
            off = n_new // 2 - n // 2
            res = np.zeros((n_new,) + moved.shape[1:], dtype=moved.dtype)
            res[off:off + n] = moved
            if n % 2 == 0:
                res[off] *= 0.5
                res[off + n] = res[off]
        else:
            off = n // 2 - n_new // 2
            res = moved[off:off + n_new].copy()
            if n_new % 2 == 0:
                res[0] += moved[off + n_new]
        out = np.moveaxis(res, 0, ax)
    return out


def _resample_fourier(a: np.ndarray, shape: Shape3) -> np.ndarray:
    """Resample a centred reciprocal-space array onto ``shape`` over the same q range (band-limited)."""
    real_space = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(a)))
    out = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(_fourier_resize(real_space, shape))))
    return out if np.iscomplexobj(a) else out.real


def _resample_spline(a: np.ndarray, shape: Shape3, order: int) -> np.ndarray:
    """Spline resampling with the centres (``n // 2``) aligned and the same q range."""
    n_in = np.array(a.shape, dtype=np.float64)
    n_out = np.array(shape, dtype=np.float64)
    step = n_in / n_out
    offset = np.array([n // 2 for n in a.shape]) - np.array([m // 2 for m in shape]) * step

    def one(x: np.ndarray) -> np.ndarray:
        return ndimage.affine_transform(
            x, step, offset=offset, output_shape=shape, order=order, mode="nearest", prefilter=order > 1
        )

    if np.iscomplexobj(a):
        return one(a.real.astype(np.float64)) + 1j * one(a.imag.astype(np.float64))
    return one(a.astype(np.float64))


def _resample(a: np.ndarray, shape: Shape3, method: str, log: bool) -> np.ndarray:
    if tuple(a.shape) == tuple(shape):
        return a.copy()
    if method == "fourier":
        return _resample_fourier(a, shape)
    order = 1 if method == "linear" else 3
    if log and not np.iscomplexobj(a):
        return np.expm1(_resample_spline(np.log1p(np.maximum(a, 0.0)), shape, order))
    return _resample_spline(a, shape, order)


def _method(method: str) -> str:
    m = str(method).strip().lower()
    if m not in RESAMPLING:
        raise BCDIError(f"resampling method {method!r} unknown; choose one of {' | '.join(RESAMPLING)}")
    return m


def to_model_grid(
    intensity: np.ndarray,
    size: int | Sequence[int] = 64,
    *,
    mask: np.ndarray | None = None,
    centre: str | Sequence[float] = "com",
    zoom: float | Sequence[float] | None = None,
    oversampling: Sequence[float] | None = None,
    oversampling_range: tuple[float, float] | None = None,
    method: str = "fourier",
    log: bool = True,
) -> tuple[np.ndarray, GridTransform]:
    """Take a measured pattern to the model grid: centre the peak, crop/pad, resample if asked.

    Parameters
    ----------
    intensity : 3D pattern of any shape.
    size : model grid (int for a cube).
    mask : gap/invalid mask (1 = invalid), excluded from the centre of mass; resample it separately with
        :func:`mask_to_model_grid`. Gaps should be inpainted first: they are zeros to the resampling.
    centre : ``"com"`` (centre of mass, default), ``"max"`` (brightest voxel), ``"array"`` (keep the
        array centre) or a voxel ``(z, y, x)``.
    zoom : reciprocal-space sampling factor per axis (> 1 finer q step: larger field of view and
        oversampling; < 1 coarser). The region ``round(size / zoom)`` around the centre is resampled onto
        ``size`` (the factor actually applied, ``size / crop``, is in the transform).
    oversampling, oversampling_range : instead of ``zoom``: bring the oversampling (given, or estimated by
        :func:`estimate_oversampling`) into ``[lo, hi]``, the range the model was trained on; axes already
        inside are only cropped/padded.
    method : ``"fourier"`` (exact band-limited resampling, default), ``"linear"`` or ``"cubic"`` spline
        (on ``log(1 + I)`` when ``log``).
    log : spline interpolation in log space.

    Returns
    -------
    (array, GridTransform)
        float32 intensity on the model grid (same count scale as the input; padded voxels 0; the small
        Gibbs undershoots of a Fourier zoom, ~1e-4 of the maximum, clipped to 0; apply
        :func:`log_normalise` for the network) and the transform.
    """
    a = _check3d(intensity, "model grid")
    if np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.number):
        raise BCDIError(f"model grid: intensity of dtype {a.dtype}; give real counts")
    S = _shape3(size, "model grid size")
    meth = _method(method)
    if isinstance(centre, str):
        key = centre.strip().lower()
        if key == "com":
            c = centre_of_mass(a, mask)
        elif key == "max":
            w = np.where(np.isfinite(a), a, -np.inf)
            if mask is not None:
                w = np.where(np.asarray(mask) != 0, -np.inf, w)
            c = np.unravel_index(int(np.argmax(w)), a.shape)
        elif key == "array":
            c = tuple(n // 2 for n in a.shape)
        else:
            raise BCDIError(f"model grid: centre {centre!r} unknown; use com | max | array | (z, y, x)")
    else:
        c = tuple(float(v) for v in centre)
        if len(c) != 3:
            raise BCDIError(f"model grid: centre {centre!r} is not 3 coordinates")
    ci: Shape3 = tuple(int(np.floor(v + 0.5)) for v in c)  # type: ignore[assignment]
    if zoom is not None and oversampling_range is not None:
        raise BCDIError("model grid: give either zoom or oversampling_range, not both")
    if zoom is not None:
        f = np.broadcast_to(np.asarray(zoom, dtype=np.float64), (3,))
    elif oversampling_range is not None:
        lo, hi = (float(v) for v in oversampling_range)
        if not 0 < lo <= hi:
            raise BCDIError(f"model grid: oversampling range {oversampling_range!r} must be 0 < lo <= hi")
        sig = np.asarray(
            estimate_oversampling(a, mask) if oversampling is None else oversampling, dtype=np.float64
        )
        sig = np.broadcast_to(sig, (3,))
        f = np.clip(sig, lo, hi) / sig
    else:
        f = np.ones(3)
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise BCDIError(f"model grid: zoom {tuple(f)} must be positive")
    crop: Shape3 = tuple(max(1, round(s / z)) for s, z in zip(S, f))  # type: ignore[assignment]
    t = GridTransform(tuple(a.shape), S, ci, crop, meth, bool(log))  # type: ignore[arg-type]
    region = shift_crop(np.where(np.isfinite(a), a, 0).astype(np.float64), crop, t.offset, 0.0)
    out = _resample(region, S, meth, log)
    return np.maximum(out, 0.0).astype(np.float32), t


def mask_to_model_grid(mask: np.ndarray, transform: GridTransform, *, pad_value: int = 1) -> np.ndarray:
    """Take a gap mask to the model grid (nearest neighbour); voxels from outside the data get ``pad_value``
    (1 by default: nothing was measured there)."""
    m = _check3d(mask, "mask to model grid")
    if m.shape != tuple(transform.in_shape):
        raise BCDIError(f"mask to model grid: mask shape {m.shape} is not the data's {transform.in_shape}")
    region = shift_crop((m != 0).astype(np.float64), transform.crop_shape, transform.offset, float(pad_value))
    if not transform.resampled:
        return (region > 0.5).astype(np.uint8)
    return (_resample_spline(region, transform.size, 0) > 0.5).astype(np.uint8)


def from_model_grid(
    array: np.ndarray,
    transform: GridTransform,
    *,
    space: str = "reciprocal",
    method: str | None = None,
    log: bool | None = None,
    fill: float = 0.0,
) -> np.ndarray:
    """Take an array on the model grid back to the original grid.

    Parameters
    ----------
    array : array of shape ``transform.size``.
    transform : from :func:`to_model_grid`.
    space : ``"reciprocal"`` for reciprocal-space arrays (intensity, complex field, mask...): inverse
        resampling, then placed at the crop position, ``fill`` outside. ``"object"`` for a complex object
        in real space (e.g. ``ifft`` of ``sqrt(I) exp(i phi)`` predicted on the model grid): the exact
        route of the module docstring; returns complex64 whose diffraction is the model's on the
        original q grid. ``"support"`` for a real-space support (uint8): real-space crop/pad and zoom by
        ``voxel_factor``, thresholded at 0.5.
    method, log : resampling for ``"reciprocal"`` (default: the transform's). Use ``log=False`` for
        arrays that are not intensities.
    fill : value outside the crop region for ``"reciprocal"``.

    Returns
    -------
    np.ndarray
        Array of ``transform.in_shape``. Crop/pad round trips are exact on the kept region;
        resampling round trips are exact for band-limited data with ``"fourier"`` and accurate otherwise.
    """
    a = _check3d(array, "from model grid")
    t = transform
    if a.shape != tuple(t.size):
        raise BCDIError(f"from model grid: array shape {a.shape} is not the model grid {t.size}")
    sp = str(space).strip().lower()
    if sp == "reciprocal":
        meth = _method(method or t.method)
        use_log = t.log if log is None else bool(log)
        if np.iscomplexobj(a):
            back = _resample(a.astype(np.complex128), t.crop_shape, meth, False)
        else:
            back = _resample(a.astype(np.float64), t.crop_shape, meth, use_log)
        neg = tuple(-o for o in t.offset)
        out = shift_crop(back, t.in_shape, neg, fill)
        return out.astype(np.complex64 if np.iscomplexobj(a) else np.float32)
    if sp == "object":
        obj_c = shift_crop(a.astype(np.complex128), t.crop_shape, centred_offset(t.size, t.crop_shape))
        psi_c = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj_c)))
        psi = shift_crop(psi_c, t.in_shape, tuple(-o for o in t.offset), 0)
        return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(psi))).astype(np.complex64)
    if sp == "support":
        s_c = shift_crop((a != 0).astype(np.float64), t.crop_shape, centred_offset(t.size, t.crop_shape))
        if tuple(t.crop_shape) != tuple(t.in_shape):
            s_c = _resample_spline(s_c, t.in_shape, 1)
        return (s_c > 0.5).astype(np.uint8)
    raise BCDIError(f"from model grid: space {space!r} unknown; use reciprocal | object | support")
