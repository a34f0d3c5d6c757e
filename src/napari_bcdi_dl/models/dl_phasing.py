"""DL phasing: predict the reciprocal-space phase, form the object, refine it against the full data.

The pipeline (Masto, Bellec et al., npj Comput. Mater. 2026), for a pattern of any shape:

1. ``core.reciprocal.to_model_grid``: centre of mass to the centre, crop/pad to the model grid, and a
   Fourier zoom only where the estimated oversampling is outside the range the model was trained on
   (cropping keeps the oversampling; zooming changes it);
2. ``log_normalise`` → the network → the phase φ on the model grid;
3. ``ψ = √I · e^{iφ}`` → ``obj = fftshift(ifftn(ifftshift(ψ)))`` on the model grid;
4. back to the original grid (``from_model_grid(space="object")``: exact, the object's diffraction is the
   model's on the original q grid, nothing outside the crop) and a support from its smoothed modulus;
5. ``core.phasing.refine``: a refinement recipe on the full data from each of the best ``candidates``
   predictions (test-time flips of the input), the best kept by free LLK, as conventional runs are. The
   recipe restores the resolution the crop to the model grid gave up; :data:`DEFAULT_REFINE` is the one
   ``benchmarks/dl_phase_quality.py`` found best (``docs/models.md``); ``"paper"`` is the published
   border-only ER.

:func:`predict_object` does 1–4, :func:`refine_prediction` 5, :func:`dl_phase` all of it. The model is the shipped one
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
#: Default refinement recipe of the DL pipeline (a name of ``core.phasing.refine.REFINE_RECIPES`` or a
#: recipe string), chosen by ``benchmarks/dl_phase_quality.py --refine ...`` (docs/models.md).
DEFAULT_REFINE = "hio-er"
#: Default number of predicted candidates refined on the full data (the best by free LLK is kept).
DEFAULT_CANDIDATES = 4
#: Phase corrector of the DL pipeline (``registry`` name; None: the network's candidates alone). Its
#: candidates join the network's: 8/20 high-strain cases solved instead of 6/20 (docs/models.md).
DEFAULT_CORRECTOR = "phase_corrector"
#: Early stop of the refinement's final ER step: iterations without a better free LLK.
DEFAULT_EARLY_STOP = 50


@dataclass
class Candidate:
    """One prediction (one input flip) brought to the data grid.

    Attributes
    ----------
    obj : complex64 object on the data grid (after the model-grid refinement, if any).
    support : uint8 support from its smoothed modulus.
    score : its model-grid score (LLK after ``grid_refine`` ER, or the consistency error; lower is better).
    flip : the axes of the input flip that gave it.
    source : ``"network"`` (the phase network's prediction) or ``"corrector"`` (the phase corrector's, from the
        engine's estimate started at that prediction).
    phase_model : its phase on the model grid (float32), or None.
    """

    obj: np.ndarray
    support: np.ndarray
    score: float
    flip: tuple
    source: str = "network"
    phase_model: np.ndarray | None = None


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
    candidates : the best ``keep`` candidates on the data grid, best first (``obj``/``support`` are the
        first one's).
    """

    phase: np.ndarray
    obj: np.ndarray
    support: np.ndarray
    phase_model: np.ndarray
    intensity_model: np.ndarray
    transform: GridTransform
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)
    candidates: list = field(default_factory=list)


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
    obj = from_model_grid(model_grid_object(intensity_model, phase_model, mask_model), transform, space="object")
    return obj.astype(np.complex64), phase_on_data_grid(phase_model, transform)


