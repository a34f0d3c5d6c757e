"""DL phasing: predict the reciprocal-space phase, form the object, refine it against the full data.

The pipeline (Masto, Bellec et al., npj Comput. Mater. 2026), for a pattern of any shape:

1. ``core.reciprocal.to_model_grid``: centre of mass to the centre, crop/pad to the model grid, and a
   Fourier zoom only where the estimated oversampling is outside the range the model was trained on
   (cropping keeps the oversampling; zooming changes it);
2. ``log_normalise`` → the network → the phase φ on the model grid;
3. ``ψ = √I · e^{iφ}`` → ``obj = fftshift(ifftn(ifftshift(ψ)))`` on the model grid;
4. back to the original grid (``from_model_grid(space="object")``: exact, the object's diffraction is the
   model's on the original q grid, nothing outside the crop) and a support from its smoothed modulus;
5. ``core.phasing.refine``: Error Reduction on the full data with border-only support updates
   (400 iterations by default), which restores the resolution the crop to the model grid gave up.

:func:`predict_object` does 1–4, :func:`dl_phase` all of it. The model is the shipped one
(``models/weights/phase_unet32.keras``, see ``docs/models.md``) unless another is given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from scipy import ndimage

from ..core.errors import BCDIError
from ..core.progress import CancelToken, ProgressFn, report
from ..core.reciprocal import (GridTransform, from_model_grid, log_normalise, mask_to_model_grid,
                               to_model_grid)
from ..core.types import Reconstruction

#: The shipped phase model (a file stem in ``models/weights``, see ``registry.py``).
PHASE_MODEL = "phase_unet32"
#: Oversampling range used when a model has no card (the range of the simulated training sets).
DEFAULT_OVERSAMPLING_RANGE = (2.0, 5.0)
#: Margin kept inside the trained oversampling range (the estimate is good to about ±20 %).
OVERSAMPLING_MARGIN = 0.15


@dataclass
class PhasePrediction:
    """What the network predicted, on the model grid and back on the data grid.

    Attributes
    ----------
    phase : float32 wrapped reciprocal phase on the data grid (0 outside the region the model saw).
    obj : complex64 object on the data grid (``ifft`` of the predicted field brought back).
    support : uint8 support estimated from ``obj``'s smoothed modulus.
    phase_model, intensity_model : the prediction and the intensity on the model grid.
    transform : what ``to_model_grid`` did.
    seconds : wall time of the network call alone.
    """

    phase: np.ndarray
    obj: np.ndarray
    support: np.ndarray
    phase_model: np.ndarray
    intensity_model: np.ndarray
    transform: GridTransform
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)


def load_phase_model(name: Optional[str] = None) -> tuple[Any, dict]:
    """The phase model (cached, offline) and its card (``{}`` if it has none)."""
    from .registry import load_model, model_card

    name = name or PHASE_MODEL
    model = load_model(name)
    return model, (model_card(name) or {})


def trained_oversampling_range(card: dict) -> tuple[float, float]:
    """The oversampling range to bring patterns into: the card's, with a margin inside."""
    lo, hi = card.get("oversampling_range") or DEFAULT_OVERSAMPLING_RANGE
    lo, hi = float(lo) + OVERSAMPLING_MARGIN, float(hi) - OVERSAMPLING_MARGIN
    return (lo, hi) if lo < hi else (float(lo), float(lo))


def support_from_object(obj: np.ndarray, threshold: float = 0.2, sigma: float = 1.0) -> np.ndarray:
    """Support of an object from its modulus: Gaussian-smoothed ``|obj|`` above ``threshold`` × its
    maximum, the connected component holding the maximum, holes filled (uint8)."""
    mod = ndimage.gaussian_filter(np.abs(obj).astype(np.float32), sigma) if sigma > 0 else np.abs(obj)
    top = float(mod.max())
    if not top > 0:
        raise BCDIError("the predicted object is zero everywhere: check the intensity (is it empty?)")
    above = mod >= threshold * top
    labels, _ = ndimage.label(above)
    blob = labels == labels[np.unravel_index(int(np.argmax(mod)), mod.shape)]
    return ndimage.binary_fill_holes(blob).astype(np.uint8)


