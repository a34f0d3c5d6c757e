"""The pipeline's steps on arrays: the one place where a configuration becomes calls of ``core`` and ``models``.

``bcdi-dl phase``, ``inpaint`` and ``strain``, the Phasing, DL phase, Inpainting and Results docks and
:func:`.runner.run_scan` all build a :class:`~.config.PipelineConfig` (:func:`step_config` for one or two
sections) and call these functions, so the same settings give the same arrays everywhere; the defaults live
in the configuration (read from the functions that do the work). Models are imported inside the steps that
need them: a conventional step never loads TensorFlow.

* :func:`phase_step` → :class:`PhaseOutcome` (the reconstruction, the conventional runs or the DL
  prediction, and a one-line summary);
* :func:`inpaint_step` → :class:`InpaintOutcome` (the filled pattern, warnings, the fine-tuning);
* :func:`strain_step` → ``core.postprocess.StrainResult``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import CancelToken, ProgressFn
from ..core.types import Geometry, Reconstruction
from .config import PipelineConfig, config_from_dict


def step_config(source: str = "<settings>", **sections: dict | None) -> PipelineConfig:
    """A validated configuration from section mappings; keys whose value is None take their default.

    ``step_config("Phasing dock", phase={"recipe": "HIO**50, ER**50", "runs": 2})``. A bad value raises a
    one-line :class:`BCDIError` naming ``source`` and the key.
    """
    data = {name: {k: v for k, v in (values or {}).items() if v is not None} for name, values in sections.items()}
    return config_from_dict(data, source=source, check_files=False)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


# ------------------------------------------------------------------------------------------------ phase
@dataclass
class PhaseOutcome:
    """What :func:`phase_step` returns.

    Attributes
    ----------
    reconstruction : the chosen reconstruction (the best run, or the best refined DL candidate).
    phasing : conventional: the ``core.phasing.PhasingResult`` (every run, modes, best index); else None.
    prediction : dl: the ``models.dl_phasing.PhasePrediction`` the refinement started from; else None.
    """

    reconstruction: Reconstruction
    phasing: Any = None
    prediction: Any = None

    def recipe_run(self) -> str:
        """The recipe actually run (with any inserted DETWIN step), or ``"none (unrefined)"``."""
        return self.reconstruction.meta.get("recipe") or "none (unrefined)"

    def choice(self) -> str:
        """Which run or candidate was kept, e.g. ``"best run 2/4, first-mode weight 0.812"``."""
        rec = self.reconstruction
        if self.phasing is not None:
            n = len(self.phasing.runs)
            text = f"best run {self.phasing.best_index + 1}/{n}"
            return text + (f", first-mode weight {self.phasing.first_mode_weight:.3f}" if n > 1 else "")
        cands = rec.meta.get("candidates") or []
        return (f"candidate {rec.meta.get('chosen_candidate', 0) + 1}/{max(1, len(cands))}, "
                f"{rec.meta.get('iterations', 0)} iterations")

    def summary(self) -> str:
        """One line: method, choice, LLK, free LLK, support size."""
        rec = self.reconstruction
        return (f"method {rec.method}, {self.choice()}, LLK {_fmt(rec.llk)}, free LLK {_fmt(rec.llk_free)}, "
                f"support {int(np.count_nonzero(rec.support))} voxels")


def phase_step(cfg: PipelineConfig, intensity: np.ndarray, mask: np.ndarray | None = None, *,
               backend: str | None = None, filled: bool = False, progress: ProgressFn | None = None,
               cancel: CancelToken | None = None, **live: Any) -> PhaseOutcome:
    """Phase ``intensity`` as ``cfg.phase`` says: ``core.phasing.phase`` (best run) or
    ``models.dl_phasing.predict_and_refine``.

    Parameters
    ----------
    cfg : the configuration (its ``phase`` section is used).
    intensity, mask : the pattern and its gap mask (1 = invalid, left free).
    backend : array backend name (default ``cfg.phase.backend``).
    filled : the gap of ``intensity`` was inpainted: with ``dl`` the fill is the network's input and the
        ``mask`` leaves the gap free only in the refinement (``predict_and_refine(mask_prediction=False)``).
    progress, cancel : ``(done, total)`` and the cancel token.
    live : ``snapshot=`` / ``snapshot_every=`` of a live view, passed to the iterations.
    """
    c = cfg.phase
    backend = c.backend if backend is None else backend
    if c.method == "dl":
        from ..models.dl_phasing import predict_and_refine

        # refine_iter is the published recipe: it and refine exclude each other
        recipe = {"refine_iter": c.refine_iter} if c.refine_iter is not None else {"refine": c.refine}
        pred, rec = predict_and_refine(intensity, mask, candidates=c.candidates, tta=c.tta, seed=c.seed,
                                       corrector="default" if c.corrector else None,
                                       backend=backend, mask_prediction=not filled, progress=progress,
                                       cancel=cancel, **recipe, **live)
        return PhaseOutcome(rec, prediction=pred)
    from ..core.phasing import phase

    result = phase(intensity, mask, recipe=c.recipe, runs=c.runs, seed=c.seed,
                   support_threshold=c.support_threshold, support_method=c.support_method, select=c.select,
                   backend=backend, progress=progress, cancel=cancel, **live)
    rec = result.best
    rec.meta.setdefault("best_run", result.best_index)
    if len(result.runs) > 1:
        rec.meta.setdefault("first_mode_weight", result.first_mode_weight)
    return PhaseOutcome(rec, phasing=result)


# ---------------------------------------------------------------------------------------------- inpaint
@dataclass
class InpaintOutcome:
    """What :func:`inpaint_step` returns: the filled pattern (float32; None when nothing was masked), the
    warnings the inpainting gave, and the fine-tuning result (``models.finetune.FinetuneResult``) or None."""

    filled: np.ndarray | None
    warnings: list = field(default_factory=list)
    finetune: Any = None


def inpaint_step(cfg: PipelineConfig, data: np.ndarray, mask: np.ndarray | None, *, model: Any = None,
                 progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                 finetune_progress: ProgressFn | None = None, empty_ok: bool = False) -> InpaintOutcome:
    """Fill the masked voxels of ``data`` as ``cfg.inpaint`` says (``models.inpaint.inpaint``).

    ``model`` replaces the shipped inpainting model (e.g. one fine-tuned before); with ``inpaint.finetune``
    and no ``model``, the shipped model is first fine-tuned on the pattern's own crops. An empty (or no)
    mask is refused in one line, or with ``empty_ok`` returns ``filled=None`` (a batch of scans, some
    without gaps).
    """
    c = cfg.inpaint
    if c.method == "none":
        raise BCDIError("inpaint.method is 'none': choose dl or a baseline to fill the gaps")
    if empty_ok and (mask is None or not np.any(mask)):
        return InpaintOutcome(None)
    if mask is None:
        raise BCDIError("inpaint: no gap mask: give the mask of the gaps to fill")
    from ..models.inpaint import inpaint

    tuned = None
    if c.finetune and model is None:
        if c.method != "dl":
            raise BCDIError("inpaint.finetune applies to inpaint.method dl only")
        from ..models.finetune import finetune

        tuned = finetune(data, mask, steps=c.finetune_steps, progress=finetune_progress, cancel=cancel)
        model = tuned.model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filled = inpaint(data, mask, method=c.method, step=c.step, batch=c.batch, model=model,
                         progress=progress, cancel=cancel)
    return InpaintOutcome(np.asarray(filled, dtype=np.float32), [str(w.message) for w in caught], tuned)


# ----------------------------------------------------------------------------------------------- strain
def strain_step(cfg: PipelineConfig, obj: np.ndarray, support: np.ndarray | None, geometry: Geometry | None, *,
                hkl=None, lattice_nm: float | None = None, voxel_size_nm=None,
                progress: ProgressFn | None = None, cancel: CancelToken | None = None):
    """Post-process a reconstruction as ``cfg.strain`` says (``core.postprocess.postprocess``).

    ``geometry`` is used for the reciprocal-to-real transform only when its setup is known
    (``core.geometry_checks.setup_known``); ``hkl`` and ``lattice_nm`` default to the geometry's.
    """
    from ..core.geometry_checks import setup_known
    from ..core.postprocess import postprocess

    s = cfg.strain
    if geometry is not None:
        hkl = geometry.hkl if hkl is None else hkl
        lattice_nm = geometry.lattice_nm if lattice_nm is None else lattice_nm
    return postprocess(
        obj, support, geometry if geometry is not None and setup_known(geometry) else None, hkl=hkl,
        lattice_nm=lattice_nm, voxel_size_nm=voxel_size_nm, unwrap=s.unwrap, remove_ramp=s.remove_ramp,
        offset=None if s.offset == "none" else s.offset, flip=s.flip, isosurface=s.isosurface,
        orthogonalise=None if s.frame is None else s.frame == "lab", lab_voxel_nm=s.lab_voxel_nm,
        crop_margin=s.crop, phase_sign=s.phase_sign, progress=progress, cancel=cancel)