def phase_on_data_grid(phase_model: np.ndarray, transform: GridTransform) -> np.ndarray:
    """The wrapped model-grid phase brought to the data grid (float32, 0 outside the region the model saw)."""
    t = transform
    phase_full = np.angle(from_model_grid(np.exp(1j * phase_model).astype(np.complex64), t, space="reciprocal"))
    inside = from_model_grid(np.ones(t.size, np.float32), t, space="reciprocal", log=False) > 0.5
    return np.where(inside, phase_full, 0).astype(np.float32)


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
                   grid_refine: int | str = 50, oversampling_range: tuple[float, float] | None = None,
                   keep: int = 1, corrector: Any = None, correct_rounds: int = 1,
                   progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> PhasePrediction:
    """Steps 1–4 of the module docstring: the predicted phase and the unrefined object on the data grid.

    Test-time augmentation: the network sees the model-grid input under ``tta`` axis flips (:data:`FLIPS`,
    1–8); each prediction, flipped back, gives a candidate object on the model grid, which gets
    ``grid_refine`` ER iterations there (border-only support; 32³ iterations cost ~1 ms) and is scored by
    its Poisson LLK against the model-grid intensity (without refinement: by the error left after one
    support projection). The best ``keep`` candidates go to the data grid (``PhasePrediction.candidates``).

    Parameters
    ----------
    intensity : 3D pattern of any shape (photon counts; gaps are best inpainted first).
    mask : gap/invalid mask (1 = invalid), zero in the network input and outside the centre of mass.
    model, card : a phase model and its card (default: the shipped model).
    support_threshold : relative threshold of the support on the smoothed modulus.
    tta : number of input flips tried (1 = the network's single prediction).
    grid_refine : ER iterations (border-only support) of each candidate on the model grid (0 = none), or a
        refinement recipe run there instead (e.g. ``"HIO**100, ER**100"``: 32³ iterations cost ~1 ms).
    oversampling_range : override the range the pattern is brought into (default: the model card's).
    keep : number of candidates brought to the data grid (1 to ``tta``).
    corrector : a phase corrector (:mod:`.phase_corrector`): each flip's predicted phase is refined on the
        model grid (``phase_corrector.ESTIMATE_RECIPE``) and corrected from the pattern and that estimate,
        ``correct_rounds`` times; these are scored as the network's are, and the best ``keep`` of each source
        become candidates, interleaved (2 × ``keep`` in all). The network's and the corrector's candidates
        solve different crystals (docs/models.md, "Phase corrector"); the free LLK tells which is right.
    progress, cancel : 4 + ``tta`` steps (4 + 2 ``tta`` with a corrector).
    """
    from ..core.phasing import refine
    from .phase import model_grid_size, predict_phase

    a, m = _check_intensity(intensity, mask)
    tta = int(tta)
    if not 1 <= tta <= len(FLIPS):
        raise BCDIError(f"DL phasing: tta must be 1 to {len(FLIPS)}, got {tta}")
    keep = int(keep)
    if not 1 <= keep <= tta:
        raise BCDIError(f"DL phasing: the number of candidates must be 1 to tta = {tta}, got {keep}")
    total = 4 + tta * (2 if corrector is not None else 1)
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
    grid_recipe = grid_refine if isinstance(grid_refine, str) else None
    if grid_recipe is not None:
        from ..core.phasing.refine import refine_steps

        refine_steps(grid_recipe)
    elif int(grid_refine) < 0:
        raise BCDIError(f"DL phasing: grid_refine must be >= 0 iterations or a recipe, got {grid_refine}")
    data_m = None
    if grid_recipe is not None or int(grid_refine) > 0 or corrector is not None:
        from ..core.phasing.operators import prepare_data

        data_m = prepare_data(i_m, m_m)  # shared by the candidates' refinements

    def scored(phases: np.ndarray, step0: int) -> list:
        """(score, flip index, phase, model-grid object) of each flip's phase, best first."""
        found = []
        for j, f in enumerate(flips):
            phi = np.ascontiguousarray(np.flip(phases[j], f)) if f else phases[j]
            obj_m = model_grid_object(i_m, phi, m_m)
            sup_m = support_from_object(obj_m, support_threshold)
            if grid_recipe is not None:
                rec = refine(i_m, obj_m, sup_m, recipe=grid_recipe, llk_every=0, data=data_m, cancel=cancel)
                score, obj_m = float(rec.llk), rec.obj
            elif int(grid_refine) > 0:
                rec = refine(i_m, obj_m, sup_m, n_iter=int(grid_refine), border_only=True,
                             llk_every=int(grid_refine), data=data_m, cancel=cancel)
                score, obj_m = float(rec.llk), rec.obj
            else:
                score = _consistency_error(i_m, obj_m, sup_m, m_m)
            found.append((score, j, phi, obj_m))
            report(progress, cancel, step0 + j, total)
        return sorted(found, key=lambda c: (c[0] if np.isfinite(c[0]) else np.inf, c[1]))

    found = scored(phis, 3)
    sources = [("network", found)]
    if corrector is not None:
        fixed = _corrected(corrector, x, i_m, m_m, phis, flips, int(correct_rounds), data_m, cancel)
        sources.append(("corrector", scored(fixed, 3 + tta)))
    candidates = []
    for rank in range(keep):  # interleaved: the best of each source, then the second best...
        for source, ranked in sources:
            score, j, phi_j, obj_m = ranked[rank]
            obj = from_model_grid(obj_m, t, space="object").astype(np.complex64)
            candidates.append(Candidate(obj, support_from_object(obj, support_threshold), float(score), flips[j],
                                        source, phi_j.astype(np.float32)))
    _, j_best, phi, _ = found[0]
    phase_full = phase_on_data_grid(phi, t)
    report(progress, cancel, total, total)
    meta = {"model_grid": size, "crop_shape": list(t.crop_shape), "zoom": [float(z) for z in t.zoom],
            "centre": list(t.centre), "oversampling_range": list(osr), "model": card.get("name", PHASE_MODEL),
            "predict_s": seconds, "tta": tta, "grid_refine": grid_refine, "chosen_flip": list(flips[j_best]),
            "scores": [c[0] for c in sorted(found, key=lambda c: c[1])]}
    if corrector is not None:
        meta.update(corrector=getattr(corrector, "name", "corrector"), correct_rounds=int(correct_rounds),
                    corrector_scores=[c[0] for c in sorted(sources[1][1], key=lambda c: c[1])])
    best = candidates[0]
    return PhasePrediction(phase_full, best.obj, best.support, phi.astype(np.float32), i_m, t, seconds, meta,
                           candidates)


