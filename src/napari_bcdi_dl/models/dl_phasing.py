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
from typing import Any

import numpy as np
from scipy import ndimage

from ..core.errors import BCDIError
from ..core.progress import CancelToken, ProgressFn, report
from ..core.reciprocal import GridTransform, from_model_grid, log_normalise, mask_to_model_grid, to_model_grid
from ..core.types import Reconstruction

#: The shipped phase model (a file stem in ``models/weights``, see ``registry.py``).
PHASE_MODEL = "phase_unet32"
#: Oversampling range used when a model has no card (the range of the simulated training sets).
DEFAULT_OVERSAMPLING_RANGE = (2.0, 5.0)
#: Margin kept inside the trained oversampling range (the estimate is good to about ±20 %).
OVERSAMPLING_MARGIN = 0.15
#: Lowest oversampling the pattern is brought to on the model grid. The network is trained on 2–5 but is
#: markedly better at the high end (fewer, larger speckles per 32³; held-out WCA 0.91 at 2–3 against
#: 0.84 at 4–5, see docs/models.md), and a Fourier zoom to a higher oversampling is exact (σ ≥ 2).
PREFERRED_MIN_OVERSAMPLING = 3.5


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


def load_phase_model(name: str | None = None) -> tuple[Any, dict]:
    """The phase model (cached, offline) and its card (``{}`` if it has none)."""
    from .registry import load_model, model_card

    name = name or PHASE_MODEL
    model = load_model(name)
    return model, (model_card(name) or {})


def trained_oversampling_range(card: dict) -> tuple[float, float]:
    """The oversampling range to bring patterns into: the card's, with a margin inside, and not below
    :data:`PREFERRED_MIN_OVERSAMPLING` when the card's range reaches it."""
    lo, hi = card.get("oversampling_range") or DEFAULT_OVERSAMPLING_RANGE
    lo, hi = float(lo) + OVERSAMPLING_MARGIN, float(hi) - OVERSAMPLING_MARGIN
    if hi > PREFERRED_MIN_OVERSAMPLING:
        lo = max(lo, PREFERRED_MIN_OVERSAMPLING)
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


def model_grid_object(intensity_model: np.ndarray, phase_model: np.ndarray,
                      mask_model: np.ndarray | None = None) -> np.ndarray:
    """``fftshift(ifftn(ifftshift(√I e^{iφ})))`` on the model grid (0 amplitude in the gaps), complex128."""
    field_m = np.sqrt(np.maximum(intensity_model, 0)).astype(np.complex128) * np.exp(
        1j * np.asarray(phase_model, dtype=np.float64))
    if mask_model is not None:
        field_m[mask_model != 0] = 0  # no measured amplitude in the gaps
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(field_m)))


def _consistency_error(intensity_model: np.ndarray, obj_m: np.ndarray, support_m: np.ndarray,
                       mask_model: np.ndarray | None) -> float:
    """``‖ |FT(support·obj)| − √I ‖² / ‖√I‖²`` over the measured voxels: how well a prediction survives the
    support constraint (0 = a perfect, compact object)."""
    f = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj_m * (support_m != 0)))))
    amp = np.sqrt(np.maximum(intensity_model, 0))
    ok = np.ones(amp.shape, bool) if mask_model is None else mask_model == 0
    scale = np.sum(f[ok] * amp[ok]) / max(np.sum(f[ok] ** 2), 1e-30)
    return float(np.sum((scale * f[ok] - amp[ok]) ** 2) / max(np.sum(amp[ok] ** 2), 1e-30))


#: Axis flips of the input tried by the test-time augmentation, identity first.
FLIPS: tuple = ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))


