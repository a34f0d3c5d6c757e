"""The **Phasing** dock widget: conventional phase retrieval (HIO / RAAR / ER with shrink-wrap, N runs).

Choose the intensity layer (photon counts, centred Bragg peak) and optionally its gap mask (Labels,
1 = gap, left free in the modulus projection), a recipe (``core.phasing.parse_recipe`` grammar, checked as
you type), the number of runs and the seed; *Start* runs ``core.phasing.phase`` in the shared worker
(progress in the activity dock and the bar here, *Cancel* stops at the next iteration). The best run
(lowest free LLK) becomes three layers named after the data layer:

* ``"<data> conventional modulus"`` (gray), ``"<data> conventional phase"`` (twilight, ±π; phase inside
  the support, offset so the crystal's mean phase is 0, 0 outside), ``"<data> conventional support"``
  (Labels). The word *conventional* lets the DL widget's ``"<data> DL modulus"`` ... sit beside them.

*Live view every N iterations* (default 20; 0: off): while the run goes, the dock shows three slices
through the running object (modulus above phase) every N iterations, at most 4 updates a second, prepared in
the worker (``_live.LiveView``), and a small plot its LLK. No layer is added during the run (adding one
blocks napari 0.2-0.3 s): the result layers appear when it ends.

The dock builds a pipeline configuration (:meth:`PhasingWidget.config`) and runs
``pipeline.steps.phase_step``, the step ``bcdi-dl phase`` and ``bcdi-dl run`` run: the same settings give the
same arrays. Their ``scale`` is the real-space voxel size ``metadata["bcdi"]["voxel_size_nm"]`` of the data
layer (units nm) when known. Each layer's ``metadata["bcdi"]`` carries ``kind`` (modulus / phase / support)
and ``result``: one :class:`~napari_bcdi_dl.core.types.ReconstructionResult` (object, support, LLK, free
LLK, method, recipe run, geometry, voxel size, data layer, configuration), read back by
``_layers.result_of``. Running again
replaces these layers' data (``layer.data = new``); input layers are never modified, and a cancelled or
failed run adds nothing. Errors become napari notifications and the status line; napari never crashes.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BCDIError
from ..core.phasing import DEFAULT_RECIPE, parse_recipe
from ..core.types import ReconstructionResult
from ._layers import (
    HasJobSlot,
    IntensityPicker,
    JobSlot,
    LayerFollower,
    bcdi_meta,
    notify_error,
    real_space,
)
from ._live import LivePreview, LiveView, LLKPlot
from ._worker import Job
from .dl_phase import put_object_layers

log = logging.getLogger(__name__)

SUFFIX = " conventional"
LIVE_EVERY = 20  # live view every 20 iterations: slices drawn in the dock (~1 ms per update, _live)


def phase_job(intensity: np.ndarray, mask: np.ndarray | None, cfg, *, snapshot=None,
              snapshot_every: int = LIVE_EVERY, progress=None, cancel=None):
    """Worker job of *Start*: ``pipeline.steps.phase_step`` of the dock's configuration (as ``bcdi-dl phase``
    and ``bcdi-dl run``), with the live view's ``snapshot``."""
    from ..pipeline.steps import phase_step

    live = {} if snapshot is None else {"snapshot": snapshot, "snapshot_every": snapshot_every}
    return phase_step(cfg, intensity, mask, progress=progress, cancel=cancel, **live)


