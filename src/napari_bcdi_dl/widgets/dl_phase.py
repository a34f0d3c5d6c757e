"""The **DL phase** dock widget: predict the reciprocal-space phase with the CNN, then refine.

*Predict* runs ``models.dl_phasing.predict_object`` in the model process (``_worker_process``: TensorFlow
never runs in the napari process; the job's worker thread only waits on it) and adds

* ``"<data> predicted phase"`` — the predicted reciprocal-space phase over the intensity (same grid,
  scale and translate as the data layer; twilight, ±π; 0 outside the region the model saw);
* the unrefined object: ``"<data> DL unrefined modulus"``, ``"... phase"`` and ``"... support"``.

*Refine* runs ``models.dl_phasing.refine_prediction`` from that prediction (numpy only, in a worker
thread, :func:`live_refine_job`; with *Live view every N* > 0 (default 20) slices through the running object
are drawn in the dock and its LLK plotted, ``_live.LiveView``): the *Refinement* recipe (a named choice — ``hio-er``, the default; ``paper``, the published
border-only ER; ``raar-er`` — or any recipe typed in, e.g. ``HIO**200, ER**200``) on each of the best
*Candidates*, the best by free LLK; it adds ``"<data> DL modulus"``, ``"<data> DL phase"``,
``"<data> DL support"`` and shows the recipe run. *Predict + refine* does both in one job, in the model
process. The job functions
are in ``_model_jobs.py`` (no Qt there: the model process imports them). Names follow the phasing
widget's ``"<name> modulus / phase / support"`` so that conventional and DL results sit side by side.
Object phases are shown inside the support (0 outside), offset so that the crystal's mean phase is 0, on
a twilight map over ±π. *Predict + refine* builds a pipeline configuration (:meth:`DLPhaseWidget.config`)
and runs ``pipeline.steps.phase_step``, the step ``bcdi-dl phase --method dl`` and ``bcdi-dl run`` run. The
layers' ``metadata["bcdi"]`` carry ``kind`` (modulus / phase / support) and ``result``, one
:class:`~napari_bcdi_dl.core.types.ReconstructionResult` (read back by ``_layers.result_of``), as the
Phasing widget's do; their ``scale`` is the data layer's real-space voxel size (nm) when known.

Layers are replaced (``layer.data = ...``) when they exist, never the input layers. Errors become napari
notifications; long work shows progress and can be cancelled.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BCDIError
from ..core.phasing.refine import REFINE_RECIPES, refine_steps
from ..core.types import Reconstruction, ReconstructionResult
from ._layers import (
    HasJobSlot,
    IntensityPicker,
    JobSlot,
    LayerFollower,
    bcdi_meta,
    data_grid,
    derived_bcdi,
    guarded,
    put_layer,
    real_space,
    result_metadata,
)
from ._live import LivePreview, LiveView, LLKPlot, display_phase
from ._model_jobs import predict_job, predict_refine_job
from ._worker import Job
from ._worker_process import in_model_process

log = logging.getLogger(__name__)

PHASE_CMAP = "twilight"
LIVE_EVERY = 20  # live view every 20 iterations: slices drawn in the dock (~1 ms per update, _live)

__all__ = ["DLPhaseWidget", "display_phase", "live_refine_job", "put_object_layers"]


def live_refine_job(intensity: np.ndarray, mask: np.ndarray | None, pred, refine: str, candidates: int, *,
                    snapshot=None, snapshot_every: int = LIVE_EVERY, progress=None, cancel=None):
    """Job of *Refine* (numpy only, in a worker thread): ``models.dl_phasing.refine_prediction`` with the
    live view's ``snapshot`` passed through its ``refine_kw`` to ``core.phasing.refine``."""
    from ..models.dl_phasing import refine_prediction

    live = {} if snapshot is None else {"snapshot": snapshot, "snapshot_every": int(snapshot_every)}
    return refine_prediction(intensity, mask, pred, refine=refine, candidates=int(candidates),
                             progress=progress, cancel=cancel, **live)


