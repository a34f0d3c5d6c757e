"""The **Defects** dock widget: is there a dislocation, which kind, and where is its line?

*Classify* runs the shipped defect classifier (``models.defects.classify_job``) on the chosen intensity
layer in the model process (``_worker_process``: TensorFlow never runs in the napari process, as for the
DL phase dock) and shows the probabilities of ``none``, ``edge``, ``screw`` and ``mixed`` (one mixed line or
two lines) as bars, with the most likely class. The pattern is centred on its peak and cropped/padded to
the model's 64³ grid as ``bcdi-dl classify`` does; the chosen gap mask is zero in the network input.
*G along* (unknown / z / y / x, default unknown): the array axis along which the Bragg vector G lies, when
it is known; the pattern is then turned so that it is axis 0 and the G-aware model ``defects_gz`` is used,
which tells edge from screw (the G-random model only detects dislocations; docs/defects.md).

*Mark dislocation lines* looks for phase vortices (``core.vortices.find_vortex_lines``: non-zero winding of
the phase around voxel plaquettes inside the support, grouped into lines) in the chosen reconstruction
(any layer showing one: a dock's ``"<name> phase"``/``"modulus"``, a complex image, a reader-style
modulus + phase pair) and puts them as a Points layer ``"<name> dislocation lines"`` on the phase (same
scale and translate), one point per pierced plaquette, coloured by line; the status line gives the number
of lines and their lengths. It runs in a worker thread (numpy only).

Input layers are never modified; errors become napari notifications; both jobs can be cancelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BCDIError
from ..core.types import ReconstructionResult
from ..models.defects import G_AXES, LABELS, check_pattern, classify_job, model_for  # Keras: lazily
from ._layers import (
    PART_SUFFIXES,
    HasJobSlot,
    IntensityPicker,
    JobSlot,
    LayerFollower,
    bcdi_meta,
    data_grid,
    find_layer,
    guarded,
    layer_kind,
    result_of,
    set_combo_items,
)
from ._worker import Job
from ._worker_process import in_model_process

LINE_COLOURS = ("red", "orange", "yellow", "cyan", "magenta", "lime")

__all__ = ["DefectsWidget", "reconstruction_layers"]


def reconstruction_layers(viewer) -> dict[str, Any]:
    """``{base name: layer}`` of the reconstructions shown in ``viewer`` (the layer ``result_of`` reads)."""
    out: dict[str, Any] = {}
    for layer in viewer.layers:
        data = getattr(layer, "data", None)
        if getattr(data, "ndim", 0) != 3:
            continue
        name = layer.name
        base = next((name[: -len(s)] for s in PART_SUFFIXES if name.endswith(s)), name)
        if base in out:
            continue
        if isinstance(bcdi_meta(layer).get("result"), ReconstructionResult) and layer_kind(layer) in (
                "modulus", "phase", "support") or np.iscomplexobj(data) or name.endswith(" modulus") and find_layer(viewer, base + " phase") is not None:
            out[base] = layer
    return out


class DefectsWidget(HasJobSlot, QWidget):
    """Dock widget *Defects* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.result: dict | None = None  # the last classification
        self.lines: list = []  # the last VortexLines
        self._build()
        self.jobs = JobSlot("Defects", [self.classify_button, self.lines_button], self.cancel_button)
        self.picker = IntensityPicker(self.viewer, self.data_combo, self.mask_combo)
        self._follower = LayerFollower(self.viewer, self, self._refresh_layers)
        self._refresh_layers()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.data_combo = QComboBox()
        self.data_combo.setToolTip("3D Image layer of the measured intensity (photon counts)")
        self.mask_combo = QComboBox()
        self.mask_combo.setToolTip("Labels layer of the gap mask (1 = gap): zero in the network input")
        self.g_combo = QComboBox()
        self.g_combo.addItems(["unknown", *G_AXES])
        self.g_combo.setToolTip("the array axis along which the Bragg vector G lies, if known (simulations, "
                                "data turned so that G is along an axis): then the G-aware model, which "
                                "tells edge from screw; unknown: detection only")
        self.classify_button = QPushButton("Classify")
        self.classify_button.setToolTip("probabilities of no / edge / screw / mixed dislocations (3D CNN)")
        self.classify_button.clicked.connect(lambda: self.classify())
        self.bars: dict[str, QProgressBar] = {}
        for k in LABELS:
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(0)
            bar.setFormat("–")
            self.bars[k] = bar
        self.recon_combo = QComboBox()
        self.recon_combo.setToolTip("a reconstruction (its phase layer, or any layer of it)")
        self.lines_button = QPushButton("Mark dislocation lines")
        self.lines_button.setToolTip("phase vortices of the reconstruction, as a Points layer on its phase")
        self.lines_button.clicked.connect(lambda: self.mark_lines())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("choose the intensity layer, then Classify")
        self.status.setWordWrap(True)

        box = QGroupBox("Dislocations from the diffraction pattern (3D CNN)")
        form = QFormLayout(box)
        form.addRow("Intensity", self.data_combo)
        form.addRow("Gap mask", self.mask_combo)
        form.addRow("G along", self.g_combo)
        form.addRow(self.classify_button)
        for k in LABELS:
            form.addRow(k, self.bars[k])
        rbox = QGroupBox("Dislocation lines in a reconstruction (phase vortices)")
        rform = QFormLayout(rbox)
        rform.addRow("Reconstruction", self.recon_combo)
        row = QHBoxLayout()
        row.addWidget(self.lines_button)
        row.addWidget(self.cancel_button)
        rform.addRow(row)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addWidget(rbox)
        layout.addWidget(self.status)
        layout.addStretch(1)

    # --- layers -----------------------------------------------------------------------------------
    def _refresh_layers(self) -> None:
        self.picker.refresh()
        set_combo_items(self.recon_combo, list(reconstruction_layers(self.viewer)))
        self.lines_button.setEnabled(self.recon_combo.count() > 0 and not self.jobs.busy)

    def select_layers(self, data, mask=None) -> None:
        """Choose the intensity layer (and the mask layer, or none)."""
        self.picker.select(data, mask)

    def select_reconstruction(self, name: str) -> None:
        """Choose a reconstruction by its base name or by any of its layers' names."""
        self._refresh_layers()
        base = next((name[: -len(s)] for s in PART_SUFFIXES if name.endswith(s)), name)
        self.recon_combo.setCurrentText(base)

    # --- classification -------------------------------------------------------------------------
    @guarded("Defects")
    def classify(self) -> Job | None:
        """Classify the chosen intensity (returns the Job)."""
        layer, data, mask = self.picker.inputs()
        check_pattern(data, "Defects")  # a one-line refusal before the model process is asked
        g_axis = self.g_axis()
        self.status.setText(f"{layer.name}: classifying ({model_for(g_axis)})…")
        return self.jobs.start(in_model_process, classify_job, data, mask, g_axis=g_axis,
                               desc="Defects: classify", on_done=lambda res: self._classified(layer, res))

    def g_axis(self) -> str | None:
        """The chosen G axis (None: unknown)."""
        text = self.g_combo.currentText()
        return text if text in G_AXES else None

    def _classified(self, layer, res: dict) -> None:
        self.result = res
        probs = res["probabilities"]
        for k in LABELS:
            p = float(probs[k])
            self.bars[k].setValue(round(1000 * p))
            self.bars[k].setFormat(f"{p:.3f}")
        shape = "×".join(map(str, res["shape"]))
        g = res["model_grid"]
        how = "" if res["shape"] == [g] * 3 else f", centred and cropped/padded {shape} → {g}³"
        g = res.get("g_axis")
        which = (f"G along {g}, model {res.get('model')}" if g else
                 f"G unknown, model {res.get('model')}: edge vs screw not told apart")
        self.status.setText(f"{layer.name}: most likely {res['label']} (p = {probs[res['label']]:.2f}; "
                            f"{which}; {res['seconds']:.2f} s{how})")

    # --- vortex lines -----------------------------------------------------------------------------
    @guarded("Defects")
    def mark_lines(self) -> Job | None:
        """Find the phase vortices of the chosen reconstruction and mark them (returns the Job)."""
        base = self.recon_combo.currentText()
        layer = reconstruction_layers(self.viewer).get(base)
        if layer is None:
            raise BCDIError("no reconstruction chosen: phase a pattern (or open a result) and choose it")
        res = result_of(layer, self.viewer)
        if res is None:
            raise BCDIError(f"'{layer.name}' no longer shows a reconstruction: choose another")
        obj = np.array(res.reconstruction.obj, np.complex64)  # copies: the worker never sees layer data
        sup = res.reconstruction.support
        support = None if sup is None or not np.any(sup) or np.all(sup) else (np.asarray(sup) != 0).astype(np.uint8)
        phase_layer = find_layer(self.viewer, base + " phase") or layer
        grid = data_grid(phase_layer)
        self.status.setText(f"{base}: looking for phase vortices…")
        from ..core.vortices import find_vortex_lines

        return self.jobs.start(find_vortex_lines, obj, support, desc="Defects: vortex lines",
                               on_done=lambda lines: self._marked(base, lines, grid))

    def _marked(self, base: str, lines: list, grid: dict) -> None:
        self.lines = lines
        name = f"{base} dislocation lines"
        pts = np.concatenate([ln.points for ln in lines]) if lines else np.zeros((0, 3))
        colours = [LINE_COLOURS[i % len(LINE_COLOURS)] for i, ln in enumerate(lines) for _ in ln.points]
        props = {"line": np.concatenate([np.full(len(ln.points), i) for i, ln in enumerate(lines)])
                 if lines else np.zeros(0, int)}
        old = find_layer(self.viewer, name)
        if old is not None:
            self.viewer.layers.remove(old)
        kw = {k: v for k, v in grid.items() if k in ("scale", "translate", "units")}
        self.viewer.add_points(pts, name=name, size=1.5, face_color=colours or "red", features=props,
                               metadata={"bcdi": {"kind": "dislocation_lines", "reconstruction": base,
                                                  "segments": [[ln.start.tolist(), ln.end.tolist()]
                                                               for ln in lines]}},
                               **kw)
        if not lines:
            self.status.setText(f"{base}: no phase vortex inside the support (no dislocation line found)")
        else:
            lens = ", ".join(f"{ln.length:.0f}" for ln in lines[:6])
            self.status.setText(f"{base}: {len(lines)} dislocation line{'s' if len(lines) > 1 else ''} "
                                f"({len(pts)} vortices; segment lengths {lens} voxels)")
