"""The **Prepare** dock widget: crop, bin, detector corrections, and parasitic-signal ("alien") masking.

Choose the intensity layer and its mask (``IntensityPicker``), then:

Crop & bin (``core.prepare``)
    *Crop* Z Y X (0 = the largest FFT-friendly size around the peak), the peak (maximum or centre of mass),
    *Bin* factors, *Hot pixels*, *Detector* gaps (pyFAI's library or the presets, through the ROI offset of
    the layer's geometry). *Preview* draws the crop box on the data (Labels ``"<data> crop preview"``, its
    outline) and says the shapes before and after binning — nothing is computed on the data yet. *Apply*
    runs the chain in the worker and adds ``"<data> prepared"`` (Image, counts) and ``"<data> prepared gap
    mask"`` (Labels), laid out as the reader lays out a file; their ``metadata["bcdi"]`` carries the new
    geometry and the provenance.

Aliens (``core.aliens``)
    *Find aliens* clusters the bright voxels of the chosen intensity (DBSCAN) in the worker and shows every
    scored cluster as one label of the Labels layer ``"<data> alien clusters"`` and as one row of the table
    (label, size, asymmetry, prominence, Friedel contrast, max counts); the proposed clusters come ticked.
    *Contrast ≥* is the Friedel-contrast threshold of a proposed cluster (decades, default
    ``core.aliens.DEFAULTS``; 0: the test off). Tick or untick
    rows (clicking a row selects its label in the layer), then *Accept ticked*: the Labels layer
    ``"<data> alien mask"`` becomes the chosen mask plus the ticked clusters (each with its rim). Choose it as
    the gap mask of the phasing widgets.

Input layers are never modified: every result is a new layer, or a new array put in one of the layers above.
Work runs in the shared worker (``_worker.run_job``) with progress and *Cancel*; errors become notifications.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BCDIError
from ._layers import (
    HasJobSlot,
    IntensityPicker,
    JobSlot,
    LayerFollower,
    bcdi_meta,
    data_grid,
    derived_bcdi,
    find_layer,
    guarded,
    notify_info,
    put_layer,
)
from ._worker import Job

log = logging.getLogger(__name__)

NO_DETECTOR = "(none)"
COLUMNS = ("alien", "label", "size", "asymmetry", "prominence", "contrast", "max counts")
_guarded = guarded("Prepare")


# ------------------------------------------------------------------------------------- worker jobs
def _loaded(data: np.ndarray, mask: np.ndarray | None, bcdi: dict):
    from ..core.types import Geometry, LoadedData

    geometry = bcdi.get("geometry")
    geometry = copy.deepcopy(geometry) if isinstance(geometry, Geometry) else Geometry()
    return LoadedData(data=data, mask=mask, geometry=geometry, source=bcdi.get("source"), meta={})


def preview_job(data: np.ndarray, mask: np.ndarray | None, size, centre: str, bin_factors, *,
                progress=None, cancel=None) -> dict:
    """Crop window and shapes of *Preview* (nothing is computed on the data but the peak)."""
    from ..core.prepare import crop_window, find_peak
    from ..core.progress import report

    report(progress, cancel, 0, 1)
    peak = find_peak(data, mask, centre)
    offset, out = crop_window(data.shape, peak, size)
    for ax, (n, b) in enumerate(zip(out, bin_factors)):
        if n % b:
            raise BCDIError(f"bin factor {b} does not divide the crop size {n} of axis {ax}: change the crop or "
                            "the bin")
    box = np.zeros(data.shape, np.uint8)
    sl = tuple(slice(o, o + s) for o, s in zip(offset, out))
    box[sl] = 1
    inner = tuple(slice(o + 1, o + s - 1) for o, s in zip(offset, out))
    box[inner] = 0  # the outline of the box: the data stay visible inside
    report(progress, cancel, 1, 1)
    return {"peak": peak, "offset": offset, "shape": out, "binned": tuple(n // b for n, b in zip(out, bin_factors)),
            "box": box}


def apply_job(data: np.ndarray, mask: np.ndarray | None, bcdi: dict, params: dict, name: str, *,
              progress=None, cancel=None) -> dict:
    """*Apply*: ``core.prepare.prepare`` on private copies; returns the layer tuples of the result."""
    from .. import _reader
    from ..core.prepare import prepare

    out = prepare(_loaded(data, mask, bcdi), progress=progress, cancel=cancel, **params)
    if out.mask is None:
        out.mask = np.zeros(out.data.shape, np.uint8)
    source = bcdi.get("source") or name
    layers = _reader._intensity_layers(out, name, source)
    for _data, kw, _kind in layers:
        kw["metadata"]["bcdi"]["provenance"] = out.meta.get("provenance", [])
        kw["metadata"]["bcdi"]["source"] = bcdi.get("source")
    return {"layers": layers, "provenance": out.meta.get("provenance", []), "shape": out.data.shape}


def aliens_job(data: np.ndarray, mask: np.ndarray | None, *, contrast_threshold: float | None = None,
               progress=None, cancel=None):
    """*Find aliens*: ``core.aliens.find_aliens`` with its defaults, the Friedel-contrast threshold given."""
    from ..core.aliens import DEFAULTS, find_aliens

    thr = DEFAULTS["contrast_threshold"] if contrast_threshold is None else float(contrast_threshold)
    return find_aliens(data, mask, contrast_threshold=thr, progress=progress, cancel=cancel)


# ------------------------------------------------------------------------------------------- widget
class PrepareWidget(HasJobSlot, QWidget):
    """Dock widget *Prepare* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.result: Any = None  # AlienResult of the last search
        self._alien_inputs: tuple | None = None  # (layer, data, mask) the search ran on
        self._build()
        self.jobs = JobSlot("Prepare", [self.preview_button, self.apply_button, self.find_button,
                                        self.accept_button], self.cancel_button, progress_bar=self.progress_bar)
        self.picker = IntensityPicker(self.viewer, self.data_combo, self.mask_combo)
        self._follower = LayerFollower(self.viewer, self, self._refresh_layers)
        self._refresh_layers()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        from ..core.aliens import DEFAULTS as ALIEN_DEFAULTS
        from ..core.masks import PRESETS, PYFAI_NAMES

        self.data_combo = QComboBox()
        self.data_combo.setToolTip("3D Image layer of the measured intensity (photon counts)")
        self.mask_combo = QComboBox()
        self.mask_combo.setToolTip("Labels layer of the mask (1 = invalid), or no mask")
        self.crop_spins = [self._spin(0, 100_000, f"crop size along {a} (0: largest FFT-friendly size)")
                           for a in ("Z", "Y", "X")]
        self.no_crop = QCheckBox("no crop")
        self.centre_combo = QComboBox()
        self.centre_combo.addItems(["max", "com"])
        self.centre_combo.setToolTip("the peak the crop centres: maximum or centre of mass")
        self.bin_spins = [self._spin(1, 64, f"bin factor along {a}") for a in ("Z", "Y", "X")]
        for s in self.bin_spins:
            s.setValue(1)
        self.hot_check = QCheckBox("mask hot pixels")
        self.dead_check = QCheckBox("mask dead pixels")
        self.dead_check.setChecked(True)
        self.detector_combo = QComboBox()
        self.detector_combo.addItems([NO_DETECTOR] + sorted(set(PRESETS) | {"timepix"} | set(PYFAI_NAMES) - {
            "mpx", "mpx4", "mpx4inr", "mpxgaas", "eiger2 1m", "eiger2 4m"}))
        self.detector_combo.setToolTip("module gaps: pyFAI's detector library where it knows them, else presets")
        self.preview_button = QPushButton("Preview")
        self.preview_button.clicked.connect(lambda: self.preview())
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(lambda: self.apply())
        self.contrast_spin = QDoubleSpinBox()
        self.contrast_spin.setRange(0.0, 10.0)
        self.contrast_spin.setDecimals(2)
        self.contrast_spin.setSingleStep(0.1)
        self.contrast_spin.setSuffix(" decades")
        self.contrast_spin.setValue(float(ALIEN_DEFAULTS["contrast_threshold"]))
        self.contrast_spin.setToolTip(
            "Friedel contrast of a proposed cluster: its core's log Friedel ratio "
            "log10(1+I(q)) - log10(1+I(-q)) above that of its surroundings, decades "
            f"(default {ALIEN_DEFAULTS['contrast_threshold']}; 0: the test off). "
            "Lower it to propose faint aliens on crystal signal, raise it against crystal satellites")
        self.find_button = QPushButton("Find aliens")
        self.find_button.clicked.connect(lambda: self.find_aliens())
        self.accept_button = QPushButton("Accept ticked")
        self.accept_button.clicked.connect(lambda: self.accept())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.status = QLabel("choose the intensity layer")
        self.status.setWordWrap(True)

        inputs = QGroupBox("Data")
        f0 = QFormLayout(inputs)
        f0.addRow("Intensity", self.data_combo)
        f0.addRow("Mask", self.mask_combo)
        prep = QGroupBox("Crop, bin, detector")
        f1 = QFormLayout(prep)
        f1.addRow("Crop Z Y X", self._row(*self.crop_spins, self.no_crop))
        f1.addRow("Peak", self.centre_combo)
        f1.addRow("Bin Z Y X", self._row(*self.bin_spins))
        f1.addRow("", self._row(self.hot_check, self.dead_check))
        f1.addRow("Detector", self.detector_combo)
        f1.addRow(self._row(self.preview_button, self.apply_button))
        aliens = QGroupBox("Aliens (parasitic scattering)")
        f2 = QVBoxLayout(aliens)
        params = QFormLayout()
        params.addRow("Contrast ≥", self.contrast_spin)
        f2.addLayout(params)
        f2.addWidget(self.find_button)
        f2.addWidget(self.table)
        f2.addWidget(self.accept_button)
        layout = QVBoxLayout(self)
        for w in (inputs, prep, aliens):
            layout.addWidget(w)
        layout.addWidget(self._row(self.progress_bar, self.cancel_button))
        layout.addWidget(self.status)
        layout.addStretch(1)

    @staticmethod
    def _spin(lo: int, hi: int, tip: str) -> QSpinBox:
        s = QSpinBox()
        s.setRange(lo, hi)
        s.setToolTip(tip)
        return s

    @staticmethod
    def _row(*widgets) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 0, 0, 0)
        for x in widgets:
            row.addWidget(x)
        return w

    # --- layers -----------------------------------------------------------------------------------
    def _refresh_layers(self) -> None:
        self.picker.refresh()

    def select_layers(self, data, mask=None) -> None:
        """Choose the intensity layer (and the mask layer, or none)."""
        self.picker.select(data, mask)

    def _params(self) -> dict:
        sizes = [s.value() for s in self.crop_spins]
        if any(sizes) and not all(sizes):
            raise BCDIError("crop: give all three sizes (Z Y X) or none (0 0 0: the largest FFT-friendly size)")
        det = self.detector_combo.currentText()
        return {"crop_size": tuple(sizes) if all(sizes) else None, "auto_crop": not self.no_crop.isChecked(),
                "centre": self.centre_combo.currentText(), "bin_factors": tuple(s.value() for s in self.bin_spins),
                "hot_pixels": self.hot_check.isChecked(), "dead_pixels": self.dead_check.isChecked(),
                "detector": None if det == NO_DETECTOR else det}

    # --- crop / bin -------------------------------------------------------------------------------
    @_guarded
    def preview(self) -> Job | None:
        """Draw the crop box on the data and report the shapes (a worker job)."""
        layer, data, mask = self.picker.inputs()
        p = self._params()
        if not p["auto_crop"]:
            raise BCDIError("preview: 'no crop' is ticked, there is no crop to preview")

        def done(res: dict) -> None:
            put_layer(self.viewer, layer.name + " crop preview", res["box"], labels=True, opacity=0.5,
                      metadata={"bcdi": derived_bcdi(layer, kind="crop_preview")}, **data_grid(layer))
            self.status.setText(f"{layer.name}: peak {tuple(res['peak'])}; crop {tuple(res['shape'])} at offset "
                                f"{tuple(res['offset'])}; after binning {tuple(res['binned'])}")

        return self.jobs.start(preview_job, data, mask, p["crop_size"], p["centre"], p["bin_factors"],
                               desc="Prepare: preview", on_done=done)

    @_guarded
    def apply(self) -> Job | None:
        """Run the preparation chain on copies of the chosen layers; add the prepared layers."""
        layer, data, mask = self.picker.inputs()
        params = self._params()
        name = layer.name + " prepared"
        bcdi = dict(bcdi_meta(layer))

        def done(res: dict) -> None:
            for arr, kw, kind in res["layers"]:
                kw = dict(kw)
                lname = kw.pop("name")
                put_layer(self.viewer, lname, arr, labels=(kind == "labels"), **kw)
            steps = ", ".join(r["step"] for r in res["provenance"])
            self.status.setText(f"{name}: shape {tuple(res['shape'])} ({steps})")
            notify_info(f"Prepare: '{name}' ready, shape {tuple(res['shape'])}")

        return self.jobs.start(apply_job, data, mask, bcdi, params, name, desc="Prepare", on_done=done)

    # --- aliens -----------------------------------------------------------------------------------
    @_guarded
    def find_aliens(self) -> Job | None:
        """Cluster the bright voxels of the chosen intensity; fill the clusters layer and the table."""
        layer, data, mask = self.picker.inputs()

        def done(res) -> None:
            self.result = res
            self._alien_inputs = (layer, data, mask)
            put_layer(self.viewer, layer.name + " alien clusters", res.labels, labels=True, opacity=0.7,
                      metadata={"bcdi": derived_bcdi(layer, kind="alien_clusters")}, **data_grid(layer))
            self._fill_table(res)
            self.status.setText(f"{layer.name}: {len(res.clusters)} clusters, {len(res.proposed)} proposed as "
                                "aliens (ticked); tick or untick, then Accept ticked")

        return self.jobs.start(aliens_job, data, mask, contrast_threshold=self.contrast_spin.value(),
                               desc="Prepare: aliens", on_done=done)

    def _fill_table(self, res) -> None:
        self.table.setRowCount(0)
        order = sorted(res.clusters, key=lambda c: (not c.proposed, -np.nan_to_num(c.asymmetry) * c.prominence))
        self.table.setRowCount(len(order))
        for row, c in enumerate(order):
            tick = QTableWidgetItem()
            tick.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            tick.setCheckState(Qt.CheckState.Checked if c.proposed else Qt.CheckState.Unchecked)
            tick.setToolTip(c.describe())
            self.table.setItem(row, 0, tick)
            for col, value in enumerate((c.label, c.size, f"{c.asymmetry:.2f}", f"{c.prominence:.2f}",
                                         f"{c.contrast:.2f}", f"{c.max_intensity:.4g}"), start=1):
                item = QTableWidgetItem(str(value))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()

    def _row_selected(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        clusters = find_layer(self.viewer, self._clusters_name())
        if len(rows) == 1 and clusters is not None:
            clusters.selected_label = int(self.table.item(rows.pop(), 1).text())

    def _clusters_name(self) -> str:
        return "" if self._alien_inputs is None else self._alien_inputs[0].name + " alien clusters"

    def ticked(self) -> list[int]:
        """Labels of the ticked clusters."""
        return [int(self.table.item(r, 1).text()) for r in range(self.table.rowCount())
                if self.table.item(r, 0).checkState() == Qt.CheckState.Checked]

    def set_ticked(self, labels) -> None:
        """Tick exactly the clusters ``labels`` (the user's clicks, for scripts and tests)."""
        want = {int(k) for k in labels}
        for r in range(self.table.rowCount()):
            on = int(self.table.item(r, 1).text()) in want
            self.table.item(r, 0).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    @_guarded
    def accept(self):
        """``"<data> alien mask"`` = the mask the search ran with + the ticked clusters (with their rim)."""
        from ..core.aliens import clusters_mask

        if self.result is None or self._alien_inputs is None:
            raise BCDIError("no alien search yet: press Find aliens first")
        layer, data, mask = self._alien_inputs
        if not any(ly is layer for ly in self.viewer.layers):
            raise BCDIError(f"layer '{layer.name}' was removed since the search; search again")
        chosen = self.ticked()
        alien = clusters_mask(self.result, chosen, intensity=data, mask=mask)
        out = alien if mask is None else ((mask != 0) | (alien != 0)).astype(np.uint8)
        name = layer.name + " alien mask"
        put_layer(self.viewer, name, out, labels=True, opacity=0.6,
                  metadata={"bcdi": derived_bcdi(layer, kind="mask", aliens=chosen)}, **data_grid(layer))
        self.status.setText(f"{name}: {len(chosen)} clusters accepted, {int(alien.sum())} alien voxels "
                            f"(+ {0 if mask is None else int(np.count_nonzero(mask))} of the mask)")
        return out
