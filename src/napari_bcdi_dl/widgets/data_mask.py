"""The **Data & mask** dock widget: open a scan, choose the data layer, build the gap mask.

Data
    A path field with *File…* / *Folder…* dialogs (a folder is a scan's TIFF/EDF frames); for a BLISS
    master file the *Scan* list offers its scans (``core.io.list_scans``). *Load* reads in a worker
    (``core.io.read``) and adds the layers exactly as the napari reader does (``_reader``): an Image of the
    **raw counts** shown on a log-like scale (``gamma`` 0.2), plus the file's mask if it has one. *Add a log10
    view* adds a derived ``"<data> log10"`` layer, log10(1 + counts), for a true log display (it costs one
    more float32 copy of the scan). When the geometry is complete (energy, distance, pixel size, rocking
    step) the reciprocal step (1/nm, ``core.geometry.reciprocal_voxel_size``) becomes the layers' ``scale``,
    and the real-space voxel size (nm) of objects phased from it goes into ``metadata["bcdi"]
    ["voxel_size_nm"]`` for the phasing and results widgets.
    *Data layer* lists the viewer's 3D Image layers (derived log views excepted).

Gap mask (``core.masks``), always the Labels layer ``"<data> gap mask"`` (1 = gap), painted in 3D
    (``n_edit_dimensions = 3``), with the data layer's ``scale``/``translate``. Every action computes a new
    mask in a worker and replaces the layer's data with it (``layer.data = new``): the preset, the detected
    gaps and an imported mask are **added** (union) to what is there, *Dilate* grows it, *Clear* empties
    it. *Export…* writes ``.npz`` (key ``mask``) or PyNX ``.cxi`` atomically, never over the data file or
    a mask file it was imported from. Input layers are never modified.

Errors (``BCDIError`` or anything else) become napari notifications; the widget never takes napari down.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BCDIError
from ._data_mask_jobs import compute_mask, load_data, write_mask
from ._layers import (
    MASK_SUFFIX,
    HasJobSlot,
    JobSlot,
    LayerFollower,
    bcdi_meta,
    find_layer,
    guarded,
    is_volume_image,
    layer_kind,
    layer_name,
    notify_info,
    put_layer,
    set_combo_items,
)
from ._worker import Job

log = logging.getLogger(__name__)

MASK_EXPORT_FILTER = "Mask files (*.npz *.cxi)"
MASK_IMPORT_FILTER = "Mask files (*.npz *.npy *.cxi *.h5 *.tif *.tiff);;All files (*)"
DATA_FILTER = "BCDI data (*.npy *.npz *.tif *.tiff *.cxi *.h5 *.hdf5 *.nxs *.edf *.edf.gz);;All files (*)"


_guarded = guarded("Data & mask")


# ------------------------------------------------------------------------------------------- widget
class DataMaskWidget(HasJobSlot, QWidget):
    """Dock widget *Data & mask* (see the module docstring)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._mask_sources: dict[str, list[str]] = {}  # mask layer name -> files imported into it
        self._build()
        self.jobs = JobSlot("Data & mask", self._action_buttons, self.cancel_button)
        self._follower = LayerFollower(self.viewer, self, self._refresh_layers)
        self._refresh_layers()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        from ..core.masks import PRESETS

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("scan file or folder of frames")
        self.path_edit.editingFinished.connect(self.refresh_scans)
        self.file_button = QPushButton("File…")
        self.file_button.clicked.connect(self._browse_file)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.clicked.connect(self._browse_folder)
        self.scan_combo = QComboBox()
        self.scan_combo.setEnabled(False)
        self.scan_combo.setToolTip("scans of a BLISS master file")
        self.log_check = QCheckBox("add a log10 view layer")
        self.log_check.setToolTip("log10(1 + counts) as a separate layer; the data layer keeps raw counts")
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(lambda: self.load())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("3D Image layer of raw counts the mask belongs to")
        self.layer_combo.currentIndexChanged.connect(self._on_data_layer_changed)

        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.file_button)
        path_row.addWidget(self.folder_button)
        load_row = QHBoxLayout()
        load_row.addWidget(self.load_button)
        load_row.addWidget(self.cancel_button)
        data_box = QGroupBox("Data")
        form = QFormLayout(data_box)
        form.addRow("Path", path_row)
        form.addRow("Scan", self.scan_combo)
        form.addRow("", self.log_check)
        form.addRow("", load_row)
        form.addRow("Data layer", self.layer_combo)

        self.preset_combo = QComboBox()
        self.preset_combo.addItems(sorted(PRESETS))
        if "maxipix" in PRESETS:
            self.preset_combo.setCurrentText("maxipix")
        self.roi_row = QSpinBox()
        self.roi_col = QSpinBox()
        for spin, what in ((self.roi_row, "row"), (self.roi_col, "column")):
            spin.setRange(0, 100_000)
            spin.setToolTip(f"detector {what} of the data's first {what} (the ROI offset of the scan)")
        self.preset_button = QPushButton("Apply preset")
        self.preset_button.clicked.connect(lambda: self.apply_preset())
        self.detect_button = QPushButton("Auto-detect gaps")
        self.detect_button.setToolTip("detector rows/columns empty in every frame while neighbours count")
        self.detect_button.clicked.connect(lambda: self.detect_gaps())
        self.dilate_spin = QSpinBox()
        self.dilate_spin.setRange(1, 50)
        self.dilate_plane = QCheckBox("detector plane only")
        self.dilate_button = QPushButton("Dilate")
        self.dilate_button.clicked.connect(lambda: self.dilate())
        self.import_button = QPushButton("Import…")
        self.import_button.clicked.connect(self._browse_import)
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._browse_export)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(lambda: self.clear_mask())
        self.status = QLabel("no data layer")
        self.status.setWordWrap(True)

        roi_row = QHBoxLayout()
        roi_row.addWidget(QLabel("row0"))
        roi_row.addWidget(self.roi_row)
        roi_row.addWidget(QLabel("col0"))
        roi_row.addWidget(self.roi_col)
        preset_row = QHBoxLayout()
        preset_row.addWidget(self.preset_combo, 1)
        preset_row.addWidget(self.preset_button)
        dilate_row = QHBoxLayout()
        dilate_row.addWidget(self.dilate_spin)
        dilate_row.addWidget(self.dilate_plane)
        dilate_row.addWidget(self.dilate_button)
        file_row = QHBoxLayout()
        for b in (self.import_button, self.export_button, self.clear_button):
            file_row.addWidget(b)
        mask_box = QGroupBox("Gap mask (1 = gap; paint it in 3D)")
        mform = QFormLayout(mask_box)
        mform.addRow("Detector", preset_row)
        mform.addRow("ROI offset", roi_row)
        mform.addRow("", self.detect_button)
        mform.addRow("Dilate by", dilate_row)
        mform.addRow("", file_row)
        mform.addRow(self.status)

        layout = QVBoxLayout(self)
        layout.addWidget(data_box)
        layout.addWidget(mask_box)
        layout.addStretch(1)
        self._action_buttons = [self.load_button, self.preset_button, self.detect_button, self.dilate_button,
                                self.import_button, self.export_button, self.clear_button]

    # --- layers -----------------------------------------------------------------------------------
    @staticmethod
    def _is_data_layer(layer) -> bool:
        return is_volume_image(layer) and layer_kind(layer) not in ("log_intensity", "phase", "modulus")

    def _refresh_layers(self) -> None:
        current = self.layer_combo.currentText()
        set_combo_items(self.layer_combo, [ly.name for ly in self.viewer.layers if self._is_data_layer(ly)])
        if self.layer_combo.currentText() != current:
            self._on_data_layer_changed()
        elif self.mask_layer is not None and self.mask_layer.n_edit_dimensions != 3:
            self._on_data_layer_changed()  # its mask just arrived (sample data, reader): make it 3D-paintable

    def _find(self, name: str):
        return find_layer(self.viewer, name)

    @property
    def data_layer(self):
        """The chosen data layer (an Image of raw counts), or None."""
        name = self.layer_combo.currentText()
        return self._find(name) if name else None

    def select_data_layer(self, layer_or_name) -> None:
        """Choose the data layer (a layer or its name)."""
        self._refresh_layers()
        self.layer_combo.setCurrentText(layer_name(layer_or_name))

    @property
    def mask_layer(self):
        """The Labels layer ``"<data> gap mask"`` of the chosen data layer, or None."""
        from napari.layers import Labels

        data = self.data_layer
        if data is None:
            return None
        layer = self._find(data.name + MASK_SUFFIX)
        return layer if isinstance(layer, Labels) else None

    def _on_data_layer_changed(self, *_args) -> None:
        data = self.data_layer
        if data is None:
            self.status.setText("no data layer: load a scan or open one in napari")
            return
        geometry = bcdi_meta(data).get("geometry")
        if geometry is not None:
            self._prefill_preset(geometry)
        mask = self.mask_layer
        if mask is not None:
            self._make_editable(mask, data)
            self.status.setText(f"mask layer: {mask.name}")
        else:
            self.status.setText(f"{data.name}: no gap mask yet")

    def _prefill_preset(self, geometry) -> None:
        from ..core.masks import get_preset

        if getattr(geometry, "detector", None):
            try:
                self.preset_combo.setCurrentText(get_preset(geometry.detector).name)
            except BCDIError:
                pass
        roi = getattr(geometry, "roi", None)
        if roi is not None and len(roi) == 4:
            self.roi_row.setValue(int(roi[0]))
            self.roi_col.setValue(int(roi[2]))

    @staticmethod
    def _make_editable(mask_layer, data_layer) -> None:
        mask_layer.n_edit_dimensions = 3
        if tuple(mask_layer.scale) != tuple(data_layer.scale):
            mask_layer.scale = tuple(data_layer.scale)
        if tuple(mask_layer.translate) != tuple(data_layer.translate):
            mask_layer.translate = tuple(data_layer.translate)

    def _require_data(self):
        data = self.data_layer
        if data is None:
            raise BCDIError("no data layer chosen: load a scan, or open one in napari and choose it "
                            "under Data layer")
        return data

    def _current_mask(self, data) -> np.ndarray | None:
        """A uint8 copy of the mask layer (the user may paint while a worker runs), or None."""
        layer = self.mask_layer
        if layer is None:
            return None
        m = np.asarray(layer.data)
        if m.shape != tuple(data.data.shape):
            raise BCDIError(f"mask layer '{layer.name}' has shape {m.shape}, the data "
                            f"{tuple(data.data.shape)}: "
                            "delete or clear the mask layer")
        return (m != 0).astype(np.uint8)

    def _set_mask(self, data, mask: np.ndarray, summary: str, source: str | None = None):
        """Put ``mask`` in ``"<data> gap mask"`` (new layer, or ``layer.data = mask``); main thread."""
        if not any(layer is data for layer in self.viewer.layers):
            raise BCDIError(f"data layer '{data.name}' was removed while the mask was computed; "
                            "nothing changed")
        if mask.shape != tuple(data.data.shape):
            raise BCDIError(f"mask shape {mask.shape} does not match '{data.name}' {tuple(data.data.shape)}")
        name = data.name + MASK_SUFFIX
        existing = self._find(name)
        # a new mask layer gets the data's grid; an existing one keeps its metadata (imports, the reader's)
        meta = None if existing is not None else {
            "bcdi": {"kind": "mask", "data_layer": data.name, "source": bcdi_meta(data).get("source")}}
        grid = {} if existing is not None else {"units": data.units}
        layer = put_layer(self.viewer, name, mask, labels=True, metadata=meta, opacity=0.6,
                          scale=tuple(data.scale), translate=tuple(data.translate), **grid)
        self._make_editable(layer, data)
        if source:
            self._mask_sources.setdefault(name, []).append(source)
        self.status.setText(f"{name}: {summary}")
        return layer


    # --- data -------------------------------------------------------------------------------------
    def set_path(self, path) -> None:
        """Put ``path`` in the path field and list its scans."""
        self.path_edit.setText(str(path))
        self.refresh_scans()

    @_guarded
    def refresh_scans(self) -> list[str]:
        """List the BLISS scans of the file in the path field (empty, disabled list for other formats)."""
        from ..core import io

        self.scan_combo.clear()
        self.scan_combo.setEnabled(False)
        text = self.path_edit.text().strip()
        if not text or not Path(text).exists():
            return []
        scans = io.list_scans(text)
        if scans:
            self.scan_combo.addItems(scans)
            self.scan_combo.setEnabled(True)
        return scans

    @_guarded
    def load(self, path=None, scan: str | None = None, log_view: bool | None = None) -> Job | None:
        """Read ``path`` (default: the path field) in a worker and add its layers; returns the Job."""
        if path is not None and str(path) != self.path_edit.text():
            self.set_path(path)
        text = self.path_edit.text().strip()
        if not text:
            raise BCDIError("no file chosen: type a path or use File… / Folder…")
        if scan is None and self.scan_combo.isEnabled():
            scan = self.scan_combo.currentText() or None
        if log_view is None:
            log_view = self.log_check.isChecked()
        return self.jobs.start(load_data, text, scan, bool(log_view), desc=f"load {Path(text).name}",
                           on_done=self._loaded)

    def _loaded(self, result: dict) -> None:
        from napari.layers import Layer

        added = [self.viewer.add_layer(Layer.create(data, dict(kw), kind))
                 for data, kw, kind in result["layers"]]
        for note in result["notes"]:
            notify_info(note)
        if result["kind"] != "intensity":
            return
        kinds = {id(lay): ((lay.metadata or {}).get("bcdi") or {}).get("kind") for lay in added}
        data_layer = next(lay for lay in added if kinds[id(lay)] == "intensity")
        for lay in added:
            if kinds[id(lay)] == "mask" and lay.name != data_layer.name + MASK_SUFFIX:
                lay.name = data_layer.name + MASK_SUFFIX  # napari may have renamed the data layer "x [1]"
            if kinds[id(lay)] == "log_intensity":
                data_layer.visible = False  # the log view on top; the raw counts stay one click away
        self.select_data_layer(data_layer)
        self._on_data_layer_changed()

    # --- mask actions -------------------------------------------------------------------------------
    def _mask_job(self, action: str, params: dict, desc: str, source: str | None = None) -> Job | None:
        data = self._require_data()
        current = self._current_mask(data)

        def done(res: dict) -> None:
            self._set_mask(data, res["mask"], res["summary"], source)
            if action == "detect" and res["added"] == 0:
                notify_info(f"Data & mask: no detector gap found in '{data.name}' (mask unchanged)")
            elif action != "dilate":
                notify_info(f"Data & mask: {desc}: {res['new_summary']}")

        return self.jobs.start(compute_mask, action, data.data, current, params, desc=desc, on_done=done)

    @_guarded
    def apply_preset(self, name: str | None = None, roi_offset: tuple[int, int] | None = None):
        """Add the gaps of a detector preset, placed through the ROI offset (row0, col0)."""
        name = name or self.preset_combo.currentText()
        if roi_offset is None:
            roi_offset = (self.roi_row.value(), self.roi_col.value())
        else:
            self.roi_row.setValue(int(roi_offset[0]))
            self.roi_col.setValue(int(roi_offset[1]))
        return self._mask_job("preset", {"preset": name, "roi_offset": tuple(int(v) for v in roi_offset)},
                              desc=f"{name} preset")

    @_guarded
    def detect_gaps(self):
        """Add the gap planes detected in the data (``core.masks.detect_gaps``)."""
        return self._mask_job("detect", {}, desc="auto-detect gaps")

    @_guarded
    def dilate(self, n: int | None = None, plane_only: bool | None = None):
        """Grow the mask by ``n`` voxels (in the detector plane only if asked)."""
        n = int(n if n is not None else self.dilate_spin.value())
        plane_only = self.dilate_plane.isChecked() if plane_only is None else bool(plane_only)
        self._require_data()
        layer = self.mask_layer
        if layer is None or not np.any(layer.data):
            raise BCDIError("nothing to dilate: the gap mask is empty; apply a preset, detect or paint "
                            "gaps first")
        params = {"n": n, "axes": (1, 2) if plane_only else None}
        return self._mask_job("dilate", params, desc=f"dilate by {n}")

    @_guarded
    def import_mask(self, path):
        """Add a mask read from a file (npz/npy/tif/cxi, shape-checked against the data)."""
        return self._mask_job("import", {"path": str(path)}, desc=f"import {Path(path).name}",
                              source=str(path))

    @_guarded
    def clear_mask(self) -> None:
        """Empty the gap mask (a new zero array; the data are untouched)."""
        data = self._require_data()
        self._set_mask(data, np.zeros(tuple(data.data.shape), np.uint8), "mask empty")

    @_guarded
    def export_mask(self, path):
        """Write the gap mask to ``.npz`` (key ``mask``) or ``.cxi``, atomically; returns the Job."""
        data = self._require_data()
        layer = self.mask_layer
        if layer is None:
            raise BCDIError(f"'{data.name}' has no gap mask to export: apply a preset, detect or paint "
                            "gaps first")
        mask = self._current_mask(data)
        protect = list(self._mask_sources.get(layer.name, []))
        for lay in (data, layer):
            src = ((lay.metadata or {}).get("bcdi") or {}).get("source")
            if src:
                protect.append(src)
        return self.jobs.start(write_mask, str(path), mask, protect, desc=f"export {Path(path).name}",
                           on_done=lambda out: notify_info(f"Data & mask: mask written to {out}"))

    # --- dialogs (thin: the methods above do the work) ---------------------------------------------
    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a BCDI scan", self._start_dir(), DATA_FILTER)
        if path:
            self.set_path(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of detector frames", self._start_dir())
        if path:
            self.set_path(path)

    def _browse_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a gap mask", self._start_dir(),
                                              MASK_IMPORT_FILTER)
        if path:
            self.import_mask(path)

    def _browse_export(self) -> None:
        data = self.data_layer
        suggestion = str(Path(self._start_dir()) / f"{data.name if data else 'data'}_mask.npz")
        path, _ = QFileDialog.getSaveFileName(self, "Export the gap mask", suggestion, MASK_EXPORT_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".npz"
            self.export_mask(path)

    def _start_dir(self) -> str:
        text = self.path_edit.text().strip()
        if text:
            p = Path(text)
            return str(p if p.is_dir() else p.parent)
        return str(Path.cwd())
