"""The **Inpainting** dock widget: fill the detector gaps of a data layer.

Choose the *Data* layer (raw counts) and its *Gap mask* (a Labels layer, 1 = gap), the *Method* (``dl``:
the shipped U-Net, or the ``linear | cubic | nearest | idw`` baselines) and, for ``dl``, the window
*Step* along the gap. *Run* computes in a worker (``models.inpaint.inpaint``) with a progress bar
(windows done / total) and *Cancel*; the result is a **new** layer ``"<data> inpainted"`` (replaced when
run again), with the data layer's scale, translate, units and contrast, and a copy of its
``metadata["bcdi"]`` (voxel size, geometry...: kind ``intensity``, plus ``inpainted`` = the method and
``inpaint_mask`` = the mask layer's name) — the input layers are never modified. When a
*Truth* layer is chosen (e.g. the gap-free pattern of a simulation), the Pearson correlation of
log(1 + I) inside the gap is shown.

*Fine-tune* trains a private copy of the model on the data's own crops with artificial gaps
(``models.finetune``, *Steps*); later runs use it until *Reset model*.

``dl`` runs and fine-tuning go to the model process (``_worker_process``: TensorFlow never runs in the
napari process); the fine-tuned model stays there and the widget holds a handle on it
(``_model_jobs.ChildModel``): if that process died and was replaced, the next ``dl`` run says so and asks
to fine-tune again or reset. The baselines run in a worker thread.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BCDIError
from ._layers import (
    HasJobSlot,
    JobSlot,
    LayerFollower,
    data_grid,
    derived_bcdi,
    find_layer,
    is_volume_image,
    is_volume_labels,
    layer_name,
    notify_error,
    prefer_gap_mask,
    put_layer,
    set_combo_items,
)
from ._model_jobs import ChildModel, finetune_job, inpaint_job
from ._worker import Job
from ._worker_process import in_model_process

log = logging.getLogger(__name__)

METHODS = ("dl", "linear", "cubic", "nearest", "idw")
NO_TRUTH = "(none)"
SUFFIX = " inpainted"


class InpaintingWidget(HasJobSlot, QWidget):
    """Dock widget *Inpainting* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        #: the fine-tuned model (a handle: the Keras model lives in the model process), or None for the shipped one
        self.model: ChildModel | None = None
        self.last_pcc: float | None = None
        self._build()
        self.jobs = JobSlot("Inpainting", [self.run_button, self.finetune_button, self.reset_button],
                            self.cancel_button, progress_bar=self.progress_bar,
                            on_finished=lambda: self._method_changed(self.method_combo.currentText()))
        self._follower = LayerFollower(self.viewer, self, self._refresh_layers)
        self._refresh_layers()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.data_combo = QComboBox()
        self.data_combo.setToolTip("3D Image layer of raw counts")
        self.data_combo.currentIndexChanged.connect(self._pick_mask_for_data)
        self.mask_combo = QComboBox()
        self.mask_combo.setToolTip("Labels layer of the gap mask (1 = gap)")
        self.truth_combo = QComboBox()
        self.truth_combo.setToolTip("optional gap-free pattern: the PCC of log(1+I) in the gap is shown")
        self.method_combo = QComboBox()
        self.method_combo.addItems(METHODS)
        self.method_combo.currentTextChanged.connect(self._method_changed)
        self.step_spin = QSpinBox()
        self.step_spin.setRange(1, 32)
        self.step_spin.setValue(4)
        self.step_spin.setToolTip("dl: stride of the 32³ windows along the gap (1 = every voxel, slowest)")
        self.ft_steps = QSpinBox()
        self.ft_steps.setRange(1, 5000)
        self.ft_steps.setValue(200)
        self.ft_steps.setToolTip("fine-tuning steps (about 1 s per crop per step on 2 CPU cores, 4 crops)")
        self.finetune_button = QPushButton("Fine-tune")
        self.finetune_button.setToolTip("train a copy of the model on this pattern's crops with artificial gaps")
        self.finetune_button.clicked.connect(lambda: self.finetune())
        self.reset_button = QPushButton("Reset model")
        self.reset_button.clicked.connect(self.reset_model)
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("%v / %m")
        self.progress_bar.setValue(0)
        self.status = QLabel("model: shipped")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Data", self.data_combo)
        form.addRow("Gap mask", self.mask_combo)
        form.addRow("Method", self.method_combo)
        form.addRow("Step", self.step_spin)
        ft_row = QHBoxLayout()
        ft_row.addWidget(self.ft_steps)
        ft_row.addWidget(self.finetune_button)
        ft_row.addWidget(self.reset_button)
        form.addRow("Fine-tune", ft_row)
        form.addRow("Truth", self.truth_combo)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addStretch(1)

    # --- layers -----------------------------------------------------------------------------------
    def _refresh_layers(self) -> None:
        layers = list(self.viewer.layers)
        images = [ly.name for ly in layers if is_volume_image(ly)]
        set_combo_items(self.data_combo, [n for n in images if not n.endswith(SUFFIX)])
        set_combo_items(self.mask_combo, [ly.name for ly in layers if is_volume_labels(ly)])
        set_combo_items(self.truth_combo, [NO_TRUTH] + images)
        self._pick_mask_for_data()

    def _pick_mask_for_data(self, *_args) -> None:
        """Prefer the mask layer named ``"<data> gap mask"`` (the Data & mask widget's)."""
        prefer_gap_mask(self.data_combo, self.mask_combo)

    def _find(self, name: str):
        return find_layer(self.viewer, name)

    def set_layers(self, data, mask, truth=None) -> None:
        """Choose the data, mask and (optionally) truth layers by layer or name."""
        self._refresh_layers()
        self.data_combo.setCurrentText(layer_name(data))
        self.mask_combo.setCurrentText(layer_name(mask))
        self.truth_combo.setCurrentText(NO_TRUTH if truth is None else layer_name(truth))

    def _method_changed(self, method: str) -> None:
        dl = method == "dl"
        self.step_spin.setEnabled(dl)
        self.finetune_button.setEnabled(dl and not self.jobs.busy)

    def _inputs(self) -> tuple[Any, np.ndarray, np.ndarray]:
        data = self._find(self.data_combo.currentText())
        if data is None:
            raise BCDIError("no data layer: open a pattern and choose it under Data")
        mask_layer = self._find(self.mask_combo.currentText())
        if mask_layer is None:
            raise BCDIError("no gap mask layer: build one in the Data & mask widget or open a mask file")
        d = np.asarray(data.data)
        m = np.asarray(mask_layer.data)
        if m.shape != d.shape:
            raise BCDIError(f"gap mask '{mask_layer.name}' has shape {m.shape}, the data '{data.name}' "
                            f"{d.shape}: choose the matching mask")
        # copies: the user may paint or edit while the worker runs
        return data, np.array(d, dtype=np.float32, copy=True), (m != 0).astype(np.uint8)

    # --- jobs -------------------------------------------------------------------------------------

    def run(self) -> Job | None:
        """Inpaint the chosen data layer in a worker; the result becomes ``"<data> inpainted"``."""
        try:
            data_layer, d, m = self._inputs()
            truth = None
            tname = self.truth_combo.currentText()
            if tname and tname != NO_TRUTH:
                tl = self._find(tname)
                if tl is None or tuple(np.shape(tl.data)) != d.shape:
                    raise BCDIError(f"truth layer '{tname}' must have the data's shape {d.shape}")
                truth = np.array(tl.data, dtype=np.float32, copy=True)
        except BCDIError as err:
            notify_error(f"Inpainting: {err}")
            return None
        method = self.method_combo.currentText()
        self.status.setText(f"running {method}…")

        mask_name = self.mask_combo.currentText()

        def done(result: np.ndarray) -> None:
            self._show_result(data_layer, result, m, truth, method, mask_name)

        if method == "dl":  # TensorFlow: in the model process, never in napari's
            return self.jobs.start(in_model_process, inpaint_job, d, m, method=method, step=self.step_spin.value(),
                                   model=self.model, desc=f"inpaint ({method})", on_done=done)
        from ..models.inpaint import inpaint  # the baselines are numpy/scipy: a worker thread

        return self.jobs.start(inpaint, d, m, method=method, step=self.step_spin.value(), model=None,
                               desc=f"inpaint ({method})", on_done=done)

    def _show_result(self, data_layer, result: np.ndarray, mask: np.ndarray, truth, method: str,
                     mask_name: str = "") -> None:
        """Put ``result`` in ``"<data> inpainted"``: the data's grid, contrast and ``metadata["bcdi"]``."""
        name = data_layer.name + SUFFIX
        meta = derived_bcdi(data_layer, kind="intensity", inpainted=method, inpaint_mask=mask_name or None,
                            data_layer=data_layer.name)
        put_layer(self.viewer, name, result, metadata={"bcdi": meta}, **data_grid(data_layer),
                  colormap=getattr(data_layer.colormap, "name", "gray"),
                  gamma=float(getattr(data_layer, "gamma", 1.0)))
        text = f"{name}: {int(mask.sum())} gap voxels filled ({method}"
        text += ", fine-tuned model)" if (self.model is not None and method == "dl") else ")"
        self.last_pcc = None
        if truth is not None:
            from ..core.gaps import gap_pcc

            self.last_pcc = gap_pcc(result, truth, mask)
            text += f"; PCC of log(1+I) in the gap vs truth: {self.last_pcc:.4f}"
        self.status.setText(text)

    def finetune(self) -> Job | None:
        """Fine-tune a copy of the model on the chosen data (worker); later runs use it."""
        try:
            _, d, m = self._inputs()
        except BCDIError as err:
            notify_error(f"Inpainting: {err}")
            return None
        self.status.setText("fine-tuning…")

        def done(res) -> None:
            self.model = res.model
            self.status.setText(f"model: fine-tuned ({res.steps} steps; loss on the pattern's crops "
                                f"{res.loss_before:.4g} → {res.loss_after:.4g})")

        return self.jobs.start(in_model_process, finetune_job, d, m, model=self._base_copy(),
                               steps=self.ft_steps.value(), desc="fine-tune inpainting model", on_done=done)

    def _base_copy(self) -> ChildModel | None:
        """A trainable copy of the model in use (fine-tuning goes on from a fine-tuned model)."""
        if self.model is not None:
            return self.model
        return None  # finetune() then loads a fresh copy of the shipped model

    def reset_model(self) -> None:
        """Forget the fine-tuned model: runs use the shipped one again."""
        self.model = None
        self.status.setText("model: shipped")