def object_from_phase(intensity_model: np.ndarray, phase_model: np.ndarray, transform: GridTransform,
                      mask_model: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Object on the data grid from an intensity and a phase on the model grid (steps 3–4).

    ``ψ = √I e^{iφ}`` (0 in the gaps) → ``ifft`` → object on the model grid → ``from_model_grid(space=
    "object")``: complex64 on the data grid whose diffraction is ψ brought back to the data's q grid (zero
    outside the region the model saw). Also returns the wrapped phase on the data grid (float32, 0 outside).
    """
    t = transform
    obj = from_model_grid(model_grid_object(intensity_model, phase_model, mask_model), t, space="object")
    phase_full = np.angle(from_model_grid(np.exp(1j * phase_model).astype(np.complex64), t, space="reciprocal"))
    inside = from_model_grid(np.ones(t.size, np.float32), t, space="reciprocal", log=False) > 0.5
    return obj.astype(np.complex64), np.where(inside, phase_full, 0).astype(np.float32)


def _check_intensity(intensity: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
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


def predict_object(intensity: np.ndarray, mask: np.ndarray | None = None, *, model: Any = None,
                   card: dict | None = None, support_threshold: float = 0.2, tta: int = 8,
                   grid_refine: int = 50, oversampling_range: tuple[float, float] | None = None,
                   progress: ProgressFn | None = None, cancel: CancelToken | None = None
                   ) -> PhasePrediction:
    """Steps 1–4 of the module docstring: the predicted phase and the unrefined object on the data grid.

    Test-time augmentation: the network sees the model-grid input under ``tta`` axis flips (:data:`FLIPS`,
    1–8); each prediction, flipped back, gives a candidate object on the model grid, which gets
    ``grid_refine`` ER iterations there (border-only support; 32³ iterations cost ~1 ms) and is scored by
    its Poisson LLK against the model-grid intensity (without refinement: by the error left after one
    support projection). The best candidate goes to the data grid.

    Parameters
    ----------
    intensity : 3D pattern of any shape (photon counts; gaps are best inpainted first).
    mask : gap/invalid mask (1 = invalid), zero in the network input and outside the centre of mass.
    model, card : a phase model and its card (default: the shipped model).
    support_threshold : relative threshold of the support on the smoothed modulus.
    tta : number of input flips tried (1 = the network's single prediction).
    grid_refine : ER iterations of each candidate on the model grid (0 = none).
    oversampling_range : override the range the pattern is brought into (default: the model card's).
    progress, cancel : 4 + ``tta`` steps.
    """
    from ..core.phasing import refine
    from .phase import model_grid_size, predict_phase

    a, m = _check_intensity(intensity, mask)
    tta = int(tta)
    if not 1 <= tta <= len(FLIPS):
        raise BCDIError(f"DL phasing: tta must be 1 to {len(FLIPS)}, got {tta}")
    total = 4 + tta
    report(progress, cancel, 0, total)
    if model is None:
        model, card = load_phase_model()
    card = card or {}
    size = model_grid_size(model)
    osr = oversampling_range or trained_oversampling_range(card)
    i_m, t = to_model_grid(a, size, mask=m, oversampling_range=osr)
    m_m = mask_to_model_grid(m, t) if m is not None else None
    x = log_normalise(i_m, m_m)
    report(progress, cancel, 1, total)
    flips = FLIPS[:tta]
    t0 = time.perf_counter()
    phis = predict_phase(model, np.stack([np.flip(x, f) if f else x for f in flips]))
    seconds = time.perf_counter() - t0
    if not np.all(np.isfinite(phis)):
        raise BCDIError("DL phasing: the network predicted non-finite phases; the model file may be damaged")
    report(progress, cancel, 2, total)
    best = None
    scores = []
    for j, f in enumerate(flips):
        phi = np.ascontiguousarray(np.flip(phis[j], f)) if f else phis[j]
        obj_m = model_grid_object(i_m, phi, m_m)
        sup_m = support_from_object(obj_m, support_threshold)
        if grid_refine > 0:
            rec = refine(i_m, obj_m, sup_m, m_m, n_iter=int(grid_refine), border_only=True,
                         llk_every=int(grid_refine), cancel=cancel)
            score, obj_m = float(rec.llk), rec.obj
        else:
            score = _consistency_error(i_m, obj_m, sup_m, m_m)
        scores.append(score)
        if best is None or score < best[0]:
            best = (score, j, phi, obj_m)
        report(progress, cancel, 3 + j, total)
    _, j_best, phi, obj_m = best
    obj = from_model_grid(obj_m, t, space="object").astype(np.complex64)
    _, phase_full = object_from_phase(i_m, phi, t, m_m)
    support = support_from_object(obj, support_threshold)
    report(progress, cancel, total, total)
    meta = {"model_grid": size, "crop_shape": list(t.crop_shape), "zoom": [float(z) for z in t.zoom],
            "centre": list(t.centre), "oversampling_range": list(osr), "model": card.get("name", PHASE_MODEL),
            "predict_s": seconds, "tta": tta, "grid_refine": int(grid_refine), "chosen_flip": list(flips[j_best]),
            "scores": scores}
    return PhasePrediction(phase_full, obj, support, phi.astype(np.float32), i_m, t, seconds, meta)


def dl_phase(intensity: np.ndarray, mask: np.ndarray | None = None, *, refine_iter: int = 400,
             model: Any = None, card: dict | None = None, support_threshold: float = 0.2,
             tta: int = 8, grid_refine: int = 50, seed: int = 0, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
             **refine_kw: Any) -> Reconstruction:
    """DL phasing of a pattern: prediction, then ``refine_iter`` ER iterations with border-only support.

    Parameters
    ----------
    intensity : 3D pattern (photon counts), any shape, peak anywhere.
    mask : gap/invalid mask (1 = invalid): zero in the prediction, free in the refinement.
    refine_iter : ER iterations (0: the unrefined prediction, scaled to the data, method ``"dl-unrefined"``).
    model, card : a phase model and its card (default: the shipped model).
    support_threshold : threshold of the initial support on the predicted object's smoothed modulus.
    tta, grid_refine : test-time augmentation and model-grid refinement of :func:`predict_object`.
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
                          tta=tta, grid_refine=grid_refine,
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
