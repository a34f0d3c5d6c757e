"""Registration of reconstructions up to the BCDI ambiguities, and their mode decomposition.

A reconstruction is defined up to a global phase, a translation and the twin (the complex conjugate of the
point-inverted object, which has the same diffraction intensity). :func:`register` removes all three
against a reference:

1. twin: the cross-correlation peak of the object and of its twin with the reference (in Fourier space the
   twin of ``B`` is ``conj(B)`` for FFT-native arrays, so both cost one inverse FFT);
2. sub-voxel shift: ``skimage.registration.phase_cross_correlation`` (upsampled DFT) on the Fourier
   transforms, applied as a phase ramp in Fourier space (``scipy.ndimage.fourier_shift``);
3. global phase: multiply by ``conj(c)/|c|`` with ``c = Σ obj · conj(ref)``.

:func:`mode_decomposition` (PyNX ``ortho_modes``): with the registered runs normalised to unit norm as the
rows of M, the eigenvectors of the overlap matrix ``M Mᴴ`` give orthogonal modes, the eigenvalues their
weights (summing to 1). A first-mode weight near 1 means the runs agree.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from scipy.ndimage import fourier_shift

from ..errors import BCDIError


def _ft(a: np.ndarray) -> np.ndarray:
    return sfft.fftn(np.fft.ifftshift(a).astype(np.complex64, copy=False), workers=-1)


def _ift(a: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(sfft.ifftn(a, workers=-1)).astype(np.complex64, copy=False)


def register(
    reference: np.ndarray, obj: np.ndarray, *, upsample: int = 20, allow_twin: bool = True
) -> tuple[np.ndarray, dict]:
    """Align a centred complex ``obj`` to ``reference``: twin, sub-voxel shift, global phase.

    Parameters
    ----------
    reference, obj : centred complex arrays of one shape.
    upsample : sub-voxel precision of the shift is 1/upsample voxel.
    allow_twin : consider the twin of ``obj``.

    Returns
    -------
    (aligned complex64 array, info) with info keys ``twin`` (bool), ``shift`` (voxels, tuple: the shift
    applied to ``obj``), ``phase`` (radians, the phase added) and ``correlation`` (|⟨obj, ref⟩| /
    (‖obj‖ ‖ref‖) after alignment).
    """
    from skimage.registration import phase_cross_correlation

    ref = np.asarray(reference)
    o = np.asarray(obj)
    if ref.shape != o.shape:
        raise BCDIError(f"cannot register arrays of shapes {o.shape} and {ref.shape}")
    fa = _ft(ref)
    fb = _ft(o)
    twin = False
    if allow_twin:
        direct = np.abs(sfft.ifftn(fa * np.conj(fb), workers=-1)).max()
        mirrored = np.abs(sfft.ifftn(fa * fb, workers=-1)).max()
        if mirrored > direct:
            twin = True
            fb = np.conj(fb)
    shift, _, _ = phase_cross_correlation(
        fa, fb, space="fourier", upsample_factor=upsample, normalization=None
    )
    shift = tuple(float(s) for s in np.asarray(shift))
    fb = fourier_shift(fb, shift)
    out = _ift(fb)
    c = np.vdot(ref.astype(np.complex128), out.astype(np.complex128))  # Σ conj(ref) · out
    phase = 0.0
    if abs(c) > 0:
        phase = float(-np.angle(c))
        out *= np.complex64(np.exp(1j * phase))
    nr = np.linalg.norm(ref)
    no = np.linalg.norm(out)
    corr = float(abs(c) / (nr * no)) if nr > 0 and no > 0 else 0.0
    return out, {"twin": twin, "shift": shift, "phase": phase, "correlation": corr}


def mode_decomposition(objs: list, n_modes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Orthogonal modes of registered reconstructions and their weights (descending, summing to 1).

    Parameters
    ----------
    objs : list of k complex arrays of one shape (already registered to each other).
    n_modes : number of modes to return (default all k).

    Returns
    -------
    (weights float64 (k,), modes complex64 (n_modes, *shape)) — each mode has unit norm.
    """
    if not objs:
        raise BCDIError("mode decomposition needs at least one reconstruction")
    shape = np.shape(objs[0])
    flats = [np.asarray(o, dtype=np.complex64).ravel() for o in objs]
    if any(f.size != flats[0].size for f in flats):
        raise BCDIError("mode decomposition needs reconstructions of one shape")
    k = len(flats)
    gram = np.zeros((k, k), np.complex128)
    chunk = 1 << 16
    for start in range(0, flats[0].size, chunk):  # Σ_x a_i(x) conj(a_j(x)), float64 accumulation
        block = np.stack([f[start : start + chunk] for f in flats]).astype(np.complex128)
        gram += block @ block.conj().T
    norms = np.sqrt(np.clip(np.diag(gram).real, 0, None))
    norms[norms == 0] = 1
    gram /= np.outer(norms, norms)
    w, u = np.linalg.eigh(gram)
    order = np.argsort(w)[::-1]
    w = np.clip(w[order], 0, None)
    u = u[:, order]
    total = w.sum()
    weights = w / total if total > 0 else w
    n = k if n_modes is None else max(1, min(int(n_modes), k))
    modes = np.zeros((n,) + tuple(shape), dtype=np.complex64)
    for i in range(n):
        coef = u[:, i].conj() / norms / np.sqrt(max(w[i], 1e-30))
        acc = modes[i].reshape(-1)
        for c, f in zip(coef, flats):
            acc += np.complex64(c) * f
    return weights, modes


def first_mode_of(
    objs: list, reference_index: int = 0, *, upsample: int = 20
) -> tuple[np.ndarray, np.ndarray, list]:
    """Register ``objs`` to ``objs[reference_index]``, decompose, and return the first mode.

    Returns
    -------
    (weights, first mode complex64 scaled to the reference's norm and phase-aligned to it, infos)
    """
    ref = np.asarray(objs[reference_index])
    aligned = []
    infos = []
    for i, o in enumerate(objs):
        if i == reference_index:
            aligned.append(ref.astype(np.complex64, copy=False))
            infos.append({"twin": False, "shift": (0.0, 0.0, 0.0), "phase": 0.0, "correlation": 1.0})
        else:
            a, info = register(ref, o, upsample=upsample)
            aligned.append(a)
            infos.append(info)
    weights, modes = mode_decomposition(aligned, n_modes=1)
    mode = modes[0] * np.float32(np.linalg.norm(ref))
    c = np.vdot(ref.astype(np.complex128), mode.astype(np.complex128))
    if abs(c) > 0:
        mode *= np.complex64(np.exp(-1j * np.angle(c)))
    return weights, mode.astype(np.complex64), infos