def put_object_layers(viewer, prefix: str, result: ReconstructionResult, geo: dict) -> None:
    """Add or replace ``"<prefix> modulus"`` (gray), ``"<prefix> phase"`` (:func:`display_phase`, twilight
    over ±π) and ``"<prefix> support"`` (Labels) of ``result``: each with ``_layers.result_metadata`` (the
    result itself, read back by ``_layers.result_of``) and the real-space grid ``geo`` (``scale``/``units``).
    Shared with the Phasing widget."""
    obj, support = result.obj, np.asarray(result.support, dtype=np.uint8)
    mod = np.abs(obj).astype(np.float32)
    put_layer(viewer, f"{prefix} modulus", mod, metadata=result_metadata(result, "modulus"),
              colormap="gray", contrast_limits=(0.0, float(mod.max()) or 1.0), **geo)
    put_layer(viewer, f"{prefix} phase", display_phase(obj, support), metadata=result_metadata(result, "phase"),
              colormap=PHASE_CMAP, contrast_limits=(-np.pi, np.pi), **geo)
    put_layer(viewer, f"{prefix} support", support, labels=True, metadata=result_metadata(result, "support"),
              opacity=0.4, **geo)


class DLPhaseWidget(HasJobSlot, QWidget):
    """Dock widget *DL phase* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.prediction: Any = None  # PhasePrediction of the last Predict
        self.reconstruction: Any = None  # Reconstruction of the last Refine
        self._predicted_for: str | None = None
        self._build()
        self.jobs = JobSlot("DL phase", [self.predict_button, self.refine_button, self.both_button],
                            self.cancel_button, on_finished=self._finished)
        self.picker = IntensityPicker(self.viewer, self.data_combo, self.mask_combo)
        self.live = LiveView(self.viewer, self.llk_plot, self.live_preview)
        self._follower = LayerFollower(self.viewer, self, self._refresh_layers)
        self._refresh_layers()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.data_combo = QComboBox()
        self.data_combo.setToolTip("3D Image layer of the measured intensity (photon counts), gaps inpainted")
        self.mask_combo = QComboBox()
        self.mask_combo.setToolTip("Labels layer of the gap mask (1 = gap), left free in the refinement")
        from ..models.dl_phasing import DEFAULT_CANDIDATES, DEFAULT_REFINE  # numpy only: no TensorFlow here

        self.recipe_combo = QComboBox()
        self.recipe_combo.setEditable(True)
        self.recipe_combo.addItems([REFINE_RECIPES[DEFAULT_REFINE]]
                                   + [r for n, r in REFINE_RECIPES.items() if n != DEFAULT_REFINE])
        self.recipe_combo.setToolTip("refinement recipe run from each candidate (type any recipe, e.g. "
                                     "'HIO**200, ER**200'; 'border=on, ER**400' is the published one)")
        self.candidates_spin = QSpinBox()
        self.candidates_spin.setRange(1, 8)
        self.candidates_spin.setValue(DEFAULT_CANDIDATES)
        self.candidates_spin.setToolTip("predicted candidates (input flips) refined, per source; the best by free "
                                        "LLK is kept")
        self.corrector_check = QCheckBox("add the phase corrector's candidates")
        self.corrector_check.setChecked(True)
        self.corrector_check.setToolTip("the corrector's candidates (from the engine's estimate on the model grid) "
                                        "solve other strained crystals than the network's; off: half the time")
        self.live_spin = QSpinBox()
        self.live_spin.setRange(0, 100_000)
        self.live_spin.setValue(LIVE_EVERY)
        self.live_spin.setSpecialValueText("off")
        self.live_spin.setToolTip("during Refine, show the running object every N iterations (0: off); "
                                  "Predict + refine runs in the model process and shows the result only")
        self.llk_plot = LLKPlot()
        self.live_preview = LivePreview()
        self.predict_button = QPushButton("Predict")
        self.predict_button.setToolTip("predict the reciprocal phase and form the unrefined object")
        self.predict_button.clicked.connect(lambda: self.predict())
        self.refine_button = QPushButton("Refine")
        self.refine_button.setToolTip("refine the last prediction against the full data")
        self.refine_button.clicked.connect(lambda: self.refine())
        self.both_button = QPushButton("Predict + refine")
        self.both_button.clicked.connect(lambda: self.predict_and_refine())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("choose the intensity layer, then Predict")
        self.status.setWordWrap(True)

        box = QGroupBox("DL phasing (reciprocal-space phase CNN + ER refinement)")
        form = QFormLayout(box)
        form.addRow("Intensity", self.data_combo)
        form.addRow("Gap mask", self.mask_combo)
        form.addRow("Refinement", self.recipe_combo)
        form.addRow("Candidates", self.candidates_spin)
        form.addRow("", self.corrector_check)
        form.addRow("Live view every", self.live_spin)
        row = QHBoxLayout()
        for b in (self.predict_button, self.refine_button, self.both_button, self.cancel_button):
            row.addWidget(b)
        form.addRow(row)
        form.addRow(self.llk_plot)
        form.addRow(self.live_preview)
        form.addRow(self.status)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addStretch(1)

    # --- layers -----------------------------------------------------------------------------------
    def _refresh_layers(self) -> None:
        self.picker.refresh()

    def select_layers(self, data, mask=None) -> None:
        """Choose the intensity layer (and the mask layer, or none)."""
        self.picker.select(data, mask)

    def _inputs(self) -> tuple[Any, np.ndarray, np.ndarray | None]:
        return self.picker.inputs()

    def _show_object(self, prefix: str, data_layer, rec: Reconstruction, config: dict | None = None) -> None:
        geo = real_space(data_layer)
        res = ReconstructionResult(rec, geometry=bcdi_meta(data_layer).get("geometry"),
                                   voxel_size_nm=tuple(geo["scale"]) if geo else None, data_name=data_layer.name,
                                   config=config)
        put_object_layers(self.viewer, prefix, res, geo)

    # --- jobs -------------------------------------------------------------------------------------

    # --- actions ----------------------------------------------------------------------------------
    def set_recipe(self, recipe: str) -> None:
        """Choose the refinement recipe (a name or a recipe string), as typing it in does."""
        self.recipe_combo.setCurrentText(recipe)

    def _recipe(self) -> str:
        recipe = self.recipe_combo.currentText().strip()
        refine_steps(recipe)  # a one-line error before any work
        return recipe

    @guarded("DL phase")
    def predict(self) -> Job | None:
        """Predict the phase and the unrefined object of the chosen intensity (returns the Job)."""
        layer, data, mask = self._inputs()
        self.status.setText(f"{layer.name}: predicting…")
        return self.jobs.start(in_model_process, predict_job, data, mask, candidates=self.candidates_spin.value(),
                               corrector=self.corrector_check.isChecked(),
                               filled=_inpainted(layer), desc="DL phase: predict",
                               on_done=lambda pred: self._predicted(layer, pred))

    def _predicted(self, layer, pred) -> None:
        self.prediction = pred
        self._predicted_for = layer.name
        meta = derived_bcdi(layer, **pred.meta, kind="reciprocal_phase", data_layer=layer.name)
        put_layer(self.viewer, f"{layer.name} predicted phase", pred.phase, metadata={"bcdi": meta},
                  **data_grid(layer), colormap=PHASE_CMAP, contrast_limits=(-np.pi, np.pi), opacity=0.7)
        unrefined = Reconstruction(pred.obj, np.asarray(pred.support, np.uint8), method="dl-unrefined",
                                   meta=dict(pred.meta))
        self._show_object(f"{layer.name} DL unrefined", layer, unrefined)
        z = pred.meta.get("zoom", [1, 1, 1])
        self.status.setText(f"{layer.name}: predicted on {pred.meta['model_grid']}³ (crop "
                            f"{'×'.join(map(str, pred.meta['crop_shape']))}, zoom "
                            f"{', '.join(f'{v:.2f}' for v in z)}) in {pred.seconds:.2f} s; now Refine")

    @guarded("DL phase")
    def refine(self) -> Job | None:
        """Refine the last prediction of the chosen intensity (returns the Job)."""
        layer, data, mask = self._inputs()
        if self.prediction is None or self._predicted_for != layer.name:
            raise BCDIError(f"no prediction for '{layer.name}' yet: press Predict first (or Predict + refine)")
        if self.prediction.obj.shape != data.shape:
            raise BCDIError("the intensity changed shape since the prediction: press Predict again")
        recipe = self._recipe()
        sources = len({c.source for c in self.prediction.candidates}) or 1
        k = min(int(self.candidates_spin.value()) * sources, len(self.prediction.candidates) or 1)
        self.status.setText(f"{layer.name}: refining {k} candidate(s) with {recipe}…")
        every = self.live_spin.value()
        snapshot = self.live.start(f"{layer.name} DL", real_space(layer)) if every > 0 else None
        job = self.jobs.start(live_refine_job, data, mask, self.prediction, recipe, k, snapshot=snapshot,
                              snapshot_every=max(every, 1), desc="DL phase: refine",
                              on_done=lambda rec: self._refined(layer, rec))
        if job is None:
            self.live.finish()
        return job

    def _finished(self) -> None:
        self.live.finish()

    @guarded("DL phase")
    def predict_and_refine(self) -> Job | None:
        """Prediction and refinement in one job (returns the Job)."""
        layer, data, mask = self._inputs()
        recipe = self._recipe()
        cfg = self.config()
        k = cfg.phase.candidates
        self.status.setText(f"{layer.name}: predicting and refining {k} candidate(s) with {recipe}…")

        def done(outcome):
            self._predicted(layer, outcome.prediction)
            self._refined(layer, outcome.reconstruction, cfg.resolved())

        return self.jobs.start(in_model_process, predict_refine_job, data, mask, cfg, filled=_inpainted(layer),
                               desc="DL phase: predict + refine",
                               on_done=done)

    def config(self):
        """The pipeline configuration of the dock's settings (``pipeline.steps.step_config``): what *Predict +
        refine* runs, as ``bcdi-dl phase --method dl`` and ``bcdi-dl run`` do."""
        from ..pipeline.steps import step_config

        return step_config("DL phase dock", phase={"method": "dl", "refine": self._recipe(),
                                                   "candidates": int(self.candidates_spin.value()),
                                                   "corrector": self.corrector_check.isChecked()})

    def _refined(self, layer, rec, config: dict | None = None) -> None:
        self.reconstruction = rec
        self._show_object(f"{layer.name} DL", layer, rec, config)
        self.llk_plot.set_history(rec.history)
        llk = "n/a" if rec.llk is None else f"{rec.llk:.4g}"
        free = "n/a" if rec.llk_free is None else f"{rec.llk_free:.4g}"
        n = len(rec.meta.get("candidates") or [None])
        self.status.setText(f"{layer.name}: refined with {rec.meta.get('recipe', '')} ({rec.meta.get('iterations')} "
                            f"iterations), candidate {rec.meta.get('chosen_candidate', 0) + 1}/{n}: LLK {llk}, "
                            f"free LLK {free}")


def _inpainted(layer) -> bool:
    """The layer's gap was filled (the Inpainting dock's result, or a file written by ``bcdi-dl inpaint``):
    the fill is then the network's input, the gap mask applies to the refinement only."""
    meta = bcdi_meta(layer)
    return bool(meta.get("inpainted") or (meta.get("meta") or {}).get("inpainted"))