class PhasingWidget(HasJobSlot, QWidget):
    """Dock widget *Phasing* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.result: Any = None  # PhasingResult of the last finished run
        self._build()
        self.jobs = JobSlot("Phasing", [self.start_button], self.cancel_button, progress_bar=self.progress_bar,
                            on_finished=self._finished)
        self.picker = IntensityPicker(self.viewer, self.data_combo, self.mask_combo)
        self.live = LiveView(self.viewer, self.llk_plot, self.live_preview)
        self._follower = LayerFollower(self.viewer, self, self._refresh_layers)
        self._refresh_layers()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.data_combo = QComboBox()
        self.data_combo.setToolTip("3D Image layer of the measured intensity (photon counts), peak centred")
        self.mask_combo = QComboBox()
        self.mask_combo.setToolTip("Labels layer of the gap mask (1 = gap, left free), or no mask")
        self.recipe_edit = QLineEdit(DEFAULT_RECIPE)
        self.recipe_edit.setToolTip('e.g. "HIO**400, RAAR**1000, ER**300"; sup=N sets the support period')
        self.recipe_edit.textChanged.connect(self._check_recipe)
        self.recipe_error = QLabel("")
        self.recipe_error.setStyleSheet("color: #e05050")
        self.recipe_error.setWordWrap(True)
        self.runs_spin = QSpinBox()
        self.runs_spin.setRange(1, 1000)
        self.runs_spin.setToolTip("independent runs from random starts; the best by free LLK is shown")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.live_spin = QSpinBox()
        self.live_spin.setRange(0, 100_000)
        self.live_spin.setValue(LIVE_EVERY)
        self.live_spin.setSpecialValueText("off")
        self.live_spin.setToolTip("show the running reconstruction every N iterations (0: off)")
        self.llk_plot = LLKPlot()
        self.live_preview = LivePreview()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status = QLabel("choose the intensity layer, then Start")
        self.status.setWordWrap(True)

        box = QGroupBox("Conventional phasing (HIO / RAAR / ER, shrink-wrap)")
        form = QFormLayout(box)
        form.addRow("Intensity", self.data_combo)
        form.addRow("Gap mask", self.mask_combo)
        form.addRow("Recipe", self.recipe_edit)
        form.addRow(self.recipe_error)
        form.addRow("Runs", self.runs_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Live view every", self.live_spin)
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        form.addRow(row)
        form.addRow(self.progress_bar)
        form.addRow(self.llk_plot)
        form.addRow(self.live_preview)
        form.addRow(self.status)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addStretch(1)

    def _check_recipe(self, *_args) -> bool:
        """Parse the recipe; show the error inline and disable Start while it is wrong."""
        try:
            parse_recipe(self.recipe_edit.text())
        except BCDIError as err:
            self.recipe_error.setText(str(err))
        else:
            self.recipe_error.setText("")
        ok = not self.recipe_error.text()
        self.start_button.setEnabled(ok and not self.jobs.busy)
        return ok

    # --- layers -----------------------------------------------------------------------------------
    def _refresh_layers(self) -> None:
        self.picker.refresh()

    def select_layers(self, data, mask=None) -> None:
        """Choose the intensity layer (and the mask layer, or none)."""
        self.picker.select(data, mask)

    def _inputs(self) -> tuple[Any, np.ndarray, np.ndarray | None]:
        return self.picker.inputs()

    # --- jobs -------------------------------------------------------------------------------------
    def start(self) -> Job | None:
        """Phase the chosen intensity in a worker (returns the Job, or None if nothing started)."""
        try:
            if self.jobs.refuse_if_busy():
                return None
            if not self._check_recipe():
                raise BCDIError(f"bad recipe: {self.recipe_error.text()}")
            layer, data, mask = self._inputs()
            cfg = self.config()
            recipe, runs = cfg.phase.recipe, cfg.phase.runs
            self.status.setText(f"{layer.name}: phasing ({runs} run{'s' * (runs > 1)}: {recipe})…")
            every = self.live_spin.value()
            snapshot = self.live.start(layer.name + SUFFIX, real_space(layer)) if every > 0 else None
            job = self.jobs.start(phase_job, data, mask, cfg, desc="Phasing",
                                  on_done=lambda res: self._show(layer, res, cfg), snapshot=snapshot,
                                  snapshot_every=max(every, 1))
            if job is None:
                self.live.finish()
            return job
        except BCDIError as err:
            self.status.setText(f"error: {err}")
            notify_error(f"Phasing: {err}")
        except Exception as err:  # a bug must not take napari down
            log.exception("Phasing failed to start")
            self.status.setText(f"error: {type(err).__name__}: {err}")
            notify_error(f"Phasing failed: {type(err).__name__}: {err}")
        return None


    def config(self):
        """The pipeline configuration of the dock's settings (``pipeline.steps.step_config``)."""
        from ..pipeline.steps import step_config

        return step_config("Phasing dock", phase={"method": "conventional", "recipe": self.recipe_edit.text().strip(),
                                                  "runs": self.runs_spin.value(), "seed": self.seed_spin.value()})

    def _finished(self) -> None:
        self.live.finish()
        self._check_recipe()  # Start stays disabled while the recipe is wrong
        job = self.job
        if job is not None and job.cancelled:
            self.status.setText("cancelled: no layer changed")
        elif job is not None and job.error is not None:
            self.status.setText(f"error: {job.error}")

    # --- results ---------------------------------------------------------------------------------------
    def _show(self, data_layer, outcome, cfg) -> None:
        """Put the best run in the ``"<data> conventional ..."`` layers (main thread)."""
        self.result = outcome.phasing
        rec = outcome.reconstruction
        geo = real_space(data_layer)
        res = ReconstructionResult(rec, geometry=bcdi_meta(data_layer).get("geometry"),
                                   voxel_size_nm=tuple(geo["scale"]) if geo else None, data_name=data_layer.name,
                                   config=cfg.resolved())
        put_object_layers(self.viewer, data_layer.name + SUFFIX, res, geo)
        self.llk_plot.set_history(rec.history)
        self.status.setText(self.summary(outcome.phasing))

    @staticmethod
    def summary(result) -> str:
        """LLK, free LLK, first-mode weight and runs of a PhasingResult, then the recipe actually run (with
        its inserted DETWIN step)."""
        rec = result.best

        def fmt(v):
            return "n/a" if v is None else f"{v:.4g}"

        n = len(result.runs)
        return (f"LLK {fmt(rec.llk)}, free LLK {fmt(rec.llk_free)}, first mode {result.first_mode_weight:.1%} "
                f"(best of {n} run{'s' * (n > 1)}: #{result.best_index + 1})\nrecipe run: {rec.meta.get('recipe', '')}")