def _corrected(corrector: Any, x: np.ndarray, i_m: np.ndarray, m_m: np.ndarray | None, phis: np.ndarray,
               flips: tuple, rounds: int, data_m, cancel: CancelToken | None) -> np.ndarray:
    """The corrector's phases for the network's ``phis`` (one per input flip, in the flipped frames):
    ``rounds`` times, an engine estimate on the model grid, then the corrector on (pattern, estimate)."""
    from .phase_corrector import correct_phase, estimate_phase

    if rounds < 1:
        raise BCDIError(f"DL phasing: correct_rounds must be >= 1 with a corrector, got {rounds}")
    out = np.array([np.flip(p, f) if f else p for p, f in zip(phis, flips)])  # back to the data's frame
    for _ in range(rounds):
        est = np.stack([estimate_phase(i_m, p, mask_m=m_m, data=data_m, cancel=cancel) for p in out])
        out = correct_phase(corrector, np.broadcast_to(x, est.shape), est)
    return np.array([np.flip(p, f) if f else p for p, f in zip(out, flips)])  # the frames the loop expects


def refine_prediction(intensity: np.ndarray, mask: np.ndarray | None, pred: PhasePrediction, *,
                      refine: str | None = None, candidates: int | None = None, seed: int = 0,
                      early_stop: int = DEFAULT_EARLY_STOP, progress: ProgressFn | None = None,
                      cancel: CancelToken | None = None, **refine_kw: Any) -> Reconstruction:
    """Step 5: refine the best ``candidates`` of a prediction on the full data, keep the best by free LLK.

    Parameters
    ----------
    intensity, mask : the pattern the prediction was made from (data grid) and its gap mask.
    pred : :func:`predict_object`'s result (its ``candidates``, best first).
    refine : refinement recipe: a name of ``core.phasing.refine.REFINE_RECIPES`` (``"paper"``: the published
        border-only ER) or a recipe string such as ``"HIO**200, ER**200"`` (default :data:`DEFAULT_REFINE`).
    candidates : how many of the prediction's candidates to refine (default: all it holds).
    seed : seed of the free voxels (the same for every candidate, so their free LLKs compare).
    early_stop : stop each final ER step after this many iterations without a better free LLK (0: off).
    refine_kw : passed to ``core.phasing.refine`` (``support_threshold``, ``support_method``, ``backend``...).
    progress, cancel : ``(done, total)`` over all iterations of all candidates.

    Returns
    -------
    The best Reconstruction (``method="dl"``); ``meta["candidates"]`` lists every candidate's flip, LLK,
    free LLK and iterations, ``meta["chosen_candidate"]`` the index of the one kept.
    """
    from ..core.phasing.operators import prepare_data
    from ..core.phasing.recipe import total_iterations
    from ..core.phasing.refine import refine as run_refine
    from ..core.phasing.refine import refine_steps

    recipe = DEFAULT_REFINE if refine is None else refine
    steps = refine_steps(recipe)  # checks the recipe before any work
    cands = list(pred.candidates) or [Candidate(pred.obj, pred.support, 0.0, ())]
    n = len(cands) if candidates is None else int(candidates)
    if not 1 <= n <= len(cands):
        raise BCDIError(f"DL phasing: candidates must be 1 to {len(cands)} (the prediction's), got {n}")
    a, m = _check_intensity(intensity, mask)
    if pred.obj.shape != a.shape:
        raise BCDIError(f"DL phasing: the prediction's grid {pred.obj.shape} differs from the intensity's "
                        f"{a.shape}: predict again")
    per = total_iterations(steps)
    total = max(1, per * n)
    data = prepare_data(a, m, free_fraction=float(refine_kw.pop("free_fraction", 0.05)), seed=seed,
                        backend=refine_kw.pop("backend", "auto"))
    results = []
    for k, c in enumerate(cands[:n]):
        def sub(done: int, of: int, k: int = k) -> None:
            report(progress, cancel, k * per + min(done, per), total)

        rec = run_refine(a, c.obj, c.support, recipe=recipe, data=data, early_stop=early_stop, method="dl",
                         seed=seed, progress=sub, cancel=cancel, **refine_kw)
        rec.meta["flip"] = list(c.flip)
        rec.meta["source"] = c.source
        results.append(rec)
    from ..core.phasing.runs import _score

    best_k = min(range(n), key=lambda k: (_score(results[k], "llk_free"), k))
    best = results[best_k]
    best.meta["candidates"] = [{"flip": r.meta["flip"], "source": r.meta["source"], "llk": r.llk,
                                "llk_free": r.llk_free, "iterations": r.meta.get("iterations")} for r in results]
    best.meta["chosen_candidate"] = best_k
    report(progress, cancel, total, total)
    return best