def object_from_phase(intensity_model: np.ndarray, phase_model: np.ndarray, transform: GridTransform,
                      mask_model: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Object on the data grid from an intensity and a phase on the model grid (steps 3–4).

    ``ψ = √I e^{iφ}`` (0 in the gaps) → ``ifft`` → object on the model grid → ``from_model_grid(space=
    "object")``: complex64 on the data grid whose diffraction is ψ brought back to the data's q grid (zero
    outside the region the model saw). Also returns the wrapped phase on the data grid (float32, 0 outside).
    """
    t = transform
    field_m = np.sqrt(np.maximum(intensity_model, 0)).astype(np.complex128) * np.exp(
        1j * np.asarray(phase_model, dtype=np.float64))
    if mask_model is not None:
        field_m[mask_model != 0] = 0  # no measured amplitude in the gaps
    obj_m = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(field_m)))
    obj = from_model_grid(obj_m, t, space="object")
    phase_full = np.angle(from_model_grid(np.exp(1j * phase_model).astype(np.complex64), t, space="reciprocal"))
    inside = from_model_grid(np.ones(t.size, np.float32), t, space="reciprocal", log=False) > 0.5
    return obj.astype(np.complex64), np.where(inside, phase_full, 0).astype(np.float32)


def _check_intensity(intensity: np.ndarray, mask: Optional[np.ndarray]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    a = np.asarray(intensity)
    if a.ndim != 3:
        raise BCDIError(f"DL phasing: the intensity has {a.ndim} dimensions; give a 3D (z, y, x) pattern")
    if np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.number):
        raise BCDIError(f"DL phasing: the intensity has dtype {a.dtype}; give real photon counts")
    if min(a.shape) < 8:
        raise BCDIError(f"DL phasing: the pattern {a.shape} is too small; give at least 8 voxels per axis")
    if not np.all(np.isfinite(a)):
        raise BCDIError("DL phasing: the intensity holds NaN or infinite values; mask or clean them first")
    if not np.any(a > 0):
        raise BCDIError("DL phasing: the intensity has no positive counts")
    m = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != a.shape:
            raise BCDIError(f"DL phasing: mask shape {m.shape} differs from intensity shape {a.shape}")
        m = (m != 0).astype(np.uint8)
    return a, m


def predict_object(intensity: np.ndarray, mask: Optional[np.ndarray] = None, *, model: Any = None,
                   card: Optional[dict] = None, support_threshold: float = 0.2,
                   oversampling_range: Optional[tuple[float, float]] = None,
                   progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None
                   ) -> PhasePrediction:
    """Steps 1–4 of the module docstring: the predicted phase and the unrefined object on the data grid.

    Parameters
    ----------
    intensity : 3D pattern of any shape (photon counts; gaps are best inpainted first).
    mask : gap/invalid mask (1 = invalid), zero in the network input and outside the centre of mass.
    model, card : a phase model and its card (default: the shipped model).
    support_threshold : relative threshold of the support on the smoothed modulus.
    oversampling_range : override the range the pattern is brought into (default: the model card's).
    progress, cancel : 4 steps.
    """
    from .phase import model_grid_size, predict_phase

    a, m = _check_intensity(intensity, mask)
    report(progress, cancel, 0, 4)
    if model is None:
        model, card = load_phase_model()
    card = card or {}
    size = model_grid_size(model)
    osr = oversampling_range or trained_oversampling_range(card)
    i_m, t = to_model_grid(a, size, mask=m, oversampling_range=osr)
    m_m = mask_to_model_grid(m, t) if m is not None else None
    x = log_normalise(i_m, m_m)
    report(progress, cancel, 1, 4)
    t0 = time.perf_counter()
    phi = predict_phase(model, x)
    seconds = time.perf_counter() - t0
    if not np.all(np.isfinite(phi)):
        raise BCDIError("DL phasing: the network predicted non-finite phases; the model file may be damaged")
    report(progress, cancel, 2, 4)
    obj, phase_full = object_from_phase(i_m, phi, t, m_m)
    report(progress, cancel, 3, 4)
    support = support_from_object(obj, support_threshold)
    report(progress, cancel, 4, 4)
    meta = {"model_grid": size, "crop_shape": list(t.crop_shape), "zoom": [float(z) for z in t.zoom],
            "centre": list(t.centre), "oversampling_range": list(osr), "model": card.get("name", PHASE_MODEL),
            "predict_s": seconds}
    return PhasePrediction(phase_full, obj.astype(np.complex64), support, phi.astype(np.float32),
                           i_m, t, seconds, meta)


def dl_phase(intensity: np.ndarray, mask: Optional[np.ndarray] = None, *, refine_iter: int = 400,
             model: Any = None, card: Optional[dict] = None, support_threshold: float = 0.2,
             seed: int = 0, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
             **refine_kw: Any) -> Reconstruction:
    """DL phasing of a pattern: prediction, then ``refine_iter`` ER iterations with border-only support.

    Parameters
    ----------
    intensity : 3D pattern (photon counts), any shape, peak anywhere.
    mask : gap/invalid mask (1 = invalid): zero in the prediction, free in the refinement.
    refine_iter : ER iterations (0: the unrefined prediction, scaled to the data, method ``"dl-unrefined"``).
    model, card : a phase model and its card (default: the shipped model).
    support_threshold : threshold of the initial support on the predicted object's smoothed modulus.
    seed : seed of the free-LLK voxels.
    refine_kw : passed to ``core.phasing.refine`` (``support_threshold`` there is ``refine_support_threshold``
        here, e.g. ``support_period``, ``backend``).
    progress, cancel : ``(done, total)`` over the prediction (10 units) and the iterations.

    Returns
    -------
    Reconstruction (centred, on the data grid) with ``method="dl"`` and in ``meta`` the prediction's
    timing, model grid, crop and zoom.
    """
    from ..core.phasing import refine

    n_iter = int(refine_iter)
    if n_iter < 0:
        raise BCDIError(f"DL phasing: refine iterations must be >= 0, got {refine_iter}")
    total = 10 + n_iter
    t0 = time.perf_counter()

    def pred_progress(done: int, of: int) -> None:
        report(progress, cancel, int(10 * done / max(of, 1)), total)

    pred = predict_object(intensity, mask, model=model, card=card, support_threshold=support_threshold,
                          progress=pred_progress, cancel=cancel)
    t_pred = time.perf_counter() - t0

    def ref_progress(done: int, of: int) -> None:
        report(progress, cancel, 10 + done, total)

    if "refine_support_threshold" in refine_kw:
        refine_kw["support_threshold"] = refine_kw.pop("refine_support_threshold")
    rec = refine(intensity, pred.obj, pred.support, mask, n_iter=n_iter, border_only=True, seed=seed,
                 method="dl" if n_iter else "dl-unrefined", progress=ref_progress, cancel=cancel, **refine_kw)
    rec.meta.update({"prediction": pred.meta, "prediction_s": t_pred,
                     "total_s": time.perf_counter() - t0, "refine_iter": n_iter})
    report(progress, cancel, total, total)
    return rec
