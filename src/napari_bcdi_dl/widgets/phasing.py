"""The **Phasing** dock widget: conventional phase retrieval (HIO / RAAR / ER with shrink-wrap, N runs).

Choose the intensity layer (photon counts, centred Bragg peak) and optionally its gap mask (Labels,
1 = gap, left free in the modulus projection), a recipe (``core.phasing.parse_recipe`` grammar, checked as
you type), the number of runs and the seed; *Start* runs ``core.phasing.phase`` in the shared worker
(progress in the activity dock and the bar here, *Cancel* stops at the next iteration). The best run
(lowest free LLK) becomes three layers named after the data layer:

* ``"<data> conventional modulus"`` (gray), ``"<data> conventional phase"`` (twilight, ±π; phase inside
  the support, offset so the crystal's mean phase is 0, 0 outside), ``"<data> conventional support"``
  (Labels). The word *conventional* lets the DL widget's ``"<data> DL modulus"`` ... sit beside them.

Their ``scale`` is the real-space voxel size ``metadata["bcdi"]["voxel_size_nm"]`` of the data layer
(units nm) when known. Each layer's ``metadata["bcdi"]`` carries ``kind`` (modulus / phase / support),
``obj`` (the complex object, for the Results widget), ``support``, ``llk``, ``llk_free``, ``method``,
``recipe``, ``runs``, ``seed``, ``first_mode_weight``, ``data_layer`` and ``reconstruction``. Running again
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
from ._worker import Job, run_job
from .dl_phase import display_phase

log = logging.getLogger(__name__)

NO_MASK = "(no mask)"
SUFFIX = " conventional"
RESULT_KINDS = ("modulus", "phase", "support")


def _notify(kind: str, message: str) -> None:
    from napari.utils.notifications import show_error, show_info

    (show_error if kind == "error" else show_info)(message)


def phase_job(intensity: np.ndarray, mask: np.ndarray | None, recipe: str, runs: int, seed: int, *,
              progress=None, cancel=None):
    """Worker job of *Start*: ``core.phasing.phase`` (imported lazily)."""
    from ..core.phasing import phase

    return phase(intensity, mask, recipe=recipe, runs=runs, seed=seed, progress=progress, cancel=cancel)


class PhasingWidget(QWidget):
    """Dock widget *Phasing* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.job: Job | None = None
        self.result: Any = None  # PhasingResult of the last finished run
        self._build()
        layers = self.viewer.layers
        layers.events.inserted.connect(self._on_inserted)
        layers.events.removed.connect(self._refresh_layers)
        layers.events.moved.connect(self._refresh_layers)
        for layer in layers:
            layer.events.name.connect(self._refresh_layers)
        self._refresh_layers()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.data_combo = QComboBox()
        self.data_combo.setToolTip("3D Image layer of the measured intensity (photon counts), peak centred")
        self.data_combo.currentIndexChanged.connect(self._guess_mask)
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
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        form.addRow(row)
        form.addRow(self.progress_bar)
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
        self.start_button.setEnabled(ok and not self._busy())
        return ok

    # --- layers -----------------------------------------------------------------------------------
    @staticmethod
    def _kind(layer) -> str | None:
        return ((layer.metadata or {}).get("bcdi") or {}).get("kind")

    def _is_intensity(self, layer) -> bool:
        from napari.layers import Image

        if not isinstance(layer, Image) or layer.rgb or layer.ndim != 3:
            return False
        return not np.issubdtype(np.dtype(layer.dtype), np.complexfloating) and \
            self._kind(layer) in (None, "intensity")

    def _is_mask(self, layer) -> bool:
        from napari.layers import Labels

        return isinstance(layer, Labels) and layer.ndim == 3 and self._kind(layer) != "support"

    def _on_inserted(self, event) -> None:
        event.value.events.name.connect(self._refresh_layers)
        self._refresh_layers()

    def _refresh_layers(self, *_args) -> None:
        try:
            layers = list(self.viewer.layers)
            for combo, names in ((self.data_combo, [ly.name for ly in layers if self._is_intensity(ly)]),
                                 (self.mask_combo, [NO_MASK] + [ly.name for ly in layers if self._is_mask(ly)])):
                current = combo.currentText()
                combo.blockSignals(True)
                combo.clear()
                combo.addItems(names)
                if current in names:
                    combo.setCurrentText(current)
                combo.blockSignals(False)
            self._guess_mask()
        except RuntimeError:  # the Qt widget is gone (dock closed): stop listening
            layers = self.viewer.layers
            layers.events.inserted.disconnect(self._on_inserted)
            for emitter in (layers.events.removed, layers.events.moved):
                emitter.disconnect(self._refresh_layers)
            for layer in layers:
                layer.events.name.disconnect(self._refresh_layers)

    def _guess_mask(self, *_args) -> None:
        """With no mask chosen, default to the data layer's own ``"<data> gap mask"``."""
        if self.mask_combo.currentText() in ("", NO_MASK):
            guess = self.data_combo.currentText() + " gap mask"
            if self.mask_combo.findText(guess) >= 0:
                self.mask_combo.setCurrentText(guess)

    def _find(self, name: str):
        # iterate: the plugin's viewer proxy returns wrapped layers from ``layers[name]``
        return next((layer for layer in self.viewer.layers if layer.name == name), None)

    def select_layers(self, data, mask=None) -> None:
        """Choose the intensity layer (and the mask layer, or none)."""
        self._refresh_layers()
        self.data_combo.setCurrentText(getattr(data, "name", data))
        self.mask_combo.setCurrentText(NO_MASK if mask is None else getattr(mask, "name", mask))

    def _inputs(self) -> tuple[Any, np.ndarray, np.ndarray | None]:
        name = self.data_combo.currentText()
        layer = self._find(name) if name else None
        if layer is None:
            raise BCDIError("no intensity layer chosen: open a pattern and choose it under Intensity")
        data = np.array(layer.data, dtype=np.float32)  # a copy: the layer is never touched
        mask = None
        mname = self.mask_combo.currentText()
        if mname and mname != NO_MASK:
            mlayer = self._find(mname)
            if mlayer is None:
                raise BCDIError(f"mask layer '{mname}' is gone: choose another or {NO_MASK}")
            mask = (np.asarray(mlayer.data) != 0).astype(np.uint8)
            if mask.shape != data.shape:
                raise BCDIError(f"mask '{mname}' has shape {mask.shape}, the intensity '{name}' {data.shape}: "
                                f"choose the mask of this intensity or {NO_MASK}")
        return layer, data, mask

    # --- jobs -------------------------------------------------------------------------------------
    def _busy(self) -> bool:
        return self.job is not None and self.job.running

    def start(self) -> Job | None:
        """Phase the chosen intensity in a worker (returns the Job, or None if nothing started)."""
        try:
            if self._busy():
                _notify("info", f"Phasing: busy with '{self.job.desc}'; wait or press Cancel")
                return None
            if not self._check_recipe():
                raise BCDIError(f"bad recipe: {self.recipe_error.text()}")
            layer, data, mask = self._inputs()
            recipe, runs, seed = self.recipe_edit.text().strip(), self.runs_spin.value(), self.seed_spin.value()
            self.job = run_job(phase_job, data, mask, recipe, runs, seed, desc="Phasing",
                               on_done=lambda res: self._show(layer.name, dict(layer.metadata or {}), res, recipe))
        except BCDIError as err:
            self.status.setText(f"error: {err}")
            _notify("error", f"Phasing: {err}")
            return None
        except Exception as err:  # a bug must not take napari down
            log.exception("Phasing failed to start")
            self.status.setText(f"error: {type(err).__name__}: {err}")
            _notify("error", f"Phasing failed: {type(err).__name__}: {err}")
            return None
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status.setText(f"{layer.name}: phasing ({runs} run{'s' * (runs > 1)}: {recipe})…")
        self.job.progressed.connect(self._progressed)
        self.job.finished.connect(self._finished)
        return self.job

    def cancel(self) -> None:
        """Ask the running job to stop (no layer is added or changed)."""
        if self._busy():
            self.job.cancel()

    def _progressed(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(int(total), 1))
        self.progress_bar.setValue(int(done))

    def _finished(self) -> None:
        try:
            self.cancel_button.setEnabled(False)
            self._check_recipe()  # re-enables Start when the recipe is valid
            job = self.job
            if job is not None and job.cancelled:
                self.status.setText("cancelled: no layer changed")
            elif job is not None and job.error is not None:
                self.status.setText(f"error: {job.error}")
        except RuntimeError:  # widget closed while the job ran
            pass

    # --- results ----------------------------------------------------------------------------------
    def _put(self, name: str, data: np.ndarray, kind: str, meta: dict, **kw):
        """Add an Image/Labels layer, or replace the data of the existing one of that name."""
        from napari.layers import Labels

        layer = self._find(name)
        meta = {"bcdi": {**meta, "kind": kind}}
        if layer is None:
            if kind == "support":
                return self.viewer.add_labels(data, name=name, metadata=meta, opacity=0.4, **kw)
            return self.viewer.add_image(data, name=name, metadata=meta, **kw)
        if isinstance(layer, Labels) != (kind == "support"):
            raise BCDIError(f"a layer '{name}' of another type exists: rename or delete it")
        layer.data = data
        layer.metadata = meta
        for key, value in kw.items():
            setattr(layer, key, value)
        return layer

    def _show(self, data_name: str, data_meta: dict, result, recipe: str) -> None:
        """Put the best run in the ``"<data> conventional ..."`` layers (main thread)."""
        self.result = result
        rec = result.best
        vs = (data_meta.get("bcdi") or {}).get("voxel_size_nm")
        geo = {"scale": tuple(float(v) for v in vs), "units": "nm"} if vs is not None and len(vs) == 3 else {}
        obj, support = rec.obj, np.asarray(rec.support, dtype=np.uint8)
        meta = {"obj": obj, "support": support, "llk": rec.llk, "llk_free": rec.llk_free, "method": rec.method,
                "recipe": rec.meta.get("recipe", recipe), "runs": len(result.runs), "seed": rec.meta.get("seed"),
                "first_mode_weight": result.first_mode_weight, "voxel_size_nm": list(geo.get("scale", ())) or None,
                "data_layer": data_name, "reconstruction": rec}
        prefix = data_name + SUFFIX
        mod = np.abs(obj).astype(np.float32)
        self._put(f"{prefix} modulus", mod, "modulus", meta, colormap="gray",
                  contrast_limits=(0.0, float(mod.max()) or 1.0), **geo)
        self._put(f"{prefix} phase", display_phase(obj, support), "phase", meta, colormap="twilight",
                  contrast_limits=(-np.pi, np.pi), **geo)
        self._put(f"{prefix} support", support, "support", meta, **geo)
        self.status.setText(self.summary(result))

    @staticmethod
    def summary(result) -> str:
        """One line: LLK, free LLK, first-mode weight and runs of a PhasingResult."""
        rec = result.best

        def fmt(v):
            return "n/a" if v is None else f"{v:.4g}"

        n = len(result.runs)
        return (f"LLK {fmt(rec.llk)}, free LLK {fmt(rec.llk_free)}, first mode {result.first_mode_weight:.1%} "
                f"(best of {n} run{'s' * (n > 1)}: #{result.best_index + 1})")