def resolve_corrector(corrector: Any) -> Any:
    """A loaded phase corrector, or None: ``"default"`` is :data:`DEFAULT_CORRECTOR` when its file ships (else
    None), a string a registry name or ``.keras`` path, None none; a model is returned as it is."""
    if not isinstance(corrector, str):
        return corrector
    from .phase_corrector import is_corrector
    from .registry import available_models, load_model

    if corrector == "default":
        if DEFAULT_CORRECTOR is None or DEFAULT_CORRECTOR not in available_models():
            return None
        corrector = DEFAULT_CORRECTOR
    model = load_model(corrector)
    if not is_corrector(model):
        raise BCDIError(f"DL phasing: {corrector!r} is not a phase corrector (4 input channels); give "
                        "'phase_corrector' or a file made by models/corrector_training.py")
    return model


def dl_phase(intensity: np.ndarray, mask: np.ndarray | None = None, **kw: Any) -> Reconstruction:
    """DL phasing of a pattern: the refined reconstruction of :func:`predict_and_refine` (same parameters)."""
    return predict_and_refine(intensity, mask, **kw)[1]


def predict_and_refine(intensity: np.ndarray, mask: np.ndarray | None = None, *, refine: str | None = None,
                       candidates: int | None = None, refine_iter: int | None = None,
                       model: Any = None, card: dict | None = None, support_threshold: float = 0.2,
                       tta: int = 8, grid_refine: int = 50, seed: int = 0, early_stop: int = DEFAULT_EARLY_STOP,
                       mask_prediction: bool = True, corrector: Any = "default", correct_rounds: int = 1,
                       progress: ProgressFn | None = None,
                       cancel: CancelToken | None = None, **refine_kw: Any) -> tuple[PhasePrediction, Reconstruction]:
    """DL phasing of a pattern: prediction (:func:`predict_object`), then :func:`refine_prediction`.

    Parameters
    ----------
    intensity : 3D pattern (photon counts), any shape, peak anywhere.
    mask : gap/invalid mask (1 = invalid): zero in the prediction, free in the refinement.
    mask_prediction : False when the gap of ``intensity`` has been inpainted: the filled values are then the
        network's input (and the model-grid refinement's data), and the gap is free only in the refinement
        on the full data. Measured (``benchmarks/inpaint_real_space.py --part dl``, docs/models.md): this beats
        both the gap zeroed and the fill taken as measured everywhere.
    refine : refinement recipe, a name (``"paper"``, ``"hio-er"``, ``"raar-er"``) or a recipe string
        (default :data:`DEFAULT_REFINE`).
    candidates : predicted candidates (best input flips) refined on the full data; the best by free LLK
        is kept (default :data:`DEFAULT_CANDIDATES`, at most ``tta``).
    refine_iter : shorthand for the published refinement with that many iterations
        (``"border=on, ER**N"``; 0: the unrefined prediction, scaled to the data, method ``"dl-unrefined"``);
        cannot be combined with ``refine``.
    model, card : a phase model and its card (default: the shipped model).
    support_threshold : threshold of the initial support on the predicted object's smoothed modulus.
    tta, grid_refine : test-time augmentation and model-grid refinement of :func:`predict_object`.
    corrector, correct_rounds : the phase corrector of :func:`predict_object`: a loaded model, a registry name,
        ``"default"`` (:data:`DEFAULT_CORRECTOR`, the shipped one; none when that file is not there) or None
        (the network's candidates alone: half the refinements). With one, ``candidates`` counts per source.
    seed : seed of the free-LLK voxels.
    early_stop : stop each final ER step after this many iterations without a better free LLK (0: off).
    refine_kw : passed to ``core.phasing.refine`` (``support_threshold`` there is ``refine_support_threshold``
        here, e.g. ``support_method``, ``backend``).
    progress, cancel : ``(done, total)`` over the prediction (10 units) and the iterations.

    Returns
    -------
    (prediction, reconstruction): the :class:`PhasePrediction` and the refined Reconstruction (centred, on
    the data grid) with ``method="dl"``; in its ``meta`` the prediction's timing, model grid, crop and zoom,
    the recipe run and the candidates.
    """
    unrefined = False
    if refine_iter is not None:
        if refine is not None:
            raise BCDIError("DL phasing: give either a refinement recipe or refine_iter, not both")
        if int(refine_iter) < 0:
            raise BCDIError(f"DL phasing: refine iterations must be >= 0, got {refine_iter}")
        unrefined = int(refine_iter) == 0
        refine = f"border=on, ER**{int(refine_iter)}" if not unrefined else None
    else:
        from ..core.phasing.refine import refine_steps

        refine_steps(DEFAULT_REFINE if refine is None else refine)  # a bad recipe fails before the model
    candidates = min(DEFAULT_CANDIDATES, int(tta)) if candidates is None else int(candidates)
    if not 1 <= candidates <= int(tta):
        raise BCDIError(f"DL phasing: candidates must be 1 to tta = {tta} (the input flips tried), got {candidates}")
    t0 = time.perf_counter()
    total = 1000

    def pred_progress(done: int, of: int) -> None:
        report(progress, cancel, int(100 * done / max(of, 1)), total)

    corrector = resolve_corrector(corrector)
    pred = predict_object(intensity, mask if mask_prediction else None, model=model, card=card,
                          support_threshold=support_threshold, corrector=corrector,
                          correct_rounds=correct_rounds,
                          tta=tta, grid_refine=grid_refine, keep=candidates,
                          progress=pred_progress, cancel=cancel)
    t_pred = time.perf_counter() - t0

    def ref_progress(done: int, of: int) -> None:
        report(progress, cancel, 100 + int(900 * done / max(of, 1)), total)

    if "refine_support_threshold" in refine_kw:
        refine_kw["support_threshold"] = refine_kw.pop("refine_support_threshold")
    if unrefined:
        from ..core.phasing import refine as run_refine

        rec = run_refine(intensity, pred.obj, pred.support, mask, n_iter=0, seed=seed, method="dl-unrefined",
                         **refine_kw)
    else:
        rec = refine_prediction(intensity, mask, pred, refine=refine, seed=seed,
                                early_stop=early_stop, progress=ref_progress, cancel=cancel, **refine_kw)
    rec.meta.update({"prediction": pred.meta, "prediction_s": t_pred,
                     "total_s": time.perf_counter() - t0, "refine_iter": rec.meta.get("iterations", 0),
                     "refine": rec.meta.get("recipe", "")})
    report(progress, cancel, total, total)
    return pred, rec
